package transcoder

import (
	"bufio"
	"bytes"
	"context"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/hlsd/hlsd/transcoder/encode"
	"github.com/hlsd/hlsd/transcoder/testmedia"
)

// TestOriginalCodecs: the CODECS of every `original` is what GPAC's
// mp4box.js reads from the sample entry of hlsd's own init segment for it
// (web/e2e/codecs.mjs), for each test clip with a copyable video stream,
// plus an HEVC stream from MPEG-TS (hvcC built from parameter sets) and an
// AV1 one when ffmpeg has an AV1 encoder. The reference is not ffmpeg's
// HLS muxer: ffmpeg 5.1's writes no CODECS for these streams.
func TestOriginalCodecs(t *testing.T) {
	e2e, _ := filepath.Abs(filepath.Join("..", "web", "e2e"))
	if _, err := exec.LookPath("node"); err != nil {
		t.Skip("node is not installed: mp4box.js is the reference (make e2e-deps)")
	}
	if _, err := os.Stat(filepath.Join(e2e, "node_modules", "mp4box")); err != nil {
		t.Skip("mp4box.js is not installed: `npm ci` in web/e2e (make e2e-deps)")
	}
	if _, err := exec.LookPath("ffmpeg"); err != nil {
		t.Skip("ffmpeg not installed")
	}
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
	defer cancel()
	media := t.TempDir()
	clips := []string{"h264.mp4", "h264-720.mp4", "h264-1080.mp4", "gop20.mp4", "longgop.mp4",
		"hevc.mkv", "hevc-1080.mkv", "hdr-pq.mkv", "vp9.webm", "tv-1080i.ts", "twoaudio.mkv"}
	for _, c := range clips {
		src, err := testmedia.Make(ctx, testmedia.CacheDir(), c)
		if err != nil {
			t.Fatal(err)
		}
		if err := os.Link(src, filepath.Join(media, c)); err != nil {
			t.Fatal(err)
		}
	}
	ffmpeg := func(out string, args ...string) bool {
		cmd := exec.CommandContext(ctx, "ffmpeg", append(append([]string{"-v", "error", "-y"}, args...), filepath.Join(media, out))...)
		if b, err := cmd.CombinedOutput(); err != nil {
			t.Logf("no %s: %v %s", out, err, b)
			return false
		}
		return true
	}
	if ffmpeg("hevc.ts", "-i", filepath.Join(media, "hevc.mkv"), "-map", "0:V", "-map", "0:a", "-c", "copy", "-t", "2") {
		clips = append(clips, "hevc.ts")
	}
	if ffmpeg("av1.mp4", "-f", "lavfi", "-i", "testsrc2=size=640x360:rate=30:duration=1",
		"-c:v", "libaom-av1", "-usage", "realtime", "-cpu-used", "8", "-g", "30", "-pix_fmt", "yuv420p10le") {
		clips = append(clips, "av1.mp4")
	} else {
		t.Log("no AV1 clip: the av1C parser is covered by playlist's table test only")
	}

	tc := New(Config{Library: openLibrary(t, media), CacheDir: t.TempDir(), TrickplayInterval: -1, HWAccel: encode.AccelNone})
	if err := tc.Initialize(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(tc.Close)
	ours := map[string]string{}
	var inits []string
	for _, c := range clips {
		info, err := tc.Info(ctx, c)
		if err != nil {
			t.Fatalf("%s: %v", c, err)
		}
		v := info.Video[0]
		codec, err := encode.VideoCodecString(v)
		if err != nil {
			t.Fatalf("%s: %v", c, err)
		}
		if v.Codec != "vp9" && v.CodecString == "" {
			t.Errorf("%s: no codec string from the %s configuration", c, v.Codec)
		}
		derived := v
		derived.CodecString = ""
		old, _ := encode.VideoCodecString(derived)
		t.Logf("%-14s derived %-18s exact %s", c, old, codec)
		if !v.Interlaced {
			master, err := tc.Master(ctx, c, "", Client{})
			if err != nil {
				t.Fatal(err)
			}
			// A long-GOP original is not offered at all.
			for _, line := range strings.Split(string(master), "\n") {
				if strings.Contains(line, `NAME="original"`) && !strings.Contains(line, `CODECS="`+codec+`,`) && !strings.Contains(line, `CODECS="`+codec+`"`) {
					t.Errorf("%s: the original's CODECS are not %s: %s", c, codec, line)
				}
			}
		}
		path := filepath.Join(t.TempDir(), "init.mp4")
		if err := os.WriteFile(path, initBytes(t, tc, c, "video", "original", "a"), 0o644); err != nil {
			t.Fatal(err)
		}
		ours[path] = c + "\t" + codec
		inits = append(inits, path)
	}

	cmd := exec.CommandContext(ctx, "node", append([]string{"codecs.mjs"}, inits...)...)
	cmd.Dir = e2e
	out, err := cmd.Output()
	if err != nil {
		t.Fatalf("mp4box.js: %v %s", err, out)
	}
	seen := 0
	for sc := bufio.NewScanner(bytes.NewReader(out)); sc.Scan(); seen++ {
		path, theirs, _ := strings.Cut(sc.Text(), "\t")
		clip, codec, _ := strings.Cut(ours[path], "\t")
		t.Logf("%-14s mp4box.js %s", clip, theirs)
		if codec != theirs {
			t.Errorf("%s: CODECS %s, the init segment's sample entry says %s", clip, codec, theirs)
		}
	}
	if seen != len(inits) {
		t.Errorf("mp4box.js answered for %d of %d init segments:\n%s", seen, len(inits), out)
	}
}
