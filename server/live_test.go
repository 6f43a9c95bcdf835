package server

import (
	"bytes"
	"errors"
	"io"
	"net/http"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/hlsd/hlsd/transcoder"
)

// liveGet starts a GET and returns the response once its first body bytes
// are in, with them.
func liveGet(t *testing.T, url string) (*http.Response, []byte) {
	t.Helper()
	resp, err := http.Get(url)
	if err != nil {
		t.Fatal(err)
	}
	if resp.StatusCode != http.StatusOK {
		b, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		t.Fatalf("GET %s: %d %s", url, resp.StatusCode, b)
	}
	buf := make([]byte, 64<<10)
	n, err := resp.Body.Read(buf)
	if n == 0 {
		resp.Body.Close()
		t.Fatalf("GET %s: no first bytes: %v", url, err)
	}
	return resp, buf[:n]
}

// A re-encoded segment asked for with progressive=1 is sent while it is
// made, fragment by fragment:
// the first bytes come before the segment is complete on disk, and the
// whole response is the segment the cache then holds, byte for byte,
// starting on a keyframe.
func TestLiveSegmentStreams(t *testing.T) {
	e := newEnv(t, transcoder.Config{}, "long.mp4")
	base := e.videoURL("long.mp4") + "/video/0/720p/"
	e.mustGet(base + "index.m3u8")
	resp, first := liveGet(t, base+"segment-3.m4s?progressive=1")
	defer resp.Body.Close()
	if files := e.segmentFiles("video-0-720p"); len(files) != 0 {
		t.Errorf("segment files %v exist when the first bytes arrive: the response waited for the segment", files)
	}
	if resp.ContentLength != -1 {
		t.Errorf("Content-Length %d: a live segment's length is not known in advance", resp.ContentLength)
	}
	rest, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatal(err)
	}
	body := append(first, rest...)
	if err := wholeSegment(body); err != nil {
		t.Fatalf("live segment: %v", err)
	}
	if n := bytes.Count(body, []byte("moof")); n < 2 {
		t.Errorf("%d fragments in a 4 s segment, want one per %v", n, 500*time.Millisecond)
	}
	var cached []byte
	for _, f := range e.segmentFiles("video-0-720p") {
		if strings.HasSuffix(f, "segment-3.m4s") {
			cached, _ = os.ReadFile(f)
		}
	}
	if !bytes.Equal(body, cached) {
		t.Errorf("the live response (%d bytes) differs from the cached segment (%d bytes)", len(body), len(cached))
	}
	if again := e.mustGet(base + "segment-3.m4s"); !bytes.Equal(again, body) {
		t.Errorf("served again from the cache: %d bytes, live: %d", len(again), len(body))
	}
	init := e.mustGet(base + "init.mp4")
	if flags, _, pict := probeSegment(t, init, body); !strings.HasPrefix(flags, "K") || pict != "I" {
		t.Errorf("live segment starts with %q %q, want a keyframe", flags, pict)
	}
}

// A run that dies while its segment is being sent progressively cuts the response short,
// so the player sees a failed load and retries; it never gets a short
// segment with a clean end. The retry is served.
func TestLiveSegmentCutWhenRunDies(t *testing.T) {
	e := newEnv(t, transcoder.Config{}, "long.mp4")
	base := e.videoURL("long.mp4") + "/video/0/1080p/"
	e.mustGet(base + "index.m3u8")
	resp, _ := liveGet(t, base+"segment-5.m4s?progressive=1")
	defer resp.Body.Close()
	for _, pid := range ffmpegChildren() {
		if b, _ := os.ReadFile(filepath.Join("/proc", itoa(pid), "cmdline")); bytes.Contains(b, []byte("1080")) {
			_ = syscall.Kill(pid, syscall.SIGKILL)
		}
	}
	_, err := io.ReadAll(resp.Body)
	if err == nil || !errors.Is(err, io.ErrUnexpectedEOF) {
		t.Fatalf("reading the rest after ffmpeg was killed: %v, want an unexpected EOF", err)
	}
	if err := wholeSegment(e.mustGet(base + "segment-5.m4s")); err != nil {
		t.Errorf("segment 5 requested again: %v", err)
	}
}

func itoa(n int) string { return strconv.Itoa(n) }
