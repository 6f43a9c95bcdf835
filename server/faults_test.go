package server

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"io"
	"io/fs"
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

// An ffmpeg killed with SIGKILL in the middle of a segment: the request
// waiting for it is answered from a fresh run (or with a clear error), the
// next request for the segment succeeds, and nothing half-written is served.
func TestFFmpegKilledMidSegment(t *testing.T) {
	e := newEnv(t, transcoder.Config{}, "h264-1080.mp4")
	base := e.videoURL("h264-1080.mp4") + "/video/0/720p/"
	e.mustGet(base + "index.m3u8")
	type answer struct {
		status int
		body   []byte
	}
	got := make(chan answer, 1)
	go func() {
		resp, err := http.Get(base + "segment-2.m4s")
		if err != nil {
			got <- answer{0, []byte(err.Error())}
			return
		}
		defer resp.Body.Close()
		b, err := io.ReadAll(resp.Body)
		if err != nil {
			got <- answer{-1, []byte(err.Error())} // cut short: see below
			return
		}
		got <- answer{resp.StatusCode, b}
	}()
	var victim int
	eventually(t, 10*time.Second, "ffmpeg to start", func() bool {
		kids := ffmpegChildren()
		if len(kids) > 0 {
			victim = kids[0]
		}
		return victim != 0
	})
	if err := syscall.Kill(victim, syscall.SIGKILL); err != nil {
		t.Fatal(err)
	}
	a := <-got
	switch a.status {
	case http.StatusOK:
		if err := wholeSegment(a.body); err != nil {
			t.Errorf("segment served after the crash: %v", err)
		}
	case http.StatusInternalServerError:
		if !strings.Contains(string(a.body), "ffmpeg") {
			t.Errorf("500 without saying ffmpeg failed: %s", a.body)
		}
	case -1:
		// Killed while the segment was being sent live: the response was
		// cut, which players retry (TestLiveSegmentCutWhenRunDies).
		if !strings.Contains(string(a.body), "unexpected EOF") {
			t.Errorf("response cut with %s, want an unexpected EOF", a.body)
		}
	default:
		t.Errorf("after killing ffmpeg: %d %s; want the segment or a clear 500", a.status, a.body)
	}
	if retries := e.metricValue("hlsd_encoder_starts_total", map[string]string{"class": "encode", "reason": "retry"}); a.status == http.StatusOK && retries < 1 {
		// (Served whole after the kill means a second run made it.)
		t.Errorf("the segment came without a retry run (retry starts %v): was ffmpeg really killed?", retries)
	}
	init := e.mustGet(base + "init.mp4")
	seg := e.mustGet(base + "segment-2.m4s")
	if err := wholeSegment(seg); err != nil {
		t.Fatalf("segment 2 after the crash: %v", err)
	}
	if flags, _, pict := probeSegment(t, init, seg); !strings.HasPrefix(flags, "K") || pict != "I" {
		t.Errorf("segment 2 after the crash starts with %q %q, want a keyframe", flags, pict)
	}
}

// A file replaced while it is streamed is noticed by its size and mtime:
// the new content is served, never segments cut from the old one; a file
// deleted is a 404.
func TestFileReplacedOrDeleted(t *testing.T) {
	e := newEnv(t, transcoder.Config{}, "h264.mp4", "vp9.webm")
	movie := filepath.Join(e.media, "movie.mp4")
	if err := os.Link(filepath.Join(e.media, "h264.mp4"), movie); err != nil {
		t.Fatal(err)
	}
	base := e.videoURL("movie.mp4")
	e.mustGet(base + "/master.m3u8")
	if init := e.mustGet(base + "/video/0/original/init.mp4"); !strings.Contains(string(init), "avcC") {
		t.Fatal("the H.264 original's init has no avcC")
	}
	e.mustGet(base + "/video/0/240p/segment-1.m4s")

	// Replace it the way a download or a re-encode finishing does: rename over.
	tmp := filepath.Join(e.media, ".movie.tmp")
	b, err := os.ReadFile(filepath.Join(e.media, "vp9.webm"))
	if err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(tmp, b, 0o644); err != nil {
		t.Fatal(err)
	}
	if err := os.Rename(tmp, movie); err != nil {
		t.Fatal(err)
	}
	var info struct {
		Video []struct{ Codec string } `json:"video"`
	}
	if err := json.Unmarshal(e.mustGet(base+"/info"), &info); err != nil || len(info.Video) == 0 || info.Video[0].Codec != "vp9" {
		t.Fatalf("info after the replacement: %+v %v; want the VP9 file", info, err)
	}
	if init := e.mustGet(base + "/video/0/original/init.mp4"); !strings.Contains(string(init), "vpcC") {
		t.Error("after the replacement, the original's init is not the VP9 file's")
	}
	seg := e.mustGet(base + "/video/0/original/segment-1.m4s")
	if err := wholeSegment(seg); err != nil {
		t.Error(err)
	}

	if err := os.Remove(movie); err != nil {
		t.Fatal(err)
	}
	for _, route := range []string{"/master.m3u8", "/video/0/original/segment-2.m4s", "/video/0/240p/segment-2.m4s"} {
		status, body, hdr := e.get(base + route)
		wantError(t, "deleted "+route, status, body, hdr, http.StatusNotFound)
	}
	// The server goes on serving the other files.
	checkStreams(t, e, "h264.mp4")
}

// A client that gives up while its segment is being made: its wait ends at
// once, and the encoder it started stops when nobody else needs it.
func TestClientGoneWhileWaiting(t *testing.T) {
	e := newEnv(t, transcoder.Config{IdleTimeout: 300 * time.Millisecond}, "h264-1080.mp4")
	base := e.videoURL("h264-1080.mp4") + "/video/0/1080p/"
	e.mustGet(base + "index.m3u8")
	route := map[string]string{"route": "/videos/{id}/{kind}/{track}/{quality}/{file}"}
	before := e.metricValue("hlsd_http_requests_total", route)

	ctx, cancel := context.WithCancel(context.Background())
	req, _ := http.NewRequestWithContext(ctx, http.MethodGet, base+"segment-3.m4s", nil)
	done := make(chan error, 1)
	go func() {
		resp, err := http.DefaultClient.Do(req)
		if err == nil {
			resp.Body.Close()
			err = errors.New("answered before the client left: " + resp.Status)
		}
		done <- err
	}()
	eventually(t, 10*time.Second, "the encoder to start", func() bool { return len(ffmpegChildren()) > 0 })
	cancel()
	if err := <-done; !errors.Is(err, context.Canceled) {
		t.Fatalf("client: %v", err)
	}
	eventually(t, 5*time.Second, "the handler to return", func() bool {
		return e.metricValue("hlsd_http_requests_total", route) > before
	})
	eventually(t, 10*time.Second, "the abandoned encoder to stop", func() bool {
		return e.metricValue("hlsd_encoders_running", map[string]string{"class": "encode"}) == 0 && len(ffmpegChildren()) == 0
	})
}

// The cache disk fills up: requests get a clear error, no partial segment
// is ever served, and segments come back once there is room again.
func TestCacheDiskFull(t *testing.T) {
	cache := t.TempDir()
	// A 1 MB tmpfs as the cache: only root may mount, so elsewhere the test
	// cannot run (CI runs as root).
	if err := syscall.Mount("tmpfs", cache, "tmpfs", 0, "size=1m"); err != nil {
		t.Skipf("cannot mount a small tmpfs for the cache (%v): run as root", err)
	}
	t.Cleanup(func() { _ = syscall.Unmount(cache, syscall.MNT_DETACH) })
	e := newEnvCache(t, transcoder.Config{}, cache, "h264.mp4")
	base := e.videoURL("h264.mp4") + "/video/0/original/"
	p := parseMediaPlaylist(t, e.mustGet(base+"index.m3u8"))
	// A run writes ahead of what is published, so even init.mp4 may find
	// the disk full. Every answer must be a whole file or a clear error.
	full := 0
	failed := func(what string, status int, body []byte, hdr http.Header) {
		wantError(t, what+" on a full disk", status, body, hdr, http.StatusInternalServerError)
		if !strings.Contains(strings.ToLower(string(body)), "no space") {
			t.Errorf("%s: the error does not say the disk is full: %s", what, body)
		}
		full++
	}
	status, init, hdr := e.get(base + "init.mp4")
	if status != http.StatusOK {
		failed("init.mp4", status, init, hdr)
		init = nil
	}
	for n := range p.starts {
		status, body, hdr := e.get(base + "segment-" + strconv.Itoa(n) + ".m4s")
		if status != http.StatusOK {
			failed("segment "+strconv.Itoa(n), status, body, hdr)
			continue
		}
		if init == nil {
			// Published segments come after their init: it is there now.
			init = e.mustGet(base + "init.mp4")
		}
		if err := wholeSegment(body); err != nil {
			t.Errorf("segment %d served while the disk was full: %v", n, err)
		} else if flags, _, _ := probeSegment(t, init, body); !strings.HasPrefix(flags, "K") {
			t.Errorf("segment %d: first packet %q", n, flags)
		}
	}
	if full == 0 {
		t.Fatal("every segment fit in 1 MB: the disk never filled up")
	}
	// Room again (the disk grows, or an operator cleans up): the same
	// requests succeed.
	if err := syscall.Mount("tmpfs", cache, "", syscall.MS_REMOUNT, "size=64m"); err != nil {
		t.Fatal(err)
	}
	init = e.mustGet(base + "init.mp4")
	for n := range p.starts {
		seg := e.mustGet(base + "segment-" + strconv.Itoa(n) + ".m4s")
		if err := wholeSegment(seg); err != nil {
			t.Errorf("segment %d after the disk was freed: %v", n, err)
		} else if flags, _, _ := probeSegment(t, init, seg); !strings.HasPrefix(flags, "K") {
			t.Errorf("segment %d after the disk was freed: first packet %q", n, flags)
		}
	}
}

// restart stops e as an operator's restart would (encoders killed, the
// listener closed) and starts a new server on the same media and cache.
func (e *testEnv) restart(cfg transcoder.Config) *testEnv {
	e.t.Helper()
	e.tc.Close()
	e.hs.Close()
	e.lib.Close()
	return newEnvDirs(e.t, cfg, e.media, e.cache)
}

// Stopping the server mid-stream and starting it again: keyframes and plans
// are reused (no scan, identical playlists), segments made before are served
// without an encoder, leftovers of killed runs are never served, and the
// cache budget holds for what the first run left.
func TestRestart(t *testing.T) {
	e := newEnv(t, transcoder.Config{}, "h264-1080.mp4")
	base := e.videoURL("h264-1080.mp4")
	master := e.mustGet(base + "/master.m3u8")
	rung := base + "/video/0/720p/"
	playlist := e.mustGet(rung + "index.m3u8")
	before := map[int][]byte{}
	for _, n := range []int{0, 1} {
		before[n] = e.mustGet(rung + "segment-" + strconv.Itoa(n) + ".m4s")
	}
	// Mid-stream: a request waits on an encoder when the server stops.
	go func() {
		if resp, err := http.Get(rung + "segment-4.m4s"); err == nil {
			resp.Body.Close()
		}
	}()
	eventually(t, 10*time.Second, "the encoder of segment 4", func() bool { return len(ffmpegChildren()) > 0 })
	// What a crash (no clean stop) would leave: a run directory with a
	// partial segment, and a temporary file.
	vdir := filepath.Dir(e.segmentFiles("video-0-720p")[0])
	if err := os.MkdirAll(filepath.Join(vdir, "run-99"), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(vdir, "run-99", "s-5.mp4"), []byte("partial"), 0o644); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(vdir, ".tmp-123"), []byte("partial"), 0o644); err != nil {
		t.Fatal(err)
	}

	e = e.restart(transcoder.Config{})
	base, rung = e.videoURL("h264-1080.mp4"), e.videoURL("h264-1080.mp4")+"/video/0/720p/"
	if kids := ffmpegChildren(); len(kids) > 0 {
		t.Fatalf("ffmpeg left by the stopped server: %v", kids)
	}
	// The master follows what the machine makes fast enough, which the
	// encodes above measured (and the load at any moment changes), so only
	// its form is compared; the media playlists must never change.
	if got := e.mustGet(base + "/master.m3u8"); !bytes.HasPrefix(got, master[:bytes.Index(master, []byte("#EXT-X-STREAM-INF"))]) {
		t.Errorf("master playlist's header and renditions changed across the restart:\n%s\nbefore:\n%s", got, master)
	}
	if got := e.mustGet(rung + "index.m3u8"); string(got) != string(playlist) {
		t.Errorf("720p playlist changed across the restart")
	}
	if n := e.metricValue("hlsd_keyframe_scan_seconds", nil); n != 0 {
		t.Errorf("%v keyframe scans after the restart, want 0 (reused from the cache)", n)
	}
	for n, b := range before {
		if got := e.mustGet(rung + "segment-" + strconv.Itoa(n) + ".m4s"); string(got) != string(b) {
			t.Errorf("segment %d differs after the restart", n)
		}
	}
	// (Serving them may prefetch the segments after them; that is not a
	// run made for these.)
	for _, reason := range []string{"start", "seek", "init", "restart", "retry"} {
		if n := e.metricValue("hlsd_encoder_starts_total", map[string]string{"class": "encode", "reason": reason}); n != 0 {
			t.Errorf("%v encoder runs (%s) to serve segments made before the restart", n, reason)
		}
	}
	for _, n := range []int{4, 5} {
		if err := wholeSegment(e.mustGet(rung + "segment-" + strconv.Itoa(n) + ".m4s")); err != nil {
			t.Errorf("segment %d after the restart: %v", n, err)
		}
	}
	for _, left := range []string{"run-99", ".tmp-123"} {
		if exists(filepath.Join(vdir, left)) {
			t.Errorf("leftover of the crashed run not cleaned: %s", left)
		}
	}
	for _, f := range e.segmentFiles("*") {
		b, err := os.ReadFile(f)
		if err == nil {
			err = wholeSegment(b)
		}
		if err != nil {
			t.Errorf("%s: %v", f, err)
		}
	}

	// A smaller budget after the restart: the cache is trimmed to it.
	onDisk := cacheBytes(t, e.cache)
	budget := onDisk / 2
	e = e.restart(transcoder.Config{CacheBytes: budget})
	rung = e.videoURL("h264-1080.mp4") + "/video/0/720p/"
	eventually(t, 10*time.Second, "the cache to shrink to its budget", func() bool {
		return cacheBytes(t, e.cache) <= budget && e.metricValue("hlsd_cache_bytes", nil) <= float64(budget)
	})
	if err := wholeSegment(e.mustGet(rung + "segment-0.m4s")); err != nil {
		t.Errorf("segment 0 after eviction: %v", err)
	}
}

// cacheBytes is the size of every file under cache/segments.
func cacheBytes(t *testing.T, cache string) int64 {
	t.Helper()
	var n int64
	_ = filepath.WalkDir(filepath.Join(cache, "segments"), func(_ string, d fs.DirEntry, err error) error {
		if err == nil && d.Type().IsRegular() {
			if fi, err := d.Info(); err == nil {
				n += fi.Size()
			}
		}
		return nil
	})
	return n
}

func exists(path string) bool {
	_, err := os.Stat(path)
	return err == nil
}
