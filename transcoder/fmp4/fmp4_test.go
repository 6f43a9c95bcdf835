package fmp4

import (
	"bytes"
	"math"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"testing"
)

// segment makes one segment file as hlsd's runs write them: 2 s of 25 fps
// H.264 with B-frames, fragments of half a second, negative composition
// offsets, started at 10 s.
func segment(t *testing.T) ([]byte, string) {
	t.Helper()
	out := filepath.Join(t.TempDir(), "s.mp4")
	cmd := exec.Command("ffmpeg", "-v", "error", "-itsoffset", "10", "-f", "lavfi", "-i", "testsrc2=size=320x240:rate=25:duration=2",
		"-copyts", "-c:v", "libx264", "-preset", "ultrafast", "-bf", "2", "-g", "50", "-avoid_negative_ts", "disabled",
		"-f", "mp4", "-movflags", "+frag_keyframe+empty_moov+default_base_moof+frag_discont+negative_cts_offsets",
		"-frag_duration", "500000", "-use_editlist", "0", out)
	if b, err := cmd.CombinedOutput(); err != nil {
		t.Skipf("ffmpeg: %v %s", err, b)
	}
	b, err := os.ReadFile(out)
	if err != nil {
		t.Fatal(err)
	}
	return b, out
}

// ffprobePTS lists the presentation times ffprobe reads in file, in order.
func ffprobePTS(t *testing.T, file string) []float64 {
	out, err := exec.Command("ffprobe", "-v", "error", "-show_entries", "packet=pts_time", "-of", "csv=p=0", file).Output()
	if err != nil {
		t.Fatal(err)
	}
	var pts []float64
	for _, l := range strings.Fields(string(out)) {
		v, err := strconv.ParseFloat(l, 64)
		if err != nil {
			t.Fatal(err)
		}
		pts = append(pts, v)
	}
	slices.Sort(pts)
	return pts
}

func TestSegment(t *testing.T) {
	file, path := segment(t)
	init, body, err := Split(file)
	if err != nil {
		t.Fatal(err)
	}
	if types, err := Types(file); err != nil || types[0] != "ftyp" || types[1] != "moov" {
		t.Errorf("Types: %v, %v", types, err)
	}
	if _, err := Types(file[:len(file)-1]); err == nil {
		t.Error("Types of a cut file: no error")
	}
	if h, ok := Header(file); !ok || !bytes.Equal(h, init) {
		t.Errorf("Header: %d bytes (%v), Split's init %d", len(h), ok, len(init))
	}
	if _, ok := Header(file[:len(init)-1]); ok {
		t.Error("Header of a cut moov: ok")
	}
	timescale, samples := Samples(init, body)
	if timescale == 0 || len(samples) != 50 {
		t.Fatalf("timescale %d, %d samples; want 50", timescale, len(samples))
	}
	var total uint64
	for i, s := range samples {
		total += uint64(s.Duration)
		if i > 0 && s.Decode != samples[i-1].Decode+uint64(samples[i-1].Duration) {
			t.Fatalf("sample %d decodes at %d, after %+v", i, s.Decode, samples[i-1])
		}
	}
	if got := float64(total) / float64(timescale); got < 1.99 || got > 2.01 {
		t.Errorf("durations sum to %.3f s, want 2", got)
	}
	start, err := Start(init, body)
	if err != nil || start < 9.99 || start > 10.01 {
		t.Errorf("Start = %.3f, %v; want 10", start, err)
	}
	// Every sample presented where ffprobe says, once shifted as its mov
	// demuxer shifts a track with negative offsets (later than its decode).
	shift := NegativeCTS(file)
	if shift <= 0 {
		t.Errorf("negative CTS %.3f: B-frames have negative offsets", shift)
	}
	var pts []float64
	for _, s := range samples {
		pts = append(pts, float64(int64(s.Decode)+s.Offset)/float64(timescale)+shift)
	}
	slices.Sort(pts)
	want := ffprobePTS(t, path)
	for i := range want {
		if math.Abs(pts[i]-want[i]) > 1e-3 {
			t.Fatalf("sample %d presented at %.3f, ffprobe says %.3f", i, pts[i], want[i])
		}
	}

	// Numbering: the fragments of segment 7 are 7001, 7002, ... whether
	// numbered whole or framed as the file grows, a byte at a time.
	numbered := slices.Clone(body)
	Number(numbered, 7)
	got := Numbers(numbered)
	if len(got) < 4 || got[0] != 7001 || got[len(got)-1] != uint32(7000+len(got)) {
		t.Errorf("numbers %v", got)
	}
	f := Framer{N: 7}
	var framed []byte
	for i := range file {
		framed = append(framed, f.Write(file[i:i+1])...)
		if len(framed) > 0 && !bytes.HasPrefix(numbered, framed) {
			t.Fatalf("framed bytes differ from the numbered body at %d", i)
		}
	}
	rest, err := f.End()
	if err != nil || !bytes.Equal(append(framed, rest...), numbered) {
		t.Errorf("framed %d+%d bytes (%v), want the numbered body's %d", len(framed), len(rest), err, len(numbered))
	}
	cut := Framer{N: 0}
	cut.Write(file[:len(file)-3])
	if _, err := cut.End(); err == nil {
		t.Error("End inside a box: no error")
	}
}

// broken are files that are not whole fragmented MP4: the seeds of the
// fuzz test too.
var broken = map[string][]byte{
	"empty":     nil,
	"truncated": {0, 0, 0, 40, 'f', 't', 'y', 'p', 0},
	"bad size":  {0, 0, 0, 3, 'f', 't', 'y', 'p'},
	"no moof":   {0, 0, 0, 8, 'f', 't', 'y', 'p', 0, 0, 0, 8, 'm', 'o', 'o', 'v'},
	"huge":      {0, 0, 0, 1, 'm', 'o', 'o', 'f', 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff},
	"trun":      {0, 0, 0, 24, 't', 'r', 'u', 'n', 1, 0, 0x0f, 0x05, 0xff, 0xff, 0xff, 0xff, 0, 0, 0, 0, 0, 0, 0, 0},
}

func TestNotFragmented(t *testing.T) {
	for name, b := range broken {
		if _, _, err := Split(b); err == nil {
			t.Errorf("%s: Split accepted it", name)
		}
	}
}

// FuzzBoxes: no input makes a reader panic or loop, and what Types accepts
// adds up to the input.
func FuzzBoxes(f *testing.F) {
	for _, b := range broken {
		f.Add(b)
	}
	f.Fuzz(func(t *testing.T, b []byte) {
		_, _, _ = Split(b)
		_, _ = Header(b)
		_, _ = Samples(b, b)
		_ = NegativeCTS(b)
		Number(slices.Clone(b), 3)
		var fr Framer
		fr.Write(b[:len(b)/2])
		fr.Write(b[len(b)/2:])
		_, _ = fr.End()
		if types, err := Types(b); err == nil && len(b) > 0 && len(types) == 0 {
			t.Errorf("%d bytes accepted as no box", len(b))
		}
	})
}
