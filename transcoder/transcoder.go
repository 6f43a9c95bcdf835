// Package transcoder turns a media file into HLS variants on demand: it probes
// files, plans aligned segments, and runs ffmpeg "heads" that produce the
// segments players ask for, within a cap on concurrent encoders and a disk budget.
package transcoder

import (
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"runtime"
	"sort"
	"sync"
	"sync/atomic"
	"time"

	gocache "github.com/patrickmn/go-cache"
	"go.uber.org/zap"

	"github.com/hlsd/hlsd/keyframes"
	"github.com/hlsd/hlsd/playlist"
)

// Config of a Transcoder. Zero values get the defaults of New.
type Config struct {
	FFmpeg, FFprobe string
	// MediaDir is the library root; every file is opened through it.
	MediaDir string
	CacheDir string
	// MaxEncoders caps concurrent video re-encodes (CPU bound).
	MaxEncoders int
	// MaxCopies caps concurrent stream copies and audio encodes (cheap, I/O bound).
	MaxCopies int
	// CacheBytes is the disk budget for segments.
	CacheBytes int64
	// IdleTimeout stops a head nobody has asked anything of for this long.
	IdleTimeout time.Duration
	// CapacityWait is how long a request waits for a free encoder before 503.
	CapacityWait time.Duration
	Preset       string
	// HWAccel is none, auto, nvidia, vaapi or qsv; auto tries each at
	// Initialize and keeps the first that encodes.
	HWAccel string
	// HWDevice is the render node for VAAPI and QSV, the GPU index for NVIDIA.
	HWDevice string
	// HWSessions caps concurrent hardware encodes; more go to software.
	HWSessions int
	// HWStallTimeout fails a hardware run that wrote no segment by then.
	HWStallTimeout time.Duration
	// KeyframeScanOnly ignores container indexes and always runs the packet
	// scan: the escape hatch should an index ever mislead.
	KeyframeScanOnly bool
	// TrickplayInterval is the time between thumbnails: 0 means 10 s, a
	// negative value turns thumbnails off.
	TrickplayInterval time.Duration
	Log               *zap.Logger
	Observer          Observer
}

// Observer receives events for metrics; the server implements it with Prometheus.
type Observer interface {
	HeadStarted(class, reason string)
	HeadStopped(class string)
	SegmentWaited(d time.Duration)
	CacheBytes(n int64)
	HWFallback(accel string)
	HWEnabled(accel string, on bool)
	TrickplayMade(d time.Duration)
	keyframes.Observer // keyframe scan durations, seconds
}

type nopObserver struct{}

func (nopObserver) HeadStarted(string, string)  {}
func (nopObserver) HeadStopped(string)          {}
func (nopObserver) SegmentWaited(time.Duration) {}
func (nopObserver) CacheBytes(int64)            {}
func (nopObserver) HWFallback(string)           {}
func (nopObserver) HWEnabled(string, bool)      {}
func (nopObserver) TrickplayMade(time.Duration) {}
func (nopObserver) Observe(float64)             {}

// Transcoder owns every media file state, encoder head and cached segment.
type Transcoder struct {
	cfg   Config
	log   *zap.Logger
	obs   Observer
	root  *os.Root
	kf    *keyframes.Store
	infos *gocache.Cache

	ctx    context.Context
	cancel context.CancelCauseFunc
	wg     sync.WaitGroup // heads and the janitor

	heavy, light chan struct{}
	thumbSlots   chan struct{} // thumbnail children, over every file
	hw           *hardware     // nil: software only
	headSeq      atomic.Int64
	health       health // draining flag, janitor heartbeat and running probes: see health.go

	mu       sync.Mutex
	medias   map[string]*media
	opening  map[string]chan struct{} // closed when the open of that key ends
	making   map[string]*work         // subtitle conversions running, by output path
	variants map[string]*variant
	clients  map[string]*client
	cache    map[string]*cacheEntry // by variant directory
	cacheSum int64
	// trickplays are the thumbnail generations running, by directory.
	trickplays map[string]*trickplayRun
}

// New applies defaults; Initialize must be called before use.
func New(cfg Config) *Transcoder {
	if cfg.FFmpeg == "" {
		cfg.FFmpeg = "ffmpeg"
	}
	if cfg.FFprobe == "" {
		cfg.FFprobe = "ffprobe"
	}
	if cfg.MaxEncoders <= 0 {
		cfg.MaxEncoders = runtime.NumCPU()
	}
	if cfg.MaxCopies <= 0 {
		cfg.MaxCopies = 8 * cfg.MaxEncoders
	}
	if cfg.CacheBytes <= 0 {
		cfg.CacheBytes = 10 << 30
	}
	if cfg.IdleTimeout <= 0 {
		cfg.IdleTimeout = 30 * time.Second
	}
	if cfg.CapacityWait <= 0 {
		cfg.CapacityWait = 3 * time.Second
	}
	if cfg.Preset == "" {
		cfg.Preset = "veryfast"
	}
	if cfg.HWAccel == "" {
		cfg.HWAccel = AccelNone
	}
	if cfg.HWSessions <= 0 {
		cfg.HWSessions = 3
	}
	if cfg.TrickplayInterval == 0 {
		cfg.TrickplayInterval = 10 * time.Second
	}
	if cfg.HWStallTimeout <= 0 {
		cfg.HWStallTimeout = 20 * time.Second
	}
	if cfg.Log == nil {
		cfg.Log = zap.NewNop()
	}
	if cfg.Observer == nil {
		cfg.Observer = nopObserver{}
	}
	return &Transcoder{cfg: cfg, log: cfg.Log, obs: cfg.Observer}
}

// Initialize creates the cache directories, accounts the segments an earlier
// run left there, and starts the janitor.
func (t *Transcoder) Initialize() error {
	root, err := os.OpenRoot(t.cfg.MediaDir)
	if err != nil {
		return fmt.Errorf("media directory: %w", err)
	}
	t.root = root
	if err := os.MkdirAll(filepath.Join(t.cfg.CacheDir, "segments"), 0o755); err != nil {
		return fmt.Errorf("cache directory: %w", err)
	}
	accel := t.cfg.HWAccel
	switch accel {
	case AccelNone, AccelNVIDIA, AccelVAAPI, AccelQSV:
	case "auto":
		var why map[string]string
		accel, why = DetectAccel(context.Background(), t.cfg.FFmpeg, t.cfg.HWDevice)
		var fields []zap.Field
		for _, a := range Accels {
			if r, ok := why[a]; ok {
				fields = append(fields, zap.String(a, r))
			}
		}
		if accel == AccelNone {
			t.log.Info("hwaccel auto: no hardware encoder works here, encoding in software", fields...)
		} else {
			t.log.Info("hwaccel auto: encoding on "+accel, fields...)
		}
	default:
		return fmt.Errorf("hardware acceleration %q: want none, auto, nvidia, vaapi or qsv", accel)
	}
	if accel != AccelNone {
		t.hw = newHardware(videoProfile{accel: accel, device: t.cfg.HWDevice, preset: t.cfg.Preset},
			t.cfg.HWSessions, t.log, t.obs)
	}
	t.ctx, t.cancel = context.WithCancelCause(context.Background())
	t.kf = keyframes.NewStore(t.cfg.CacheDir, keyframes.Options{
		FFprobe: t.cfg.FFprobe, Log: t.log, ScanSeconds: t.obs, ScanOnly: t.cfg.KeyframeScanOnly})
	// No go-cache janitor goroutine: ours sweeps expired entries, so Close owns every goroutine.
	t.infos = gocache.New(time.Hour, 0)
	t.heavy = make(chan struct{}, t.cfg.MaxEncoders)
	t.light = make(chan struct{}, t.cfg.MaxCopies)
	t.thumbSlots = make(chan struct{}, max(1, min(t.cfg.MaxEncoders, runtime.NumCPU(), 4)))
	t.trickplays = map[string]*trickplayRun{}
	// Generations a crash interrupted left their work directories.
	leftovers, _ := filepath.Glob(filepath.Join(t.cfg.CacheDir, "trickplay", ".tmp-*"))
	for _, d := range leftovers {
		os.RemoveAll(d)
	}
	t.medias = map[string]*media{}
	t.opening = map[string]chan struct{}{}
	t.making = map[string]*work{}
	t.variants = map[string]*variant{}
	t.clients = map[string]*client{}
	t.cache = map[string]*cacheEntry{}
	t.loadCache()
	t.wg.Add(1)
	go t.janitor()
	return nil
}

// Close stops every head and waits for every ffmpeg child to be gone.
func (t *Transcoder) Close() {
	t.cancel(errShutdown)
	t.wg.Wait()
	t.kf.Close()
	t.root.Close()
}

// open returns the media state of name, a path relative to the media root.
// Its key includes size and modification time, so a file replaced on disk
// gets new state rather than the old file's plans and segments.
func (t *Transcoder) open(ctx context.Context, name string) (*media, error) {
	f, st, err := t.openFile(name)
	if err != nil {
		return nil, err
	}
	defer func() {
		if f != nil {
			f.Close()
		}
	}()
	key := fileKey(name, st)
	// The first viewers of a file arrive together (a player asks for the
	// master and both media playlists at once, a household starts a film on
	// two screens): one of them probes, the others wait for its result.
	for {
		t.mu.Lock()
		if m := t.medias[key]; m != nil {
			t.mu.Unlock()
			return m, nil
		}
		busy, ok := t.opening[key]
		if !ok {
			break // still locked: this caller opens it
		}
		t.mu.Unlock()
		select {
		case <-busy:
		case <-ctx.Done():
			return nil, context.Cause(ctx)
		}
	}
	done := make(chan struct{})
	t.opening[key] = done
	t.mu.Unlock()
	var m *media
	defer func() {
		t.mu.Lock()
		delete(t.opening, key)
		if m != nil {
			t.medias[key] = m
		}
		close(done) // on failure a waiter tries for itself
		t.mu.Unlock()
	}()

	info, err := t.probe(ctx, name, st, f)
	if err != nil {
		return nil, err
	}
	kf, err := t.kf.GetFile(name, f, info.StartTime)
	f = nil // the keyframe store owns it now
	if err != nil {
		return nil, fmt.Errorf("%w: %v", ErrNotMedia, err)
	}
	m = &media{name: name, size: st.Size(), modTime: st.ModTime(), key: key, info: info, kf: kf}
	return m, nil
}

// Info describes a file, with the qualities it offers and the scan's progress.
func (t *Transcoder) Info(ctx context.Context, path string) (*Info, error) {
	m, err := t.open(ctx, path)
	if err != nil {
		return nil, err
	}
	info := *m.info
	info.Qualities = Qualities{Video: videoQualities(info.Video[0]), Audio: []string{}}
	if !copyableVideo(info.Video[0]) {
		info.Qualities.Video = info.Qualities.Video[1:]
	}
	if len(info.Audio) > 0 {
		info.Qualities.Audio = audioQualities(info.Audio[0])
	}
	info.Subtitles = t.subtitleTracks(m)
	times, _, _, complete, _ := m.kf.Snapshot()
	info.Keyframes = KeyframeStatus{Count: len(times), Complete: complete, Source: m.kf.Source()}
	if t.cfg.TrickplayInterval > 0 {
		info.TrickplayInterval = t.cfg.TrickplayInterval.Seconds()
	}
	return &info, nil
}

// variant validates (kind, track, quality) against the file and returns its state.
func (t *Transcoder) variant(ctx context.Context, path, kind string, track int, quality string) (*variant, error) {
	m, err := t.open(ctx, path)
	if err != nil {
		return nil, err
	}
	switch kind {
	case "video":
		if track < 0 || track >= len(m.info.Video) {
			return nil, fmt.Errorf("%w: the file has no video track %d", ErrNotFound, track)
		}
		if !contains(videoQualities(m.info.Video[track]), quality) {
			return nil, fmt.Errorf("%w: quality %q is not offered for this file", ErrNotFound, quality)
		}
		if quality == QualityOriginal && !copyableVideo(m.info.Video[track]) {
			return nil, fmt.Errorf("%w: the %s source cannot be served as original", ErrNotFound, m.info.Video[track].Codec)
		}
	case "audio":
		if track < 0 || track >= len(m.info.Audio) {
			return nil, fmt.Errorf("%w: the file has no audio track %d", ErrNotFound, track)
		}
		if !contains(audioQualities(m.info.Audio[track]), quality) {
			return nil, fmt.Errorf("%w: audio quality %q is not offered for this track", ErrNotFound, quality)
		}
	default:
		return nil, fmt.Errorf("%w: unknown track kind %q", ErrBadRequest, kind)
	}
	p, err := m.getPlans(ctx)
	if err != nil {
		return nil, err
	}
	dir := filepath.Join(t.cfg.CacheDir, "segments", m.key, fmt.Sprintf("%s-%d-%s", kind, track, quality))
	t.mu.Lock()
	defer t.mu.Unlock()
	if v := t.variants[dir]; v != nil {
		return v, nil
	}
	v := &variant{t: t, m: m, kind: kind, track: track, quality: quality, plan: p.forVariant(kind, quality), dir: dir}
	n := v.load()
	e := t.cache[dir]
	if e == nil {
		e = &cacheEntry{dir: dir, bytes: n, used: time.Now()}
		t.cache[dir] = e
		t.cacheSum += n
	}
	e.v = v
	v.entry = e
	t.variants[dir] = v
	return v, nil
}

// MediaPlaylist writes the VOD playlist of one variant.
func (t *Transcoder) MediaPlaylist(ctx context.Context, path, kind string, track int, quality, query string) ([]byte, error) {
	v, err := t.variant(ctx, path, kind, track, quality)
	if err != nil {
		return nil, err
	}
	return playlist.WriteMedia(v.plan, "init.mp4", func(i int) string {
		return fmt.Sprintf("segment-%d.m4s", i)
	}, query), nil
}

// Segment returns the path of segment n, producing it if needed.
func (t *Transcoder) Segment(ctx context.Context, path, kind string, track int, quality string, n int, clientID string) (string, error) {
	v, err := t.variant(ctx, path, kind, track, quality)
	if err != nil {
		return "", err
	}
	if n < 0 || n >= v.plan.Len() {
		return "", fmt.Errorf("%w: segment %d is out of range (the playlist has %d)", ErrNotFound, n, v.plan.Len())
	}
	t.trackClient(clientID, v, n)
	return v.segment(ctx, n, clientID)
}

// Init returns the path of the variant's init segment.
func (t *Transcoder) Init(ctx context.Context, path, kind string, track int, quality, clientID string) (string, error) {
	v, err := t.variant(ctx, path, kind, track, quality)
	if err != nil {
		return "", err
	}
	return v.initSegment(ctx, t.clientPosition(clientID, v.m), clientID)
}

func contains(list []string, s string) bool {
	for _, x := range list {
		if x == s {
			return true
		}
	}
	return false
}

// acquire waits for an encoder slot of the head's class. When none is free,
// a head nobody is waiting on gives its slot up: a waiting request goes first.
func (t *Transcoder) acquire(ctx context.Context, h *head) (func(), error) {
	if h.heavy && !h.v.softwareOnly() {
		if release, ok := t.hw.acquire(h.v.m.info.Video[h.v.track]); ok {
			h.v.mu.Lock()
			h.hw = true
			h.v.mu.Unlock()
			return release, nil
		}
	}
	sem := t.light
	if h.heavy {
		sem = t.heavy
	}
	release := func() { <-sem }
	select {
	case sem <- struct{}{}:
		return release, nil
	default:
	}
	if h.reason == "prefetch" {
		return nil, errors.New("no free encoder for a prefetch")
	}
	timer := time.NewTimer(t.cfg.CapacityWait)
	defer timer.Stop()
	// A head that is not preemptible now (its reader asked a moment ago)
	// may be soon, so look again while waiting rather than only once.
	again := time.NewTicker(200 * time.Millisecond)
	defer again.Stop()
	for {
		t.preempt(h)
		select {
		case sem <- struct{}{}:
			return release, nil
		case <-again.C:
		case <-timer.C:
			return nil, &CapacityError{RetryAfter: 2 * time.Second}
		case <-ctx.Done():
			return nil, context.Cause(ctx)
		}
	}
}

// canPrefetch leaves the last re-encode slot to requests that wait; a free
// hardware session may always prefetch. Caller holds v.mu.
func (t *Transcoder) canPrefetch(v *variant) bool {
	if v.costClass() == "encode" {
		return len(t.heavy) < cap(t.heavy) || (!v.noHW && t.hw.free(v.m.info.Video[v.track]))
	}
	return len(t.light) < cap(t.light)
}

// preempt stops a running head of the same class that nobody waits on and
// that can spare its slot: one whose readers have not asked for 2 s, or one
// at least two segments ahead of the furthest segment asked for (its reader
// has 8 s of content in hand, far more than a restart costs). The head
// furthest ahead goes first, then the one wanted least recently.
func (t *Transcoder) preempt(for_ *head) {
	t.mu.Lock()
	vs := make([]*variant, 0, len(t.variants))
	for _, v := range t.variants {
		vs = append(vs, v)
	}
	t.mu.Unlock()
	var victim *head
	var most int
	var oldest time.Time
	for _, v := range vs {
		v.mu.Lock()
		for _, h := range v.heads {
			if h != for_ && h.heavy == for_.heavy && !h.hw && h.ctx.Err() != nil {
				// One is already giving its slot up: wait for it rather
				// than stop a second.
				v.mu.Unlock()
				return
			}
			// A hardware head holds a GPU session, not the CPU slot for_ waits for.
			if h == for_ || h.heavy != for_.heavy || h.hw || h.waiting > 0 || h.next == h.start {
				continue
			}
			ahead := h.next - h.demandSeg
			if time.Since(h.lastDemand) <= 2*time.Second && ahead < 2 {
				continue
			}
			if victim == nil || ahead > most || (ahead == most && h.lastDemand.Before(oldest)) {
				victim, most, oldest = h, ahead, h.lastDemand
			}
		}
		v.mu.Unlock()
	}
	if victim != nil {
		victim.stop(errPreempted)
	}
}

// janitor stops idle heads, forgets old clients and keeps the cache in budget.
func (t *Transcoder) janitor() {
	defer t.wg.Done()
	tick := time.NewTicker(time.Second)
	defer tick.Stop()
	for {
		t.health.janitorBeat.Store(time.Now().UnixNano())
		select {
		case <-t.ctx.Done():
			return
		case <-tick.C:
		}
		t.mu.Lock()
		vs := make([]*variant, 0, len(t.variants))
		for _, v := range t.variants {
			vs = append(vs, v)
		}
		for id, c := range t.clients {
			if time.Since(c.seen) > time.Hour {
				delete(t.clients, id)
			}
		}
		t.mu.Unlock()
		t.infos.DeleteExpired()
		for _, v := range vs {
			v.mu.Lock()
			for _, h := range v.heads {
				if h.waiting == 0 && time.Since(h.lastDemand) > t.cfg.IdleTimeout {
					h.stop(errIdle)
				}
			}
			v.mu.Unlock()
		}
		t.evict()
	}
}

// client is what hlsd remembers of a player that sends a clientId.
type client struct {
	seen time.Time
	at   map[string]clientPos // by kind: the player reads audio and video at once
}

type clientPos struct {
	v *variant
	n int
}

// trackClient notices a player that moved (new quality, another file, or a
// seek) and releases the heads it no longer needs.
func (t *Transcoder) trackClient(id string, v *variant, n int) {
	if id == "" {
		return
	}
	t.mu.Lock()
	c := t.clients[id]
	if c == nil {
		c = &client{at: map[string]clientPos{}}
		t.clients[id] = c
	}
	prev, had := c.at[v.kind]
	c.at[v.kind] = clientPos{v: v, n: n}
	c.seen = time.Now()
	t.mu.Unlock()
	switch {
	case !had:
	case prev.v != v:
		prev.v.release(id, -1)
	case n < prev.n || n > prev.n+v.lookahead():
		prev.v.release(id, n)
	}
}

// clientPosition is where the client last read this file, to start an init
// head there rather than at 0 when it switches quality or track.
func (t *Transcoder) clientPosition(id string, m *media) int {
	if id == "" {
		return 0
	}
	t.mu.Lock()
	defer t.mu.Unlock()
	if c := t.clients[id]; c != nil {
		for _, kind := range []string{"video", "audio"} {
			if p, ok := c.at[kind]; ok && p.v.m == m {
				return p.n
			}
		}
	}
	return 0
}

// cacheEntry is one variant directory in the segment cache: the unit of eviction.
type cacheEntry struct {
	dir   string
	bytes int64
	used  time.Time
	v     *variant // nil for directories of earlier runs not opened yet
}

func (t *Transcoder) touch(v *variant) {
	t.mu.Lock()
	v.entry.used = time.Now()
	t.mu.Unlock()
}

func (t *Transcoder) addCacheBytes(v *variant, n int64) {
	t.mu.Lock()
	v.entry.bytes += n
	t.cacheSum += n
	sum := t.cacheSum
	t.mu.Unlock()
	t.obs.CacheBytes(sum)
}

// loadCache accounts the variant directories an earlier run left behind.
func (t *Transcoder) loadCache() {
	root := filepath.Join(t.cfg.CacheDir, "segments")
	files, _ := os.ReadDir(root)
	for _, f := range files {
		vdirs, _ := os.ReadDir(filepath.Join(root, f.Name()))
		for _, vd := range vdirs {
			dir := filepath.Join(root, f.Name(), vd.Name())
			e := &cacheEntry{dir: dir}
			entries, _ := os.ReadDir(dir)
			for _, x := range entries {
				if fi, err := x.Info(); err == nil && fi.Mode().IsRegular() {
					e.bytes += fi.Size()
					if fi.ModTime().After(e.used) {
						e.used = fi.ModTime()
					}
				}
			}
			t.cache[dir] = e
			t.cacheSum += e.bytes
		}
	}
	t.obs.CacheBytes(t.cacheSum)
}

// evict removes least recently used variant directories until the cache is
// in budget, never one with a running head or a waiting request.
func (t *Transcoder) evict() {
	t.mu.Lock()
	defer t.mu.Unlock()
	if t.cacheSum <= t.cfg.CacheBytes {
		return
	}
	entries := make([]*cacheEntry, 0, len(t.cache))
	for _, e := range t.cache {
		entries = append(entries, e)
	}
	sort.Slice(entries, func(i, j int) bool { return entries[i].used.Before(entries[j].used) })
	for _, e := range entries {
		if t.cacheSum <= t.cfg.CacheBytes {
			break
		}
		if v := e.v; v != nil {
			v.mu.Lock()
			busy := len(v.heads) > 0 || len(v.waiters) > 0
			if !busy {
				os.RemoveAll(e.dir)
				v.ready = make([]bool, len(v.ready))
				v.initCh = make(chan struct{})
			}
			v.mu.Unlock()
			if busy {
				continue
			}
			delete(t.variants, e.dir)
		} else {
			os.RemoveAll(e.dir)
		}
		t.log.Info("cache eviction", zap.String("dir", e.dir), zap.Int64("bytes", e.bytes))
		t.cacheSum -= e.bytes
		delete(t.cache, e.dir)
	}
	t.obs.CacheBytes(t.cacheSum)
}
