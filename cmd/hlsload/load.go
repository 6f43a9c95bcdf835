package main

import (
	"bufio"
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"math"
	"math/rand/v2"
	"net"
	"net/http"
	"net/http/httptest"
	"net/url"
	"os"
	"path/filepath"
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
	Seed uint64 // 0 picks one from the clock; Result.Config.Seed tells which
	// MaxEncoders caps the in-process transcoder's re-encodes; 0 keeps its default (CPUs).
	MaxEncoders int
	Log         io.Writer // per-player log; nil for none
	ServerLog   io.Writer // the in-process server's log; nil for none
}

// Latency summarises a set of durations.
type Latency struct {
	N             int
	P50, P95, Max time.Duration
}

// Result is every figure of a run.
type Result struct {
	Config  Config // as run, defaults and seed filled in
	Elapsed time.Duration

	Requests        int            // every request issued, failed and aborted included
	Aborted         int            // requests cut off by the end of the run (not failures)
	Failed          int            // errors and statuses other than 200
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
	Bytes           int64   // body bytes read

	// Figures of this process; meaningful when the server ran in it.
	InProcess        bool
	RSSPeak, RSSHWM  int64 // bytes: sampled VmRSS peak, and VmHWM at the end
	RSSEnd           int64
	FDStart          int // before the server started
	FDPeak, FDEnd    int // FDEnd: after the server closed
	FFmpegPeak       int // concurrent ffmpeg children, sampled
	FFmpegAfterClose int // ffmpeg children alive after the server closed
	ChildrenAfter    int // any children alive after the server closed

	// Server metrics at the end of the run (before Close).
	EncoderStarts  map[string]float64 // hlsd_encoder_starts_total by "class/reason"
	EncodersAtEnd  map[string]float64 // hlsd_encoders_running by class
	ServerStatuses map[string]float64 // hlsd_http_requests_total by code
	MetricsError   string
}

const (
	maxMessages = 10
	forward     = 12.0 // seconds of buffer a playing player keeps ahead
)

// Run plays cfg.Original+cfg.Transcode players for cfg.Duration and returns
// the figures. Every goroutine it starts has ended when it returns.
func Run(ctx context.Context, cfg Config) (Result, error) {
	if cfg.Rung == "" {
		cfg.Rung = "360p"
	}
	if cfg.File == "" {
		cfg.File = "long.mp4"
	}
	if cfg.Seed == 0 {
		cfg.Seed = uint64(time.Now().UnixNano())
	}
	if cfg.Duration <= 0 {
		return Result{}, errors.New("duration must be positive")
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
		var err error
		srv, err = startServer(ctx, cfg)
		if err != nil {
			return res, err
		}
		defer srv.cleanup() // idempotent; the normal path closes earlier
		base = srv.URL
		proc = startSampler()
	} else if err := checkLoopback(base); err != nil {
		return res, err
	}
	master, err := url.Parse(strings.TrimRight(base, "/") + "/videos/" + e2e.ID(cfg.File) + "/master.m3u8")
	if err != nil {
		return res, err
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
	for i := range cfg.Original + cfg.Transcode {
		p := newPlayer(i, i >= cfg.Original, cfg, master, lw)
		players = append(players, p)
		wg.Go(func() { p.run(runCtx) })
	}
	wg.Wait()
	res.Elapsed = time.Since(start)
	collect(&res, players)

	if res.InProcess {
		gatherRegistry(&res, srv.Registry)
		srv.cleanup()
		proc.stop()
		res.FFmpegPeak = proc.ffmpegPeak
		res.RSSPeak = proc.rssPeak
		res.FDPeak = proc.fdPeak
		res.FFmpegAfterClose, res.ChildrenAfter = children()
		res.RSSEnd, res.RSSHWM = memory()
		res.FDEnd = countFDs()
	} else {
		scrapeMetrics(ctx, &res, strings.TrimRight(base, "/")+"/metrics")
	}
	return res, ctx.Err()
}

// collect merges the players' statistics.
func collect(res *Result, players []*player) {
	res.Failures = map[string]int{}
	var startup, seek, segO, segT []time.Duration
	var msgs, lates []timedMsg
	for _, p := range players {
		s := &p.s
		res.Requests += s.requests
		res.Aborted += s.aborted
		res.Failed += s.failed
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
		if p.transcode {
			segT = append(segT, s.seg...)
		} else {
			segO = append(segO, s.seg...)
		}
	}
	res.FailureMessages, res.LateExamples = firstMessages(msgs), firstMessages(lates)
	res.Startup, res.Seek = latency(startup), latency(seek)
	res.SegOriginal, res.SegTranscode = latency(segO), latency(segT)
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
	return Latency{N: len(s), P50: rank(.5), P95: rank(.95), Max: s[len(s)-1]}
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
// to pass MaxEncoders through, the same built here.
type inProcess struct {
	URL      string
	Registry *prometheus.Registry
	close    func() // stops serving, then every encoder
	dirs     []string
	once     sync.Once
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
	p := &inProcess{dirs: []string{media, cache}}
	fail := func(err error) (*inProcess, error) {
		p.cleanup()
		return nil, err
	}
	if _, err := e2e.Library(ctx, media); err != nil {
		return fail(fmt.Errorf("test media: %w", err))
	}
	if _, err := os.Stat(filepath.Join(media, filepath.FromSlash(cfg.File))); err != nil {
		return fail(fmt.Errorf("-file: %w", err))
	}
	log := zap.NewNop()
	if cfg.ServerLog != nil {
		enc := zap.NewDevelopmentEncoderConfig()
		log = zap.New(zapcore.NewCore(zapcore.NewConsoleEncoder(enc), zapcore.Lock(zapcore.AddSync(cfg.ServerLog)), zap.InfoLevel))
	}
	if cfg.MaxEncoders <= 0 {
		s, err := e2e.Start(media, cache, log, "")
		if err != nil {
			return fail(err)
		}
		p.URL, p.Registry, p.close = s.URL, s.Registry, s.Close
		return p, nil
	}
	reg := prometheus.NewRegistry()
	srv, err := server.New(server.Config{MediaDir: media, AllowOrigin: "*", Log: log, Registry: reg})
	if err != nil {
		return fail(err)
	}
	tc := transcoder.New(transcoder.Config{MediaDir: media, CacheDir: cache, MaxEncoders: cfg.MaxEncoders, Log: log, Observer: srv.Observer()})
	if err := tc.Initialize(); err != nil {
		srv.Close()
		return fail(fmt.Errorf("transcoder: %w", err))
	}
	srv.Initialize(tc)
	hs := httptest.NewServer(srv)
	p.URL, p.Registry = hs.URL, reg
	p.close = func() {
		hs.Close()
		tc.Close()
		srv.Close()
	}
	return p, nil
}

// cleanup closes the server, if started, and removes the scratch dirs.
func (p *inProcess) cleanup() {
	p.once.Do(func() {
		if p.close != nil {
			p.close()
		}
		for _, d := range p.dirs {
			os.RemoveAll(d)
		}
	})
}

// sampler watches this process every second (ffmpeg children every 250 ms).
type sampler struct {
	stopc      chan struct{}
	done       chan struct{}
	rssPeak    int64
	fdPeak     int
	ffmpegPeak int
}

func startSampler() *sampler {
	s := &sampler{stopc: make(chan struct{}), done: make(chan struct{})}
	go func() {
		defer close(s.done)
		tick := time.NewTicker(250 * time.Millisecond)
		defer tick.Stop()
		for i := 0; ; i++ {
			if i%4 == 0 {
				rss, _ := memory()
				s.rssPeak = max(s.rssPeak, rss)
				s.fdPeak = max(s.fdPeak, countFDs())
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

// gatherRegistry reads the encoder and request counters of the in-process server.
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

// scrapeMetrics reads the same counters from a running server's /metrics.
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
