package keyframes

import (
	"bytes"
	"encoding/binary"
	"errors"
	"os"
	"os/exec"
	"path/filepath"
	"testing"
)

// Inputs for the MP4 tests: small, fast to encode, with B-frames.
var (
	mp4Video = []string{"-f", "lavfi", "-i", "testsrc2=size=128x96:rate=24"}
	mp4Audio = []string{"-f", "lavfi", "-i", "sine=frequency=440"}
	mp4X264  = []string{"-c:v", "libx264", "-preset", "ultrafast", "-bf", "2"}
	// Alternate reference frames make VP9 write superframes.
	mp4VP9 = []string{"-c:v", "libvpx-vp9", "-deadline", "good", "-cpu-used", "8", "-auto-alt-ref", "1", "-lag-in-frames", "8", "-g", "24"}
	mp4AV1 = []string{"-c:v", "libsvtav1", "-preset", "12", "-g", "24"}
)

// mp4Args joins groups of ffmpeg arguments.
func mp4Args(parts ...[]string) []string {
	var args []string
	for _, p := range parts {
		args = append(args, p...)
	}
	return args
}

// TestMP4Index holds the reader to the packet scan on what ffmpeg writes in
// each layout and codec the reader supports.
func TestMP4Index(t *testing.T) {
	t.Parallel()
	av := mp4Args(mp4Video, mp4Audio, []string{"-t", "4"}, mp4X264, []string{"-g", "30", "-c:a", "aac"})
	frag := []string{"-movflags", "+frag_keyframe+empty_moov+default_base_moof"}
	// Passthrough keeps ffmpeg from filling the gap with repeated frames.
	later := mp4Args([]string{"-itsoffset", "1.5"}, av, []string{"-fps_mode", "passthrough"})
	cases := []struct {
		name string
		args []string
	}{
		// ffmpeg writes an edit list that starts the video at the first
		// B-frame's delay.
		{"edit-list.mp4", av},
		{"no-edit-list.mp4", mp4Args(av, []string{"-use_editlist", "0"})},
		{"faststart.mp4", mp4Args(av, []string{"-movflags", "+faststart"})},
		{"quicktime.mov", av},
		// ctts version 1, with negative offsets.
		{"negative-cts.mp4", mp4Args(av, []string{"-movflags", "+negative_cts_offsets"})},
		{"negative-cts-no-edit-list.mp4", mp4Args(av, []string{"-movflags", "+negative_cts_offsets", "-use_editlist", "0"})},
		{"fragmented.mp4", mp4Args(av, frag)},
		{"fragmented-negative-cts.mp4", mp4Args(av, []string{"-movflags", "+frag_keyframe+empty_moov+default_base_moof+negative_cts_offsets"})},
		// Without empty_moov the first fragment's samples are in the moov.
		{"hybrid-fragmented.mp4", mp4Args(av, []string{"-movflags", "+frag_keyframe"})},
		{"fragmented-every-second.mp4", mp4Args(av, []string{"-movflags", "+frag_every_frame+empty_moov", "-frag_duration", "1000000"})},
		// Data offsets implied by the previous track fragment's data.
		{"omit-tfhd-offset.mp4", mp4Args(av, []string{"-movflags", "+frag_keyframe+empty_moov+omit_tfhd_offset"})},
		{"dash-sidx.mp4", mp4Args(av, []string{"-movflags", "+dash"})},
		{"smooth.ismv", av},
		{"audio-track-first.mp4", mp4Args(mp4Audio, mp4Video, []string{"-t", "4"}, mp4X264, []string{"-g", "30", "-c:a", "aac"})},
		{"output-ts-offset.mp4", mp4Args(av, []string{"-output_ts_offset", "3"})},
		// The video starts 1.5 s after the audio: an empty edit first.
		// Fragmented, ffmpeg keeps that only with delay_moov.
		{"video-later.mp4", later},
		{"video-later.mov", later},
		{"video-later-fragmented.mp4", mp4Args(later, frag)},
		{"video-later-delay-moov.mp4", mp4Args(later, []string{"-movflags", "+frag_keyframe+empty_moov+delay_moov"})},
		{"long-gop.mp4", mp4Args(mp4Video, []string{"-t", "20"}, mp4X264, []string{"-g", "250", "-sc_threshold", "0"})},
		{"forced-keyframes.mp4", mp4Args(mp4Video, []string{"-t", "10"}, mp4X264,
			[]string{"-g", "1000", "-sc_threshold", "0", "-force_key_frames", "0.7,1.3,4.1,4.2,7.9"})},
		// Every sample is a keyframe, so ffmpeg writes no stss.
		{"all-intra.mp4", mp4Args(mp4Video, []string{"-t", "2", "-c:v", "libx264", "-preset", "ultrafast", "-g", "1"})},
		{"no-b-frames.mp4", mp4Args(mp4Video, []string{"-t", "5", "-c:v", "libx264", "-preset", "ultrafast", "-bf", "0", "-g", "24"})},
		{"hevc.mp4", mp4Args(mp4Video, []string{"-t", "5", "-c:v", "libx265", "-preset", "ultrafast", "-tag:v", "hvc1",
			"-x265-params", "log-level=error:keyint=48"})},
		{"hevc-fragmented.mp4", mp4Args(mp4Video, []string{"-t", "5", "-c:v", "libx265", "-preset", "ultrafast",
			"-x265-params", "log-level=error:keyint=48"}, frag)},
		{"mpeg4.mp4", mp4Args(mp4Video, []string{"-t", "5", "-c:v", "mpeg4", "-bf", "2", "-g", "30"})},
		{"vp9.mp4", mp4Args(mp4Video, []string{"-t", "3"}, mp4VP9)},
		{"av1.mp4", mp4Args(mp4Video, []string{"-t", "2"}, mp4AV1)},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			t.Parallel()
			checkIndex(t, makeMedia(t, c.name, c.args...), readMP4Index, matchExact)
		})
	}
}

// TestMP4IndexCut covers what a stream copy starting mid-GOP writes: an
// edit list whose media time falls after the keyframe the copy had to keep.
func TestMP4IndexCut(t *testing.T) {
	t.Parallel()
	src := makeMedia(t, "src.mp4", mp4Args(mp4Video, mp4Audio, []string{"-t", "8"}, mp4X264, []string{"-g", "24", "-c:a", "aac"})...)
	cut := []string{"-ss", "2.3", "-i", src, "-c", "copy"}
	for _, c := range []struct {
		name string
		args []string
	}{
		{"cut-zero.mp4", []string{"-avoid_negative_ts", "make_zero"}},
		{"cut-fragmented.mp4", []string{"-movflags", "+frag_keyframe+empty_moov"}},
		// The kept keyframe and the frames up to the cut come out of
		// ffprobe flagged as discarded, at negative times.
		{"cut.mp4", nil},
		{"cut.mov", nil},
	} {
		t.Run(c.name, func(t *testing.T) {
			t.Parallel()
			path := makeMedia(t, c.name, mp4Args(cut, c.args)...)
			if c.args != nil {
				checkIndex(t, path, readMP4Index, matchExact)
				return
			}
			idx := checkMP4Unvalidated(t, path)
			if idx.times[0] >= 0 {
				t.Fatalf("first keyframe at %v, expected a negative time", idx.times[0])
			}
			data, err := os.ReadFile(path)
			if err != nil {
				t.Fatal(err)
			}
			if _, err := readMP4Index(bytes.NewReader(data), int64(len(data))); err == nil || errors.Is(err, errNoIndex) {
				t.Fatalf("negative keyframe time accepted: %v", err)
			}
		})
	}
}

// checkMP4Unvalidated holds mp4Keyframes to the scan on a file whose index
// validate would refuse.
func checkMP4Unvalidated(t *testing.T, path string) *index {
	t.Helper()
	idx, err := mp4Keyframes(openMedia(t, path))
	if err != nil {
		t.Fatalf("index of %s: %v", path, err)
	}
	want, wantGOP := scanReference(t, path)
	sameTimes(t, idx.times, want)
	for i := range wantGOP {
		if idx.gopBytes[i] != wantGOP[i] {
			t.Fatalf("GOP %d: %d bytes, scan says %d", i, idx.gopBytes[i], wantGOP[i])
		}
	}
	return idx
}

// TestMP4IndexEdits rewrites the video edit list of one file to exercise
// ffmpeg's edit handling: an edit that ends early drops the samples after
// the second keyframe past its end, and one that starts late drops
// everything before the last keyframe at or before its start and shifts
// the rest.
func TestMP4IndexEdits(t *testing.T) {
	t.Parallel()
	src := makeMedia(t, "src.mp4", mp4Args(mp4Video, mp4Audio, []string{"-t", "6"}, mp4X264, []string{"-g", "30", "-c:a", "aac"})...)
	data, err := os.ReadFile(src)
	if err != nil {
		t.Fatal(err)
	}
	// The video track comes first; its elst holds one version 0 entry:
	// duration in ms, media time in 1/12288 s.
	at := bytes.Index(data, []byte("elst"))
	if at < 0 || data[at+4] != 0 || binary.BigEndian.Uint32(data[at+8:]) != 1 {
		t.Fatal("expected a one-entry version 0 elst")
	}
	for _, c := range []struct {
		name      string
		dur, time uint32
		negative  bool // the kept keyframe before the edit shows at a negative time
	}{
		{"ends-at-2s.mp4", 2000, 1024, false},
		{"ends-at-2.6s.mp4", 2600, 1024, false},
		{"starts-at-0.mp4", 6000, 0, false},
		{"starts-at-1-frame.mp4", 6000, 512, false},
		{"starts-at-second-keyframe.mp4", 6000, 16384, false},
		{"starts-mid-gop.mp4", 6000, 15000, true},
	} {
		t.Run(c.name, func(t *testing.T) {
			t.Parallel()
			patched := bytes.Clone(data)
			binary.BigEndian.PutUint32(patched[at+12:], c.dur)
			binary.BigEndian.PutUint32(patched[at+16:], c.time)
			path := filepath.Join(t.TempDir(), c.name)
			if err := os.WriteFile(path, patched, 0o644); err != nil {
				t.Fatal(err)
			}
			if c.negative {
				checkMP4Unvalidated(t, path)
			} else {
				checkIndex(t, path, readMP4Index, matchExact)
			}
		})
	}
}

func TestMP4IndexDeclines(t *testing.T) {
	t.Parallel()
	for _, name := range []string{"other.ts", "other.mkv"} {
		t.Run(name, func(t *testing.T) {
			t.Parallel()
			path := makeMedia(t, name, mp4Args(mp4Video, []string{"-t", "2"}, mp4X264)...)
			checkDeclines(t, path, readMP4Index)
		})
	}
	t.Run("audio-only.m4a", func(t *testing.T) {
		t.Parallel()
		checkDeclines(t, makeMedia(t, "audio-only.m4a", mp4Args(mp4Audio, []string{"-t", "2", "-c:a", "aac"})...), readMP4Index)
	})
	t.Run("empty", func(t *testing.T) {
		t.Parallel()
		if _, err := readMP4Index(bytes.NewReader(nil), 0); !errors.Is(err, errNoIndex) {
			t.Fatalf("empty input: %v, want errNoIndex", err)
		}
	})
}

// TestMP4IndexTruncated cuts files short. With the moov last the index is
// gone; with it first the samples it lists are: either way the reader must
// refuse, without panicking.
func TestMP4IndexTruncated(t *testing.T) {
	t.Parallel()
	for _, c := range []struct {
		name string
		args []string
	}{
		{"moov-last.mp4", nil},
		{"moov-first.mp4", []string{"-movflags", "+faststart"}},
	} {
		t.Run(c.name, func(t *testing.T) {
			t.Parallel()
			path := makeMedia(t, c.name, mp4Args(mp4Video, []string{"-t", "3"}, mp4X264, c.args)...)
			data, err := os.ReadFile(path)
			if err != nil {
				t.Fatal(err)
			}
			moov, mdat := bytes.Index(data, []byte("moov"))-4, bytes.Index(data, []byte("mdat"))-4
			if moov < 0 || mdat < 0 || (moov > mdat) != (c.args == nil) {
				t.Fatal("moov and mdat not where expected")
			}
			for _, n := range []int{len(data) - 1, moov + 100, moov, mdat + 100, len(data) / 2} {
				if idx, err := readMP4Index(bytes.NewReader(data[:n]), int64(n)); err == nil {
					t.Errorf("file cut to %d of %d bytes: index %v, want an error", n, len(data), idx)
				}
			}
		})
	}
}

// TestMP4IndexLyingStss moves an stss entry from a keyframe to the next
// sample in decode order: the sample check must catch it. (For VP9 and AV1
// ffprobe would not even believe the stss; a parser sets their key flags.)
func TestMP4IndexLyingStss(t *testing.T) {
	t.Parallel()
	for _, c := range []struct {
		name  string
		codec []string
	}{
		{"h264.mp4", mp4Args(mp4X264, []string{"-g", "24"})},
		{"hevc.mp4", []string{"-c:v", "libx265", "-preset", "ultrafast", "-x265-params", "log-level=error:keyint=24"}},
		{"mpeg4.mp4", []string{"-c:v", "mpeg4", "-bf", "2", "-g", "24"}},
		{"vp9.mp4", mp4VP9},
		{"av1.mp4", mp4AV1},
	} {
		t.Run(c.name, func(t *testing.T) {
			t.Parallel()
			path := makeMedia(t, c.name, mp4Args(mp4Video, []string{"-t", "3"}, c.codec)...)
			data, err := os.ReadFile(path)
			if err != nil {
				t.Fatal(err)
			}
			if _, err := readMP4Index(bytes.NewReader(data), int64(len(data))); err != nil {
				t.Fatalf("unpatched file: %v", err)
			}
			at := bytes.Index(data, []byte("stss"))
			if at < 0 || binary.BigEndian.Uint32(data[at+8:]) < 2 {
				t.Fatal("no stss with two keyframes")
			}
			entry := at + 4 + 8 + 4
			binary.BigEndian.PutUint32(data[entry:], binary.BigEndian.Uint32(data[entry:])+1)
			idx, err := readMP4Index(bytes.NewReader(data), int64(len(data)))
			if err == nil || errors.Is(err, errNoIndex) {
				t.Fatalf("lying stss: index %v, error %v; want a sample check error", idx, err)
			}
		})
	}
}

// TestMP4IndexOpenGOP: with open GOPs x264 marks recovery point I-frames as
// keyframes, and ffmpeg lists them in stss. Segments cannot start there, so
// the sample check refuses the index.
func TestMP4IndexOpenGOP(t *testing.T) {
	t.Parallel()
	path := makeMedia(t, "open-gop.mp4", mp4Args(mp4Video, []string{"-t", "3"}, mp4X264,
		[]string{"-x264-params", "open-gop=1:keyint=24:scenecut=0"})...)
	data, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	if idx, err := readMP4Index(bytes.NewReader(data), int64(len(data))); err == nil || errors.Is(err, errNoIndex) {
		t.Fatalf("open GOP: index %v, error %v; want a sample check error", idx, err)
	}
}

// TestMP4Seeds keeps the fuzz seeds in testdata readable and exact.
func TestMP4Seeds(t *testing.T) {
	t.Parallel()
	needTools(t)
	for _, name := range []string{"tiny.mp4", "tiny-frag.mp4"} {
		checkIndex(t, filepath.Join("testdata", name), readMP4Index, matchExact)
	}
}

func FuzzMP4Index(f *testing.F) {
	fuzzSeeds(f, "tiny.mp4", "tiny-frag.mp4")
	f.Fuzz(func(t *testing.T, data []byte) {
		fuzzIndex(t, readMP4Index, data)
	})
}

// BenchmarkMP4Index reads the index of a 30-minute 320x240 file, plain
// and fragmented, made once by looping a one-minute clip with stream copy.
func BenchmarkMP4Index(b *testing.B) {
	dir := b.TempDir()
	clip := filepath.Join(dir, "clip.mp4")
	plain := filepath.Join(dir, "long.mp4")
	frag := filepath.Join(dir, "long-fragmented.mp4")
	for _, args := range [][]string{
		mp4Args([]string{"-f", "lavfi", "-i", "testsrc2=size=320x240:rate=24"}, mp4Audio,
			[]string{"-t", "60"}, mp4X264, []string{"-g", "48", "-c:a", "aac", clip}),
		{"-stream_loop", "29", "-i", clip, "-c", "copy", plain},
		{"-stream_loop", "29", "-i", clip, "-c", "copy", "-movflags", "+frag_keyframe+empty_moov+default_base_moof", frag},
	} {
		args = append([]string{"-y", "-loglevel", "error", "-nostdin"}, args...)
		if out, err := exec.Command("ffmpeg", args...).CombinedOutput(); err != nil {
			b.Skipf("ffmpeg: %v: %s", err, out)
		}
	}
	for _, path := range []string{plain, frag} {
		b.Run(filepath.Base(path), func(b *testing.B) {
			f, size := openMedia(b, path)
			b.ReportAllocs()
			var idx *index
			var err error
			for b.Loop() {
				if idx, err = readMP4Index(f, size); err != nil {
					b.Fatal(err)
				}
			}
			b.ReportMetric(float64(len(idx.times)), "keyframes")
			b.ReportMetric(float64(size)/1e6, "file-MB")
		})
	}
}
