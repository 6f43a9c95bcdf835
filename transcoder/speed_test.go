package transcoder

import (
	"context"
	"regexp"
	"slices"
	"testing"
	"time"

	"github.com/hlsd/hlsd/transcoder/encode"
	"github.com/hlsd/hlsd/transcoder/probe"
)

// variantNames lists the NAMEs of a master's variants, in order, for the
// first audio group (a file with surround sound lists each variant once
// per group).
func variantNames(master []byte) []string {
	var names []string
	group := ""
	for _, m := range regexp.MustCompile(`(?m)^#EXT-X-STREAM-INF:.*AUDIO="([^"]+)".*NAME="([^"]+)"`).FindAllSubmatch(master, -1) {
		if group == "" {
			group = string(m[1])
		}
		if string(m[1]) == group {
			names = append(names, string(m[2]))
		}
	}
	return names
}

// setSpeed makes the estimate of rung for v exactly speed times real time.
func (t *Transcoder) setSpeed(v probe.VideoStream, rung string, speed float64) {
	t.speeds.Set(encode.SpeedKey(v, rung, encode.Profile{Accel: encode.AccelNone, Preset: t.cfg.Preset}), speed*v.FPS)
}

// The master advertises only the rungs made fast enough under the current
// load, starts players on the best one made at startSpeed, and leaves the
// others requestable.
func TestMasterLeavesOutSlowRungs(t *testing.T) {
	tc := newTestTranscoder(t, Config{MaxEncoders: 2}, "hevc.mkv", "long.mp4")
	defer tc.Close()
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	m, err := tc.open(ctx, "hevc.mkv")
	if err != nil {
		t.Fatal(err)
	}
	v := m.info.Video[0]
	m.release()

	master := func() []string {
		t.Helper()
		b, err := tc.Master(ctx, "hevc.mkv", "", Client{})
		if err != nil {
			t.Fatal(err)
		}
		return variantNames(b)
	}
	tc.setSpeed(v, "360p", 0.9)
	tc.setSpeed(v, "240p", 4)
	if got, want := master(), []string{"240p", "original"}; !slices.Equal(got, want) {
		t.Errorf("360p made at 0.9x: variants %v, want %v", got, want)
	}
	if _, err := tc.MediaPlaylist(ctx, "hevc.mkv", encode.Rendition{Kind: "video", Quality: "360p"}, ""); err != nil {
		t.Errorf("a rung left out of the master must stay requestable: %v", err)
	}

	tc.setSpeed(v, "360p", 4)
	tc.setSpeed(v, "240p", 2)
	if got, want := master(), []string{"360p", "original", "240p"}; !slices.Equal(got, want) {
		t.Errorf("360p at 4x, 240p at 2x: variants %v, want %v", got, want)
	}

	// Another re-encode running halves what the next head gets: 240p at
	// 2x alone is 1x beside it, too slow; 360p (2x) still plays.
	go func() {
		if f, err := tc.Segment(ctx, "long.mp4", encode.Rendition{Kind: "video", Quality: "720p"}, 0, "other", true); err == nil {
			f.Close()
		}
	}()
	deadline := time.Now().Add(30 * time.Second)
	for tc.sched.encoders(nil) == 0 {
		if time.Now().After(deadline) {
			t.Fatal("the other re-encode never started")
		}
		time.Sleep(10 * time.Millisecond)
	}
	if got, want := master(), []string{"360p", "original"}; !slices.Equal(got, want) {
		t.Errorf("beside another re-encode: variants %v, want %v", got, want)
	}
}

// A head measures its own speed from ffmpeg's progress reports, and the
// estimate survives a restart.
func TestHeadMeasuresItsSpeed(t *testing.T) {
	tc := newTestTranscoder(t, Config{}, "long.mp4")
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	f, err := tc.Segment(ctx, "long.mp4", encode.Rendition{Kind: "video", Quality: "720p"}, 0, "viewer", true)
	if err != nil {
		t.Fatal(err)
	}
	f.Close()
	m, err := tc.open(ctx, "long.mp4")
	if err != nil {
		t.Fatal(err)
	}
	v := m.info.Video[0]
	m.release()
	rung, _ := encode.RungByName("720p")
	var speed float64
	for deadline := time.Now().Add(60 * time.Second); ; time.Sleep(50 * time.Millisecond) {
		var ok bool
		if speed, ok = tc.speeds.RungSpeed(v, rung, encode.Profile{Accel: encode.AccelNone, Preset: tc.cfg.Preset}); ok {
			break
		}
		if time.Now().After(deadline) {
			t.Fatal("no speed measured after a minute of encoding")
		}
	}
	// 1080p H.264 to 720p with veryfast: a few times real time on two
	// cores, far from 0 and from a copy's hundreds.
	if speed < 0.3 || speed > 50 {
		t.Errorf("measured %.2fx real time for 720p from 1080p", speed)
	}
	t.Logf("720p from 1080p H.264: %.2fx real time", speed)
	cache := tc.cfg.CacheDir
	tc.Close()
	again := New(Config{Library: tc.cfg.Library, CacheDir: cache})
	if err := again.Initialize(); err != nil {
		t.Fatal(err)
	}
	defer again.Close()
	if got, ok := again.speeds.RungSpeed(v, rung, encode.Profile{Accel: encode.AccelNone, Preset: again.cfg.Preset}); !ok || got != speed {
		t.Errorf("after a restart: %.2fx (known %v), want %.2fx", got, ok, speed)
	}
}

// A master for a kind of file never measured calibrates it once the
// machine is idle, and every rung gets an estimate.
func TestCalibration(t *testing.T) {
	tc := newTestTranscoder(t, Config{}, "h264.mp4")
	defer tc.Close()
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	b, err := tc.Master(ctx, "h264.mp4", "", Client{})
	if err != nil {
		t.Fatal(err)
	}
	if names := variantNames(b); len(names) != 2 {
		// original (plain H.264, listed first) and 240p: with nothing
		// measured, every rung is advertised.
		t.Errorf("unmeasured: variants %v", names)
	}
	m, err := tc.open(ctx, "h264.mp4")
	if err != nil {
		t.Fatal(err)
	}
	v := m.info.Video[0]
	m.release()
	p := encode.Profile{Accel: encode.AccelNone, Preset: tc.cfg.Preset}
	for _, r := range encode.RungsFor(v) {
		for deadline := time.Now().Add(45 * time.Second); ; time.Sleep(50 * time.Millisecond) {
			if fps, ok := tc.speeds.Get(encode.SpeedKey(v, r.Name, p)); ok {
				t.Logf("%s: %.1fx real time", r.Name, fps/v.FPS)
				if fps/v.FPS < 0.5 {
					t.Errorf("%s calibrated at %.2fx real time from a 360p source", r.Name, fps/v.FPS)
				}
				break
			}
			if time.Now().After(deadline) {
				t.Fatalf("%s was not calibrated", r.Name)
			}
		}
	}
}
