package server

import (
	"bytes"
	"context"
	"fmt"
	"net/http"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/hlsd/hlsd/transcoder"
)

// metricValue sums the series of a metric whose labels match labels (a
// histogram counts its observations); 0 when there is none.
func (e *testEnv) metricValue(name string, labels map[string]string) float64 {
	e.t.Helper()
	families, err := e.reg.Gather()
	if err != nil {
		e.t.Fatal(err)
	}
	sum := 0.0
	for _, f := range families {
		if f.GetName() != name {
			continue
		}
	next:
		for _, m := range f.GetMetric() {
			for _, lp := range m.GetLabel() {
				if want, ok := labels[lp.GetName()]; ok && want != lp.GetValue() {
					continue next
				}
			}
			sum += m.GetCounter().GetValue() + m.GetGauge().GetValue() + float64(m.GetHistogram().GetSampleCount())
		}
	}
	return sum
}

func (e *testEnv) segmentFiles(variant string) []string {
	matches, _ := filepath.Glob(filepath.Join(e.cache, "segments", "*", variant, "segment-*.m4s"))
	return matches
}

// A request deep into a rung with nothing encoded starts a head there; it
// does not encode from the start of the file.
func TestSeekStartsHeadAtSegment(t *testing.T) {
	e := newEnv(t, transcoder.Config{}, "h264.mp4")
	base := e.videoURL("h264.mp4") + "/video/0/240p/"
	e.mustGet(base + "index.m3u8")
	e.mustGet(base + "segment-7.m4s")
	if got := e.metricValue("hlsd_encoder_starts_total", map[string]string{"class": "encode", "reason": "seek"}); got != 1 {
		t.Errorf("seek starts = %v, want 1", got)
	}
	for _, f := range e.segmentFiles("video-0-240p") {
		var n int
		if _, err := fmt.Sscanf(filepath.Base(f), "segment-%d.m4s", &n); err == nil && n < 7 {
			t.Errorf("segment %d was encoded for a request of segment 7", n)
		}
	}
}

// A head nobody reads from is stopped after the idle timeout, before it
// reaches the end of the file.
func TestIdleHeadStops(t *testing.T) {
	e := newEnv(t, transcoder.Config{IdleTimeout: 300 * time.Millisecond}, "h264-1080.mp4")
	base := e.videoURL("h264-1080.mp4") + "/video/0/1080p/"
	p := parseMediaPlaylist(t, e.mustGet(base+"index.m3u8"))
	e.mustGet(base + "segment-0.m4s")
	eventually(t, 10*time.Second, "the idle encoder to stop", func() bool {
		return e.metricValue("hlsd_encoders_running", map[string]string{"class": "encode"}) == 0
	})
	last := filepath.Join(filepath.Dir(e.segmentFiles("video-0-1080p")[0]), fmt.Sprintf("segment-%d.m4s", len(p.starts)-1))
	if _, err := os.Stat(last); err == nil {
		t.Errorf("the head ran to the end of the file instead of stopping when idle")
	}
	if kids := ffmpegChildren(); len(kids) > 0 {
		t.Errorf("ffmpeg still running after the idle stop: %v", kids)
	}
}

// Closing the transcoder kills every ffmpeg child, including ones a request
// is waiting on; those requests end with an error instead of hanging.
func TestShutdownLeavesNoFFmpeg(t *testing.T) {
	e := newEnv(t, transcoder.Config{}, "h264-1080.mp4")
	base := e.videoURL("h264-1080.mp4") + "/video/0/"
	e.mustGet(base + "1080p/index.m3u8")
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	var wg sync.WaitGroup
	for _, q := range []string{"1080p/segment-3.m4s", "720p/segment-4.m4s"} {
		wg.Add(1)
		go func() {
			defer wg.Done()
			req, _ := http.NewRequestWithContext(ctx, http.MethodGet, base+q, nil)
			if resp, err := http.DefaultClient.Do(req); err == nil {
				resp.Body.Close()
			}
		}()
	}
	eventually(t, 10*time.Second, "both ffmpeg children to start", func() bool { return len(ffmpegChildren()) >= 2 })
	e.tc.Close()
	if kids := ffmpegChildren(); len(kids) > 0 {
		t.Errorf("ffmpeg processes left after Close: %v", kids)
	}
	cancel()
	wg.Wait()
}

// A player that seeks abandons the request it was waiting on. Whichever
// arrives first, the new request or the old one's cancellation, the head
// only that player read from stops within a second: it would otherwise
// take a core from the head the player now waits for.
func TestAbandonedHeadStops(t *testing.T) {
	e := newEnv(t, transcoder.Config{MaxEncoders: 1}, "long.mp4")
	base := e.videoURL("long.mp4") + "/video/0/1080p/"
	p := parseMediaPlaylist(t, e.mustGet(base+"index.m3u8"))
	get := func(ctx context.Context, n int) <-chan int {
		done := make(chan int, 1)
		go func() {
			req, _ := http.NewRequestWithContext(ctx, http.MethodGet, fmt.Sprintf("%ssegment-%d.m4s?clientId=viewer", base, n), nil)
			resp, err := http.DefaultClient.Do(req)
			if err != nil {
				done <- 0
				return
			}
			resp.Body.Close()
			done <- resp.StatusCode
		}()
		return done
	}
	oldCtx, cancelOld := context.WithCancel(context.Background())
	defer cancelOld()
	old := get(oldCtx, 10)
	var first []int
	eventually(t, 10*time.Second, "the first head's ffmpeg", func() bool { first = ffmpegChildren(); return len(first) == 1 })

	// The seek arrives while the old request still waits; then the player
	// drops the old request.
	seek := get(context.Background(), len(p.starts)-3)
	time.Sleep(300 * time.Millisecond)
	select {
	case code := <-old:
		t.Fatalf("the old request ended (%d) before it was abandoned: segment 10 came too fast for this test", code)
	default:
	}
	cancelOld()
	eventually(t, time.Second, "the abandoned head's ffmpeg to end", func() bool {
		for _, pid := range ffmpegChildren() {
			if pid == first[0] {
				return false
			}
		}
		return true
	})
	if code := <-seek; code != http.StatusOK {
		t.Errorf("the request after the seek: %d", code)
	}
}

// procState reads a process's state letter and niceness from /proc.
func procState(pid int) (state string, nice int, ok bool) {
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", pid))
	if err != nil {
		return "", 0, false
	}
	f := strings.Fields(string(b[bytes.LastIndexByte(b, ')')+1:]))
	if len(f) < 17 {
		return "", 0, false
	}
	nice, _ = strconv.Atoi(f[16])
	return f[0], nice, true
}

// A head nobody waits on runs niced, and paused while a waited-for
// re-encode runs; the moment a request waits on it again, it is back at
// normal priority and running, and serves that request.
func TestWaitedHeadResumes(t *testing.T) {
	e := newEnv(t, transcoder.Config{MaxEncoders: 2}, "long.mp4")
	base := e.videoURL("long.mp4") + "/video/0/"
	e.mustGet(base + "720p/index.m3u8")

	// Head A: started by a request that then leaves (no clientId: the head
	// goes on, for whoever asks next).
	ctx, cancel := context.WithCancel(context.Background())
	req, _ := http.NewRequestWithContext(ctx, http.MethodGet, base+"720p/segment-20.m4s", nil)
	go func() {
		if resp, err := http.DefaultClient.Do(req); err == nil {
			resp.Body.Close()
		}
	}()
	var a int
	eventually(t, 10*time.Second, "head A's ffmpeg", func() bool {
		kids := ffmpegChildren()
		if len(kids) == 1 {
			a = kids[0]
		}
		return a != 0
	})
	cancel()
	eventually(t, 2*time.Second, "head A niced", func() bool { _, n, _ := procState(a); return n == 10 })

	// A waited-for re-encode elsewhere pauses A.
	seek := make(chan int, 1)
	go func() {
		code, _, _ := e.get(base + "1080p/segment-300.m4s")
		seek <- code
	}()
	eventually(t, 10*time.Second, "head A paused while 1080p is waited for", func() bool { s, _, _ := procState(a); return s == "T" })

	// A request for the segment A works on waits on A: A runs again, at
	// normal priority, and its segment arrives.
	next := 20
	for _, f := range e.segmentFiles("video-0-720p") {
		var n int
		if _, err := fmt.Sscanf(filepath.Base(f), "segment-%d.m4s", &n); err == nil && n >= next {
			next = n + 1
		}
	}
	got := make(chan int, 1)
	go func() {
		code, _, _ := e.get(fmt.Sprintf("%s720p/segment-%d.m4s", base, next))
		got <- code
	}()
	eventually(t, time.Second, "head A running at normal priority", func() bool {
		s, n, ok := procState(a)
		return ok && s != "T" && n == 0
	})
	if code := <-got; code != http.StatusOK {
		t.Errorf("segment %d from the resumed head: %d", next, code)
	}
	if code := <-seek; code != http.StatusOK {
		t.Errorf("1080p segment: %d", code)
	}
}
