package server

import (
	"encoding/json"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/hlsd/hlsd/transcoder"
	"github.com/hlsd/hlsd/transcoder/encode"
	"github.com/hlsd/hlsd/transcoder/probe"
)

// noGPU skips tests that rely on hardware encoding failing.
func noGPU(t *testing.T) {
	t.Helper()
	for _, dev := range []string{"/dev/nvidia0", "/dev/dri"} {
		if _, err := os.Stat(dev); err == nil {
			t.Skipf("%s exists: hardware encoding may work here", dev)
		}
	}
}

// checkRung fetches every segment of a rung in order and checks each starts
// with an IDR at its playlist time, then decodes the whole rung in one go
// (init plus every segment), which must give no decoder error.
func checkRung(t *testing.T, e *testEnv, rung string) {
	t.Helper()
	p := parseMediaPlaylist(t, e.mustGet(rung+"index.m3u8"))
	init := e.mustGet(rung + "init.mp4")
	whole := append([]byte{}, init...)
	for i, start := range p.starts {
		seg := e.mustGet(rung + "segment-" + strconv.Itoa(i) + ".m4s")
		if err := wholeSegment(seg); err != nil {
			t.Fatalf("%s segment %d: %v", rung, i, err)
		}
		flags, _, pict := probeSegment(t, init, seg)
		if f := readFragment(t, init, seg); !strings.Contains(flags, "K") || pict != "I" || !near(f.start(), start, 0.05) {
			t.Errorf("%s segment %d: flags %q, picture %q at %.3f; want a keyframe at %.3f", rung, i, flags, pict, f.start(), start)
		}
		whole = append(whole, seg...)
	}
	path := filepath.Join(t.TempDir(), "rung.mp4")
	if err := os.WriteFile(path, whole, 0o644); err != nil {
		t.Fatal(err)
	}
	out, err := exec.Command("ffmpeg", "-v", "error", "-i", path, "-f", "null", "-").CombinedOutput()
	if err != nil || len(out) > 0 {
		t.Errorf("%s does not decode cleanly: %v %s", rung, err, out)
	}
}

// TestHWFallback asks for NVENC on a machine without a GPU: every hardware
// run fails, its segments come from the software fallback and are correct,
// each failure is counted, and after three the accelerator is switched off
// so later runs go straight to software.
func TestHWFallback(t *testing.T) {
	noGPU(t)
	e := newEnv(t, transcoder.Config{HWAccel: encode.AccelNVIDIA}, "h264-1080.mp4")
	base := e.videoURL("h264-1080.mp4")
	e.mustGet(base + "/master.m3u8")
	if v := e.metricValue("hlsd_hw_enabled", map[string]string{"accel": "nvidia"}); v != 1 {
		t.Fatalf("hlsd_hw_enabled = %v before any run, want 1", v)
	}
	checkRung(t, e, base+"/video/0/240p/")
	fallbacks := func() float64 {
		return e.metricValue("hlsd_hw_fallbacks_total", map[string]string{"accel": "nvidia"})
	}
	if n := fallbacks(); n != 1 {
		t.Errorf("%v fallbacks after one rung, want 1 (the variant then stays in software)", n)
	}
	for _, q := range []string{"360p", "480p"} {
		e.mustGet(base + "/video/0/" + q + "/index.m3u8")
		if err := wholeSegment(e.mustGet(base + "/video/0/" + q + "/segment-0.m4s")); err != nil {
			t.Errorf("%s segment 0: %v", q, err)
		}
	}
	if n := fallbacks(); n != 3 {
		t.Errorf("%v fallbacks after three rungs, want 3", n)
	}
	if v := e.metricValue("hlsd_hw_enabled", map[string]string{"accel": "nvidia"}); v != 0 {
		t.Errorf("hlsd_hw_enabled = %v after 3 failures in a row, want 0", v)
	}
	hwRuns := e.metricValue("hlsd_encoder_starts_total", map[string]string{"class": "hardware"})
	e.mustGet(base + "/video/0/720p/index.m3u8")
	if err := wholeSegment(e.mustGet(base + "/video/0/720p/segment-0.m4s")); err != nil {
		t.Errorf("720p segment 0: %v", err)
	}
	if n := e.metricValue("hlsd_encoder_starts_total", map[string]string{"class": "hardware"}); n != hwRuns || fallbacks() != 3 {
		t.Errorf("hardware runs went from %v to %v, fallbacks to %v, after the accelerator was disabled", hwRuns, n, fallbacks())
	}
	if n := e.metricValue("hlsd_encoder_starts_total", map[string]string{"reason": "fallback"}); n < 1 {
		t.Errorf("no encoder run started for reason fallback")
	}
}

// TestHWStall: a hardware encoder that hangs without writing anything is
// killed after HWStallTimeout and its segments come from software. The
// hang is a stand-in ffmpeg that sleeps when asked for NVENC; the software
// runs are the real ffmpeg.
func TestHWStall(t *testing.T) {
	noGPU(t)
	real, err := exec.LookPath("ffmpeg")
	if err != nil {
		t.Skip("no ffmpeg")
	}
	wrapper := filepath.Join(t.TempDir(), "ffmpeg")
	script := fmt.Sprintf("#!/bin/sh\ncase \"$*\" in *h264_nvenc*) exec sleep 600;; esac\nexec %s \"$@\"\n", real)
	if err := os.WriteFile(wrapper, []byte(script), 0o755); err != nil {
		t.Fatal(err)
	}
	e := newEnv(t, transcoder.Config{FFmpeg: wrapper, HWAccel: encode.AccelNVIDIA, HWStallTimeout: time.Second}, "h264.mp4")
	rung := e.videoURL("h264.mp4") + "/video/0/240p/"
	e.mustGet(rung + "index.m3u8")
	began := time.Now()
	seg := e.mustGet(rung + "segment-1.m4s")
	if err := wholeSegment(seg); err != nil {
		t.Fatal(err)
	}
	if d := time.Since(began); d < time.Second {
		t.Errorf("segment served after %v, before the stall timeout: was the hardware run used?", d)
	}
	if n := e.metricValue("hlsd_hw_fallbacks_total", nil); n != 1 {
		t.Errorf("%v fallbacks, want 1", n)
	}
	eventually(t, 10*time.Second, "the stalled encoder killed", func() bool {
		out, _ := exec.Command("pgrep", "-f", "sleep 600").Output()
		return len(strings.TrimSpace(string(out))) == 0
	})
}

// TestMixedEncoders: segments of one rung made by differently configured
// encoders (here x264 presets across a restart; in production a GPU and its
// software fallback) decode as one stream with the first run's init.mp4,
// because every segment carries its own parameter sets.
func TestMixedEncoders(t *testing.T) {
	e := newEnv(t, transcoder.Config{Preset: "ultrafast"}, "h264.mp4")
	rung := e.videoURL("h264.mp4") + "/video/0/360p/"
	e.mustGet(rung + "index.m3u8")
	e.mustGet(rung + "segment-0.m4s")
	e = e.restart(transcoder.Config{Preset: "veryfast"}) // CABAC, where ultrafast has CAVLC
	rung = e.videoURL("h264.mp4") + "/video/0/360p/"
	for _, f := range e.segmentFiles("video-0-360p") {
		if !strings.HasSuffix(f, "segment-0.m4s") {
			os.Remove(f)
		}
	}
	checkRung(t, e, rung)
}

// TestHDRToSDR: a 10-bit PQ (HDR10) source comes out of a rung as 8-bit
// 4:2:0 BT.709, tone mapped, and decodes cleanly.
func TestHDRToSDR(t *testing.T) {
	media := t.TempDir()
	out, err := exec.Command("ffmpeg", "-v", "error", "-f", "lavfi", "-i", "testsrc2=size=640x360:rate=24", "-t", "6",
		"-c:v", "libx265", "-preset", "ultrafast", "-pix_fmt", "yuv420p10le",
		"-x265-params", "log-level=error:keyint=48:min-keyint=48:colorprim=bt2020:transfer=smpte2084:colormatrix=bt2020nc",
		"-color_primaries", "bt2020", "-color_trc", "smpte2084", "-colorspace", "bt2020nc",
		filepath.Join(media, "hdr.mkv")).CombinedOutput()
	if err != nil {
		t.Fatalf("making an HDR clip: %v %s", err, out)
	}
	e := newEnvDirs(t, transcoder.Config{}, media, t.TempDir())
	base := e.videoURL("hdr.mkv")
	var info probe.Info
	if err := json.Unmarshal(e.mustGet(base+"/info"), &info); err != nil || !info.Video[0].HDR {
		t.Fatalf("the clip is not seen as HDR: %v %+v", err, info.Video)
	}
	rung := base + "/video/0/240p/"
	checkRung(t, e, rung)
	path := filepath.Join(t.TempDir(), "seg.mp4")
	if err := os.WriteFile(path, append(e.mustGet(rung+"init.mp4"), e.mustGet(rung+"segment-0.m4s")...), 0o644); err != nil {
		t.Fatal(err)
	}
	got, err := exec.Command("ffprobe", "-v", "error", "-select_streams", "v:0",
		"-show_entries", "stream=pix_fmt,color_transfer,color_primaries", "-of", "csv=p=0", path).Output()
	if err != nil {
		t.Fatal(err)
	}
	if s := strings.TrimSpace(string(got)); s != "yuv420p,bt709,bt709" {
		t.Errorf("rung stream is %q, want yuv420p,bt709,bt709 (8-bit SDR)", s)
	}
}
