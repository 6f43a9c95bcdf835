package main

import (
	"context"
	"os"
	"strings"
	"testing"
	"time"
)

// TestLoad plays 10 original and 2 transcode players against an in-process
// hlsd and holds it to its targets. It is long and heavy, so opt-in.
func TestLoad(t *testing.T) {
	if os.Getenv("HLSD_LOAD") != "1" {
		t.Skip("load test: run with HLSD_LOAD=1 go test -v ./cmd/hlsload/ (HLSD_LOAD_DURATION=45s sets how long the players play)")
	}
	d := 45 * time.Second
	if s := os.Getenv("HLSD_LOAD_DURATION"); s != "" {
		var err error
		if d, err = time.ParseDuration(s); err != nil || d <= 0 {
			t.Fatalf("HLSD_LOAD_DURATION=%q: want a positive duration such as 45s", s)
		}
	}
	res, err := Run(context.Background(), Config{Original: 10, Transcode: 2, Duration: d})
	if err != nil {
		t.Fatal(err)
	}
	var table strings.Builder
	printTable(&table, res)
	t.Log("\n" + table.String())

	if res.Failed != 0 {
		t.Errorf("%d failed requests: %v; first: %q", res.Failed, res.Failures, res.FailureMessages)
	}
	if res.Late != 0 {
		t.Errorf("%d segments were late while playing; first: %q", res.Late, res.LateExamples)
	}
	if res.FFmpegAfterClose != 0 {
		t.Errorf("%d ffmpeg children alive after the server closed", res.FFmpegAfterClose)
	}
	if res.FDEnd-res.FDStart > 50 {
		t.Errorf("open fds: %d at the start, %d at the end (more than 50 leaked)", res.FDStart, res.FDEnd)
	}
	// The whole test process (players and server) peaked at 50-90 MB here;
	// a leak of buffers or state per segment would pass this fast.
	if res.RSSHWM > 256<<20 {
		t.Errorf("peak RSS %d MB, want under 256 MB", res.RSSHWM>>20)
	}
	if res.Segments == 0 {
		t.Error("no segment was fetched")
	}
}

// TestSoak is the full-cache deadlock report in under a minute: five clips
// of different codecs (H.264/AAC, 10-bit HEVC with 5.1 AC-3, VP9/Opus, a
// 25 s GOP, two audio tracks), twelve players at 4x real time with seeks
// and rung switches, and a 4 MiB segment cache. The clips' segments at the
// rungs played come to 5-15 MB each with a transcode player, 34 MB in all,
// so the server evicts at nearly every janitor tick. (-soak runs 10 minutes
// with the report's 8 MiB; this shorter run presses harder.) It runs in
// `make test`, with -race; every step is bounded, and the first hung
// request puts this process's goroutine stacks in the log.
func TestSoak(t *testing.T) {
	// Bounds making the test media (on a fresh machine); the run itself is
	// bounded by its duration, settle and closeTimeout.
	ctx, cancel := context.WithTimeout(t.Context(), 3*time.Minute)
	defer cancel()
	cfg := Config{
		Files:          []string{"h264.mp4", "hevc.mkv", "vp9.webm", "longgop.mp4", "twoaudio.mkv"},
		Original:       8,
		Transcode:      4,
		Duration:       50 * time.Second,
		Speed:          4,
		CacheBytes:     4 << 20,
		RequestTimeout: 15 * time.Second, // the slowest answers of healthy runs took about 4 s
	}
	start := time.Now()
	res, err := Run(ctx, cfg)
	if err != nil {
		t.Fatal(err)
	}
	var table strings.Builder
	printTable(&table, res)
	t.Logf("took %s\n%s", time.Since(start).Round(time.Second), table.String())
	if res.HangStacks != "" {
		t.Logf("goroutines when the first request hung:\n%s", res.HangStacks)
	}

	if res.Hung != 0 {
		t.Errorf("%d hung requests (no answer within %s): %v; first failures: %q", res.Hung, res.Config.RequestTimeout, res.Failures, res.FailureMessages)
	}
	if n := res.Failed - res.Hung; n != 0 {
		t.Errorf("%d failed requests besides the hung ones: %v; first: %q", n, res.Failures, res.FailureMessages)
	}
	if res.Segments == 0 || res.Seeks == 0 || res.Switches == 0 {
		t.Errorf("%d segments, %d seeks, %d rung switches: want some of each", res.Segments, res.Seeks, res.Switches)
	}
	// Eviction runs once a second, so a segment written just before the
	// measure may still be over budget; more than one is a cache out of control.
	if res.CacheDisk > cfg.CacheBytes+res.SegmentMax {
		t.Errorf("segment cache at the end: %d bytes on disk, over the %d budget plus one segment (%d)", res.CacheDisk, cfg.CacheBytes, res.SegmentMax)
	}
	if res.CloseHung {
		t.Errorf("the server's Close had not returned after %s", closeTimeout)
	}
	if res.FFmpegAfterClose != 0 {
		t.Errorf("%d ffmpeg children alive after the server closed", res.FFmpegAfterClose)
	}
	// Slack: NumGoroutine also counts the finalizer and cleanup goroutines
	// while they run (the closed sockets' and pipes' os.File finalizers),
	// and on a busy machine a net/http connection goroutine may outlive the
	// wait. A leak (a head, a waiter, a handler) is one per player or request.
	if left := res.GoroutinesEnd - res.GoroutinesStart; left > 5 {
		t.Errorf("%d goroutines before the server started, %d after it closed (%d left, want at most 5)", res.GoroutinesStart, res.GoroutinesEnd, left)
	}
	if res.FDEnd-res.FDStart > 50 {
		t.Errorf("open fds: %d at the start, %d at the end (more than 50 leaked)", res.FDStart, res.FDEnd)
	}
}
