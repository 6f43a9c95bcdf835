package server

import (
	"encoding/json"
	"fmt"
	"math"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"sync"
	"testing"

	"github.com/hlsd/hlsd/transcoder"
	"github.com/hlsd/hlsd/transcoder/encode"
)

// listing is the media root's /api/media entries by name.
func (e *testEnv) listing() map[string]mediaEntry {
	e.t.Helper()
	var out struct{ Entries []mediaEntry }
	if err := json.Unmarshal(e.mustGet(e.url+"/api/media"), &out); err != nil {
		e.t.Fatal(err)
	}
	m := map[string]mediaEntry{}
	for _, x := range out.Entries {
		m[x.Name] = x
	}
	return m
}

// A listing shows durations only for files probed before, and never probes.
func TestListingDurations(t *testing.T) {
	e := newEnv(t, transcoder.Config{}, "h264.mp4", "vp9.webm")
	for name, x := range e.listing() {
		if x.Duration != 0 {
			t.Errorf("%s: duration %v before any probe", name, x.Duration)
		}
	}
	e.mustGet(e.videoURL("h264.mp4") + "/info")
	got := e.listing()
	if d := got["h264.mp4"].Duration; math.Abs(d-20) > 0.1 {
		t.Errorf("h264.mp4: duration %v after /info, want about 20", d)
	}
	if d := got["vp9.webm"].Duration; d != 0 {
		t.Errorf("vp9.webm: duration %v, but it was never probed", d)
	}
}

// An 8-bit H.264 original plays wherever a rung does, so a rung that would
// cost more bits than the original is not advertised (it stays requestable);
// for HEVC, which many players cannot decode, every rung stays.
func TestMasterLeavesOutRungsDearerThanOriginal(t *testing.T) {
	e := newEnv(t, transcoder.Config{}, "h264.mp4", "hevc.mkv")
	variants := func(file string) map[string]int {
		out := map[string]int{} // NAME -> AVERAGE-BANDWIDTH
		for _, line := range strings.Split(string(e.mustGet(e.videoURL(file)+"/master.m3u8")), "\n") {
			if !strings.HasPrefix(line, "#EXT-X-STREAM-INF:") {
				continue
			}
			name := regexp.MustCompile(`NAME="([^"]+)"`).FindStringSubmatch(line)
			avg := regexp.MustCompile(`AVERAGE-BANDWIDTH=(\d+)`).FindStringSubmatch(line)
			if name == nil || avg == nil {
				t.Fatalf("%s: variant without NAME or AVERAGE-BANDWIDTH: %s", file, line)
			}
			out[name[1]], _ = strconv.Atoi(avg[1])
		}
		return out
	}

	h264 := variants("h264.mp4")
	const audio = 128_000 // the AAC rendition's average, included in every variant's
	orig, ok := h264["original"]
	if !ok {
		t.Fatalf("h264.mp4: no original in the master: %v", h264)
	}
	dropped := 0
	for _, r := range encode.Ladder[:2] { // 240p and 360p: the rungs at or below 360p
		_, listed := h264[r.Name]
		if want := r.Bitrate < orig-audio; listed != want {
			t.Errorf("h264.mp4: %s (%d b/s) listed=%v, original averages %d b/s", r.Name, r.Bitrate, listed, orig-audio)
		}
		if !listed {
			dropped++
			if status, body, _ := e.get(e.videoURL("h264.mp4") + "/video/0/" + r.Name + "/index.m3u8"); status != http.StatusOK {
				t.Errorf("h264.mp4: unlisted %s playlist: status %d %s", r.Name, status, body)
			}
		}
	}
	if dropped == 0 {
		t.Errorf("h264.mp4: the clip should average less than the 360p rung; variants %v", h264)
	}

	hevc := variants("hevc.mkv")
	for _, r := range encode.Ladder[:2] {
		if _, ok := hevc[r.Name]; !ok {
			t.Errorf("hevc.mkv: %s missing; variants %v", r.Name, hevc)
		}
	}
}

// The first viewers of a file arrive together; one ffprobe answers them all,
// however many ask at once, and one keyframe read: from the mp4's index, or
// with --keyframes scan one more ffprobe, the packet scan. (The video's codec
// record comes from the mp4's header: no second ffprobe for it.)
func TestConcurrentFirstRequestsProbeOnce(t *testing.T) {
	real, err := exec.LookPath("ffprobe")
	if err != nil {
		t.Skip("no ffprobe")
	}
	for _, c := range []struct {
		scan bool
		want int
	}{{false, 1}, {true, 2}} {
		dir := t.TempDir()
		count := filepath.Join(dir, "runs")
		wrapper := filepath.Join(dir, "ffprobe")
		script := fmt.Sprintf("#!/bin/sh\necho run >> %q\nexec %q \"$@\"\n", count, real)
		if err := os.WriteFile(wrapper, []byte(script), 0o755); err != nil {
			t.Fatal(err)
		}
		e := newEnv(t, transcoder.Config{FFprobe: wrapper, KeyframeScanOnly: c.scan}, "h264.mp4")
		var wg sync.WaitGroup
		for i := range 12 {
			wg.Go(func() {
				url := e.videoURL("h264.mp4") + []string{"/master.m3u8", "/info", "/video/0/original/index.m3u8", "/audio/0/aac/index.m3u8"}[i%4]
				resp, err := http.Get(url)
				if err != nil {
					t.Error(err)
					return
				}
				resp.Body.Close()
				if resp.StatusCode != http.StatusOK {
					t.Errorf("%s: %d", url, resp.StatusCode)
				}
			})
		}
		wg.Wait()
		b, _ := os.ReadFile(count)
		if runs := strings.Count(string(b), "run"); runs != c.want {
			t.Errorf("scan only %v: %d ffprobe runs for 12 concurrent first requests, want %d", c.scan, runs, c.want)
		}
	}
}
