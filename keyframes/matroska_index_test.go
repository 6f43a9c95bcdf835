package keyframes

import (
	"bytes"
	"errors"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
)

// mkvArgs prefixes args with 320x240 test video and a tone as ffmpeg
// inputs.
func mkvArgs(args ...string) []string {
	return append([]string{"-f", "lavfi", "-i", "testsrc2=size=320x240:rate=24",
		"-f", "lavfi", "-i", "sine=frequency=440"}, args...)
}

// checkMKVIndex holds the Cues of path to the packet scan: ffmpeg's
// matroska muxer cues every video keyframe, so the times must match. GOP
// sizes are file distances including audio, so they must cover the video.
func checkMKVIndex(t *testing.T, path string) *index {
	t.Helper()
	idx := checkIndex(t, path, readMatroskaIndex, matchTimes)
	var sum int64
	for _, n := range idx.gopBytes {
		sum += n
	}
	fi, err := os.Stat(path)
	if err != nil {
		t.Fatal(err)
	}
	if video := videoBytes(t, path); sum < video || sum > fi.Size() {
		t.Errorf("gopBytes sum to %d; video is %d bytes, the file %d", sum, video, fi.Size())
	}
	return idx
}

func TestMatroskaIndexH264(t *testing.T) {
	t.Parallel()
	path := makeH264(t, "h264.mkv", 10, "-g", "48")
	idx := checkMKVIndex(t, path)
	// AAC priming shifts the video a few ms; the index must not hide that.
	if idx.times[0] <= 0 || idx.times[0] > 0.1 {
		t.Errorf("first keyframe at %v, want a few ms", idx.times[0])
	}
}

func TestMatroskaIndexHEVC10AC3(t *testing.T) {
	t.Parallel()
	path := makeMedia(t, "hevc.mkv", mkvArgs("-t", "8",
		"-c:v", "libx265", "-preset", "ultrafast", "-pix_fmt", "yuv420p10le",
		"-x265-params", "keyint=48:min-keyint=48:log-level=error", "-c:a", "ac3")...)
	checkMKVIndex(t, path)
}

func TestMatroskaIndexVP9Opus(t *testing.T) {
	t.Parallel()
	path := makeMedia(t, "vp9.webm", mkvArgs("-t", "8",
		"-c:v", "libvpx-vp9", "-deadline", "realtime", "-cpu-used", "8", "-g", "48",
		"-c:a", "libopus")...)
	checkMKVIndex(t, path)
}

// TestMatroskaIndexBlockGroups: VP9 with alpha carries the alpha plane as a
// BlockAddition, so ffmpeg writes BlockGroups instead of SimpleBlocks.
func TestMatroskaIndexBlockGroups(t *testing.T) {
	t.Parallel()
	path := makeMedia(t, "alpha.webm", "-f", "lavfi", "-i", "testsrc2=size=64x64:rate=24",
		"-t", "4", "-vf", "format=yuva420p", "-c:v", "libvpx-vp9",
		"-deadline", "realtime", "-cpu-used", "8", "-g", "24")
	data, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.Contains(data, []byte{idBlockGroup}) || !bytes.Contains(data, []byte{idReferenceBlock}) {
		t.Fatal("want a file of BlockGroups")
	}
	checkMKVIndex(t, path)
}

func TestMatroskaIndexLongGOP(t *testing.T) {
	t.Parallel()
	checkMKVIndex(t, makeH264(t, "long.mkv", 20, "-g", "240"))
}

func TestMatroskaIndexIrregularGOPs(t *testing.T) {
	t.Parallel()
	path := makeH264(t, "irregular.mkv", 12, "-g", "1000", "-x264-params", "scenecut=0",
		"-force_key_frames", "0,1.3,5.1,5.9,11")
	if idx := checkMKVIndex(t, path); len(idx.times) != 5 {
		t.Errorf("%d keyframes, want 5", len(idx.times))
	}
}

// TestMatroskaIndexDenseKeyframes: ffmpeg only starts a cluster at a
// keyframe once the cluster holds 4 KB, yet cues every keyframe, so here
// several keyframes share a cluster and are told apart by
// CueRelativePosition.
func TestMatroskaIndexDenseKeyframes(t *testing.T) {
	t.Parallel()
	path := makeMedia(t, "dense.mkv", "-f", "lavfi", "-i", "color=c=gray:size=64x64:rate=24",
		"-t", "5", "-c:v", "libx264", "-preset", "ultrafast", "-g", "5")
	idx := checkMKVIndex(t, path)
	if len(idx.times) < 20 {
		t.Errorf("%d keyframes, want 24", len(idx.times))
	}
	for i, n := range idx.gopBytes {
		if n <= 0 {
			t.Fatalf("GOP %d has %d bytes", i, n)
		}
	}
}

func TestMatroskaIndexCuesFirst(t *testing.T) {
	t.Parallel()
	path := makeH264(t, "front.mkv", 8, "-g", "48", "-reserve_index_space", "64k")
	data, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	cues := bytes.Index(data, []byte{0x1C, 0x53, 0xBB, 0x6B})
	cluster := bytes.Index(data, []byte{0x1F, 0x43, 0xB6, 0x75})
	if cues < 0 || cues > cluster {
		t.Fatalf("Cues at %d, first Cluster at %d: want the Cues first", cues, cluster)
	}
	checkMKVIndex(t, path)
}

// TestMatroskaIndexCuesNotInSeekHead hides the Cues entry of the SeekHead,
// so the reader has to walk the top-level elements, clusters included.
func TestMatroskaIndexCuesNotInSeekHead(t *testing.T) {
	t.Parallel()
	path := makeH264(t, "walk.mkv", 6, "-g", "48")
	data, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	entry := []byte{0x53, 0xAB, 0x84, 0x1C, 0x53, 0xBB, 0x6B}
	at := bytes.Index(data, entry)
	if at < 0 || at > 200 {
		t.Fatalf("Cues SeekHead entry at %d", at)
	}
	data[at+len(entry)-1]++ // now an ID nobody knows
	if err := os.WriteFile(path, data, 0o644); err != nil {
		t.Fatal(err)
	}
	checkMKVIndex(t, path)
}

// hideCueRelativePositions turns every CueRelativePosition of the file into
// a Void element of the same size (both IDs are one byte), as if the writer
// had not written them, and returns how many it hid.
func hideCueRelativePositions(t *testing.T, data []byte) int {
	t.Helper()
	s, err := openMKVSegment(bytes.NewReader(data), int64(len(data)))
	if err != nil {
		t.Fatal(err)
	}
	if err := s.locate(idCues); err != nil {
		t.Fatal(err)
	}
	cues, err := s.element(s.first[idCues], idCues)
	if err != nil {
		t.Fatal(err)
	}
	hidden := 0
	// children walks the elements in data[from:to] and calls fn with the
	// ID, the header position and the data bounds of each.
	var children func(from, to int, fn func(id uint32, pos, from, to int))
	children = func(from, to int, fn func(id uint32, pos, from, to int)) {
		for from < to {
			id, idLen, _ := ebmlVint(data[from:to], true)
			size, sizeLen, _ := ebmlVint(data[from+idLen:to], false)
			if idLen == 0 || sizeLen == 0 {
				t.Fatalf("bad element in the Cues at %d", from)
			}
			start := from + idLen + sizeLen
			fn(uint32(id), from, start, start+int(size))
			from = start + int(size)
		}
	}
	children(int(cues.data), int(cues.end()), func(id uint32, _, from, to int) {
		if id != idCuePoint {
			return
		}
		children(from, to, func(id uint32, _, from, to int) {
			if id != idCueTrackPositions {
				return
			}
			children(from, to, func(id uint32, pos, _, _ int) {
				if id == idCueRelativePosition {
					data[pos] = 0xEC
					hidden++
				}
			})
		})
	})
	return hidden
}

// TestMatroskaIndexClusterWalk: without CueRelativePosition the sample
// check walks the cluster to find the block, and GOP sizes fall back to
// cluster distances.
func TestMatroskaIndexClusterWalk(t *testing.T) {
	t.Parallel()
	for _, path := range []string{
		makeH264(t, "walk.mkv", 6, "-g", "48"),
		makeMedia(t, "dense.mkv", "-f", "lavfi", "-i", "color=c=gray:size=64x64:rate=24",
			"-t", "3", "-c:v", "libx264", "-preset", "ultrafast", "-g", "5"),
	} {
		data, err := os.ReadFile(path)
		if err != nil {
			t.Fatal(err)
		}
		if hideCueRelativePositions(t, data) == 0 {
			t.Fatal("no CueRelativePosition to hide")
		}
		if err := os.WriteFile(path, data, 0o644); err != nil {
			t.Fatal(err)
		}
		checkMKVIndex(t, path)

		c, block := lastMKVCueBlock(t, data)
		data[block.data+3] &^= 0x80
		if _, err := readMKVBytes(data); err == nil || !strings.Contains(err.Error(), "not a keyframe") {
			t.Errorf("%s with the last keyframe flag cleared: %v, want a sample check error", path, err)
		}
		data[block.data+3] |= 0x80
		data[block.data+2]++ // the block's time, low byte
		if _, err := readMKVBytes(data); err == nil || errors.Is(err, errNoIndex) {
			t.Errorf("%s with the block at %d moved in time: %v, want a sample check error", path, c.time, err)
		}
	}
}

func TestMatroskaIndexStartOffset(t *testing.T) {
	t.Parallel()
	path := makeH264(t, "offset.mkv", 8, "-g", "48", "-output_ts_offset", "5")
	if idx := checkMKVIndex(t, path); idx.times[0] < 5 {
		t.Errorf("first keyframe at %v, want the file's own timeline from 5 s", idx.times[0])
	}
}

func TestMatroskaIndexDeclinesPipe(t *testing.T) {
	t.Parallel()
	needTools(t)
	path := filepath.Join(t.TempDir(), "pipe.mkv")
	out, err := os.Create(path)
	if err != nil {
		t.Fatal(err)
	}
	defer out.Close()
	var stderr bytes.Buffer
	cmd := exec.Command("ffmpeg", append([]string{"-loglevel", "error", "-nostdin"},
		mkvArgs("-t", "4", "-c:v", "libx264", "-preset", "ultrafast", "-c:a", "aac",
			"-f", "matroska", "pipe:1")...)...)
	cmd.Stdout, cmd.Stderr = out, &stderr
	if err := cmd.Run(); err != nil {
		t.Fatalf("ffmpeg: %v: %s", err, stderr.Bytes())
	}
	checkDeclines(t, path, readMatroskaIndex)
}

func TestMatroskaIndexDeclinesOthers(t *testing.T) {
	t.Parallel()
	checkDeclines(t, makeH264(t, "other.mp4", 2), readMatroskaIndex)

	dir := t.TempDir()
	// An EBML file that is not Matroska.
	notMKV := []byte{0x1A, 0x45, 0xDF, 0xA3, 0x87, 0x42, 0x82, 0x84, 'j', 'u', 'n', 'k'}
	audio := makeMedia(t, "audio.mka", "-f", "lavfi", "-i", "sine", "-t", "2", "-c:a", "libopus")
	for name, data := range map[string][]byte{
		"empty": nil, "text": []byte("not a video\n"), "magic": notMKV[:4], "doctype": notMKV,
	} {
		path := filepath.Join(dir, name)
		if err := os.WriteFile(path, data, 0o644); err != nil {
			t.Fatal(err)
		}
		checkDeclines(t, path, readMatroskaIndex)
	}
	checkDeclines(t, audio, readMatroskaIndex)
}

// readMKVBytes runs the reader on data as a whole file.
func readMKVBytes(data []byte) (*index, error) {
	return readMatroskaIndex(bytes.NewReader(data), int64(len(data)))
}

func TestMatroskaIndexTruncated(t *testing.T) {
	t.Parallel()
	for _, extra := range [][]string{nil, {"-reserve_index_space", "64k"}} {
		path := makeH264(t, "cut.mkv", 6, append([]string{"-g", "48"}, extra...)...)
		data, err := os.ReadFile(path)
		if err != nil {
			t.Fatal(err)
		}
		if _, err := readMKVBytes(data); err != nil {
			t.Fatalf("whole file %v: %v", extra, err)
		}
		// A cut file still declares the whole Segment size. Declared
		// unknown, as a live writer leaves it, the reader must find the
		// missing clusters or Cues by itself.
		unsized := bytes.Clone(data)
		seg := bytes.Index(unsized, []byte{0x18, 0x53, 0x80, 0x67})
		if seg < 0 || unsized[seg+4] != 0x01 {
			t.Fatal("want an 8-byte Segment size")
		}
		copy(unsized[seg+4:], []byte{0x01, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff})
		if _, err := readMKVBytes(unsized); err != nil {
			t.Fatalf("whole file %v with unknown Segment size: %v", extra, err)
		}
		for _, n := range []int{len(data) - 10, len(data) * 3 / 5, 100, 50} {
			if idx, err := readMKVBytes(data[:n]); err == nil {
				t.Errorf("%v cut at %d of %d: index %v, want an error", extra, n, len(data), idx.times)
			}
			if idx, err := readMKVBytes(unsized[:n]); err == nil {
				t.Errorf("%v cut at %d of %d, unknown Segment size: index %v, want an error", extra, n, len(data), idx.times)
			}
		}
	}
}

// lastMKVCueBlock returns the last video cue and the SimpleBlock it names,
// found with the reader's own parts.
func lastMKVCueBlock(t *testing.T, data []byte) (mkvCue, ebmlElement) {
	t.Helper()
	s, err := openMKVSegment(bytes.NewReader(data), int64(len(data)))
	if err != nil {
		t.Fatal(err)
	}
	if err := s.locate(idInfo, idTracks, idCues); err != nil {
		t.Fatal(err)
	}
	track, err := s.videoTrack()
	if err != nil {
		t.Fatal(err)
	}
	cues, err := s.readCues(track)
	if err != nil {
		t.Fatal(err)
	}
	c := cues[len(cues)-1]
	cl, err := s.element(c.cluster, idCluster)
	if err != nil {
		t.Fatal(err)
	}
	ts, err := s.clusterTimestamp(cl, cl.end(), -1)
	if err != nil {
		t.Fatal(err)
	}
	for pos := cl.data; pos < cl.end(); {
		e, err := readEBMLHeader(s.r, pos, cl.end())
		if err != nil {
			t.Fatal(err)
		}
		if e.id == idSimpleBlock && (!c.hasRel || pos == cl.data+c.rel) {
			if b, err := s.readBlock(e); err == nil && b.track == track.number && b.at(ts, c.time) {
				return c, e
			}
		}
		pos = e.end()
	}
	t.Fatalf("no SimpleBlock for the cue at %d", c.time)
	return c, ebmlElement{}
}

// TestMatroskaIndexLyingCues patches a file, keeping every size, so that
// the last cue no longer names a keyframe: the sample check must notice.
func TestMatroskaIndexLyingCues(t *testing.T) {
	t.Parallel()
	path := makeH264(t, "lie.mkv", 6, "-g", "48")
	data, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	c, block := lastMKVCueBlock(t, data)

	notKey := bytes.Clone(data)
	// One-byte track number, two-byte timestamp, then the flags.
	notKey[block.data+3] &^= 0x80
	if _, err := readMKVBytes(notKey); err == nil || errors.Is(err, errNoIndex) ||
		!strings.Contains(err.Error(), "not a keyframe") {
		t.Errorf("keyframe flag cleared: %v, want a sample check error", err)
	}

	// Move the last CueTime one tick later, where no block is.
	if c.time < 0x100 || c.time > 0xfffe {
		t.Fatalf("CueTime %d is not two bytes long", c.time)
	}
	at := bytes.LastIndex(data, []byte{idCueTime, 0x82, byte(c.time >> 8), byte(c.time)})
	if at < 0 {
		t.Fatalf("CueTime %d not found", c.time)
	}
	moved := bytes.Clone(data)
	moved[at+2], moved[at+3] = byte((c.time+1)>>8), byte(c.time+1)
	if _, err := readMKVBytes(moved); err == nil || errors.Is(err, errNoIndex) {
		t.Errorf("CueTime moved: %v, want a sample check error", err)
	}
}

func FuzzMatroskaIndex(f *testing.F) {
	fuzzSeeds(f, "tiny.mkv", "tiny.webm")
	f.Fuzz(func(t *testing.T, data []byte) {
		fuzzIndex(t, readMatroskaIndex, data)
	})
}

// BenchmarkMatroskaIndex reads the Cues of a 30-minute file.
func BenchmarkMatroskaIndex(b *testing.B) {
	for _, bin := range []string{"ffmpeg", "ffprobe"} {
		if _, err := exec.LookPath(bin); err != nil {
			b.Skipf("%s not installed", bin)
		}
	}
	dir := b.TempDir()
	clip, long := filepath.Join(dir, "clip.mkv"), filepath.Join(dir, "long.mkv")
	for _, args := range [][]string{
		mkvArgs("-t", "10", "-c:v", "libx264", "-preset", "ultrafast", "-g", "48", "-c:a", "aac", clip),
		{"-stream_loop", "-1", "-i", clip, "-t", "1800", "-c", "copy", long},
	} {
		cmd := exec.Command("ffmpeg", append([]string{"-y", "-loglevel", "error", "-nostdin"}, args...)...)
		if out, err := cmd.CombinedOutput(); err != nil {
			b.Fatalf("ffmpeg: %v: %s", err, out)
		}
	}
	f, size := openMedia(b, long)
	var idx *index
	var err error
	for b.Loop() {
		if idx, err = readMatroskaIndex(f, size); err != nil {
			b.Fatal(err)
		}
	}
	b.ReportMetric(float64(len(idx.times)), "keyframes")
	b.ReportMetric(float64(size)/(1<<20), "file-MB")
}
