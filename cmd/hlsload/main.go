// Command hlsload simulates HLS players against hlsd on loopback for a
// bounded time and prints what they met as a table.
//
// By default it starts hlsd in this process (as web/e2e does, on a fresh
// cache, with the generated test corpus as its library) and plays
// long.mp4, a 32-minute 1080p H.264/AAC file. Each player sends its own
// clientId, loads the master, one video and the first audio playlist and
// their inits, buffers 2 segments before playing, keeps about 12 s ahead,
// and seeks to a random segment every 20-40 s; transcode players also
// switch between 240p and 360p at one seek in three.
//
// -soak is the run of the full-cache deadlock report: five clips of
// different codecs, twelve players at up to 4x real time, and a segment
// cache smaller than one clip's working set, for 10 minutes.
package main

import (
	"context"
	"flag"
	"fmt"
	"io"
	"maps"
	"os"
	"os/signal"
	"slices"
	"strconv"
	"strings"
	"time"
)

// soakDefaults are what -soak sets, for each flag not given. 8 MiB of cache
// is less than one clip's segments at one rung and its audio (about 3-10
// MB), so the server evicts all the time and works with a full cache.
var soakDefaults = [][2]string{
	{"files", "h264.mp4,hevc.mkv,vp9.webm,longgop.mp4,twoaudio.mkv"},
	{"players", "8"},
	{"transcode", "4"},
	{"cache-size", "8MiB"},
	{"duration", "10m"},
	{"speed", "4"},
}

func main() {
	var cfg Config
	flag.IntVar(&cfg.Original, "players", 20, "players of the original rung (stream copy of the source)")
	flag.IntVar(&cfg.Transcode, "transcode", 4, "players of a re-encoded rung (see -rung); they switch 240p <-> 360p at one seek in three")
	flag.DurationVar(&cfg.Duration, "duration", 2*time.Minute, "how long the players play (setup, such as making test media, is not counted)")
	flag.StringVar(&cfg.Rung, "rung", "360p", "first rung of the transcode players (240p, 360p, 480p, ...)")
	flag.StringVar(&cfg.URL, "url", "", "base URL of an hlsd already running on loopback (127.0.0.0/8, ::1, localhost), e.g. http://127.0.0.1:7666; empty starts one in this process on a fresh cache")
	flag.StringVar(&cfg.File, "file", "long.mp4", "media path relative to the server's media root (in-process: a file of the e2e corpus)")
	files := flag.String("files", "", "comma-separated media paths like -file's, spread over the players round-robin (original players first); overrides -file")
	var cacheSize byteSize
	flag.Var(&cacheSize, "cache-size", "in-process server only: segment cache budget, such as 8MiB, 64MiB or 2GB; 0 keeps hlsd's default")
	flag.Float64Var(&cfg.Speed, "speed", 1, "seconds of media a playhead advances per second: 4 plays (and so fetches) at up to 4x real time")
	flag.DurationVar(&cfg.RequestTimeout, "request-timeout", 20*time.Second, "a request without a full answer after this is hung: counted as a failure and as hung, and the goroutine stacks at the first one are printed")
	soak := flag.Bool("soak", false, "soak run; sets, for each of these flags not given: "+soakUsage())
	flag.Uint64Var(&cfg.Seed, "seed", 0, "random seed of the players' seeks and switches; 0 picks one (printed)")
	flag.IntVar(&cfg.MaxEncoders, "max-encoders", 0, "in-process server only: concurrent video re-encodes; 0 keeps hlsd's default (number of CPUs)")
	verbose := flag.Bool("v", false, "log every player's events (load, play, stall, seek, switch, late segment, failure) to stderr")
	serverLog := flag.String("server-log", "", "in-process server only: write hlsd's log (info level) to this file")
	flag.Usage = func() {
		fmt.Fprintf(flag.CommandLine.Output(), `usage: hlsload [flags]

Simulates HLS players against hlsd on loopback for -duration and prints
requests, failures, late segments, stalls, latencies and, for a server run
in this process, its memory, file descriptors, ffmpeg children, goroutines
and segment cache on disk against its budget. A 503 with Retry-After is
retried after it and not counted as a failure; a request unanswered after
-request-timeout is (as hung).

`)
		flag.PrintDefaults()
	}
	flag.Parse()
	if flag.NArg() > 0 {
		flag.Usage()
		os.Exit(2)
	}
	if *soak {
		given := map[string]bool{}
		flag.Visit(func(f *flag.Flag) { given[f.Name] = true })
		for _, d := range soakDefaults {
			if !given[d[0]] {
				if err := flag.Set(d[0], d[1]); err != nil {
					panic(err) // soakDefaults are constants
				}
			}
		}
	}
	for f := range strings.SplitSeq(*files, ",") {
		if f = strings.TrimSpace(f); f != "" {
			cfg.Files = append(cfg.Files, f)
		}
	}
	cfg.CacheBytes = int64(cacheSize)
	if *verbose {
		cfg.Log = os.Stderr
	}
	if *serverLog != "" {
		f, err := os.Create(*serverLog)
		if err != nil {
			fmt.Fprintln(os.Stderr, "hlsload:", err)
			os.Exit(1)
		}
		defer f.Close()
		cfg.ServerLog = f
	}
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt)
	defer stop()
	res, err := Run(ctx, cfg)
	if err != nil && res.Requests == 0 {
		fmt.Fprintln(os.Stderr, "hlsload:", err)
		os.Exit(1)
	}
	printTable(os.Stdout, res)
	if res.HangStacks != "" {
		fmt.Fprintf(os.Stderr, "\ngoroutines when the first request hung:\n%s\n", res.HangStacks)
	}
	if err != nil {
		fmt.Fprintln(os.Stderr, "hlsload: interrupted:", err)
		os.Exit(1)
	}
}

// printTable writes the figures of res, one per row.
func printTable(w io.Writer, r Result) {
	type row struct{ name, value string }
	var rows []row
	add := func(name, format string, args ...any) { rows = append(rows, row{name, fmt.Sprintf(format, args...)}) }
	lat := func(l Latency) string {
		if l.N == 0 {
			return "none"
		}
		return fmt.Sprintf("%s / %s / %s / %s (n=%d)", ms(l.P50), ms(l.P95), ms(l.P99), ms(l.Max), l.N)
	}
	c := r.Config
	server := c.URL
	if r.InProcess {
		server = "in-process"
		if c.MaxEncoders > 0 {
			server += fmt.Sprintf(", max-encoders %d", c.MaxEncoders)
		}
	}
	add("server, files", "%s, %s", server, strings.Join(c.Files, ","))
	add("players (original/transcode)", "%d/%d (transcode rung %s)", c.Original, c.Transcode, c.Rung)
	add("duration", "%s at %gx real time (ran %s, seed %d)", c.Duration, c.Speed, r.Elapsed.Round(time.Millisecond), c.Seed)
	add("requests total", "%d (%d cut off at the end)", r.Requests, r.Aborted)
	add("request latency p50/p99, all requests", "%s / %s (n=%d)", ms(r.RequestLatency.P50), ms(r.RequestLatency.P99), r.RequestLatency.N)
	add("failed requests", "%d", r.Failed)
	for _, k := range slices.Sorted(maps.Keys(r.Failures)) {
		add("  "+k, "%d", r.Failures[k])
	}
	add("hung requests (over "+c.RequestTimeout.String()+", failures)", "%d", r.Hung)
	add("503 retried after Retry-After (not failures)", "%d", r.Retried503)
	add("segments fetched (video+audio)", "%d", r.Segments)
	add("late segments while playing", "%d", r.Late)
	add("stalls (count, total)", "%d, %.1f s", r.Stalls, r.StallTime.Seconds())
	add("seeks, of which rung switches", "%d, %d", r.Seeks, r.Switches)
	add("startups unfinished at the end", "%d", r.StartupsCut)
	add("startup latency p50/p95/p99/max", "%s", lat(r.Startup))
	add("seek latency p50/p95/p99/max", "%s", lat(r.Seek))
	add("segment latency p50/p95/p99/max, original", "%s", lat(r.SegOriginal))
	add("segment latency p50/p95/p99/max, transcode", "%s", lat(r.SegTranscode))
	add("bytes served", "%.1f MB", float64(r.Bytes)/1e6)
	if r.InProcess {
		budget := "hlsd's default"
		if c.CacheBytes > 0 {
			budget = mib(c.CacheBytes)
		}
		add("segment cache on disk at end / budget", "%s / %s (peak sampled %s)", mib(r.CacheDisk), budget, mib(r.CachePeak))
		add("biggest segment seen", "%s", mib(r.SegmentMax))
		add("hlsd_cache_bytes at end", "%s", mib(int64(r.CacheMetric)))
		if r.EvictionsSet {
			add("cache evictions (hlsd_cache_evictions_total)", "%g", r.Evictions)
		} else {
			add("cache evictions", "unknown (no hlsd_cache_evictions_total)")
		}
		add("RSS peak (sampled VmRSS), VmHWM, end", "%.0f MB, %.0f MB, %.0f MB", float64(r.RSSPeak)/1e6, float64(r.RSSHWM)/1e6, float64(r.RSSEnd)/1e6)
		add("open fds start / peak / end", "%d / %d / %d", r.FDStart, r.FDPeak, r.FDEnd)
		add("ffmpeg children peak (sampled)", "%d", r.FFmpegPeak)
		if r.CloseHung {
			add("server close", "HUNG: gave up after %s", r.CloseTime.Round(time.Millisecond))
		} else {
			add("server close", "took %s", r.CloseTime.Round(time.Millisecond))
		}
		add("ffmpeg children after close (all children)", "%d (%d)", r.FFmpegAfterClose, r.ChildrenAfter)
		add("goroutines start / after close (left)", "%d / %d (%+d)", r.GoroutinesStart, r.GoroutinesEnd, r.GoroutinesEnd-r.GoroutinesStart)
	} else {
		add("process figures", "n/a (server not in this process)")
		add("hlsd_cache_bytes at end", "%s", mib(int64(r.CacheMetric)))
		if r.EvictionsSet {
			add("cache evictions (hlsd_cache_evictions_total)", "%g", r.Evictions)
		}
	}
	if r.MetricsError != "" {
		add("server metrics", "error: %s", r.MetricsError)
	}
	add("encoder starts (hlsd_encoder_starts_total)", "%s", counts(r.EncoderStarts))
	add("encoders running at end, before close", "%s", counts(r.EncodersAtEnd))
	add("server responses by code", "%s", counts(r.ServerStatuses))

	width := len("figure")
	for _, x := range rows {
		width = max(width, len(x.name))
	}
	fmt.Fprintf(w, "%-*s  %s\n", width, "figure", "value")
	fmt.Fprintf(w, "%s  %s\n", strings.Repeat("-", width), strings.Repeat("-", 30))
	for _, x := range rows {
		fmt.Fprintf(w, "%-*s  %s\n", width, x.name, x.value)
	}
	if len(r.FailureMessages) > 0 {
		fmt.Fprintln(w, "\nfirst failures:")
		for _, m := range r.FailureMessages {
			fmt.Fprintln(w, "  "+m)
		}
	}
	if len(r.LateExamples) > 0 {
		fmt.Fprintln(w, "\nfirst late segments:")
		for _, m := range r.LateExamples {
			fmt.Fprintln(w, "  "+m)
		}
	}
}

func ms(d time.Duration) string { return fmt.Sprintf("%d ms", d.Milliseconds()) }

func mib(n int64) string { return fmt.Sprintf("%.2f MiB", float64(n)/(1<<20)) }

func soakUsage() string {
	var parts []string
	for _, d := range soakDefaults {
		parts = append(parts, "-"+d[0]+" "+d[1])
	}
	return strings.Join(parts, " ")
}

// byteSize is a flag of bytes: a number with an optional unit, KB, MB, GB
// (powers of 1000) or KiB, MiB, GiB (powers of 1024).
type byteSize int64

func (b *byteSize) String() string { return strconv.FormatInt(int64(*b), 10) }

func (b *byteSize) Set(s string) error {
	units := []struct {
		suffix string
		mult   float64
	}{{"KiB", 1 << 10}, {"MiB", 1 << 20}, {"GiB", 1 << 30}, {"KB", 1e3}, {"MB", 1e6}, {"GB", 1e9}, {"B", 1}}
	num, mult := strings.TrimSpace(s), 1.0
	for _, u := range units {
		if strings.HasSuffix(strings.ToLower(num), strings.ToLower(u.suffix)) {
			num, mult = strings.TrimSpace(num[:len(num)-len(u.suffix)]), u.mult
			break
		}
	}
	f, err := strconv.ParseFloat(num, 64)
	if err != nil || f < 0 {
		return fmt.Errorf("want a size such as 8MiB, 64MiB or 2GB, not %q", s)
	}
	*b = byteSize(f * mult)
	return nil
}

// counts formats a labelled counter as "k=v, ..." in key order.
func counts(m map[string]float64) string {
	if len(m) == 0 {
		return "none"
	}
	var parts []string
	total := 0.0
	for _, k := range slices.Sorted(maps.Keys(m)) {
		parts = append(parts, fmt.Sprintf("%s=%g", k, m[k]))
		total += m[k]
	}
	return fmt.Sprintf("%g: %s", total, strings.Join(parts, ", "))
}
