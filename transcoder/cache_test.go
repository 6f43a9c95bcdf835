package transcoder

import (
	"context"
	"errors"
	"io"
	"math/rand/v2"
	"os"
	"os/exec"
	"path/filepath"
	"runtime/pprof"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"go.uber.org/zap"
	"go.uber.org/zap/zaptest"

	"github.com/hlsd/hlsd/transcoder/encode"
	"github.com/hlsd/hlsd/transcoder/failure"
	"github.com/hlsd/hlsd/transcoder/library"
	"github.com/hlsd/hlsd/transcoder/testmedia"
)

// newTestTranscoder serves clips (made by testmedia) with cfg.
func newTestTranscoder(t *testing.T, cfg Config, clips ...string) *Transcoder {
	t.Helper()
	if _, err := exec.LookPath("ffmpeg"); err != nil {
		t.Skip("ffmpeg not installed")
	}
	media := t.TempDir()
	for _, c := range clips {
		src, err := testmedia.Make(context.Background(), testmedia.CacheDir(), c)
		if err != nil {
			t.Fatal(err)
		}
		if err := os.Link(src, filepath.Join(media, c)); err != nil {
			t.Fatal(err)
		}
	}
	cfg.Library, cfg.CacheDir, cfg.Log = openLibrary(t, media), t.TempDir(), zaptest.NewLogger(t)
	tc := New(cfg)
	if err := tc.Initialize(); err != nil {
		t.Fatal(err)
	}
	return tc
}

// TestHammerCacheAndSegments requests segments of several variants from many
// goroutines while the cache evicts on every addition (its budget is a few
// segments) and an extra goroutine evicts and touches as fast as it can.
// Touch, eviction, segment readiness, client tracking and preemption all
// run at once: a lock-order inversion among them hangs a request, which the
// deadline turns into a failure with every goroutine's stack, rather than a
// CI run that hangs.
func TestHammerCacheAndSegments(t *testing.T) {
	tc := newTestTranscoder(t, Config{CacheBytes: 400 << 10, MaxEncoders: 2, IdleTimeout: 2 * time.Second,
		TrickplayInterval: -1, HWAccel: encode.AccelNone}, "h264.mp4", "vp9.webm")
	type target struct{ file, kind, quality string }
	targets := []target{
		{"h264.mp4", "video", "original"}, {"h264.mp4", "audio", "aac"}, {"h264.mp4", "video", "240p"},
		{"vp9.webm", "video", "original"}, {"vp9.webm", "audio", "aac"},
	}
	const workers = 8
	run := 20 * time.Second
	deadline := run + 90*time.Second

	ctx, stop := context.WithTimeout(context.Background(), run)
	defer stop()
	var served, busy atomic.Int64
	var wg sync.WaitGroup
	errs := make(chan error, workers)
	for i := range workers {
		wg.Go(func() {
			rng := rand.New(rand.NewPCG(uint64(i), 7))
			client := []string{"", "a", "b", "c"}[i%4]
			for ctx.Err() == nil {
				tg := targets[rng.IntN(len(targets))]
				rctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
				f, err := tc.Segment(rctx, tg.file, encode.Rendition{Kind: tg.kind, Quality: tg.quality}, rng.IntN(5), client, rng.IntN(2) == 0)
				var ce *failure.CapacityError
				switch {
				case err == nil:
					_, err = io.Copy(io.Discard, f) // a live segment reads under rctx
					f.Close()
					cancel()
					if err != nil {
						errs <- err
						return
					}
					served.Add(1)
				case errors.As(err, &ce):
					cancel()
					busy.Add(1)
				default:
					cancel()
					errs <- err
					return
				}
			}
		})
	}
	wg.Go(func() {
		for ctx.Err() == nil {
			tc.cache.evict()
			tc.cache.touch(filepath.Join(tc.cfg.CacheDir, "segments", "nothing"))
			tc.files.trim()
			tc.sched.stopIdle(time.Millisecond)
			time.Sleep(time.Millisecond)
		}
	})

	finished := make(chan struct{})
	go func() {
		wg.Wait()
		close(finished)
	}()
	select {
	case <-finished:
	case <-time.After(deadline):
		var b strings.Builder
		_ = pprof.Lookup("goroutine").WriteTo(&b, 2)
		t.Fatalf("requests still hanging %s after the load stopped: a deadlock?\n%s", deadline-run, b.String())
	}
	close(errs)
	for err := range errs {
		t.Errorf("request failed: %v", err)
	}
	t.Logf("%d segments served, %d capacity refusals", served.Load(), busy.Load())
	if served.Load() < 20 {
		t.Errorf("only %d segments served", served.Load())
	}
	tc.Close() // no head publishes any more
	time.Sleep(evictGrace)
	tc.cache.evict()
	if n := tc.cache.size(); n > tc.cfg.CacheBytes {
		t.Errorf("cache accounts %d bytes after eviction, budget %d", n, tc.cfg.CacheBytes)
	}
	if disk := segmentBytesOnDisk(t, tc.cfg.CacheDir); disk != tc.cache.size() {
		t.Errorf("segments on disk: %d bytes; the cache accounts %d", disk, tc.cache.size())
	}
}

// segmentBytesOnDisk sums the published segments under cache.
func segmentBytesOnDisk(t *testing.T, cache string) int64 {
	t.Helper()
	var sum int64
	err := filepath.WalkDir(filepath.Join(cache, "segments"), func(p string, d os.DirEntry, err error) error {
		if err != nil {
			return err
		}
		if _, ok := segmentNumber(d.Name()); ok && d.Type().IsRegular() {
			fi, err := d.Info()
			if err != nil {
				return err
			}
			sum += fi.Size()
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	return sum
}

// TestCachePins: prepared segments are kept from eviction within the pin
// budget; beyond it they are ordinary segments, evicted first as the oldest.
func TestCachePins(t *testing.T) {
	dir := t.TempDir()
	c := newSegmentCache(100, 60, zap.NewNop(), nopObserver{})
	file := func(name string) string {
		p := filepath.Join(dir, name)
		if err := os.WriteFile(p, []byte("x"), 0o644); err != nil {
			t.Fatal(err)
		}
		return p
	}
	pinned, over, plain := file("pinned"), file("over"), file("plain")
	c.add(pinned, 50, nil, 0, true)
	c.add(over, 20, nil, 1, true) // 70 > 60: not pinned
	c.add(plain, 80, nil, 2, false)
	c.mu.Lock()
	for _, e := range c.items {
		e.Value.(*cacheItem).used = time.Now().Add(-time.Minute)
	}
	_, isPinned := c.pins[pinned]
	_, overPinned := c.pins[over]
	c.mu.Unlock()
	if !isPinned || overPinned {
		t.Fatalf("pinned %v, over the pin budget pinned %v", isPinned, overPinned)
	}
	c.evict()
	for p, want := range map[string]bool{pinned: true, over: false, plain: false} {
		if _, err := os.Stat(p); (err == nil) != want {
			t.Errorf("%s kept: %v, want %v", filepath.Base(p), err == nil, want)
		}
	}
	if c.size() != 50 {
		t.Errorf("cache accounts %d bytes, want the pinned 50", c.size())
	}
}

// openLibrary opens media as the library, closed when the test ends.
func openLibrary(t testing.TB, media string) *library.Library {
	t.Helper()
	lib, err := library.Open(media)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { lib.Close() })
	return lib
}
