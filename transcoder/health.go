package transcoder

import (
	"context"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"sync"
	"sync/atomic"
	"time"
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
	janitorBeat  atomic.Int64
	locks, ready probe
}

// Drain makes Ready fail from now on: a load balancer stops sending new
// requests while those in flight finish.
func (t *Transcoder) Drain() { t.health.draining.Store(true) }

// Ready fails while the transcoder cannot serve: it is draining or closed,
// ffmpeg or ffprobe is missing, or the cache directory takes no file. It
// returns when ctx ends even if the file system hangs.
func (t *Transcoder) Ready(ctx context.Context) error {
	if t.health.draining.Load() || t.ctx.Err() != nil {
		return ErrShuttingDown
	}
	return t.health.ready.run(ctx, "checking ffmpeg and the cache directory", t.readyProbe)
}

func (t *Transcoder) readyProbe() error {
	for _, bin := range []string{t.cfg.FFmpeg, t.cfg.FFprobe} {
		if _, err := exec.LookPath(bin); err != nil {
			return fmt.Errorf("%w: cannot run %s: %v", ErrUnhealthy, bin, err)
		}
	}
	// Writing a few bytes, not only creating the file, also catches a
	// full disk on file systems that reserve blocks at write time.
	f, err := os.CreateTemp(t.cfg.CacheDir, ".ready-*")
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

// Live fails when the transcoder is wedged: its janitor has not run for
// janitorStale, or its locks cannot all be taken before ctx ends.
func (t *Transcoder) Live(ctx context.Context) error {
	if t.ctx.Err() != nil {
		return ErrShuttingDown
	}
	if beat := t.health.janitorBeat.Load(); beat != 0 {
		if idle := time.Since(time.Unix(0, beat)); idle > janitorStale {
			return fmt.Errorf("%w: the janitor has not run for %s", ErrUnhealthy, idle.Round(time.Second))
		}
	}
	return t.health.locks.run(ctx, "taking the transcoder's locks", t.lockProbe)
}

// lockProbe takes and drops every lock requests take, so it blocks for as
// long as one of them is held. It must follow the locks when they change.
func (t *Transcoder) lockProbe() error {
	t.mu.Lock()
	vs := make([]*variant, 0, len(t.variants))
	for _, v := range t.variants {
		vs = append(vs, v)
	}
	t.mu.Unlock()
	for _, v := range vs {
		v.mu.Lock()
		v.mu.Unlock()
	}
	return nil
}

// probe runs a check that may block forever, at most one at a time: a
// caller arriving while a run is under way waits for that run rather than
// starting another, so a wedged server does not pile up goroutines.
type probe struct {
	mu  sync.Mutex
	cur *probeRun // nil when no check runs
}

type probeRun struct {
	done chan struct{} // closed once err is set
	err  error
}

// run waits for check, started now or earlier, or for ctx to end; what
// names the check in the error of the latter.
func (p *probe) run(ctx context.Context, what string, check func() error) error {
	begin := time.Now()
	p.mu.Lock()
	r := p.cur
	if r == nil {
		r = &probeRun{done: make(chan struct{})}
		p.cur = r
		go func() {
			r.err = check()
			p.mu.Lock()
			p.cur = nil
			p.mu.Unlock()
			close(r.done)
		}()
	}
	p.mu.Unlock()
	select {
	case <-r.done:
		return r.err
	case <-ctx.Done():
		// ctx's error stays visible so a caller that left is not logged
		// as a failure.
		return fmt.Errorf("%w: %s did not finish within %s (%w)",
			ErrUnhealthy, what, time.Since(begin).Round(100*time.Millisecond), ctx.Err())
	}
}
