package keyframes

import (
	"bufio"
	"bytes"
	"errors"
	"math"
	"os"
	"os/exec"
	"path/filepath"
	"testing"
)

// scanReference runs the packet scan, the reference every index reader is
// held to, and returns keyframe times on the file's own timeline (start_time
// not subtracted) with their GOP sizes.
func scanReference(t *testing.T, path string) ([]float64, []int64) {
	t.Helper()
	out, err := exec.Command(ffprobeBin, "-loglevel", "error", "-fflags", "+genpts",
		"-select_streams", "V:0", "-show_entries", "packet=pts_time,size,flags",
		"-of", "csv=print_section=0", path).Output()
	if err != nil {
		t.Fatalf("ffprobe scan of %s: %v", path, err)
	}
	k := newKeyframes()
	sc := bufio.NewScanner(bytes.NewReader(out))
	for sc.Scan() {
		if pts, size, key, ok := ParseLine(sc.Text()); ok {
			k.add(pts, size, key)
		}
	}
	k.finish(nil)
	times, gop, _, _, _ := k.Snapshot()
	return times, gop
}

// indexMatch says how closely a reader must reproduce the scan.
type indexMatch int

const (
	// matchExact: the same keyframes and the same GOP sizes.
	matchExact indexMatch = iota
	// matchTimes: the same keyframes; GOP sizes may be estimates (Matroska
	// Cues give cluster positions, which include audio).
	matchTimes
	// matchSubset: every listed keyframe is one the scan found.
	matchSubset
)

// checkIndex reads path with read and holds the result to the packet scan:
// timestamps within 1 ms. It returns the index for further checks.
func checkIndex(t *testing.T, path string, read indexReader, match indexMatch) *index {
	t.Helper()
	idx, err := read(openMedia(t, path))
	if err != nil {
		t.Fatalf("index of %s: %v", path, err)
	}
	if err := idx.validate(); err != nil {
		t.Fatalf("index of %s: %v", path, err)
	}
	want, wantGOP := scanReference(t, path)
	switch match {
	case matchExact, matchTimes:
		sameTimes(t, idx.times, want)
	case matchSubset:
		j := 0
		for _, v := range idx.times {
			for j < len(want) && want[j] < v-0.001 {
				j++
			}
			if j == len(want) || math.Abs(want[j]-v) > 0.001 {
				t.Fatalf("index keyframe %v is not a scanned keyframe (scan: %v)", v, want)
			}
		}
	}
	if match == matchExact {
		for i := range wantGOP {
			if idx.gopBytes[i] != wantGOP[i] {
				t.Fatalf("GOP %d: %d bytes, scan says %d", i, idx.gopBytes[i], wantGOP[i])
			}
		}
	}
	return idx
}

// checkDeclines asserts that read declines path quietly (errNoIndex).
func checkDeclines(t *testing.T, path string, read indexReader) {
	t.Helper()
	if idx, err := read(openMedia(t, path)); !errors.Is(err, errNoIndex) {
		t.Fatalf("reader on %s: index %v, error %v; want errNoIndex", path, idx, err)
	}
}

// openMedia opens path for an index reader; the test closes it.
func openMedia(t testing.TB, path string) (*os.File, int64) {
	t.Helper()
	f, err := os.Open(path)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { f.Close() })
	fi, err := f.Stat()
	if err != nil {
		t.Fatal(err)
	}
	return f, fi.Size()
}

// fuzzSeeds adds the named files of testdata to a fuzz target's corpus.
func fuzzSeeds(f *testing.F, names ...string) {
	for _, name := range names {
		data, err := os.ReadFile(filepath.Join("testdata", name))
		if err != nil {
			f.Fatal(err)
		}
		f.Add(data)
	}
}

// fuzzIndex is the body of every index reader's fuzz target: corrupt and
// truncated input must never panic, and what a reader accepts must be a
// valid index (sorted, unique, finite, non-negative times).
func fuzzIndex(t *testing.T, read indexReader, data []byte) {
	idx, err := read(bytes.NewReader(data), int64(len(data)))
	if err != nil {
		return
	}
	if idx == nil {
		t.Fatal("nil index without error")
	}
	if err := idx.validate(); err != nil {
		t.Fatalf("reader accepted an invalid index: %v", err)
	}
}
