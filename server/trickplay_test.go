package server

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"image"
	"image/jpeg"
	"io"
	"math"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"runtime"
	"sort"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/hlsd/hlsd/transcoder"
	"github.com/hlsd/hlsd/transcoder/probe"
)

// cue is one thumbnail of a trickplay map.
type cue struct {
	start, end float64
	url        string // the sheet, query included, fragment left out
	rect       image.Rectangle
}

var cueRe = regexp.MustCompile(`^(\d\d):(\d\d):(\d\d)\.(\d\d\d) --> (\d\d):(\d\d):(\d\d)\.(\d\d\d)\n([^#\n]+)#xywh=(\d+),(\d+),(\d+),(\d+)$`)

func parseTrickplay(t *testing.T, b []byte) []cue {
	t.Helper()
	blocks := strings.Split(strings.TrimSpace(string(b)), "\n\n")
	if blocks[0] != "WEBVTT" {
		t.Fatalf("trickplay map does not start with WEBVTT:\n%s", b)
	}
	var cues []cue
	for _, blk := range blocks[1:] {
		m := cueRe.FindStringSubmatch(blk)
		if m == nil {
			t.Fatalf("malformed cue %q", blk)
		}
		n := make([]int, len(m))
		for i := range m {
			n[i], _ = strconv.Atoi(m[i])
		}
		at := func(i int) float64 {
			return float64(n[i]*3600+n[i+1]*60+n[i+2]) + float64(n[i+3])/1000
		}
		cues = append(cues, cue{start: at(1), end: at(5), url: m[9],
			rect: image.Rect(n[10], n[11], n[10]+n[12], n[11]+n[13])})
	}
	return cues
}

// sourceKeyframes lists the video keyframes of file as ffprobe sees them,
// relative to the file's start.
func sourceKeyframes(t *testing.T, file string) []float64 {
	t.Helper()
	out, err := exec.Command("ffprobe", "-v", "error", "-select_streams", "V:0", "-show_entries",
		"packet=pts_time,flags:format=start_time", "-of", "json", file).Output()
	if err != nil {
		t.Fatal(err)
	}
	var p struct {
		Packets []struct {
			PTS   string `json:"pts_time"`
			Flags string `json:"flags"`
		} `json:"packets"`
		Format struct {
			Start string `json:"start_time"`
		} `json:"format"`
	}
	if err := json.Unmarshal(out, &p); err != nil {
		t.Fatal(err)
	}
	start, _ := strconv.ParseFloat(p.Format.Start, 64)
	var kf []float64
	for _, pk := range p.Packets {
		if strings.HasPrefix(pk.Flags, "K") {
			x, _ := strconv.ParseFloat(pk.PTS, 64)
			kf = append(kf, x-start)
		}
	}
	sort.Float64s(kf)
	return kf
}

func nearestTime(times []float64, x float64) float64 {
	best := times[0]
	for _, y := range times {
		if math.Abs(y-x) < math.Abs(best-x) {
			best = y
		}
	}
	return best
}

// frameGray is the frame of file at time at (seconds from its start),
// scaled to w×h by ffmpeg alone, as full-range gray pixels.
func frameGray(t *testing.T, file string, at float64, w, h int) []byte {
	t.Helper()
	// A quarter frame early: the seek then keeps the frame at `at` itself
	// whatever the rounding of the printed time.
	out, err := exec.Command("ffmpeg", "-v", "error", "-ss", strconv.FormatFloat(max(0, at-0.01), 'f', 6, 64), "-i", file,
		"-frames:v", "1", "-vf", fmt.Sprintf("scale=%d:%d:out_range=full,format=gray", w, h),
		"-f", "rawvideo", "-").Output()
	if err != nil || len(out) != w*h {
		t.Fatalf("frame at %.3f of %s: %v (%d bytes)", at, file, err, len(out))
	}
	return out
}

// tileGray cuts r out of the luma of a decoded sheet.
func tileGray(img *image.YCbCr, r image.Rectangle) []byte {
	out := make([]byte, 0, r.Dx()*r.Dy())
	for y := r.Min.Y; y < r.Max.Y; y++ {
		out = append(out, img.Y[img.YOffset(r.Min.X, y):img.YOffset(r.Max.X, y)]...)
	}
	return out
}

func meanAbsDiff(a, b []byte) float64 {
	sum := 0
	for i := range a {
		d := int(a[i]) - int(b[i])
		if d < 0 {
			d = -d
		}
		sum += d
	}
	return float64(sum) / float64(len(a))
}

// trickplayOf fetches and checks the map of file: cues contiguous from 0 to
// the duration, each interval long but the last, on the tile grid of
// their sheets, which exist and are as many as the tiles need. It returns
// the cues and the decoded sheets by URL.
func trickplayOf(t *testing.T, e *testEnv, file string, interval float64) ([]cue, map[string]*image.YCbCr) {
	t.Helper()
	base := e.videoURL(file)
	var info probe.Info
	if err := json.Unmarshal(e.mustGet(base+"/info"), &info); err != nil {
		t.Fatal(err)
	}
	if !strings.HasPrefix(info.Trickplay, "/videos/"+encodeID(file)+"/trickplay.vtt?v=") || info.TrickplayInterval != interval {
		t.Errorf("info: trickplay %q every %v s", info.Trickplay, info.TrickplayInterval)
	}
	cues := parseTrickplay(t, e.mustGet(e.url+info.Trickplay))
	if want := int(math.Ceil(info.Duration/interval - 1e-6)); len(cues) != want {
		t.Errorf("%d cues for %.3f s every %v s, want %d", len(cues), info.Duration, interval, want)
	}
	prev := 0.0
	for i, c := range cues {
		want := math.Min(prev+interval, info.Duration)
		if !near(c.start, prev, 0.0015) || !near(c.end, want, 0.0015) {
			t.Errorf("cue %d: [%.3f, %.3f), want [%.3f, %.3f)", i, c.start, c.end, prev, want)
		}
		prev = c.end
	}
	if !near(prev, info.Duration, 0.001) {
		t.Errorf("cues end at %.3f, the file at %.3f", prev, info.Duration)
	}
	v := info.Video[0]
	dw, dh := v.DisplaySize()
	sheets := map[string]*image.YCbCr{}
	for i, c := range cues {
		if c.rect.Dx() != 240 || c.rect.Dy()%2 != 0 || math.Abs(float64(c.rect.Dy())-240*float64(dh)/float64(dw)) > 2 {
			t.Fatalf("cue %d: tile %v for a %dx%d picture", i, c.rect, dw, dh)
		}
		if want := fmt.Sprintf("trickplay/sheet-%d.jpg", i/100); !strings.HasPrefix(c.url, want) {
			t.Errorf("cue %d is on %s, want %s", i, c.url, want)
		}
		k := i % 100
		if c.rect.Min != image.Pt(k%10*240, k/10*c.rect.Dy()) {
			t.Errorf("cue %d at %v, off the 10x10 grid", i, c.rect.Min)
		}
		img := sheets[c.url]
		if img == nil {
			status, b, hdr := e.get(base + "/" + c.url)
			if status != http.StatusOK || hdr.Get("Content-Type") != "image/jpeg" {
				t.Fatalf("%s: %d %s", c.url, status, hdr.Get("Content-Type"))
			}
			m, err := jpeg.Decode(bytes.NewReader(b))
			if err != nil {
				t.Fatalf("%s: %v", c.url, err)
			}
			img = m.(*image.YCbCr)
			sheets[c.url] = img
		}
		if !c.rect.In(img.Bounds()) {
			t.Errorf("cue %d: tile %v outside its %v sheet", i, c.rect, img.Bounds())
		}
	}
	last := cues[len(cues)-1].url // on the last sheet: checked above
	if status, body, hdr := e.get(base + "/trickplay/sheet-" + strconv.Itoa(len(sheets)) + ".jpg"); len(sheets) != (len(cues)+99)/100 || sheets[last] == nil {
		t.Errorf("%d sheets for %d tiles", len(sheets), len(cues))
	} else {
		wantError(t, "the sheet after the last", status, body, hdr, http.StatusNotFound)
	}
	return cues, sheets
}

// The tile of each cue is the keyframe nearest the cue's start: ffmpeg's own
// frame there, scaled to the tile's size, differs from it only by what JPEG
// loses, and differs clearly from the frame the next tile shows.
func TestTrickplayShowsTheFrames(t *testing.T) {
	cases := []struct {
		file     string
		interval time.Duration
	}{
		{"h264.mp4", 2 * time.Second},        // B-frames, keyframes every 2.083 s
		{"hevc.mkv", 2 * time.Second},        // 10-bit HEVC in Matroska
		{"vp9.webm", 2 * time.Second},        // a decoder that decodes every frame anyway
		{"longgop.mp4", 7 * time.Second},     // keyframes 25 s apart: tiles share them
		{"h264.mp4", 150 * time.Millisecond}, // 134 tiles: two sheets, several chunks
	}
	for _, c := range cases {
		t.Run(fmt.Sprintf("%s every %s", c.file, c.interval), func(t *testing.T) {
			e := newEnv(t, transcoder.Config{TrickplayInterval: c.interval}, c.file)
			checkTiles(t, e, c.file, c.interval)
		})
	}
}

// When keyframe-only decoding does not yield a keyframe of the list, the
// chunk is decoded again in full. This ffmpeg withholds the last frame of
// every keyframe-only run.
func TestTrickplayFallsBackToFullDecoding(t *testing.T) {
	real, err := exec.LookPath("ffmpeg")
	if err != nil {
		t.Skip("no ffmpeg")
	}
	dir := t.TempDir()
	runs := filepath.Join(dir, "runs")
	script := fmt.Sprintf(`#!/bin/sh
key=0
for a in "$@"; do [ "$a" = nokey ] && key=1; done
echo $key >> %q
n=$#; prev=
for a in "$@"; do
	if [ $key = 1 ] && [ "$prev" = -frames:v ]; then a=$((a-1)); fi
	set -- "$@" "$a"; prev=$a
done
shift $n
exec %q "$@"
`, runs, real)
	wrapper := filepath.Join(dir, "ffmpeg")
	if err := os.WriteFile(wrapper, []byte(script), 0o755); err != nil {
		t.Fatal(err)
	}
	e := newEnv(t, transcoder.Config{FFmpeg: wrapper, TrickplayInterval: 2 * time.Second}, "h264.mp4")
	checkTiles(t, e, "h264.mp4", 2*time.Second)
	b, _ := os.ReadFile(runs)
	if keyOnly, full := strings.Count(string(b), "1"), strings.Count(string(b), "0"); keyOnly == 0 || full != keyOnly {
		t.Errorf("%d keyframe-only runs and %d full ones, want as many of each", keyOnly, full)
	}
}

// checkTiles compares tiles of file's thumbnails with ffmpeg's own frames.
func checkTiles(t *testing.T, e *testEnv, file string, interval time.Duration) {
	t.Helper()
	// Mean absolute difference, of 255: measured at most 1.2 between a tile
	// and its frame, at least 5.9 between a tile and the next keyframe.
	const tolerance = 3.0
	cues, sheets := trickplayOf(t, e, file, interval.Seconds())
	src := filepath.Join(e.media, file)
	kf := sourceKeyframes(t, src)
	frames := map[float64][]byte{}
	frame := func(at float64, r image.Rectangle) []byte {
		if frames[at] == nil {
			frames[at] = frameGray(t, src, at, r.Dx(), r.Dy())
		}
		return frames[at]
	}
	checked, worst, closest := 0, 0.0, 255.0
	for i, cu := range cues {
		if len(cues) > 20 && i%17 != 0 && i != len(cues)-1 {
			continue // a sample is enough when there are many
		}
		shown := nearestTime(kf, cu.start)
		tile := tileGray(sheets[cu.url], cu.rect)
		d := meanAbsDiff(tile, frame(shown, cu.rect))
		worst = max(worst, d)
		if d > tolerance {
			t.Errorf("cue %d [%.3f, %.3f): tile differs from the frame at %.3f by %.1f", i, cu.start, cu.end, shown, d)
		}
		// The comparison can fail: the next keyframe shown looks different.
		if j := sort.SearchFloat64s(kf, shown+0.001); j < len(kf) {
			d := meanAbsDiff(tile, frame(kf[j], cu.rect))
			closest = min(closest, d)
			if d <= tolerance {
				t.Errorf("cue %d: tile is as close to the frame at %.3f (%.1f) as to its own at %.3f", i, kf[j], d, shown)
			}
		}
		checked++
	}
	t.Logf("%d tiles: difference to their own frame at most %.2f, to the next keyframe's at least %.2f", checked, worst, closest)
}

func TestTrickplayRoutes(t *testing.T) {
	e := newEnv(t, transcoder.Config{}, "h264.mp4")
	base := e.videoURL("h264.mp4")
	// The query goes onto every sheet URL, made safe for a cue: "-->" would end it.
	status, b, hdr := e.get(base + "/trickplay.vtt?clientId=c1&token=a-->b")
	if status != http.StatusOK || hdr.Get("Content-Type") != "text/vtt; charset=utf-8" || hdr.Get("Cache-Control") != "no-cache" {
		t.Fatalf("trickplay.vtt: %d %q %q", status, hdr.Get("Content-Type"), hdr.Get("Cache-Control"))
	}
	cues := parseTrickplay(t, b)
	for i, c := range cues {
		if !strings.HasPrefix(c.url, "trickplay/sheet-0.jpg?clientId=c1&token=a--%3Eb&v=") {
			t.Errorf("cue %d: sheet URL %q", i, c.url)
		}
	}
	status, b, hdr = e.get(base + "/" + cues[0].url)
	if status != http.StatusOK || hdr.Get("Content-Type") != "image/jpeg" {
		t.Fatalf("%s: %d %q", cues[0].url, status, hdr.Get("Content-Type"))
	}
	if _, err := jpeg.Decode(bytes.NewReader(b)); err != nil {
		t.Errorf("%s: %v", cues[0].url, err)
	}
	for name, want := range map[string]int{
		"sheet-1.jpg": 404, "sheet-x.jpg": 400, "sheet-0.png": 400, "sheet--1.jpg": 400,
		"sheet-9999999.jpg": 400, "..%2Fsheet-0.jpg": 400,
	} {
		status, body, hdr := e.get(base + "/trickplay/" + name)
		wantError(t, name, status, body, hdr, want)
	}

	// Turned off: /info does not offer it and the routes say so.
	off := newEnv(t, transcoder.Config{TrickplayInterval: -1}, "h264.mp4")
	var info map[string]any
	if err := json.Unmarshal(off.mustGet(off.videoURL("h264.mp4")+"/info"), &info); err != nil {
		t.Fatal(err)
	}
	if _, ok := info["trickplay"]; ok {
		t.Errorf("info offers thumbnails that are turned off: %v", info["trickplay"])
	}
	for _, p := range []string{"/trickplay.vtt", "/trickplay/sheet-0.jpg"} {
		status, body, hdr := off.get(off.videoURL("h264.mp4") + p)
		wantError(t, "turned off: "+p, status, body, hdr, http.StatusNotFound)
	}
}

// Viewers who open a film together get one generation, and it never runs
// more ffmpeg children than it may.
func TestTrickplayMadeOnce(t *testing.T) {
	e := newEnv(t, transcoder.Config{}, "long.mp4")
	base := e.videoURL("long.mp4")
	e.mustGet(base + "/master.m3u8") // probe and keyframes first: the race is on the thumbnails
	stop := make(chan struct{})
	sampled := make(chan int)
	go func() {
		peak := 0
		for {
			select {
			case <-stop:
				sampled <- peak
				return
			case <-time.After(5 * time.Millisecond):
				peak = max(peak, len(ffmpegChildren()))
			}
		}
	}()
	var wg sync.WaitGroup
	bodies := make([][]byte, 6)
	for i := range bodies {
		wg.Go(func() {
			url := base + []string{"/trickplay.vtt", "/trickplay/sheet-1.jpg"}[i%2]
			resp, err := http.Get(url)
			if err != nil {
				t.Error(err)
				return
			}
			defer resp.Body.Close()
			bodies[i], _ = io.ReadAll(resp.Body)
			if resp.StatusCode != http.StatusOK {
				t.Errorf("%s: %d %s", url, resp.StatusCode, bodies[i])
			}
		})
	}
	wg.Wait()
	close(stop)
	peak := <-sampled
	if n := e.metricValue("hlsd_trickplay_seconds", nil); n != 1 {
		t.Errorf("%v generations for %d concurrent first requests, want 1", n, len(bodies))
	}
	if limit := min(runtime.NumCPU(), 4); peak < 1 || peak > limit {
		t.Errorf("at most %d ffmpeg children at once, want 1 to %d", peak, limit)
	}
	for i := 2; i < len(bodies); i++ {
		if !bytes.Equal(bodies[i], bodies[i%2]) {
			t.Errorf("request %d got other bytes than request %d", i, i%2)
		}
	}
	if cues := parseTrickplay(t, bodies[0]); len(cues) != 193 || !strings.HasPrefix(cues[192].url, "trickplay/sheet-1.jpg") {
		t.Errorf("%d cues for 32 minutes every 10 s, the last on %q", len(cues), cues[len(cues)-1].url)
	}
}

// slowFFmpeg is an ffmpeg that reads its input at 4x real time: a
// generation lasts long enough to be interrupted.
func slowFFmpeg(t *testing.T) string {
	t.Helper()
	real, err := exec.LookPath("ffmpeg")
	if err != nil {
		t.Skip("no ffmpeg")
	}
	wrapper := filepath.Join(t.TempDir(), "ffmpeg")
	if err := os.WriteFile(wrapper, []byte(fmt.Sprintf("#!/bin/sh\nexec %q -readrate 4 \"$@\"\n", real)), 0o755); err != nil {
		t.Fatal(err)
	}
	return wrapper
}

// A generation nobody waits for any more is stopped, as is one running when
// the server stops; neither leaves an ffmpeg or a partial directory, and
// the thumbnails are made afterwards all the same.
func TestTrickplayInterrupted(t *testing.T) {
	slow := transcoder.Config{FFmpeg: slowFFmpeg(t), TrickplayInterval: 2 * time.Second}
	e := newEnv(t, slow, "h264.mp4")
	vtt := e.videoURL("h264.mp4") + "/trickplay.vtt"
	e.mustGet(e.videoURL("h264.mp4") + "/master.m3u8")
	partial := func() []string {
		m, _ := filepath.Glob(filepath.Join(e.cache, "trickplay", ".tmp-*"))
		return m
	}
	request := func(ctx context.Context) chan int {
		got := make(chan int, 1)
		go func() {
			req, _ := http.NewRequestWithContext(ctx, http.MethodGet, vtt, nil)
			resp, err := http.DefaultClient.Do(req)
			if err != nil {
				got <- 0
				return
			}
			resp.Body.Close()
			got <- resp.StatusCode
		}()
		eventually(t, 10*time.Second, "thumbnail children", func() bool { return len(ffmpegChildren()) > 0 })
		return got
	}

	ctx, cancel := context.WithCancel(context.Background())
	got := request(ctx)
	cancel()
	<-got
	eventually(t, 5*time.Second, "no ffmpeg once the request left", func() bool { return len(ffmpegChildren()) == 0 })
	eventually(t, 5*time.Second, "the work directory removed", func() bool { return len(partial()) == 0 })
	if n := e.metricValue("hlsd_trickplay_seconds", nil); n != 0 {
		t.Errorf("%v generations completed, want none", n)
	}

	// A new request starts afresh rather than inherit the abandoned run's end.
	got = request(context.Background())
	e.tc.Close()
	if kids := ffmpegChildren(); len(kids) > 0 {
		t.Errorf("ffmpeg left after Close: %v", kids)
	}
	if status := <-got; status != http.StatusServiceUnavailable {
		t.Errorf("request during shutdown: %d, want 503", status)
	}
	e = e.restart(transcoder.Config{TrickplayInterval: 2 * time.Second})
	if len(partial()) != 0 {
		t.Errorf("work directories left after a restart: %v", partial())
	}
	if cues := parseTrickplay(t, e.mustGet(e.videoURL("h264.mp4")+"/trickplay.vtt")); len(cues) != 10 {
		t.Errorf("%d cues after the restart, want 10", len(cues))
	}
}
