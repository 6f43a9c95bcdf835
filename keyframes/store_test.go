package keyframes

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"io/fs"
	"math"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"go.uber.org/zap/zaptest"

	"github.com/hlsd/hlsd/transcoder/child"
)

const ffprobeBin = "ffprobe"

func needTools(t *testing.T) {
	t.Helper()
	for _, bin := range []string{"ffmpeg", "ffprobe"} {
		if _, err := exec.LookPath(bin); err != nil {
			t.Skipf("%s not installed", bin)
		}
	}
}

// makeMedia runs ffmpeg with args and returns the output file, which is the
// last argument, placed in a fresh temp dir.
func makeMedia(t *testing.T, name string, args ...string) string {
	t.Helper()
	needTools(t)
	out := filepath.Join(t.TempDir(), name)
	args = append([]string{"-y", "-loglevel", "error", "-nostdin"}, args...)
	cmd := exec.Command("ffmpeg", append(args, out)...)
	if b, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("ffmpeg: %v: %s", err, b)
	}
	return out
}

func makeH264(t *testing.T, name string, seconds int, extra ...string) string {
	args := []string{"-f", "lavfi", "-i", "testsrc2=size=320x240:rate=24",
		"-f", "lavfi", "-i", "sine=frequency=440",
		"-t", strconv.Itoa(seconds), "-c:v", "libx264", "-preset", "ultrafast", "-bf", "2",
		"-c:a", "aac"}
	return makeMedia(t, name, append(args, extra...)...)
}

func probe(t *testing.T, args ...string) string {
	t.Helper()
	out, err := exec.Command(ffprobeBin, append([]string{"-loglevel", "error"}, args...)...).Output()
	if err != nil {
		t.Fatalf("ffprobe %v: %v", args, err)
	}
	return string(out)
}

func startTime(t *testing.T, path string) float64 {
	t.Helper()
	s := strings.TrimSpace(probe(t, "-show_entries", "format=start_time", "-of", "csv=print_section=0", path))
	v, err := strconv.ParseFloat(s, 64)
	if err != nil {
		t.Fatalf("start_time %q: %v", s, err)
	}
	return v
}

// decodedKeyframes reads keyframe times the slow way, by decoding, as an
// independent reference for the packet scan.
func decodedKeyframes(t *testing.T, path string, start float64) []float64 {
	t.Helper()
	out := probe(t, "-select_streams", "V:0", "-skip_frame", "nokey",
		"-show_entries", "frame=pts_time", "-of", "csv=print_section=0", path)
	var times []float64
	for _, line := range strings.Fields(out) {
		field, _, _ := strings.Cut(line, ",")
		if v, err := strconv.ParseFloat(field, 64); err == nil {
			times = append(times, v-start)
		}
	}
	return times
}

func newTestStore(t *testing.T, dir string) *Store {
	s := NewStore(dir, Options{Runner: child.Runner(ffprobeBin), Log: zaptest.NewLogger(t)})
	t.Cleanup(s.Close)
	return s
}

func waitDone(t *testing.T, k *Keyframes) ([]float64, []int64) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 15*time.Second)
	defer cancel()
	if err := k.Wait(ctx, math.Inf(1)); err != nil {
		t.Fatalf("Wait: %v", err)
	}
	times, gop, _, complete, err := k.Snapshot()
	if !complete || err != nil {
		t.Fatalf("after Wait: complete=%v err=%v", complete, err)
	}
	return times, gop
}

func sameTimes(t *testing.T, got, want []float64) {
	t.Helper()
	if len(got) != len(want) {
		t.Fatalf("got %d keyframes %v, want %d %v", len(got), got, len(want), want)
	}
	for i := range got {
		if math.Abs(got[i]-want[i]) > 0.001 {
			t.Fatalf("keyframe %d at %v, want %v (got %v)", i, got[i], want[i], got)
		}
	}
}

// videoBytes sums every video packet from the first keyframe on, which is
// what the gopBytes entries must add up to.
func videoBytes(t *testing.T, path string) int64 {
	t.Helper()
	var total int64
	seenKey := false
	for _, line := range strings.Fields(probe(t, "-select_streams", "V:0",
		"-show_entries", "packet=size,flags", "-of", "csv=print_section=0", path)) {
		f := strings.Split(line, ",")
		seenKey = seenKey || strings.Contains(f[1], "K")
		if n, err := strconv.ParseInt(f[0], 10, 64); err == nil && seenKey {
			total += n
		}
	}
	return total
}

func checkScan(t *testing.T, path string, want []float64) {
	start := startTime(t, path)
	s := NewStore(t.TempDir(), Options{Runner: child.Runner(ffprobeBin), Log: zaptest.NewLogger(t), ScanOnly: true})
	t.Cleanup(s.Close)
	k, err := s.Get(path, testID(path), start)
	if err != nil {
		t.Fatal(err)
	}
	times, gop := waitDone(t, k)
	sameTimes(t, times, want)
	sameTimes(t, times, decodedKeyframes(t, path, start))

	var sum int64
	for _, n := range gop {
		sum += n
	}
	if want := videoBytes(t, path); sum != want {
		t.Errorf("gopBytes sum to %d, want %d", sum, want)
	}
}

func TestScanMP4BFrames(t *testing.T) {
	t.Parallel()
	path := makeH264(t, "bframes.mp4", 10,
		"-g", "1000", "-x264-params", "scenecut=0",
		"-force_key_frames", "0,1.5,4.25,5,8.125")
	checkScan(t, path, []float64{0, 1.5, 4.25, 5, 8.125})
}

func TestScanMKVHEVC(t *testing.T) {
	t.Parallel()
	path := makeMedia(t, "hevc.mkv", "-f", "lavfi", "-i", "testsrc2=size=320x240:rate=24",
		"-t", "8", "-c:v", "libx265", "-preset", "ultrafast",
		"-x265-params", "keyint=60:min-keyint=60:log-level=error")
	checkScan(t, path, []float64{0, 2.5, 5, 7.5})
}

// TestScanStreams feeds the file through a FIFO, so the scan provably
// cannot finish until the test lets it: results must be visible before.
func TestScanStreams(t *testing.T) {
	t.Parallel()
	src := makeMedia(t, "src.ts", "-f", "lavfi", "-i", "testsrc2=size=320x240:rate=24",
		"-t", "60", "-c:v", "libx264", "-preset", "ultrafast", "-g", "48",
		"-x264-params", "scenecut=0")
	data, err := os.ReadFile(src)
	if err != nil {
		t.Fatal(err)
	}
	start := startTime(t, src)
	if start == 0 {
		t.Fatal("want an mpegts with a non-zero start_time to exercise the offset")
	}
	want := decodedKeyframes(t, src, start)

	fifo := filepath.Join(t.TempDir(), "live.ts")
	if err := syscall.Mkfifo(fifo, 0o600); err != nil {
		t.Fatal(err)
	}
	// O_RDWR opens a FIFO without waiting for the reader.
	w, err := os.OpenFile(fifo, os.O_RDWR, 0)
	if err != nil {
		t.Fatal(err)
	}
	defer w.Close()
	wrote := make(chan error, 1)
	go func() {
		_, err := w.Write(data[:len(data)/2])
		wrote <- err
	}()

	k, err := newTestStore(t, t.TempDir()).Get(fifo, testID(fifo), start)
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 15*time.Second)
	defer cancel()
	if err := k.Wait(ctx, 2); err != nil {
		t.Fatalf("Wait: %v", err)
	}
	early, _, scanned, complete, _ := k.Snapshot()
	select {
	case <-k.Done():
		t.Fatal("scan finished while the FIFO was still open")
	default:
	}
	if complete || scanned < 2 || len(early) == 0 {
		t.Fatalf("early snapshot: %d keyframes, scanned %v, complete %v", len(early), scanned, complete)
	}

	if err := <-wrote; err != nil {
		t.Fatal(err)
	}
	if _, err := w.Write(data[len(data)/2:]); err != nil {
		t.Fatal(err)
	}
	w.Close()
	times, _ := waitDone(t, k)
	sameTimes(t, times, want)
	sameTimes(t, early, times[:len(early)])
}

func TestPersistedScanReused(t *testing.T) {
	t.Parallel()
	path := makeH264(t, "persist.mp4", 4, "-g", "24")
	dir := t.TempDir()

	first := NewStore(dir, Options{Runner: child.Runner(ffprobeBin), Log: zaptest.NewLogger(t)})
	k, err := first.Get(path, testID(path), 0)
	if err != nil {
		t.Fatal(err)
	}
	want, wantGop := waitDone(t, k)
	first.Close()

	second := newTestStore(t, dir)
	k, err = second.Get(path, testID(path), 0)
	if err != nil {
		t.Fatal(err)
	}
	times, gop, _, complete, err := k.Snapshot()
	if !complete || err != nil {
		t.Fatalf("persisted result not complete at once: complete=%v err=%v", complete, err)
	}
	if n := second.reads.Load(); n != 0 {
		t.Errorf("%d reads started, want 0", n)
	}
	sameTimes(t, times, want)
	if len(gop) != len(wantGop) || gop[0] != wantGop[0] {
		t.Errorf("gopBytes = %v, want %v", gop, wantGop)
	}

	// A corrupt file must be ignored and replaced by a rescan.
	files, _ := filepath.Glob(filepath.Join(dir, "keyframes", "*.json"))
	if len(files) != 1 {
		t.Fatalf("want 1 persisted file, got %v", files)
	}
	if err := os.WriteFile(files[0], []byte("{not json"), 0o644); err != nil {
		t.Fatal(err)
	}
	third := newTestStore(t, dir)
	k, err = third.Get(path, testID(path), 0)
	if err != nil {
		t.Fatal(err)
	}
	times, _ = waitDone(t, k)
	sameTimes(t, times, want)
	if n := third.reads.Load(); n != 1 {
		t.Errorf("%d reads started after corruption, want 1", n)
	}
}

func TestChangedMtimeRescans(t *testing.T) {
	t.Parallel()
	path := makeH264(t, "mtime.mp4", 4, "-g", "24")
	s := newTestStore(t, t.TempDir())

	k1, err := s.Get(path, testID(path), 0)
	if err != nil {
		t.Fatal(err)
	}
	want, _ := waitDone(t, k1)
	if _, err := s.Get(path, testID(path), 0); err != nil || s.reads.Load() != 1 {
		t.Errorf("unchanged file read again (%d reads, err %v), want the persisted result", s.reads.Load(), err)
	}

	later := time.Now().Add(time.Hour)
	if err := os.Chtimes(path, later, later); err != nil {
		t.Fatal(err)
	}
	k2, err := s.Get(path, testID(path), 0)
	if err != nil {
		t.Fatal(err)
	}
	if k2 == k1 {
		t.Fatal("changed mtime returned the old result")
	}
	times, _ := waitDone(t, k2)
	sameTimes(t, times, want)
	if n := s.reads.Load(); n != 2 {
		t.Errorf("%d reads started, want 2", n)
	}
}

func TestNonMediaFailsAndRetries(t *testing.T) {
	t.Parallel()
	needTools(t)
	dir := t.TempDir()
	path := filepath.Join(dir, "notes.mp4")
	if err := os.WriteFile(path, []byte("this is not a video\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	s := newTestStore(t, dir)

	fail := func() *Keyframes {
		t.Helper()
		k, err := s.Get(path, testID(path), 0)
		if err != nil {
			t.Fatal(err)
		}
		ctx, cancel := context.WithTimeout(context.Background(), 15*time.Second)
		defer cancel()
		err = k.Wait(ctx, 1)
		if err == nil || !strings.Contains(err.Error(), "ffprobe failed on "+path) ||
			!strings.Contains(err.Error(), "Invalid data") {
			t.Fatalf("Wait = %v, want an ffprobe failure with its stderr", err)
		}
		return k
	}
	k1 := fail()
	k2 := fail()
	if k1 == k2 {
		t.Error("failed scan stayed cached")
	}
	if n := s.scans.Load(); n != 2 {
		t.Errorf("%d scans started, want 2", n)
	}
	if files, _ := filepath.Glob(filepath.Join(dir, "keyframes", "*")); len(files) != 0 {
		t.Errorf("failed scan persisted %v", files)
	}
}

func TestStatError(t *testing.T) {
	t.Parallel()
	s := newTestStore(t, t.TempDir())
	_, err := s.Get(filepath.Join(t.TempDir(), "missing.mp4"), "missing", 0)
	if !errors.Is(err, fs.ErrNotExist) {
		t.Errorf("Get = %v, want fs.ErrNotExist", err)
	}
}

// TestCloseStopsScan blocks ffprobe on a FIFO that never delivers data, so
// only Close can end the scan.
func TestCloseStopsScan(t *testing.T) {
	t.Parallel()
	needTools(t)
	fifo := filepath.Join(t.TempDir(), "stuck.ts")
	if err := syscall.Mkfifo(fifo, 0o600); err != nil {
		t.Fatal(err)
	}
	s := NewStore(t.TempDir(), Options{Runner: child.Runner(ffprobeBin), Log: zaptest.NewLogger(t)})
	k, err := s.Get(fifo, testID(fifo), 0)
	if err != nil {
		t.Fatal(err)
	}
	// The Store holds the FIFO open for reading, so this returns at once;
	// ffprobe may still be starting.
	w, err := os.OpenFile(fifo, os.O_WRONLY, 0)
	if err != nil {
		t.Fatal(err)
	}
	defer w.Close()
	for deadline := time.Now().Add(5 * time.Second); len(ffprobesOn(t, fifo)) == 0; time.Sleep(20 * time.Millisecond) {
		if time.Now().After(deadline) {
			t.Fatal("no ffprobe running on the FIFO")
		}
	}

	begin := time.Now()
	s.Close()
	if d := time.Since(begin); d >= child.WaitDelay {
		t.Errorf("Close took %v: ffprobe was not killed", d)
	}
	select {
	case <-k.Done():
	default:
		t.Fatal("scan not done after Close")
	}
	if err := k.Wait(context.Background(), 1); !errors.Is(err, context.Canceled) {
		t.Errorf("Wait after Close = %v, want context.Canceled", err)
	}
	if pids := ffprobesOn(t, fifo); len(pids) != 0 {
		t.Errorf("ffprobe still running after Close: %v", pids)
	}
	if _, err := s.Get(fifo, testID(fifo), 0); !errors.Is(err, ErrClosed) {
		t.Errorf("Get after Close = %v, want ErrClosed", err)
	}
}

// ffprobesOn lists the ffprobe processes reading path. They get the file
// as an inherited descriptor (ChildInput), so it is found among their open
// files rather than on their command line.
func ffprobesOn(t *testing.T, path string) []string {
	t.Helper()
	entries, err := os.ReadDir("/proc")
	if err != nil {
		t.Skip("no /proc")
	}
	var pids []string
	for _, e := range entries {
		comm, err := os.ReadFile(filepath.Join("/proc", e.Name(), "comm"))
		if err != nil || strings.TrimSpace(string(comm)) != "ffprobe" {
			continue
		}
		fds, _ := os.ReadDir(filepath.Join("/proc", e.Name(), "fd"))
		for _, fd := range fds {
			if target, _ := os.Readlink(filepath.Join("/proc", e.Name(), "fd", fd.Name())); target == path {
				pids = append(pids, e.Name())
				break
			}
		}
	}
	return pids
}

// TestIndexPreferred: files with a container index never run ffprobe, and
// give the scan's keyframes relative to the same start time; other files
// are scanned. The source survives persistence.
func TestIndexPreferred(t *testing.T) {
	t.Parallel()
	mp4 := makeH264(t, "index.mp4", 10, "-g", "1000", "-x264-params", "scenecut=0",
		"-force_key_frames", "0,1.5,4.25,5,8.125")
	mkv := makeH264(t, "index.mkv", 10, "-g", "1000", "-x264-params", "scenecut=0",
		"-force_key_frames", "0,2,3.5,7")
	ts := makeH264(t, "noindex.ts", 6, "-g", "48")
	for _, c := range []struct {
		path, source string
		scans        int64
	}{{mp4, SourceIndex, 0}, {mkv, SourceIndex, 0}, {ts, SourceScan, 1}} {
		start := startTime(t, c.path)
		dir := t.TempDir()
		s := newTestStore(t, dir)
		k, err := s.Get(c.path, testID(c.path), start)
		if err != nil {
			t.Fatal(err)
		}
		times, gop := waitDone(t, k)
		if k.Source() != c.source || s.scans.Load() != c.scans {
			t.Errorf("%s: source %q after %d scans, want %q after %d", c.path, k.Source(), s.scans.Load(), c.source, c.scans)
		}
		ref := NewStore(t.TempDir(), Options{Runner: child.Runner(ffprobeBin), ScanOnly: true})
		t.Cleanup(ref.Close)
		k, err = ref.Get(c.path, testID(c.path), start)
		if err != nil {
			t.Fatal(err)
		}
		want, wantGop := waitDone(t, k)
		sameTimes(t, times, want)
		if c.path == mp4 && !slices.Equal(gop, wantGop) {
			t.Errorf("%s: GOP bytes %v, scan says %v", c.path, gop, wantGop)
		}

		again := newTestStore(t, dir)
		if k, err = again.Get(c.path, testID(c.path), start); err != nil {
			t.Fatal(err)
		}
		if k.Source() != c.source || again.reads.Load() != 0 {
			t.Errorf("%s: persisted source %q after %d reads", c.path, k.Source(), again.reads.Load())
		}
	}
}

// testID names a file's record as the transcoder's key would: one per path.
func testID(path string) string {
	sum := sha256.Sum256([]byte(path))
	return hex.EncodeToString(sum[:12])
}
