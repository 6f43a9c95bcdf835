// Package transcoder turns a media file into HLS variants on demand: it
// opens files through the library, plans aligned segments, and runs ffmpeg
// "heads" that produce the segments players ask for, within a cap on
// concurrent encoders and a disk budget. It is the core: the registry of
// files, media and variants, heads and their scheduler, the segment cache
// and the layout of the cache directory, live delivery, prepares, I-frames,
// MPEG-TS, subtitles, thumbnails and health. What a file holds is
// transcoder/probe's to say, how a rendition is encoded
// transcoder/encode's, and ffmpeg's MP4 is read by transcoder/fmp4.
//
// It imports keyframes, playlist and the packages under transcoder/ but
// jobs; cmd/hlsd hands the Transcoder to the jobs as their Preparer.
package transcoder

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"runtime"
	"sync"
	"sync/atomic"
	"time"

	"go.uber.org/zap"

	"github.com/hlsd/hlsd/keyframes"
	"github.com/hlsd/hlsd/playlist"
	"github.com/hlsd/hlsd/transcoder/child"
	"github.com/hlsd/hlsd/transcoder/encode"
	"github.com/hlsd/hlsd/transcoder/failure"
	"github.com/hlsd/hlsd/transcoder/internal/flight"
	"github.com/hlsd/hlsd/transcoder/library"
	"github.com/hlsd/hlsd/transcoder/probe"
)

// Config of a Transcoder. Zero values get the defaults of New.
type Config struct {
	FFmpeg, FFprobe string
	// Library is the media root every file is opened through; the caller
	// owns it.
	Library  *library.Library
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
	// MaxFiles bounds the file versions kept open in memory (probe,
	// keyframes, plans, variants); the least recently used idle ones go.
	MaxFiles int
	Preset   string
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
	// PrepareBytes caps the prepared segments kept from eviction (0: a
	// quarter of CacheBytes).
	PrepareBytes int64
	// PrepareChunks is how many ffmpeg processes a prepare runs at once
	// without a GPU (0: 2); with one, as many as there are free sessions.
	PrepareChunks int
	Log           *zap.Logger
	Observer      Observer
}

// Observer receives events for metrics; the server implements it with Prometheus.
type Observer interface {
	HeadStarted(class, reason string)
	// HeadStopped reports a head's end and the CPU time its ffmpeg used.
	HeadStopped(class string, cpu time.Duration)
	SegmentWaited(d time.Duration)
	CacheBytes(n int64)
	CacheEvicted(segments int, bytes int64)
	HWFallback(accel string)
	HWEnabled(accel string, on bool)
	TrickplayMade(d time.Duration)
	keyframes.Observer // keyframe scan durations, seconds
}

type nopObserver struct{}

func (nopObserver) HeadStarted(string, string)        {}
func (nopObserver) HeadStopped(string, time.Duration) {}
func (nopObserver) SegmentWaited(time.Duration)       {}
func (nopObserver) CacheBytes(int64)                  {}
func (nopObserver) CacheEvicted(int, int64)           {}
func (nopObserver) HWFallback(string)                 {}
func (nopObserver) HWEnabled(string, bool)            {}
func (nopObserver) TrickplayMade(time.Duration)       {}
func (nopObserver) Observe(float64)                   {}

// Transcoder owns every media file state, encoder head and cached segment.
//
// Its state is split by owner, each behind its own mutex, and every one of
// those mutexes is a leaf: while one is held no other is taken and no other
// component is called. A lock is never held across a call, so no two can be
// taken in opposite orders:
//
//	files.mu     the registry of opened file versions (files.go)
//	media.mu     one file's plans and variants (media.go)
//	variant.mu   one variant's segments, waiters and heads (variant.go)
//	cache.mu     the segment budget and LRU order (cache.go)
//	sched.mu     the live heads; slots are channels (scheduler.go)
//	clients.mu   the players' positions (clients.go)
//	flight       shared work in progress (internal/flight)
//	hardware     the accelerator's failure record (encode/hardware.go)
//	head.sigMu   a head's process group while it may be signalled (head.go)
//	downloads.mu the download files being made (download.go)
//	download.mu  one download's progress and readers (download.go)
//
// Reference counts that cross owners (media pins) and flags read under
// another owner's lock (a head's hw and running) are atomics.
type Transcoder struct {
	cfg    Config
	log    *zap.Logger
	obs    Observer
	lib    *library.Library
	layout layout
	kf     *keyframes.Store
	probe  *probe.Prober

	ctx    context.Context
	cancel context.CancelCauseFunc
	wg     sync.WaitGroup // heads, shared work, the janitor and prioritize

	files      *files
	downloads  downloads
	cache      *segmentCache
	sched      *scheduler
	clients    *clients
	flight     *flight.Group
	speeds     *encode.Speeds
	thumbSlots chan struct{} // thumbnail children, over every file
	headSeq    atomic.Int64
	inits      *inits
	run        *runner
	env        env    // what variants and heads use: built of the above
	health     health // draining flag and janitor heartbeat: see health.go
}

// env is what variants and their heads need of the transcoder. They hold
// it rather than the whole Transcoder, so all a variant can reach is here.
type env struct {
	ctx     context.Context // the transcoder's: Close cancels it
	wg      *sync.WaitGroup // Close waits for the heads it counts
	log     *zap.Logger
	obs     Observer
	sched   *scheduler
	cache   *segmentCache
	inits   *inits
	speeds  *encode.Speeds
	run     *runner
	preset  string        // the software profile's
	hwStall time.Duration // Config.HWStallTimeout
	headSeq *atomic.Int64 // numbers heads, for their work directories
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
	if cfg.PrepareBytes <= 0 {
		cfg.PrepareBytes = cfg.CacheBytes / 4
	}
	if cfg.PrepareChunks <= 0 {
		cfg.PrepareChunks = 2
	}
	if cfg.IdleTimeout <= 0 {
		cfg.IdleTimeout = 30 * time.Second
	}
	if cfg.CapacityWait <= 0 {
		cfg.CapacityWait = 3 * time.Second
	}
	if cfg.MaxFiles <= 0 {
		cfg.MaxFiles = 256
	}
	if cfg.Preset == "" {
		cfg.Preset = "veryfast"
	}
	if cfg.HWAccel == "" {
		cfg.HWAccel = encode.AccelNone
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
	if t.cfg.Library == nil {
		return errors.New("transcoder: no media library")
	}
	t.lib = t.cfg.Library
	t.layout = layout(t.cfg.CacheDir)
	if err := os.MkdirAll(t.layout.segments(), 0o755); err != nil {
		return fmt.Errorf("cache directory: %w", err)
	}
	accel := t.cfg.HWAccel
	switch accel {
	case encode.AccelNone, encode.AccelNVIDIA, encode.AccelVAAPI, encode.AccelQSV:
	case "auto":
		var why map[string]string
		accel, why = encode.DetectAccel(context.Background(), t.cfg.FFmpeg, t.cfg.HWDevice)
		var fields []zap.Field
		for _, a := range encode.Accels {
			if r, ok := why[a]; ok {
				fields = append(fields, zap.String(a, r))
			}
		}
		if accel == encode.AccelNone {
			t.log.Info("hwaccel auto: no hardware encoder works here, encoding in software", fields...)
		} else {
			t.log.Info("hwaccel auto: encoding on "+accel, fields...)
		}
	default:
		return fmt.Errorf("hardware acceleration %q: want none, auto, nvidia, vaapi or qsv", accel)
	}
	var hw *encode.Hardware
	if accel != encode.AccelNone {
		hw = encode.NewHardware(encode.Profile{Accel: accel, Device: t.cfg.HWDevice, Preset: t.cfg.Preset},
			t.cfg.HWSessions, t.log, t.obs)
	}
	t.ctx, t.cancel = context.WithCancelCause(context.Background())
	t.kf = keyframes.NewStore(t.layout.root(), keyframes.Options{
		Runner: child.Runner(t.cfg.FFprobe), Log: t.log, ScanSeconds: t.obs, ScanOnly: t.cfg.KeyframeScanOnly})
	t.probe = probe.NewProber(t.cfg.FFprobe, filepath.Join(t.layout.root(), probe.Dir))
	t.files = newFiles(t.cfg.MaxFiles)
	t.downloads.by = map[string]*download{}
	t.cache = newSegmentCache(t.cfg.CacheBytes, t.cfg.PrepareBytes, t.log, t.obs)
	t.sched = newScheduler(t.cfg.MaxEncoders, t.cfg.MaxCopies, hw, t.cfg.CapacityWait, t.log)
	t.clients = newClients()
	t.flight = flight.New(t.ctx, &t.wg)
	t.speeds = encode.NewSpeeds(t.layout.speeds(), t.log)
	t.thumbSlots = make(chan struct{}, max(1, min(t.cfg.MaxEncoders, runtime.NumCPU(), 4)))
	// Generations a crash interrupted left their work directories.
	leftovers, _ := filepath.Glob(filepath.Join(t.layout.trickplayRoot(), ".tmp-*"))
	for _, d := range leftovers {
		os.RemoveAll(d)
	}
	t.inits = &inits{layout: t.layout, log: t.log}
	t.run = &runner{lib: t.lib, ffmpeg: t.cfg.FFmpeg, obs: t.obs}
	t.env = env{ctx: t.ctx, wg: &t.wg, log: t.log, obs: t.obs, sched: t.sched, cache: t.cache, inits: t.inits,
		speeds: t.speeds, run: t.run, preset: t.cfg.Preset, hwStall: t.cfg.HWStallTimeout, headSeq: &t.headSeq}
	t.cache.load(t.layout.segments())
	t.wg.Add(2)
	go t.janitor()
	go func() {
		defer t.wg.Done()
		t.sched.prioritize(t.ctx)
	}()
	return nil
}

// Close stops every head and waits for every ffmpeg child to be gone.
func (t *Transcoder) Close() {
	t.cancel(errShutdown)
	t.wg.Wait()
	t.saveSpeeds()
	t.kf.Close()
}

// KnownDuration is the duration of a file probed before, without running
// ffprobe: a directory listing shows what is known and never waits.
func (t *Transcoder) KnownDuration(name string, st os.FileInfo) (float64, bool) {
	info, ok := t.probe.Known(probe.IdentityOf(name, st))
	if !ok {
		return 0, false
	}
	return info.Duration, true
}

// open returns the media state of name, a path relative to the media root,
// pinned: the caller releases it. Its key includes size and modification
// time, so a file replaced on disk gets new state rather than the old
// file's plans and segments.
func (t *Transcoder) open(ctx context.Context, name string) (*media, error) {
	f, st, err := t.lib.Open(name)
	if err != nil {
		return nil, err
	}
	f.Close()
	key := probe.IdentityOf(name, st).Key()
	// The first viewers of a file arrive together (a player asks for the
	// master and both media playlists at once, a household starts a film on
	// two screens): one probe serves them all.
	for range 3 {
		if m := t.files.acquire(key); m != nil {
			return m, nil
		}
		if _, err := flight.Do(t.flight, ctx, "open\x00"+key, flight.Detached, func(ctx context.Context) (struct{}, error) {
			m, err := t.load(ctx, name, key)
			if err == nil {
				t.files.add(m)
			}
			return struct{}{}, err
		}); err != nil {
			return nil, err
		}
	}
	// Forgotten three times between its load and our pin: a registry far
	// too small for the files in use.
	return nil, fmt.Errorf("%w: too many files open at once; retry", failure.Unavailable)
}

// load probes name and starts reading its keyframes.
func (t *Transcoder) load(ctx context.Context, name, key string) (*media, error) {
	f, st, err := t.lib.Open(name)
	if err != nil {
		return nil, err
	}
	if probe.IdentityOf(name, st).Key() != key {
		f.Close()
		return nil, fmt.Errorf("%w: %s changed while it was being opened; retry", failure.Unavailable, name)
	}
	info, err := t.probe.Probe(ctx, probe.IdentityOf(name, st), f)
	if err != nil {
		f.Close()
		return nil, err
	}
	kf, err := t.kf.GetFile(name, key, f, info.StartTime) // the keyframe store owns f now
	if err != nil {
		return nil, fmt.Errorf("%w: %v", failure.NotMedia, err)
	}
	return &media{name: name, size: st.Size(), modTime: st.ModTime(), key: key, info: info, kf: kf,
		variants: map[string]*variant{}}, nil
}

// probe.Info describes a file, with the qualities it offers and the scan's progress.
func (t *Transcoder) Info(ctx context.Context, path string) (*probe.Info, error) {
	m, err := t.open(ctx, path)
	if err != nil {
		return nil, err
	}
	defer m.release()
	info := *m.info
	info.Qualities = probe.Qualities{Video: encode.VideoQualities(info.Video[0]), Audio: []string{}}
	if !encode.CopyableVideo(info.Video[0]) {
		info.Qualities.Video = info.Qualities.Video[1:]
	}
	for _, a := range info.Audio {
		for _, q := range encode.AudioQualities(a) {
			if !contains(info.Qualities.Audio, q) {
				info.Qualities.Audio = append(info.Qualities.Audio, q)
			}
		}
	}
	info.Subtitles = t.subtitleTracks(m)
	times, _, _, complete, _ := m.kf.Snapshot()
	info.Keyframes = probe.KeyframeStatus{Count: len(times), Complete: complete, Source: m.kf.Source()}
	if t.cfg.TrickplayInterval > 0 {
		info.TrickplayInterval = t.cfg.TrickplayInterval.Seconds()
	}
	return &info, nil
}

// variant resolves r, a rendition parsed at the edge, against the file: it
// returns the variant's state, with the media pinned until release is
// called, or why the file does not offer r.
func (t *Transcoder) variant(ctx context.Context, path string, r encode.Rendition) (v *variant, release func(), err error) {
	kind, track, quality := r.Kind, r.Track, r.Quality
	m, err := t.open(ctx, path)
	if err != nil {
		return nil, nil, err
	}
	defer func() {
		if err != nil {
			m.release()
		}
	}()
	switch kind {
	case "video":
		if track < 0 || track >= len(m.info.Video) {
			return nil, nil, fmt.Errorf("%w: the file has no video track %d", failure.NotFound, track)
		}
		if !contains(encode.VideoQualities(m.info.Video[track]), quality) {
			return nil, nil, fmt.Errorf("%w: quality %q is not offered for this file", failure.NotFound, quality)
		}
		if quality == encode.QualityOriginal && !encode.CopyableVideo(m.info.Video[track]) {
			return nil, nil, fmt.Errorf("%w: the %s source cannot be served as original", failure.NotFound, m.info.Video[track].Codec)
		}
	case "audio":
		if track < 0 || track >= len(m.info.Audio) {
			return nil, nil, fmt.Errorf("%w: the file has no audio track %d", failure.NotFound, track)
		}
		if !contains(encode.AudioQualities(m.info.Audio[track]), quality) {
			return nil, nil, fmt.Errorf("%w: audio quality %q is not offered for this track", failure.NotFound, quality)
		}
	}
	p, err := m.getPlans(ctx)
	if err != nil {
		return nil, nil, err
	}
	dir := t.layout.variant(m.key, kind, track, quality)
	m.mu.Lock()
	v = m.variants[dir]
	m.mu.Unlock()
	if v == nil {
		v = t.newVariant(m, p, kind, track, quality, dir)
	}
	return v, m.release, nil
}

// newVariant builds the variant of dir from what is on disk and registers
// it, unless a concurrent request registered one first.
func (t *Transcoder) newVariant(m *media, p *plans, kind string, track int, quality, dir string) *variant {
	v := &variant{env: &t.env, m: m, kind: kind, track: track, quality: quality, plan: p.forVariant(kind, quality), dir: dir,
		firstKeyframe: p.keyframeTimes[0]}
	v.initKey = v.configKey()
	found := v.load()
	m.mu.Lock()
	if w := m.variants[dir]; w != nil {
		m.mu.Unlock()
		return w
	}
	m.variants[dir] = v
	m.mu.Unlock()
	for _, n := range found {
		t.cache.claim(v.segmentPath(n), v, n)
	}
	return v
}

// MediaPlaylist writes the VOD playlist of one variant.
func (t *Transcoder) MediaPlaylist(ctx context.Context, path string, r encode.Rendition, query string) ([]byte, error) {
	v, release, err := t.variant(ctx, path, r)
	if err != nil {
		return nil, err
	}
	defer release()
	return playlist.WriteMedia(v.timeline(), "init.mp4", func(i int) string {
		return fmt.Sprintf("segment-%d.m4s", i)
	}, query), nil
}

// Segment returns segment n, producing it if needed: an *os.File once it is
// complete on disk, or, for a re-encode asked for progressive (a player
// that reads a segment as it comes), a stream of its fragments as they are
// made (the error of its Read then fails the response). The caller closes
// it.
func (t *Transcoder) Segment(ctx context.Context, path string, r encode.Rendition, n int, clientID string, progressive bool) (io.ReadCloser, error) {
	v, release, err := t.variant(ctx, path, r)
	if err != nil {
		return nil, err
	}
	defer release()
	if n < 0 || n >= v.plan.Len() {
		return nil, fmt.Errorf("%w: segment %d is out of range (the playlist has %d)", failure.NotFound, n, v.plan.Len())
	}
	t.clients.track(clientID, v, n)
	return v.segment(ctx, n, clientID, progressive, nil)
}

// Init returns the variant's init segment, open. The caller closes it.
func (t *Transcoder) Init(ctx context.Context, path string, r encode.Rendition, clientID string) (*os.File, error) {
	v, release, err := t.variant(ctx, path, r)
	if err != nil {
		return nil, err
	}
	defer release()
	return v.initSegment(ctx, t.clients.position(clientID, v.m), clientID)
}

func contains(list []string, s string) bool {
	for _, x := range list {
		if x == s {
			return true
		}
	}
	return false
}

// janitor stops idle heads, forgets old clients and idle files, and keeps
// the cache in budget: every second, and at once when the cache goes over.
func (t *Transcoder) janitor() {
	defer t.wg.Done()
	tick := time.NewTicker(time.Second)
	defer tick.Stop()
	ticks := 0
	for {
		t.health.janitorBeat.Store(time.Now().UnixNano())
		select {
		case <-t.ctx.Done():
			return
		case <-tick.C:
			t.sched.stopIdle(t.cfg.IdleTimeout)
			t.clients.prune()
			t.files.trim()
			t.probe.Sweep()
			if ticks++; ticks%10 == 0 {
				t.saveSpeeds()
			}
		case <-t.cache.kick:
		}
		t.cache.evict()
	}
}

func (t *Transcoder) saveSpeeds() {
	if err := t.speeds.Save(); err != nil {
		t.log.Warn("cannot save encoder speeds", zap.Error(err))
	}
}
