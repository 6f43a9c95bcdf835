package server

import (
	"bufio"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"math"
	"net/http"
	"net/http/httptest"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"go.uber.org/zap/zaptest"

	"github.com/hlsd/hlsd/transcoder"
	"github.com/hlsd/hlsd/transcoder/fmp4"
	"github.com/hlsd/hlsd/transcoder/jobs"
	"github.com/hlsd/hlsd/transcoder/library"
	"github.com/hlsd/hlsd/transcoder/testmedia"
)

// testEnv is a running hlsd on a media directory of generated clips.
type testEnv struct {
	t     *testing.T
	url   string
	media string
	cache string
	tc    *transcoder.Transcoder
	jobs  *jobs.Runner
	srv   *Server
	reg   *prometheus.Registry
	hs    *httptest.Server
	lib   *library.Library
}

func newEnv(t *testing.T, cfg transcoder.Config, clips ...string) *testEnv {
	t.Helper()
	return newEnvCache(t, cfg, t.TempDir(), clips...)
}

// newEnvCache is newEnv with the cache in a directory of the caller's.
func newEnvCache(t *testing.T, cfg transcoder.Config, cache string, clips ...string) *testEnv {
	t.Helper()
	return newEnvDirs(t, cfg, mediaDir(t, clips...), cache)
}

// mediaDir is a new media root holding hard links to the named clips.
func mediaDir(t *testing.T, clips ...string) string {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Minute)
	defer cancel()
	media := t.TempDir()
	for _, c := range clips {
		src, err := testmedia.Make(ctx, testmedia.CacheDir(), c)
		if err != nil {
			t.Fatalf("making %s: %v", c, err)
		}
		if err := os.Link(src, filepath.Join(media, c)); err != nil {
			t.Fatal(err)
		}
	}
	return media
}

// newEnvDirs serves an existing media directory with an existing cache;
// opts adjust the server's configuration (its Log is the transcoder's too).
func newEnvDirs(t *testing.T, cfg transcoder.Config, media, cache string, opts ...func(*Config)) *testEnv {
	t.Helper()
	e := &testEnv{t: t, media: media, cache: cache, reg: prometheus.NewRegistry()}
	lib, err := library.Open(media)
	if err != nil {
		t.Fatal(err)
	}
	e.lib = lib
	scfg := Config{Library: lib, AllowOrigin: "*", Log: zaptest.NewLogger(t), Registry: e.reg}
	for _, o := range opts {
		o(&scfg)
	}
	log := scfg.Log
	srv, err := New(scfg)
	if err != nil {
		t.Fatal(err)
	}
	cfg.Library, cfg.CacheDir, cfg.Log, cfg.Observer = lib, e.cache, log, srv.Observer()
	e.tc = transcoder.New(cfg)
	if err := e.tc.Initialize(); err != nil {
		t.Fatal(err)
	}
	e.jobs = jobs.New(jobs.Config{Library: lib, StateDir: filepath.Join(e.cache, "jobs"),
		AllowImport: true, Preparer: e.tc, Log: log, Observer: srv.JobObserver()})
	if err := e.jobs.Initialize(); err != nil {
		t.Fatal(err)
	}
	srv.Initialize(e.tc, e.jobs)
	e.srv = srv
	e.hs = httptest.NewServer(srv)
	e.url = e.hs.URL
	t.Cleanup(e.close)
	return e
}

func (e *testEnv) close() {
	e.hs.Close()
	e.jobs.Close()
	e.tc.Close()
	e.lib.Close()
}

func (e *testEnv) videoURL(file string) string { return e.url + "/videos/" + encodeID(file) }

// get fetches a URL; the body is returned whatever the status.
func (e *testEnv) get(url string) (int, []byte, http.Header) {
	e.t.Helper()
	resp, err := http.Get(url)
	if err != nil {
		e.t.Fatalf("GET %s: %v", url, err)
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	if err != nil {
		e.t.Fatalf("GET %s: reading body: %v", url, err)
	}
	return resp.StatusCode, b, resp.Header
}

func (e *testEnv) mustGet(url string) []byte {
	e.t.Helper()
	status, b, _ := e.get(url)
	if status != http.StatusOK {
		e.t.Fatalf("GET %s: status %d: %s", url, status, b)
	}
	return b
}

// mediaPlaylist is what a test reads back from an index.m3u8.
type mediaPlaylist struct {
	target int
	starts []float64 // segment start times, summed from EXTINF
	durs   []float64
	end    float64
}

func parseMediaPlaylist(t *testing.T, b []byte) mediaPlaylist {
	t.Helper()
	var p mediaPlaylist
	pos := 0.0
	sc := bufio.NewScanner(strings.NewReader(string(b)))
	for sc.Scan() {
		line := sc.Text()
		switch {
		case strings.HasPrefix(line, "#EXT-X-TARGETDURATION:"):
			p.target, _ = strconv.Atoi(strings.TrimPrefix(line, "#EXT-X-TARGETDURATION:"))
		case strings.HasPrefix(line, "#EXTINF:"):
			d, err := strconv.ParseFloat(strings.TrimSuffix(strings.TrimPrefix(line, "#EXTINF:"), ","), 64)
			if err != nil {
				t.Fatalf("bad EXTINF line %q", line)
			}
			p.starts = append(p.starts, pos)
			p.durs = append(p.durs, d)
			pos += d
		}
	}
	p.end = pos
	if !strings.Contains(string(b), "#EXT-X-ENDLIST") || !strings.Contains(string(b), "#EXT-X-PLAYLIST-TYPE:VOD") {
		t.Fatalf("playlist is not a closed VOD playlist:\n%s", b)
	}
	return p
}

// fragment is what the boxes of one fMP4 media segment say about its timing.
type fragment struct {
	timescale uint32
	tfdt      uint64
	firstCTS  int64
	duration  uint64 // sum of sample durations
	samples   int
}

func (f fragment) start() float64 { return float64(int64(f.tfdt)+f.firstCTS) / float64(f.timescale) }
func (f fragment) end() float64   { return float64(f.tfdt+f.duration) / float64(f.timescale) }
func (f fragment) decodeStart() float64 {
	return float64(f.tfdt) / float64(f.timescale)
}

// readFragment reads the timing of seg (the first sample's decode and
// composition times, the sum of the durations) with init's timescale.
func readFragment(t *testing.T, init, seg []byte) fragment {
	t.Helper()
	timescale, samples := fmp4.Samples(init, seg)
	if timescale == 0 || len(samples) == 0 {
		t.Fatalf("segment has no samples or init has no timescale")
	}
	f := fragment{timescale: timescale, tfdt: samples[0].Decode, firstCTS: samples[0].Offset, samples: len(samples)}
	for _, s := range samples {
		f.duration += uint64(s.Duration)
	}
	return f
}

// probePackets runs ffprobe on init+segment and returns the first packet's
// flags and dts, and the first decoded frame's picture type.
func probeSegment(t *testing.T, init, seg []byte) (flags string, dts float64, pict string) {
	t.Helper()
	path := filepath.Join(t.TempDir(), "seg.mp4")
	if err := os.WriteFile(path, append(append([]byte{}, init...), seg...), 0o644); err != nil {
		t.Fatal(err)
	}
	out, err := exec.Command("ffprobe", "-v", "error", "-show_entries", "packet=dts_time,flags", "-read_intervals", "%+#1",
		"-of", "json", path).Output()
	if err != nil {
		t.Fatalf("ffprobe: %v", err)
	}
	var pk struct {
		Packets []struct {
			DTS   string `json:"dts_time"`
			Flags string `json:"flags"`
		} `json:"packets"`
	}
	if err := json.Unmarshal(out, &pk); err != nil || len(pk.Packets) == 0 {
		t.Fatalf("ffprobe found no packets: %v %s", err, out)
	}
	dts, _ = strconv.ParseFloat(pk.Packets[0].DTS, 64)
	out, err = exec.Command("ffprobe", "-v", "error", "-show_entries", "frame=pict_type", "-read_intervals", "%+#1",
		"-of", "csv=p=0", path).Output()
	if err != nil {
		t.Fatalf("ffprobe frames: %v", err)
	}
	return pk.Packets[0].Flags, dts, strings.Trim(strings.Split(string(out), "\n")[0], ", \r")
}

// ffmpegChildren lists ffmpeg processes whose parent is this test process.
func ffmpegChildren() []int {
	var pids []int
	dirs, _ := os.ReadDir("/proc")
	for _, d := range dirs {
		pid, err := strconv.Atoi(d.Name())
		if err != nil {
			continue
		}
		b, err := os.ReadFile(filepath.Join("/proc", d.Name(), "stat"))
		if err != nil {
			continue
		}
		s := string(b)
		open, close_ := strings.IndexByte(s, '('), strings.LastIndexByte(s, ')')
		if open < 0 || close_ < 0 || s[open+1:close_] != "ffmpeg" {
			continue
		}
		fields := strings.Fields(s[close_+1:])
		if len(fields) > 1 && fields[1] == strconv.Itoa(os.Getpid()) {
			pids = append(pids, pid)
		}
	}
	return pids
}

// eventually polls cond until it holds or the deadline passes.
func eventually(t *testing.T, d time.Duration, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(d)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out after %s waiting for %s", d, what)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

func near(a, b, tol float64) bool { return math.Abs(a-b) <= tol }

func fmtTimes(ts []float64) string {
	parts := make([]string, len(ts))
	for i, x := range ts {
		parts[i] = fmt.Sprintf("%.3f", x)
	}
	return strings.Join(parts, " ")
}
