package transcoder

import (
	"bytes"
	"context"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"testing"
	"time"

	"github.com/hlsd/hlsd/transcoder/encode"
	"github.com/hlsd/hlsd/transcoder/probe"
)

func readAll(t *testing.T, rc io.ReadCloser, err error) []byte {
	t.Helper()
	if err != nil {
		t.Fatal(err)
	}
	defer rc.Close()
	b, err := io.ReadAll(rc)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

func initBytes(t *testing.T, tc *Transcoder, file, kind, quality, client string) []byte {
	t.Helper()
	f, err := tc.Init(context.Background(), file, encode.Rendition{Kind: kind, Quality: quality}, client)
	return readAll(t, f, err)
}

func segmentBytes(t *testing.T, tc *Transcoder, file, kind, quality string, n int, client string) []byte {
	t.Helper()
	rc, err := tc.Segment(context.Background(), file, encode.Rendition{Kind: kind, Quality: quality}, n, client, true)
	return readAll(t, rc, err)
}

// Once any run has made the init of an encoder configuration, the init of
// every variant made the same way is answered with no ffmpeg at all, and
// runs of other files, from other segments, write the same bytes.
func TestInitWithoutHead(t *testing.T) {
	tc := newTestTranscoder(t, Config{}, "h264.mp4", "hevc.mkv")
	defer tc.Close()
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	// The same streams in another file: a remux with another title.
	for _, f := range []string{"h264.mp4", "hevc.mkv"} {
		remux := filepath.Join(tc.cfg.Library.Dir(), "remux-"+f)
		if out, err := exec.Command("ffmpeg", "-v", "error", "-i", filepath.Join(tc.cfg.Library.Dir(), f),
			"-map", "0", "-c", "copy", "-metadata", "title=another film", remux).CombinedOutput(); err != nil {
			t.Fatalf("remux: %v %s", err, out)
		}
	}

	type rendition struct {
		file    string
		kind    string
		quality string
	}
	// h264.mp4's stereo AAC is copied, so the encoded audio is hevc.mkv's
	// AC-3 as 5.1 AAC.
	for _, r := range []rendition{{"h264.mp4", "video", "240p"}, {"h264.mp4", "video", "360p"}, {"hevc.mkv", "audio", "aac"}} {
		// A run from segment 0 of the first file makes the init.
		segmentBytes(t, tc, r.file, r.kind, r.quality, 0, "a")
		first := initBytes(t, tc, r.file, r.kind, r.quality, "a")

		heads := tc.headSeq.Load()
		got := initBytes(t, tc, "remux-"+r.file, r.kind, r.quality, "b")
		if n := tc.headSeq.Load() - heads; n != 0 {
			t.Errorf("%s %s: the init of a file made the same way started %d encoder runs", r.kind, r.quality, n)
		}
		if !bytes.Equal(got, first) {
			t.Errorf("%s %s: the other file's init differs from the one kept", r.kind, r.quality)
		}
		// A run of the other file from segment 3 writes the very same init.
		segmentBytes(t, tc, "remux-"+r.file, r.kind, r.quality, 3, "b")
	}
	if n := tc.inits.mismatches.Load(); n != 0 {
		t.Errorf("%d runs wrote another init than the one kept for their configuration", n)
	}

	// Another kind of source is another configuration.
	a, b := variantKey(t, tc, "h264.mp4", "240p"), variantKey(t, tc, "hevc.mkv", "240p")
	if a == "" || a == b {
		t.Errorf("configuration keys %q and %q: want two different ones", a, b)
	}
	// Without the decoded format (a probe from before it was recorded) the
	// configuration is not known well enough to share.
	m, err := tc.open(ctx, "hevc.mkv")
	if err != nil {
		t.Fatal(err)
	}
	defer m.release()
	v := &variant{env: &tc.env, m: &media{info: &probe.Info{Video: []probe.VideoStream{m.info.Video[0]}, Container: m.info.Container}}, kind: "video", quality: "240p"}
	v.m.info.Video[0].Format = ""
	if k := v.configKey(); k != "" {
		t.Errorf("key %q for a stream of unknown format", k)
	}
}

func variantKey(t *testing.T, tc *Transcoder, file, quality string) string {
	t.Helper()
	v, release, err := tc.variant(context.Background(), file, encode.Rendition{Kind: "video", Quality: quality})
	if err != nil {
		t.Fatal(err)
	}
	defer release()
	return v.initKey
}

// With no init kept, an init request gets the header the head writes first,
// long before its first segment is complete, and it equals the init that
// head's segments are published with.
func TestInitFromHeadHeader(t *testing.T) {
	tc := newTestTranscoder(t, Config{}, "long.mp4")
	defer tc.Close()
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	start := time.Now()
	init := initBytes(t, tc, "long.mp4", "video", "1080p", "a")
	took := time.Since(start)
	v, release, err := tc.variant(ctx, "long.mp4", encode.Rendition{Kind: "video", Quality: "1080p"})
	if err != nil {
		t.Fatal(err)
	}
	v.mu.Lock()
	ready := v.ready[0]
	v.mu.Unlock()
	release()
	if ready {
		t.Errorf("segment 0 was complete before its init was answered (%v): the init waited for it", took)
	}
	seg := segmentBytes(t, tc, "long.mp4", "video", "1080p", 0, "a")
	if len(seg) == 0 || tc.inits.mismatches.Load() != 0 {
		t.Errorf("the published init differs from the header served early")
	}
	kept, err := os.ReadFile(tc.inits.path(v.initKey))
	if err != nil || !bytes.Equal(kept, init) {
		t.Errorf("the init kept for the configuration differs from the one served (%v)", err)
	}
	t.Logf("1080p init answered in %v, before its first segment", took.Round(time.Millisecond))
}
