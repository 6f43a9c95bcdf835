package testmedia

import (
	"context"
	"encoding/json"
	"math"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"
)

type probeStream struct {
	Index         int               `json:"index"`
	CodecType     string            `json:"codec_type"`
	CodecName     string            `json:"codec_name"`
	Profile       string            `json:"profile"`
	PixFmt        string            `json:"pix_fmt"`
	Width         int               `json:"width"`
	Height        int               `json:"height"`
	RFrameRate    string            `json:"r_frame_rate"`
	HasBFrames    int               `json:"has_b_frames"`
	Channels      int               `json:"channels"`
	SampleRate    string            `json:"sample_rate"`
	StartTime     string            `json:"start_time"`
	Tags          map[string]string `json:"tags"`
	Disposition   map[string]int    `json:"disposition"`
	FieldOrder    string            `json:"field_order"`
	ColorTransfer string            `json:"color_transfer"`
}

type probeResult struct {
	Streams []probeStream `json:"streams"`
	Format  struct {
		Duration  string `json:"duration"`
		StartTime string `json:"start_time"`
	} `json:"format"`
}

func needFFmpeg(t *testing.T) {
	t.Helper()
	for _, bin := range []string{"ffmpeg", "ffprobe"} {
		if _, err := exec.LookPath(bin); err != nil {
			// CI installs ffmpeg through `make test`; there a missing binary is a failure, not a reason to pass.
			if os.Getenv("CI") != "" {
				t.Fatalf("%s not found: %v", bin, err)
			}
			t.Skipf("%s not found (run `make deps`): %v", bin, err)
		}
	}
}

func probe(t *testing.T, path string) probeResult {
	t.Helper()
	out, err := exec.Command("ffprobe", "-v", "error", "-show_streams", "-show_format", "-of", "json", path).Output()
	if err != nil {
		t.Fatalf("ffprobe %s: %v", path, err)
	}
	var r probeResult
	if err := json.Unmarshal(out, &r); err != nil {
		t.Fatalf("ffprobe json: %v", err)
	}
	return r
}

func (r probeResult) of(kind string) []probeStream {
	var out []probeStream
	for _, s := range r.Streams {
		if s.CodecType == kind {
			out = append(out, s)
		}
	}
	return out
}

func seconds(t *testing.T, s string) float64 {
	t.Helper()
	f, err := strconv.ParseFloat(s, 64)
	if err != nil {
		t.Fatalf("not a number of seconds: %q", s)
	}
	return f
}

// keyframeTimes reads video packet times flagged as keyframes, the way the
// server's keyframe scan does.
func keyframeTimes(t *testing.T, path string) []float64 {
	t.Helper()
	out, err := exec.Command("ffprobe", "-v", "error", "-select_streams", "v:0",
		"-show_entries", "packet=pts_time,flags", "-of", "csv=print_section=0", path).Output()
	if err != nil {
		t.Fatalf("ffprobe packets: %v", err)
	}
	var times []float64
	for _, line := range strings.Split(strings.TrimSpace(string(out)), "\n") {
		pts, flags, ok := strings.Cut(line, ",")
		if ok && strings.Contains(flags, "K") {
			times = append(times, seconds(t, pts))
		}
	}
	return times
}

type want struct {
	vcodec, profile, pixfmt string
	width, height           int
	fps                     string
	duration                float64
	audio                   []wantAudio
}

type wantAudio struct {
	codec    string
	channels int
	lang     string
}

var short = map[string]want{
	"hevc-1080.mkv": {vcodec: "hevc", profile: "Main 10", pixfmt: "yuv420p10le", width: 1920, height: 1080, fps: "24/1", duration: 60,
		audio: []wantAudio{{"ac3", 6, "eng"}, {"aac", 2, "fra"}}},
	"gop20.mp4": {vcodec: "h264", pixfmt: "yuv420p", width: 640, height: 360, fps: "24/1", duration: 80,
		audio: []wantAudio{{"aac", 2, ""}}},
	"tv-1080i.ts": {vcodec: "h264", pixfmt: "yuv420p", width: 1920, height: 1080, fps: "25/1", duration: 30,
		audio: []wantAudio{{"mp2", 1, ""}}},
	"h264.mp4": {vcodec: "h264", profile: "High", pixfmt: "yuv420p", width: 640, height: 360, fps: "24/1", duration: 20,
		audio: []wantAudio{{"aac", 2, ""}}},
	"hevc.mkv": {vcodec: "hevc", profile: "Main 10", pixfmt: "yuv420p10le", width: 640, height: 360, fps: "30/1", duration: 20,
		audio: []wantAudio{{"ac3", 6, "eng"}, {"aac", 2, "fra"}}},
	"vp9.webm": {vcodec: "vp9", pixfmt: "yuv420p", width: 640, height: 360, fps: "30/1", duration: 20,
		audio: []wantAudio{{"opus", 2, ""}}},
	"longgop.mp4": {vcodec: "h264", pixfmt: "yuv420p", width: 640, height: 360, fps: "24/1", duration: 40,
		audio: []wantAudio{{"aac", 2, ""}}},
	"twoaudio.mkv": {vcodec: "h264", pixfmt: "yuv420p", width: 640, height: 360, fps: "25/1", duration: 20,
		audio: []wantAudio{{"aac", 2, "eng"}, {"aac", 1, "fra"}}},
	"h264-1080.mp4": {vcodec: "h264", pixfmt: "yuv420p", width: 1920, height: 1080, fps: "24/1", duration: 20,
		audio: []wantAudio{{"aac", 2, ""}}},
	"h264-720.mp4": {vcodec: "h264", profile: "High", pixfmt: "yuv420p", width: 1280, height: 720, fps: "30/1", duration: 90,
		audio: []wantAudio{{"aac", 2, ""}}},
	"hdr-pq.mkv": {vcodec: "hevc", profile: "Main 10", pixfmt: "yuv420p10le", width: 640, height: 360, fps: "24/1", duration: 10,
		audio: []wantAudio{{"aac", 6, ""}}},
}

func TestNamesHaveRecipes(t *testing.T) {
	names := Names()
	if len(names) != len(recipes) {
		t.Fatalf("Names() has %d entries, recipes %d", len(names), len(recipes))
	}
	for _, n := range names {
		if _, ok := recipes[n]; !ok {
			t.Errorf("%s listed but has no recipe", n)
		}
		if _, ok := short[n]; !ok && n != "long.mp4" {
			t.Errorf("%s is not checked by this test", n)
		}
	}
}

func TestUnknownClip(t *testing.T) {
	if _, err := Make(context.Background(), t.TempDir(), "nope.mp4"); err == nil {
		t.Fatal("want an error for an unknown clip")
	}
}

func TestCacheDirEnv(t *testing.T) {
	t.Setenv("HLSD_TESTMEDIA", "/somewhere")
	if got := CacheDir(); got != "/somewhere" {
		t.Fatalf("CacheDir() = %q", got)
	}
}

func TestShortClips(t *testing.T) {
	needFFmpeg(t)
	dir := CacheDir()
	ctx := context.Background()
	for _, name := range Names() {
		w, ok := short[name]
		if !ok {
			continue
		}
		t.Run(name, func(t *testing.T) {
			start := time.Now()
			path, err := Make(ctx, dir, name)
			if err != nil {
				t.Fatal(err)
			}
			t.Logf("%s ready in %v", name, time.Since(start).Round(time.Millisecond))
			if filepath.Base(path) != name {
				t.Fatalf("path %s", path)
			}
			r := probe(t, path)

			if d := seconds(t, r.Format.Duration); math.Abs(d-w.duration) > 0.1 {
				t.Errorf("duration %.3f, want %.0f", d, w.duration)
			}
			vs := r.of("video")
			if len(vs) != 1 {
				t.Fatalf("%d video streams", len(vs))
			}
			v := vs[0]
			if v.CodecName != w.vcodec || v.Width != w.width || v.Height != w.height || v.RFrameRate != w.fps || v.PixFmt != w.pixfmt {
				t.Errorf("video %s %dx%d %s %s, want %s %dx%d %s %s",
					v.CodecName, v.Width, v.Height, v.RFrameRate, v.PixFmt, w.vcodec, w.width, w.height, w.fps, w.pixfmt)
			}
			if w.profile != "" && v.Profile != w.profile {
				t.Errorf("profile %q, want %q", v.Profile, w.profile)
			}
			// Audio priming may push the video a few ms late in mkv/webm; more would mean a broken
			// recipe. MPEG-TS starts where its muxer's delay puts it, 1.4 s.
			if st := seconds(t, v.StartTime) - seconds(t, r.Format.StartTime); st < 0 || st > 0.05 {
				t.Errorf("video start_time %.3f", st)
			}
			as := r.of("audio")
			if len(as) != len(w.audio) {
				t.Fatalf("%d audio streams, want %d", len(as), len(w.audio))
			}
			for i, wa := range w.audio {
				a := as[i]
				if a.CodecName != wa.codec || a.Channels != wa.channels || a.SampleRate != "48000" {
					t.Errorf("audio %d: %s %dch %sHz, want %s %dch 48000Hz", i, a.CodecName, a.Channels, a.SampleRate, wa.codec, wa.channels)
				}
				if wa.lang != "" && a.Tags["language"] != wa.lang {
					t.Errorf("audio %d language %q, want %q", i, a.Tags["language"], wa.lang)
				}
			}
			checkSpecifics(t, name, path, r)

			// A second call must reuse the file, not regenerate it.
			before, _ := os.Stat(path)
			if _, err := Make(ctx, dir, name); err != nil {
				t.Fatal(err)
			}
			after, _ := os.Stat(path)
			if !after.ModTime().Equal(before.ModTime()) {
				t.Error("second Make regenerated the clip")
			}
		})
	}
}

// checkSpecifics asserts what each clip exists to exercise.
func checkSpecifics(t *testing.T, name, path string, r probeResult) {
	switch name {
	case "h264.mp4":
		if r.of("video")[0].HasBFrames == 0 {
			t.Error("no B-frames")
		}
		kf := keyframeTimes(t, path)
		if len(kf) != 10 || math.Abs(kf[1]-50.0/24) > 0.01 {
			t.Errorf("keyframes %v, want 10 at 50/24 s spacing", kf)
		}
	case "hevc.mkv":
		kf := keyframeTimes(t, path)
		if len(kf) != 10 || math.Abs(kf[1]-kf[0]-2) > 0.01 {
			t.Errorf("keyframes %v, want 10 at 2 s spacing", kf)
		}
	case "gop20.mp4":
		kf := keyframeTimes(t, path)
		if len(kf) != 4 || math.Abs(kf[1]-20) > 0.01 {
			t.Errorf("keyframes %v, want 4 at 20 s spacing", kf)
		}
	case "tv-1080i.ts":
		if fo := r.of("video")[0].FieldOrder; fo != "tt" {
			t.Errorf("field order %q, want tt (interlaced, top field first)", fo)
		}
	case "hdr-pq.mkv":
		if v := r.of("video")[0]; v.ColorTransfer != "smpte2084" {
			t.Errorf("transfer %q, want smpte2084 (PQ)", v.ColorTransfer)
		}
		if l, ok := r.of("audio")[0].Tags["language"]; ok {
			t.Errorf("audio tagged with language %q, want none", l)
		}
	case "longgop.mp4":
		kf := keyframeTimes(t, path)
		if len(kf) != 2 || math.Abs(kf[1]-25) > 0.01 {
			t.Errorf("keyframes %v, want 0 and 25", kf)
		}
	case "twoaudio.mkv":
		as := r.of("audio")
		if as[0].Tags["title"] != "English" || as[1].Tags["title"] != "Français" {
			t.Errorf("titles %q, %q", as[0].Tags["title"], as[1].Tags["title"])
		}
		if as[0].Disposition["default"] != 1 || as[1].Disposition["default"] != 0 {
			t.Errorf("default dispositions %d, %d, want 1, 0", as[0].Disposition["default"], as[1].Disposition["default"])
		}
	}
}

func TestLongClip(t *testing.T) {
	if testing.Short() || os.Getenv("HLSD_LONG") != "1" {
		t.Skip("set HLSD_LONG=1 (and not -short) to build and check the 32-minute clip")
	}
	needFFmpeg(t)
	start := time.Now()
	path, err := Make(context.Background(), CacheDir(), "long.mp4")
	if err != nil {
		t.Fatal(err)
	}
	t.Logf("long.mp4 ready in %v", time.Since(start).Round(time.Millisecond))
	r := probe(t, path)
	if d := seconds(t, r.Format.Duration); math.Abs(d-1920) > 2 {
		t.Errorf("duration %.3f, want ~1920", d)
	}
	if v := r.of("video"); len(v) != 1 || v[0].Width != 1920 || v[0].Height != 1080 {
		t.Errorf("video streams %+v", v)
	}
	if len(r.of("audio")) != 1 {
		t.Errorf("want one audio stream")
	}
	// 32 copies of a minute with a keyframe every 4 s; each loop must
	// continue the timeline rather than restart it.
	kf := keyframeTimes(t, path)
	if len(kf) != 32*15 {
		t.Errorf("%d keyframes, want %d", len(kf), 32*15)
	}
	for i := 1; i < len(kf); i++ {
		if kf[i] <= kf[i-1] {
			t.Fatalf("keyframe %d at %.3f does not follow %.3f", i, kf[i], kf[i-1])
		}
	}
	if last := kf[len(kf)-1]; last < 1910 {
		t.Errorf("last keyframe at %.3f, want > 1910", last)
	}
}
