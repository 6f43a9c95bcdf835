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
