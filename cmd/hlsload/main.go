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
	"strings"
	"time"
)

func main() {
	var cfg Config
	flag.IntVar(&cfg.Original, "players", 20, "players of the original rung (stream copy of the source)")
	flag.IntVar(&cfg.Transcode, "transcode", 4, "players of a re-encoded rung (see -rung); they switch 240p <-> 360p at one seek in three")
	flag.DurationVar(&cfg.Duration, "duration", 2*time.Minute, "how long the players play (setup, such as making test media, is not counted)")
	flag.StringVar(&cfg.Rung, "rung", "360p", "first rung of the transcode players (240p, 360p, 480p, ...)")
	flag.StringVar(&cfg.URL, "url", "", "base URL of an hlsd already running on loopback (127.0.0.0/8, ::1, localhost), e.g. http://127.0.0.1:7666; empty starts one in this process on a fresh cache")
	flag.StringVar(&cfg.File, "file", "long.mp4", "media path relative to the server's media root (in-process: a file of the e2e corpus)")
	flag.Uint64Var(&cfg.Seed, "seed", 0, "random seed of the players' seeks and switches; 0 picks one (printed)")
	flag.IntVar(&cfg.MaxEncoders, "max-encoders", 0, "in-process server only: concurrent video re-encodes; 0 keeps hlsd's default (number of CPUs)")
	verbose := flag.Bool("v", false, "log every player's events (load, play, stall, seek, switch, late segment, failure) to stderr")
	serverLog := flag.String("server-log", "", "in-process server only: write hlsd's log (info level) to this file")
	flag.Usage = func() {
		fmt.Fprintf(flag.CommandLine.Output(), `usage: hlsload [flags]

Simulates HLS players against hlsd on loopback for -duration and prints
requests, failures, late segments, stalls, latencies and, for a server run
in this process, its memory, file descriptors and ffmpeg children.

`)
		flag.PrintDefaults()
	}
	flag.Parse()
	if flag.NArg() > 0 {
		flag.Usage()
		os.Exit(2)
	}
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
		return fmt.Sprintf("%s / %s / %s (n=%d)", ms(l.P50), ms(l.P95), ms(l.Max), l.N)
	}
	c := r.Config
	server := c.URL
	if r.InProcess {
		server = "in-process"
		if c.MaxEncoders > 0 {
			server += fmt.Sprintf(", max-encoders %d", c.MaxEncoders)
		}
	}
	add("server, file", "%s, %s", server, c.File)
	add("players (original/transcode)", "%d/%d (transcode rung %s)", c.Original, c.Transcode, c.Rung)
	add("duration", "%s (ran %s, seed %d)", c.Duration, r.Elapsed.Round(time.Millisecond), c.Seed)
	add("requests total", "%d (%d cut off at the end)", r.Requests, r.Aborted)
	add("failed requests", "%d", r.Failed)
	for _, k := range slices.Sorted(maps.Keys(r.Failures)) {
		add("  "+k, "%d", r.Failures[k])
	}
	add("segments fetched (video+audio)", "%d", r.Segments)
	add("late segments while playing", "%d", r.Late)
	add("stalls (count, total)", "%d, %.1f s", r.Stalls, r.StallTime.Seconds())
	add("seeks, of which rung switches", "%d, %d", r.Seeks, r.Switches)
	add("startups unfinished at the end", "%d", r.StartupsCut)
	add("startup latency p50/p95/max", "%s", lat(r.Startup))
	add("seek latency p50/p95/max", "%s", lat(r.Seek))
	add("segment latency p50/p95/max, original", "%s", lat(r.SegOriginal))
	add("segment latency p50/p95/max, transcode", "%s", lat(r.SegTranscode))
	add("bytes served", "%.1f MB", float64(r.Bytes)/1e6)
	if r.InProcess {
		add("RSS peak (sampled VmRSS), VmHWM", "%.0f MB, %.0f MB", float64(r.RSSPeak)/1e6, float64(r.RSSHWM)/1e6)
		add("open fds start / peak / end", "%d / %d / %d", r.FDStart, r.FDPeak, r.FDEnd)
		add("ffmpeg children peak (sampled)", "%d", r.FFmpegPeak)
		add("ffmpeg children after close (all children)", "%d (%d)", r.FFmpegAfterClose, r.ChildrenAfter)
	} else {
		add("process figures", "n/a (server not in this process)")
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
