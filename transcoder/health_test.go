package transcoder

import (
	"context"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"go.uber.org/zap/zaptest"

	"github.com/hlsd/hlsd/transcoder/encode"
	"github.com/hlsd/hlsd/transcoder/testmedia"
)

// healthTranscoder is a running transcoder over a library of h264.mp4.
func healthTranscoder(t *testing.T) *Transcoder {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Minute)
	defer cancel()
	src, err := testmedia.Make(ctx, testmedia.CacheDir(), "h264.mp4")
	if err != nil {
		t.Fatal(err)
	}
	media := t.TempDir()
	if err := os.Link(src, filepath.Join(media, "h264.mp4")); err != nil {
		t.Fatal(err)
	}
	tc := New(Config{Library: openLibrary(t, media), CacheDir: t.TempDir(), Log: zaptest.NewLogger(t)})
	if err := tc.Initialize(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(tc.Close)
	return tc
}

func live(tc *Transcoder, d time.Duration) error {
	ctx, cancel := context.WithTimeout(context.Background(), d)
	defer cancel()
	return tc.Live(ctx)
}

// healthCheck is the health check under way, nil when none is.
func (t *Transcoder) healthCheck() <-chan struct{} {
	return t.flight.Running("health\x00")
}

// While a lock requests need is held, Live fails by its deadline; callers
// meanwhile share the one stuck probe, which ends once the lock is free.
func TestLiveWhenWedged(t *testing.T) {
	tc := healthTranscoder(t)
	if err := live(tc, 2*time.Second); err != nil {
		t.Fatalf("Live on an idle transcoder: %v", err)
	}
	// A variant, so that the probe has a variant lock to take too.
	v, release, err := tc.variant(context.Background(), "h264.mp4", encode.Rendition{Kind: "video", Quality: "360p"})
	if err != nil {
		t.Fatal(err)
	}
	release()

	for _, c := range []struct {
		name string
		mu   *sync.Mutex
	}{{"registry lock", &tc.files.mu}, {"media lock", &v.m.mu}, {"variant lock", &v.mu}, {"cache lock", &tc.cache.mu},
		{"scheduler lock", &tc.sched.mu}, {"clients lock", &tc.clients.mu}} {
		c.mu.Lock()
		begin := time.Now()
		errs := make(chan error, 3)
		for range cap(errs) {
			go func() { errs <- live(tc, 2*time.Second) }()
		}
		for range cap(errs) {
			if err := <-errs; !errors.Is(err, ErrUnhealthy) || !strings.Contains(err.Error(), "locks") {
				t.Errorf("%s held: Live = %v, want the locks reported", c.name, err)
			}
		}
		if d := time.Since(begin); d > 2500*time.Millisecond {
			t.Errorf("%s held: Live took %v, want its 2 s deadline", c.name, d)
		}
		run := tc.healthCheck()
		if run == nil {
			c.mu.Unlock()
			t.Fatalf("%s held: no probe is running", c.name)
		}
		if err := live(tc, 100*time.Millisecond); !errors.Is(err, ErrUnhealthy) {
			t.Errorf("%s held: Live = %v, want ErrUnhealthy", c.name, err)
		}
		if now := tc.healthCheck(); now != run {
			t.Errorf("%s held: a later Live started another probe instead of waiting for the stuck one", c.name)
		}
		c.mu.Unlock()
		select {
		case <-run:
		case <-time.After(time.Second):
			t.Fatalf("%s released: the stuck probe did not end", c.name)
		}
		if tc.healthCheck() != nil {
			t.Errorf("%s released: a probe still counts as running", c.name)
		}
		if err := live(tc, 2*time.Second); err != nil {
			t.Errorf("%s released: Live = %v", c.name, err)
		}
	}
}

// A janitor that has not run for 5 s makes Live fail at once, whatever the
// deadline, and Live recovers once the janitor runs again.
func TestLiveJanitorStalled(t *testing.T) {
	tc := healthTranscoder(t)
	// The janitor takes the cache's lock every round: holding it stalls the janitor.
	tc.cache.mu.Lock()
	locked := true
	defer func() {
		if locked {
			tc.cache.mu.Unlock()
		}
	}()
	deadline := time.Now().Add(8 * time.Second)
	for {
		begin := time.Now()
		err := live(tc, 100*time.Millisecond)
		if err != nil && strings.Contains(err.Error(), "janitor") {
			if !errors.Is(err, ErrUnhealthy) {
				t.Errorf("Live = %v, want ErrUnhealthy", err)
			}
			if d := time.Since(begin); d > 50*time.Millisecond {
				t.Errorf("Live took %v to see the stalled janitor", d)
			}
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("8 s into a stalled janitor Live = %v, want the janitor reported", err)
		}
		time.Sleep(200 * time.Millisecond)
	}
	tc.cache.mu.Unlock()
	locked = false
	deadline = time.Now().Add(3 * time.Second)
	for {
		err := live(tc, 2*time.Second)
		if err == nil {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("3 s after the janitor was free Live = %v", err)
		}
		time.Sleep(100 * time.Millisecond)
	}
}
