package probe

import (
	"bytes"
	"context"
	"errors"
	"os"
	"os/exec"
	"path/filepath"
	"testing"
	"time"

	"github.com/hlsd/hlsd/transcoder/failure"
)

func TestIdentity(t *testing.T) {
	a := Identity{Name: "films/a.mkv", Size: 1000, ModTime: 1e18}
	for _, b := range []Identity{
		{Name: "films/b.mkv", Size: 1000, ModTime: 1e18},
		{Name: "films/a.mkv", Size: 1001, ModTime: 1e18},
		{Name: "films/a.mkv", Size: 1000, ModTime: 1e18 + 1},
	} {
		if a.Key() == b.Key() {
			t.Errorf("%+v and %+v share a key", a, b)
		}
	}
	if len(a.Key()) != 24 || len(a.Version()) != 12 {
		t.Errorf("key %q, version %q", a.Key(), a.Version())
	}
	// The version is the same on every node: it does not depend on where
	// the library is mounted, nor on the name (an rsync -a copy).
	moved := a
	moved.Name = "other/place.mkv"
	if moved.Version() != a.Version() {
		t.Error("the version depends on the name")
	}
}

// TestProber: a probe runs ffprobe once; the result comes back from memory,
// then from disk in a new Prober, and a file that is not media fails as
// such.
func TestProber(t *testing.T) {
	dir := t.TempDir()
	clip := filepath.Join(dir, "clip.mp4")
	if out, err := exec.Command("ffmpeg", "-v", "error", "-f", "lavfi", "-i", "testsrc2=size=320x240:rate=25:duration=1",
		"-f", "lavfi", "-i", "sine=duration=1", "-c:v", "libx264", "-preset", "ultrafast", "-c:a", "aac", "-shortest", clip).CombinedOutput(); err != nil {
		t.Skipf("ffmpeg: %v %s", err, out)
	}
	f, err := os.Open(clip)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	st, _ := f.Stat()
	id := IdentityOf("clip.mp4", st)
	cache := filepath.Join(dir, Dir)
	p := NewProber("ffprobe", cache)
	if _, ok := p.Known(id); ok {
		t.Fatal("known before any probe")
	}
	info, err := p.Probe(context.Background(), id, f)
	if err != nil {
		t.Fatal(err)
	}
	if len(info.Video) != 1 || info.Video[0].Width != 320 || len(info.Audio) != 1 || info.Duration < 0.9 || info.Size != st.Size() {
		t.Errorf("info %+v", info)
	}
	// x264 ultrafast: Constrained Baseline (constraint_set0 and 1), level 1.3.
	if c := info.Video[0].CodecString; c != "avc1.42c00d" {
		t.Errorf("codec string %q, want the avcC's avc1.42c00d", c)
	}
	if again, ok := p.Known(id); !ok || again != info {
		t.Error("not kept in memory")
	}
	fresh := NewProber("no-such-ffprobe", cache) // never run: the disk copy answers
	if disk, err := fresh.Probe(context.Background(), id, f); err != nil || disk.Duration != info.Duration || !disk.ModTime.Equal(st.ModTime()) {
		t.Errorf("from disk: %+v, %v", disk, err)
	}

	junk := filepath.Join(dir, "junk.mp4")
	if err := os.WriteFile(junk, []byte("not a video at all"), 0o644); err != nil {
		t.Fatal(err)
	}
	j, _ := os.Open(junk)
	defer j.Close()
	jst, _ := j.Stat()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	if _, err := p.Probe(ctx, IdentityOf("junk.mp4", jst), j); !errors.Is(err, failure.NotMedia) {
		t.Errorf("junk: %v, want not media", err)
	}
}

// TestProberAttachments: the codec configuration is read from the video
// streams only: a dump of a Matroska file's 16 MB attachment too would take
// seconds, and be over maxConfigOutput, so the string would be missing.
func TestProberAttachments(t *testing.T) {
	dir := t.TempDir()
	font := filepath.Join(dir, "font.ttf")
	if err := os.WriteFile(font, bytes.Repeat([]byte{0, 1, 2, 3}, 4<<20), 0o644); err != nil {
		t.Fatal(err)
	}
	clip := filepath.Join(dir, "clip.mkv")
	if out, err := exec.Command("ffmpeg", "-v", "error", "-f", "lavfi", "-i", "testsrc2=size=320x240:rate=25:duration=1",
		"-c:v", "libx264", "-preset", "ultrafast", "-attach", font, "-metadata:s:t", "mimetype=font/ttf", clip).CombinedOutput(); err != nil {
		t.Skipf("ffmpeg: %v %s", err, out)
	}
	f, err := os.Open(clip)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	st, _ := f.Stat()
	info, err := NewProber("ffprobe", filepath.Join(dir, Dir)).Probe(context.Background(), IdentityOf("clip.mkv", st), f)
	if err != nil {
		t.Fatal(err)
	}
	if c := info.Video[0].CodecString; c != "avc1.42c00d" {
		t.Errorf("codec string %q", c)
	}
}
