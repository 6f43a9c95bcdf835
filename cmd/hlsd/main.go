// Command hlsd serves a media directory as HLS, transcoding on demand.
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"net"
	"net/http"
	"os"
	"os/exec"
	"os/signal"
	"path/filepath"
	"runtime"
	"strconv"
	"strings"
	"syscall"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"
	"go.uber.org/zap"
	"go.uber.org/zap/zapcore"

	"github.com/hlsd/hlsd/server"
	"github.com/hlsd/hlsd/transcoder"
	"github.com/hlsd/hlsd/transcoder/encode"
	"github.com/hlsd/hlsd/transcoder/jobs"
	"github.com/hlsd/hlsd/transcoder/library"
)

type config struct {
	media, cache, listen, origin, logLevel, ffmpeg, ffprobe, preset, token, keyframes, node string
	hwaccel, hwDevice                                                                       string
	cacheSize                                                                               int64
	maxEncoders, hwSessions                                                                 int
	idle, grace, trickplay                                                                  time.Duration
	jobs                                                                                    jobFlags
}

// jobFlags configure the background jobs; hlsd import reads them too.
type jobFlags struct {
	allowImport               bool
	importHosts               string
	workers, prepareChunks    int
	maxSize, prepareBudget    int64
	maxDuration               time.Duration
	rawMaxSize, rawPrepBudget string
}

// addJobFlags declares the flags of the background jobs on fs.
func addJobFlags(fs *flag.FlagSet, j *jobFlags) {
	fs.BoolVar(&j.allowImport, "allow-import", env("HLSD_ALLOW_IMPORT", "") == "1" || env("HLSD_ALLOW_IMPORT", "") == "true", "accept import jobs (POST /api/jobs with type import), which fetch http(s) HLS streams into the media root; off by default (env HLSD_ALLOW_IMPORT=1)")
	fs.StringVar(&j.importHosts, "import-hosts", env("HLSD_IMPORT_HOSTS", ""), "comma-separated hosts imports may read from (.example.com: any host under it); empty: any host (env HLSD_IMPORT_HOSTS)")
	fs.IntVar(&j.workers, "job-workers", envInt("HLSD_JOB_WORKERS", 2), "ffmpeg processes background jobs (imports, prepares) run at once, all jobs together (env HLSD_JOB_WORKERS)")
	fs.StringVar(&j.rawMaxSize, "import-max-size", env("HLSD_IMPORT_MAX_SIZE", "20GiB"), "largest file one imported URL may make (env HLSD_IMPORT_MAX_SIZE)")
	fs.DurationVar(&j.maxDuration, "import-max-duration", envDuration("HLSD_IMPORT_MAX_DURATION", 12*time.Hour), "longest stream one imported URL may be (env HLSD_IMPORT_MAX_DURATION)")
	fs.StringVar(&j.rawPrepBudget, "prepare-budget", env("HLSD_PREPARE_BUDGET", ""), "cache space prepared rungs keep from eviction, e.g. 20GiB; default a quarter of --cache-size (env HLSD_PREPARE_BUDGET)")
	fs.IntVar(&j.prepareChunks, "prepare-chunks", envInt("HLSD_PREPARE_CHUNKS", 2), "without a GPU, the ffmpeg processes one prepare cuts a file into (with one: its free sessions) (env HLSD_PREPARE_CHUNKS)")
}

// check validates the job flags and parses their sizes.
func (j *jobFlags) check() error {
	n, err := parseSize(j.rawMaxSize)
	if err != nil {
		return fmt.Errorf("--import-max-size: %w", err)
	}
	j.maxSize = n
	if j.rawPrepBudget != "" {
		if j.prepareBudget, err = parseSize(j.rawPrepBudget); err != nil {
			return fmt.Errorf("--prepare-budget: %w", err)
		}
	}
	if j.workers < 1 {
		return fmt.Errorf("--job-workers: %d, want at least 1", j.workers)
	}
	if j.prepareChunks < 1 {
		return fmt.Errorf("--prepare-chunks: %d, want at least 1", j.prepareChunks)
	}
	if j.maxDuration <= 0 {
		return fmt.Errorf("--import-max-duration: %s, want more than 0", j.maxDuration)
	}
	return nil
}

func (j *jobFlags) hosts() []string {
	var out []string
	for _, h := range strings.Split(j.importHosts, ",") {
		if h = strings.TrimSpace(h); h != "" {
			out = append(out, h)
		}
	}
	return out
}

func defaultCacheDir() string {
	if d, err := os.UserCacheDir(); err == nil {
		return filepath.Join(d, "hlsd")
	}
	return filepath.Join(os.TempDir(), "hlsd")
}

// parseFlags reads flags; each has an HLSD_* environment variable, and a
// flag given on the command line wins over the environment.
func parseFlags(args []string) (config, error) {
	var c config
	fs := flag.NewFlagSet("hlsd", flag.ContinueOnError)
	fs.StringVar(&c.media, "media", env("HLSD_MEDIA", "./media"), "media root directory (env HLSD_MEDIA)")
	fs.StringVar(&c.cache, "cache", env("HLSD_CACHE", defaultCacheDir()), "cache directory for probes, keyframes and segments (env HLSD_CACHE)")
	fs.StringVar(&c.listen, "listen", env("HLSD_LISTEN", "127.0.0.1:7666"), "address to listen on (env HLSD_LISTEN)")
	size := fs.String("cache-size", env("HLSD_CACHE_SIZE", "10GiB"), "disk budget for cached segments, e.g. 500MiB, 10GiB (env HLSD_CACHE_SIZE)")
	fs.IntVar(&c.maxEncoders, "max-encoders", envInt("HLSD_MAX_ENCODERS", runtime.NumCPU()), "concurrent video re-encodes; stream copies may use 8x as many (env HLSD_MAX_ENCODERS)")
	fs.StringVar(&c.preset, "encoder-preset", env("HLSD_ENCODER_PRESET", "veryfast"), "x264 preset for re-encoded qualities, ultrafast to veryslow; hardware encoders use their nearest equivalent (env HLSD_ENCODER_PRESET)")
	fs.StringVar(&c.hwaccel, "hwaccel", env("HLSD_HWACCEL", "auto"), "hardware encoder: none, auto (try nvidia, vaapi, qsv at startup and keep the first that encodes), nvidia, vaapi or qsv; failures fall back to software (env HLSD_HWACCEL)")
	fs.StringVar(&c.hwDevice, "hwaccel-device", env("HLSD_HWACCEL_DEVICE", ""), "render node for vaapi and qsv (default "+encode.DefaultRenderNode+"), or GPU index for nvidia (default 0) (env HLSD_HWACCEL_DEVICE)")
	fs.IntVar(&c.hwSessions, "hw-sessions", envInt("HLSD_HW_SESSIONS", 3), "concurrent hardware encodes; more run in software (consumer NVIDIA cards allow 3 to 5) (env HLSD_HW_SESSIONS)")
	fs.DurationVar(&c.trickplay, "trickplay-interval", envDuration("HLSD_TRICKPLAY_INTERVAL", 10*time.Second), "time between the seek bar's preview thumbnails; 0 turns them off (env HLSD_TRICKPLAY_INTERVAL)")
	fs.DurationVar(&c.idle, "idle-timeout", envDuration("HLSD_IDLE_TIMEOUT", 30*time.Second), "stop an encoder nobody has read from for this long (env HLSD_IDLE_TIMEOUT)")
	fs.DurationVar(&c.grace, "shutdown-timeout", envDuration("HLSD_SHUTDOWN_TIMEOUT", 10*time.Second), "how long shutdown waits for requests in flight (env HLSD_SHUTDOWN_TIMEOUT)")
	fs.StringVar(&c.origin, "cors-origin", env("HLSD_CORS_ORIGIN", "*"), "Access-Control-Allow-Origin value; empty disables CORS (env HLSD_CORS_ORIGIN)")
	fs.StringVar(&c.token, "auth-token", env("HLSD_AUTH_TOKEN", ""), "when set, every route but /healthz and /readyz needs Authorization: Bearer <token> or ?token=<token>; prefer the env var, which ps does not show (env HLSD_AUTH_TOKEN)")
	fs.StringVar(&c.keyframes, "keyframes", env("HLSD_KEYFRAMES", "index"), "where keyframe times come from: index (the MP4 or Matroska index when it can be trusted, else a scan) or scan (always read the whole file) (env HLSD_KEYFRAMES)")
	fs.StringVar(&c.node, "node-name", env("HLSD_NODE_NAME", ""), "this node's name behind a load balancer, sent as the X-Hlsd-Node header of every answer; empty sends none (env HLSD_NODE_NAME)")
	fs.StringVar(&c.logLevel, "log-level", env("HLSD_LOG_LEVEL", "info"), "debug, info, warn or error (env HLSD_LOG_LEVEL)")
	fs.StringVar(&c.ffmpeg, "ffmpeg", env("HLSD_FFMPEG", "ffmpeg"), "ffmpeg binary (env HLSD_FFMPEG)")
	fs.StringVar(&c.ffprobe, "ffprobe", env("HLSD_FFPROBE", "ffprobe"), "ffprobe binary (env HLSD_FFPROBE)")
	addJobFlags(fs, &c.jobs)
	fs.Usage = func() {
		fmt.Fprintf(fs.Output(), "Usage: hlsd [flags]\n       hlsd import --url URL ... (hlsd import -h)\n\nServes the media directory as HLS, transcoding on demand.\n\nFlags:\n")
		fs.PrintDefaults()
	}
	if err := fs.Parse(args); err != nil {
		return c, err
	}
	n, err := parseSize(*size)
	if err != nil {
		return c, fmt.Errorf("--cache-size: %w", err)
	}
	c.cacheSize = n
	switch c.hwaccel {
	case "none", "auto", "nvidia", "vaapi", "qsv":
	default:
		return c, fmt.Errorf("--hwaccel: %q is not one of none, auto, nvidia, vaapi, qsv", c.hwaccel)
	}
	if c.hwSessions < 1 {
		return c, fmt.Errorf("--hw-sessions: %d, want at least 1", c.hwSessions)
	}
	if c.trickplay != 0 && c.trickplay < time.Second {
		return c, fmt.Errorf("--trickplay-interval: %s, want 0 (off) or at least 1s", c.trickplay)
	}
	if c.keyframes != "index" && c.keyframes != "scan" {
		return c, fmt.Errorf("--keyframes: %q is neither index nor scan", c.keyframes)
	}
	if err := c.jobs.check(); err != nil {
		return c, err
	}
	return c, nil
}

// trickplayInterval maps the flag's 0 (off) to the transcoder's negative
// interval: its zero value means the default.
func trickplayInterval(d time.Duration) time.Duration {
	if d == 0 {
		return -1
	}
	return d
}

// env is the variable name when it is set, else def.
func env(name, def string) string {
	if v, ok := os.LookupEnv(name); ok {
		return v
	}
	return def
}

func envInt(name string, def int) int {
	if v, err := strconv.Atoi(os.Getenv(name)); err == nil {
		return v
	}
	return def
}

func envDuration(name string, def time.Duration) time.Duration {
	if v, err := time.ParseDuration(os.Getenv(name)); err == nil {
		return v
	}
	return def
}

// parseSize reads 1048576, 500MiB, 10GiB, 2GB, 100M.
func parseSize(s string) (int64, error) {
	units := []struct {
		suffix string
		mult   int64
	}{{"KiB", 1 << 10}, {"MiB", 1 << 20}, {"GiB", 1 << 30}, {"TiB", 1 << 40},
		{"KB", 1e3}, {"MB", 1e6}, {"GB", 1e9}, {"TB", 1e12}, {"K", 1 << 10}, {"M", 1 << 20}, {"G", 1 << 30}, {"T", 1 << 40}, {"B", 1}}
	mult := int64(1)
	for _, u := range units {
		if len(s) > len(u.suffix) && s[len(s)-len(u.suffix):] == u.suffix {
			s, mult = s[:len(s)-len(u.suffix)], u.mult
			break
		}
	}
	f, err := strconv.ParseFloat(s, 64)
	if err != nil || f <= 0 {
		return 0, fmt.Errorf("invalid size %q", s)
	}
	return int64(f * float64(mult)), nil
}

func newLogger(level string) (*zap.Logger, error) {
	lvl, err := zapcore.ParseLevel(level)
	if err != nil {
		return nil, err
	}
	cfg := zap.NewProductionConfig()
	cfg.Level = zap.NewAtomicLevelAt(lvl)
	cfg.Encoding = "console"
	cfg.EncoderConfig.EncodeTime = zapcore.ISO8601TimeEncoder
	return cfg.Build()
}

func main() {
	if len(os.Args) > 1 && os.Args[1] == "import" {
		os.Exit(importMain(os.Args[2:]))
	}
	c, err := parseFlags(os.Args[1:])
	if errors.Is(err, flag.ErrHelp) {
		return
	}
	if err != nil {
		fmt.Fprintln(os.Stderr, "hlsd:", err)
		os.Exit(2)
	}
	log, err := newLogger(c.logLevel)
	if err != nil {
		fmt.Fprintln(os.Stderr, "hlsd: --log-level:", err)
		os.Exit(2)
	}
	if err := run(c, log); err != nil {
		log.Error("hlsd stopped", zap.Error(err))
		os.Exit(1)
	}
}

func run(c config, log *zap.Logger) error {
	defer log.Sync() //nolint:errcheck
	for _, bin := range []string{c.ffmpeg, c.ffprobe} {
		if _, err := exec.LookPath(bin); err != nil {
			return fmt.Errorf("%s not found: install ffmpeg (apt-get install ffmpeg) or pass --ffmpeg/--ffprobe", bin)
		}
	}
	reg := prometheus.NewRegistry()
	reg.MustRegister(collectors.NewGoCollector(), collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}))
	lib, err := library.Open(c.media)
	if err != nil {
		return err
	}
	defer lib.Close()
	srv, err := server.New(server.Config{Library: lib, AllowOrigin: c.origin, AuthToken: c.token, NodeName: c.node, Log: log, Registry: reg})
	if err != nil {
		return err
	}
	tc := transcoder.New(transcoder.Config{
		FFmpeg: c.ffmpeg, FFprobe: c.ffprobe, Library: lib, CacheDir: c.cache, MaxEncoders: c.maxEncoders,
		CacheBytes: c.cacheSize, IdleTimeout: c.idle, Preset: c.preset, KeyframeScanOnly: c.keyframes == "scan",
		HWAccel: c.hwaccel, HWDevice: c.hwDevice, HWSessions: c.hwSessions, TrickplayInterval: trickplayInterval(c.trickplay),
		PrepareBytes: c.jobs.prepareBudget, PrepareChunks: c.jobs.prepareChunks,
		Log: log, Observer: srv.Observer(),
	})
	if err := tc.Initialize(); err != nil {
		return err
	}
	defer tc.Close()
	jobs := jobs.New(c.jobs.config(c.ffmpeg, c.ffprobe, lib, c.cache, log, tc, srv.JobObserver()))
	if err := jobs.Initialize(); err != nil {
		return err
	}
	// Before the transcoder's: a prepare uses it.
	defer jobs.Close()
	srv.Initialize(tc, jobs)

	ln, err := net.Listen("tcp", c.listen)
	if err != nil {
		return err
	}
	hs := &http.Server{Handler: srv, ReadHeaderTimeout: 10 * time.Second}
	ctx, stop := signal.NotifyContext(context.Background(), syscall.SIGINT, syscall.SIGTERM)
	defer stop()
	errc := make(chan error, 1)
	go func() { errc <- hs.Serve(ln) }()
	log.Info("hlsd listening", zap.String("url", "http://"+ln.Addr().String()+"/"),
		zap.String("media", c.media), zap.String("cache", c.cache))

	select {
	case err := <-errc:
		return err
	case <-ctx.Done():
	}
	log.Info("shutting down", zap.String("cause", "signal received"), zap.Duration("grace", c.grace))
	// Readiness fails before the listener closes, so a load balancer whose
	// probe gets in meanwhile learns of the shutdown and sends nothing new.
	tc.Drain()
	sctx, cancel := context.WithTimeout(context.Background(), c.grace)
	defer cancel()
	if err := hs.Shutdown(sctx); err != nil {
		log.Warn("grace period over, closing connections", zap.Error(err))
		hs.Close()
	}
	return nil
}
