package transcoder

import (
	"context"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"sync/atomic"
	"time"

	"github.com/hlsd/hlsd/transcoder/failure"
	"github.com/hlsd/hlsd/transcoder/internal/flight"
)

// ErrUnhealthy says the transcoder cannot serve: it is wedged, or ffmpeg or
// a writable cache is missing. Unlike an encoder failure it concerns every
// request, so the server answers 503.
var ErrUnhealthy = errors.New("unhealthy")

// janitorStale is how long the janitor, which runs every second, may go
// without a round before Live calls the transcoder wedged.
const janitorStale = 5 * time.Second

// health is what Live and Ready keep between calls.
type health struct {
	draining atomic.Bool
	// janitorBeat is when the janitor last waited for its next round, in
	// Unix nanoseconds; 0 until its goroutine first runs.
	janitorBeat atomic.Int64
}

// Drain makes Ready fail from now on: a load balancer stops sending new
// requests while those in flight finish.
func (t *Transcoder) Drain() { t.health.draining.Store(true) }

// Ready fails while the transcoder cannot serve: it is draining or closed,
// ffmpeg or ffprobe is missing, or the cache directory takes no file. It
// returns when ctx ends even if the file system hangs.
func (t *Transcoder) Ready(ctx context.Context) error {
	if t.health.draining.Load() || t.ctx.Err() != nil {
		return failure.ShuttingDown
	}
	return t.check(ctx, "checking ffmpeg and the cache directory", t.readyProbe)
}

func (t *Transcoder) readyProbe() error {
	for _, bin := range []string{t.cfg.FFmpeg, t.cfg.FFprobe} {
		if _, err := exec.LookPath(bin); err != nil {
			return fmt.Errorf("%w: cannot run %s: %v", ErrUnhealthy, bin, err)
		}
	}
	// Writing a few bytes, not only creating the file, also catches a
	// full disk on file systems that reserve blocks at write time.
	f, err := os.CreateTemp(t.layout.root(), ".ready-*")
	if err != nil {
		return fmt.Errorf("%w: the cache directory is not writable: %v", ErrUnhealthy, err)
	}
	_, werr := f.Write([]byte("ready\n"))
	cerr := f.Close()
	os.Remove(f.Name())
	if err := errors.Join(werr, cerr); err != nil {
		return fmt.Errorf("%w: the cache directory is not writable: %v", ErrUnhealthy, err)
	}
	return nil
}

// check runs probe as shared, flight.Detached work: a caller arriving while one
// is under way waits for it rather than start another, so a wedged server
// does not pile up goroutines. what names it in the error when ctx ends first.
func (t *Transcoder) check(ctx context.Context, what string, probe func() error) error {
	begin := time.Now()
	_, err := flight.Do(t.flight, ctx, "health\x00"+what, flight.Detached, func(context.Context) (struct{}, error) {
		return struct{}{}, probe()
	})
	if err != nil && ctx.Err() != nil && !errors.Is(err, ErrUnhealthy) {
		// ctx's error stays visible so a caller that left is not logged
		// as a failure.
		return fmt.Errorf("%w: %s did not finish within %s (%w)",
			ErrUnhealthy, what, time.Since(begin).Round(100*time.Millisecond), ctx.Err())
	}
	return err
}

// Live fails when the transcoder is wedged: its janitor has not run for
// janitorStale, or its locks cannot all be taken before ctx ends.
func (t *Transcoder) Live(ctx context.Context) error {
	if t.ctx.Err() != nil {
		return failure.ShuttingDown
	}
	if beat := t.health.janitorBeat.Load(); beat != 0 {
		if idle := time.Since(time.Unix(0, beat)); idle > janitorStale {
			return fmt.Errorf("%w: the janitor has not run for %s", ErrUnhealthy, idle.Round(time.Second))
		}
	}
	return t.check(ctx, "taking the transcoder's locks", t.lockProbe)
}

// lockProbe takes and drops every lock requests take, so it blocks for as
// long as one of them is held. It must follow the locks when they change
// (see Transcoder).
func (t *Transcoder) lockProbe() error {
	for _, m := range t.files.snapshot() {
		m.mu.Lock()
		vs := make([]*variant, 0, len(m.variants))
		for _, v := range m.variants {
			vs = append(vs, v)
		}
		m.mu.Unlock()
		for _, v := range vs {
			v.mu.Lock()
			v.mu.Unlock() //nolint:staticcheck // taking it is the check
		}
	}
	t.cache.size()
	t.sched.live()
	t.clients.mu.Lock()
	t.clients.mu.Unlock() //nolint:staticcheck
	t.flight.Touch()
	return nil
}
