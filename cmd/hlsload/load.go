package main

import (
	"bufio"
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"math"
	"math/rand/v2"
	"net"
	"net/http"
	"net/http/httptest"
	"net/url"
	"os"
	"path/filepath"
	"regexp"
	"runtime"
	"runtime/pprof"
	"slices"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"go.uber.org/zap"
	"go.uber.org/zap/zapcore"

	"github.com/hlsd/hlsd/server"
	"github.com/hlsd/hlsd/transcoder"
	"github.com/hlsd/hlsd/transcoder/library"
	"github.com/hlsd/hlsd/web/e2e"
)

// Config is one load run.
type Config struct {
	Original  int           // players of the original rung (stream copy)
	Transcode int           // players of a re-encoded rung
	Duration  time.Duration // how long the players play
	Rung      string        // first rung of the transcode players; default 360p
	// URL is an hlsd already running on loopback; empty starts one in this
	// process on a fresh cache, with the e2e corpus as its library.
	URL  string
	File string // media path relative to the media root; default long.mp4
	// Files, when set, replaces File: player i plays Files[i%len(Files)].
	Files []string
	Seed  uint64 // 0 picks one from the clock; Result.Config.Seed tells which
	// MaxEncoders caps the in-process transcoder's re-encodes; 0 keeps its default (CPUs).
	MaxEncoders int
	// CacheBytes is the in-process transcoder's segment cache budget; 0 keeps its default.
	CacheBytes int64
	// RequestTimeout bounds each request; one that takes longer counts as
	// hung (a failure). Default 20 s.
	RequestTimeout time.Duration
	// Speed is how many seconds of media the playhead advances per second;
	// default 1 (real time).
	Speed     float64
	Log       io.Writer // per-player log; nil for none
	ServerLog io.Writer // the in-process server's log; nil for none
}

// Latency summarises a set of durations.
type Latency struct {
	N                  int
	P50, P95, P99, Max time.Duration
}

// Result is every figure of a run.
type Result struct {
	Config  Config // as run, defaults and seed filled in
	Elapsed time.Duration

	Requests        int            // every request issued, failed and aborted included
	Aborted         int            // requests cut off by the end of the run (not failures)
	Failed          int            // errors and statuses other than 200, hung requests included
	Hung            int            // requests without a full answer within Config.RequestTimeout
	Retried503      int            // 503s with Retry-After, retried after it (not failures)
	Failures        map[string]int // by "status path-pattern"
	FailureMessages []string       // the first few, in time order
	Segments        int            // media segments fetched (video and audio)
	Late            int            // segments requested while playing that took longer than their duration
	LateExamples    []string
	Stalls          int
	StallTime       time.Duration
	Seeks, Switches int
	StartupsCut     int     // startups (first load or after a seek) still buffering when the run ended
	Startup         Latency // first master request to playing
	Seek            Latency // seek to playing
	SegOriginal     Latency // segment requests of original players
	SegTranscode    Latency // segment requests of transcode players
	RequestLatency  Latency // every request answered before the end of the run, whatever its status
	Bytes           int64   // body bytes read
	// HangStacks are this process's goroutine stacks when the first request
	// hung, the server's first (truncated): what a deadlock is stuck on.
	HangStacks string

	// Figures of this process; meaningful when the server ran in it.
	InProcess        bool
	RSSPeak, RSSHWM  int64 // bytes: sampled VmRSS peak, and VmHWM at the end
	RSSEnd           int64
	FDStart          int           // before the server started
	FDPeak, FDEnd    int           // FDEnd: after the server closed
	FFmpegPeak       int           // concurrent ffmpeg children, sampled
	FFmpegAfterClose int           // ffmpeg children alive after the server closed
	ChildrenAfter    int           // any children alive after the server closed
	CloseHung        bool          // the server's Close had not returned after closeTimeout
	CloseTime        time.Duration // how long Close took (closeTimeout if it hung)
	// Goroutines of this process before the server started, and after it
	// closed and they had up to 5 s to wind down.
	GoroutinesStart, GoroutinesEnd int

	// The segment cache on disk (segment-*.m4s files under <cache>/segments).
	CacheDisk    int64   // at the end, before Close, once it had up to 5 s to settle
	CachePeak    int64   // sampled every second during the run
	SegmentMax   int64   // the biggest segment file seen
	CacheMetric  float64 // hlsd_cache_bytes at the end, before Close
	Evictions    float64 // hlsd_cache_evictions_total, when the server exports it
	EvictionsSet bool    // the server exports hlsd_cache_evictions_total

	// Server metrics at the end of the run (before Close).
	EncoderStarts  map[string]float64 // hlsd_encoder_starts_total by "class/reason"
	EncodersAtEnd  map[string]float64 // hlsd_encoders_running by class
	ServerStatuses map[string]float64 // hlsd_http_requests_total by code
	MetricsError   string
}

const (
	maxMessages = 10
	forward     = 12.0 // seconds of buffer a playing player keeps ahead
	// settle is how long the end-of-run figures wait for the cache to come
	// back into budget (the server evicts once a second) and for goroutines
	// to end after Close.
	settle = 5 * time.Second
	// closeTimeout bounds the server's Close, so that a deadlocked server
	// is reported rather than hanging the run.
	closeTimeout = 15 * time.Second
)

// Run plays cfg.Original+cfg.Transcode players for cfg.Duration and returns
// the figures. Every goroutine it starts has ended when it returns.
func Run(ctx context.Context, cfg Config) (Result, error) {
	if cfg.Rung == "" {
		cfg.Rung = "360p"
	}
	if len(cfg.Files) == 0 {
		if cfg.File == "" {
			cfg.File = "long.mp4"
		}
		cfg.Files = []string{cfg.File}
	}
	if cfg.Seed == 0 {
		cfg.Seed = uint64(time.Now().UnixNano())
	}
	if cfg.RequestTimeout <= 0 {
		cfg.RequestTimeout = 20 * time.Second
	}
	if cfg.Speed == 0 {
		cfg.Speed = 1
	}
	if cfg.Duration <= 0 {
		return Result{}, errors.New("duration must be positive")
	}
	if cfg.Speed < 0 {
		return Result{}, errors.New("speed must be positive")
	}
	if cfg.Original < 0 || cfg.Transcode < 0 || cfg.Original+cfg.Transcode == 0 {
		return Result{}, errors.New("need at least one player")
	}
	res := Result{Config: cfg, InProcess: cfg.URL == ""}
	base := cfg.URL
	var proc *sampler
	var srv *inProcess
	if res.InProcess {
		res.FDStart = countFDs()
		res.GoroutinesStart = runtime.NumGoroutine()
		var err error
		srv, err = startServer(ctx, cfg)
		if err != nil {
			return res, err
		}
		defer srv.cleanup() // idempotent; the normal path closes earlier
		base = srv.URL
		proc = startSampler(srv.cache)
	} else if err := checkLoopback(base); err != nil {
		return res, err
	}
	var masters []*url.URL
	for _, f := range cfg.Files {
		m, err := url.Parse(strings.TrimRight(base, "/") + "/videos/" + e2e.ID(f) + "/master.m3u8")
		if err != nil {
			return res, err
		}
		masters = append(masters, m)
	}

	var lw *logWriter
	if cfg.Log != nil {
		lw = &logWriter{w: cfg.Log, t0: time.Now()}
	}
	runCtx, cancel := context.WithTimeout(ctx, cfg.Duration)
	defer cancel()
	start := time.Now()
	var players []*player
	var wg sync.WaitGroup
	var dump hangDump
	for i := range cfg.Original + cfg.Transcode {
		f := i % len(cfg.Files)
		p := newPlayer(i, i >= cfg.Original, cfg, cfg.Files[f], masters[f], lw, &dump)
		players = append(players, p)
		wg.Go(func() { p.run(runCtx) })
	}
	wg.Wait()
	res.Elapsed = time.Since(start)
	collect(&res, players)
	res.HangStacks = dump.stacks

	if res.InProcess {
		res.CacheDisk, res.SegmentMax = settleCache(ctx, srv.cache, cfg.CacheBytes)
		gatherRegistry(&res, srv.Registry)
		proc.stop()
		res.CachePeak = max(proc.cachePeak, res.CacheDisk)
		res.SegmentMax = max(proc.segmentMax, res.SegmentMax)
		t0 := time.Now()
		res.CloseHung = !srv.cleanup()
		res.CloseTime = time.Since(t0)
		res.FFmpegPeak = proc.ffmpegPeak
		res.RSSPeak = proc.rssPeak
		res.FDPeak = proc.fdPeak
		res.GoroutinesEnd = goroutinesAfter(ctx, res.GoroutinesStart)
		res.FFmpegAfterClose, res.ChildrenAfter = children()
		res.RSSEnd, res.RSSHWM = memory()
		res.FDEnd = countFDs()
	} else {
		scrapeMetrics(ctx, &res, strings.TrimRight(base, "/")+"/metrics")
	}
	return res, ctx.Err()
}

// settleCache measures the segment cache until it is within budget plus
// one segment (a segment may land between two evictions), for up to settle.
func settleCache(ctx context.Context, cache string, budget int64) (total, biggest int64) {
	deadline := time.Now().Add(settle)
	for {
		total, biggest = cacheUsage(cache)
		if budget <= 0 || total <= budget+biggest || time.Now().After(deadline) {
			return total, biggest
		}
		sleep(ctx, 250*time.Millisecond)
		if ctx.Err() != nil {
			return total, biggest
		}
	}
}

// cacheUsage sums the segment files under cache/segments and finds the
// biggest. Directories evicted meanwhile are skipped.
func cacheUsage(cache string) (total, biggest int64) {
	root := filepath.Join(cache, "segments")
	filepath.WalkDir(root, func(_ string, d fs.DirEntry, err error) error {
		if err != nil || !d.Type().IsRegular() || !segmentFile.MatchString(d.Name()) {
			return nil
		}
		if fi, err := d.Info(); err == nil {
			total += fi.Size()
			biggest = max(biggest, fi.Size())
		}
		return nil
	})
	return total, biggest
}

var segmentFile = regexp.MustCompile(`^segment-[0-9]+\.m4s$`)

// goroutinesAfter waits up to settle for this process's goroutines to come
// back to base (connections and heads end asynchronously) and returns the count.
func goroutinesAfter(ctx context.Context, base int) int {
	deadline := time.Now().Add(settle)
	for {
		n := runtime.NumGoroutine()
		if n <= base || time.Now().After(deadline) || ctx.Err() != nil {
			return n
		}
		sleep(ctx, 100*time.Millisecond)
	}
}

// hangDump takes the goroutine stacks once, at the first hung request,
// while whatever blocks it still does.
type hangDump struct {
	once   sync.Once
	stacks string
}

func (h *hangDump) take() { h.once.Do(func() { h.stacks = goroutineStacks(64 << 10) }) }

// goroutineStacks is every goroutine's stack as debug=2 gives it (with
// what each waits on), the server's and transcoder's first (the players'
// wait in net/http and say little), goroutines stuck at the same lines shown
// once with their count (a deadlock holds dozens of handlers alike), and
// cut to limit bytes.
func goroutineStacks(limit int) string {
	var b strings.Builder
	pprof.Lookup("goroutine").WriteTo(&b, 2)
	var order []string
	same := map[string][]string{}
	for _, g := range strings.Split(strings.TrimSpace(b.String()), "\n\n") {
		k := stackKey(g)
		if same[k] == nil {
			order = append(order, k)
		}
		same[k] = append(same[k], g)
	}
	ours := func(k string) bool {
		g := same[k][0]
		return strings.Contains(g, "hlsd/hlsd/transcoder.") || strings.Contains(g, "hlsd/hlsd/server.")
	}
	slices.SortStableFunc(order, func(a, b string) int {
		switch {
		case ours(a) && !ours(b):
			return -1
		case ours(b) && !ours(a):
			return 1
		}
		return 0
	})
	var out strings.Builder
	n := 0
	for _, k := range order {
		gs := same[k]
		n += len(gs)
		out.WriteString(gs[0])
		if len(gs) > 1 {
			fmt.Fprintf(&out, "\n(and %d more goroutines at the same lines)", len(gs)-1)
		}
		out.WriteString("\n\n")
	}
	s := out.String()
	if len(s) > limit {
		s = s[:limit] + fmt.Sprintf("\n... (cut at %d bytes; %d goroutines in all)", limit, n)
	}
	return s
}

// stackKey is a goroutine's state and the file:line of each frame, without
// the goroutine's number, wait time or call arguments.
func stackKey(g string) string {
	lines := strings.Split(g, "\n")
	_, state, _ := strings.Cut(lines[0], "[") // "goroutine 7 [chan receive, 2 minutes]:"
	state, _, _ = strings.Cut(strings.TrimSuffix(state, "]:"), ",")
	k := []string{state}
	for _, l := range lines[1:] {
		if strings.HasPrefix(l, "\t") {
			l, _, _ = strings.Cut(l, " +0x")
			k = append(k, l)
		}
	}
	return strings.Join(k, "\n")
}

// collect merges the players' statistics.
func collect(res *Result, players []*player) {
	res.Failures = map[string]int{}
	var startup, seek, segO, segT, reqs []time.Duration
	var msgs, lates []timedMsg
	for _, p := range players {
		s := &p.s
		res.Requests += s.requests
		res.Aborted += s.aborted
		res.Failed += s.failed
		res.Hung += s.hung
		res.Retried503 += s.retried503
		for k, n := range s.failures {
			res.Failures[k] += n
		}
		msgs = append(msgs, s.messages...)
		res.Segments += s.segments
		res.Late += s.late
		lates = append(lates, s.lateExamples...)
		res.Stalls += s.stalls
		res.StallTime += s.stallTime
		res.Seeks += s.seeks
		res.Switches += s.switches
		res.StartupsCut += s.startupsCut
		res.Bytes += s.bytes
		startup = append(startup, s.startup...)
		seek = append(seek, s.seek...)
		reqs = append(reqs, s.req...)
		if p.transcode {
			segT = append(segT, s.seg...)
		} else {
			segO = append(segO, s.seg...)
		}
	}
	res.FailureMessages, res.LateExamples = firstMessages(msgs), firstMessages(lates)
	res.Startup, res.Seek = latency(startup), latency(seek)
	res.SegOriginal, res.SegTranscode = latency(segO), latency(segT)
	res.RequestLatency = latency(reqs)
}

// firstMessages are the first few messages in time order.
func firstMessages(msgs []timedMsg) []string {
	slices.SortFunc(msgs, func(a, b timedMsg) int { return a.at.Compare(b.at) })
	var out []string
	for i := 0; i < len(msgs) && i < maxMessages; i++ {
		out = append(out, msgs[i].msg)
	}
	return out
}

func latency(d []time.Duration) Latency {
	if len(d) == 0 {
		return Latency{}
	}
	s := slices.Clone(d)
	slices.Sort(s)
	rank := func(p float64) time.Duration {
		i := int(math.Ceil(p*float64(len(s)))) - 1
		return s[max(i, 0)]
	}
	return Latency{N: len(s), P50: rank(.5), P95: rank(.95), P99: rank(.99), Max: s[len(s)-1]}
}

// checkLoopback refuses any server that is not on this machine's loopback.
func checkLoopback(raw string) error {
	u, err := url.Parse(raw)
	if err != nil {
		return fmt.Errorf("-url: %w", err)
	}
	if u.Scheme != "http" && u.Scheme != "https" {
		return fmt.Errorf("-url %q: want http://HOST:PORT", raw)
	}
	host := u.Hostname()
	if host == "localhost" {
		return nil
	}
	if ip := net.ParseIP(host); ip != nil && ip.IsLoopback() {
		return nil
	}
	return fmt.Errorf("-url %q: only loopback servers (127.0.0.0/8, ::1, localhost) may be loaded", raw)
}

// inProcess is hlsd served from this process: web/e2e.Start itself, or,
// to pass MaxEncoders or CacheBytes through, the same built here.
type inProcess struct {
	URL      string
	Registry *prometheus.Registry
	cache    string // the transcoder's cache directory
	close    func() // stops serving, then every encoder
	dirs     []string
	once     sync.Once
	closed   bool // close returned within closeTimeout
}

func startServer(ctx context.Context, cfg Config) (*inProcess, error) {
	media, err := os.MkdirTemp("", "hlsload-media-")
	if err != nil {
		return nil, err
	}
	cache, err := os.MkdirTemp("", "hlsload-cache-")
	if err != nil {
		os.RemoveAll(media)
		return nil, err
	}
	p := &inProcess{dirs: []string{media, cache}, cache: cache}
	fail := func(err error) (*inProcess, error) {
		p.cleanup()
		return nil, err
	}
	if _, err := e2e.Library(ctx, media); err != nil {
		return fail(fmt.Errorf("test media: %w", err))
	}
	for _, f := range cfg.Files {
		if _, err := os.Stat(filepath.Join(media, filepath.FromSlash(f))); err != nil {
			return fail(fmt.Errorf("-file/-files: %w", err))
		}
	}
	log := zap.NewNop()
	if cfg.ServerLog != nil {
		enc := zap.NewDevelopmentEncoderConfig()
		log = zap.New(zapcore.NewCore(zapcore.NewConsoleEncoder(enc), zapcore.Lock(zapcore.AddSync(cfg.ServerLog)), zap.InfoLevel))
	}
	if cfg.MaxEncoders <= 0 && cfg.CacheBytes <= 0 {
		s, err := e2e.Start(media, cache, log, "")
		if err != nil {
			return fail(err)
		}
		p.URL, p.Registry, p.close = s.URL, s.Registry, s.Close
		return p, nil
	}
	reg := prometheus.NewRegistry()
	lib, err := library.Open(media)
	if err != nil {
		return fail(err)
	}
	srv, err := server.New(server.Config{Library: lib, AllowOrigin: "*", Log: log, Registry: reg})
	if err != nil {
		lib.Close()
		return fail(err)
	}
	tc := transcoder.New(transcoder.Config{Library: lib, CacheDir: cache, MaxEncoders: cfg.MaxEncoders, CacheBytes: cfg.CacheBytes, Log: log, Observer: srv.Observer()})
	if err := tc.Initialize(); err != nil {
		lib.Close()
		return fail(fmt.Errorf("transcoder: %w", err))
	}
	srv.Initialize(tc, nil)
	hs := httptest.NewServer(srv)
	p.URL, p.Registry = hs.URL, reg
	p.close = func() {
		hs.Close()
		tc.Close()
		lib.Close()
	}
	return p, nil
}

// cleanup closes the server, if started, and removes the scratch dirs. It
// reports whether Close returned within closeTimeout: a deadlocked server
// never does (httptest's Close waits for every handler), and is left behind.
func (p *inProcess) cleanup() bool {
	p.once.Do(func() {
		p.closed = true
		if p.close != nil {
			done := make(chan struct{})
			go func() {
				defer close(done)
				p.close()
			}()
			t := time.NewTimer(closeTimeout)
			defer t.Stop()
			select {
			case <-done:
			case <-t.C:
				p.closed = false
			}
		}
		for _, d := range p.dirs {
			os.RemoveAll(d)
		}
	})
	return p.closed
}

// sampler watches this process every second (ffmpeg children every 250 ms).
type sampler struct {
	cache      string // segment cache to measure; "" for none
	stopc      chan struct{}
	done       chan struct{}
	rssPeak    int64
	fdPeak     int
	ffmpegPeak int
	cachePeak  int64
	segmentMax int64
}

func startSampler(cache string) *sampler {
	s := &sampler{cache: cache, stopc: make(chan struct{}), done: make(chan struct{})}
	go func() {
		defer close(s.done)
		tick := time.NewTicker(250 * time.Millisecond)
		defer tick.Stop()
		for i := 0; ; i++ {
			if i%4 == 0 {
				rss, _ := memory()
				s.rssPeak = max(s.rssPeak, rss)
				s.fdPeak = max(s.fdPeak, countFDs())
				if s.cache != "" {
					total, biggest := cacheUsage(s.cache)
					s.cachePeak = max(s.cachePeak, total)
					s.segmentMax = max(s.segmentMax, biggest)
				}
			}
			ff, _ := children()
			s.ffmpegPeak = max(s.ffmpegPeak, ff)
			select {
			case <-s.stopc:
				return
			case <-tick.C:
			}
		}
	}()
	return s
}

func (s *sampler) stop() {
	close(s.stopc)
	<-s.done
}

// memory reads VmRSS and VmHWM of this process, in bytes.
func memory() (rss, hwm int64) {
	b, err := os.ReadFile("/proc/self/status")
	if err != nil {
		return 0, 0
	}
	sc := bufio.NewScanner(bytes.NewReader(b))
	for sc.Scan() {
		f := strings.Fields(sc.Text())
		if len(f) < 2 {
			continue
		}
		n, _ := strconv.ParseInt(f[1], 10, 64)
		switch f[0] {
		case "VmRSS:":
			rss = n << 10
		case "VmHWM:":
			hwm = n << 10
		}
	}
	return rss, hwm
}

// countFDs is the number of open file descriptors of this process.
func countFDs() int {
	ents, err := os.ReadDir("/proc/self/fd")
	if err != nil {
		return -1
	}
	return len(ents)
}

// children counts the processes whose parent is this one, and the ffmpeg ones among them.
func children() (ffmpeg, all int) {
	self := strconv.Itoa(os.Getpid())
	ents, err := os.ReadDir("/proc")
	if err != nil {
		return -1, -1
	}
	for _, e := range ents {
		if _, err := strconv.Atoi(e.Name()); err != nil {
			continue
		}
		b, err := os.ReadFile("/proc/" + e.Name() + "/stat")
		if err != nil {
			continue // gone meanwhile
		}
		// pid (comm) state ppid ...; comm may hold spaces and parentheses.
		open, shut := bytes.IndexByte(b, '('), bytes.LastIndexByte(b, ')')
		if open < 0 || shut < open {
			continue
		}
		f := strings.Fields(string(b[shut+1:]))
		if len(f) < 2 || f[1] != self {
			continue
		}
		all++
		if string(b[open+1:shut]) == "ffmpeg" {
			ffmpeg++
		}
	}
	return ffmpeg, all
}

// gatherRegistry reads the encoder, request and cache metrics of the in-process server.
func gatherRegistry(res *Result, reg *prometheus.Registry) {
	res.EncoderStarts, res.EncodersAtEnd, res.ServerStatuses = map[string]float64{}, map[string]float64{}, map[string]float64{}
	mfs, err := reg.Gather()
	if err != nil {
		res.MetricsError = err.Error()
	}
	for _, mf := range mfs {
		for _, m := range mf.GetMetric() {
			switch mf.GetName() {
			case "hlsd_encoder_starts_total":
				res.EncoderStarts[label(m.GetLabel(), "class")+"/"+label(m.GetLabel(), "reason")] += m.GetCounter().GetValue()
			case "hlsd_encoders_running":
				res.EncodersAtEnd[label(m.GetLabel(), "class")] += m.GetGauge().GetValue()
			case "hlsd_http_requests_total":
				res.ServerStatuses[label(m.GetLabel(), "code")] += m.GetCounter().GetValue()
			case "hlsd_cache_bytes":
				res.CacheMetric = m.GetGauge().GetValue()
			case "hlsd_cache_evictions_total":
				res.Evictions += m.GetCounter().GetValue()
				res.EvictionsSet = true
			}
		}
	}
}

// label finds a label's value among a metric's label pairs.
func label[L interface {
	GetName() string
	GetValue() string
}](pairs []L, name string) string {
	for _, p := range pairs {
		if p.GetName() == name {
			return p.GetValue()
		}
	}
	return ""
}

// scrapeMetrics reads the same metrics from a running server's /metrics.
func scrapeMetrics(ctx context.Context, res *Result, u string) {
	res.EncoderStarts, res.EncodersAtEnd, res.ServerStatuses = map[string]float64{}, map[string]float64{}, map[string]float64{}
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, u, nil)
	if err != nil {
		res.MetricsError = err.Error()
		return
	}
	resp, err := (&http.Client{Timeout: 10 * time.Second, Transport: &http.Transport{}}).Do(req)
	if err != nil {
		res.MetricsError = err.Error()
		return
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		res.MetricsError = "GET /metrics: " + resp.Status
		return
	}
	sc := bufio.NewScanner(resp.Body)
	sc.Buffer(nil, 1<<20)
	for sc.Scan() {
		name, labels, value, ok := parseSample(sc.Text())
		if !ok {
			continue
		}
		switch name {
		case "hlsd_encoder_starts_total":
			res.EncoderStarts[labels["class"]+"/"+labels["reason"]] += value
		case "hlsd_encoders_running":
			res.EncodersAtEnd[labels["class"]] += value
		case "hlsd_http_requests_total":
			res.ServerStatuses[labels["code"]] += value
		case "hlsd_cache_bytes":
			res.CacheMetric = value
		case "hlsd_cache_evictions_total":
			res.Evictions += value
			res.EvictionsSet = true
		}
	}
}

// parseSample reads one line of the Prometheus text format, such as
// `name{a="x",b="y"} 3`. Label values with commas or quotes are not handled:
// hlsd's are route patterns, codes, classes and reasons.
func parseSample(line string) (name string, labels map[string]string, value float64, ok bool) {
	if line == "" || line[0] == '#' {
		return "", nil, 0, false
	}
	labels = map[string]string{}
	rest := line
	if i := strings.IndexByte(line, '{'); i >= 0 {
		j := strings.LastIndexByte(line, '}')
		if j < i {
			return "", nil, 0, false
		}
		name, rest = line[:i], line[j+1:]
		for _, kv := range strings.Split(line[i+1:j], ",") {
			k, v, found := strings.Cut(kv, "=")
			if found {
				labels[strings.TrimSpace(k)] = strings.Trim(v, `"`)
			}
		}
	} else {
		name, rest, _ = strings.Cut(line, " ")
	}
	f := strings.Fields(rest)
	if len(f) == 0 {
		return "", nil, 0, false
	}
	v, err := strconv.ParseFloat(f[0], 64)
	return name, labels, v, err == nil
}

// logWriter serialises the per-player log lines.
type logWriter struct {
	mu sync.Mutex
	w  io.Writer
	t0 time.Time
}

func (l *logWriter) printf(format string, args ...any) {
	l.mu.Lock()
	defer l.mu.Unlock()
	fmt.Fprintf(l.w, "%7.2fs ", time.Since(l.t0).Seconds())
	fmt.Fprintf(l.w, format, args...)
	fmt.Fprintln(l.w)
}

// seededRand gives player i its own stream of the run's seed.
func seededRand(seed uint64, i int) *rand.Rand { return rand.New(rand.NewPCG(seed, uint64(i))) }
