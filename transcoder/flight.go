package transcoder

import (
	"context"
	"errors"
	"sync"
)

// flightMode says what becomes of shared work when every caller has left.
type flightMode int

const (
	// detached work goes on: its result is cached and worth having (a probe,
	// a subtitle conversion).
	detached flightMode = iota
	// abandonable work is cancelled when its last caller leaves: nobody would
	// use the result soon (thumbnails of a film the viewer closed).
	abandonable
)

var errAbandoned = errors.New("every request for it left")

// flight runs one piece of work per key for all the callers that ask for it
// while it runs. The work runs on a context of the transcoder's, which Close
// cancels, never on a caller's: one client leaving must not fail the others.
type flight struct {
	ctx context.Context
	wg  *sync.WaitGroup // the transcoder's: Close waits for the work

	mu    sync.Mutex // a leaf: fn is never called under it
	calls map[string]*call
}

// call is one piece of shared work; val and err are set before done closes.
type call struct {
	done    chan struct{}
	val     any
	err     error
	waiters int // guarded by flight.mu
	cancel  context.CancelCauseFunc
}

func newFlight(ctx context.Context, wg *sync.WaitGroup) *flight {
	return &flight{ctx: ctx, wg: wg, calls: map[string]*call{}}
}

// shared runs fn for key, or joins the run already going, and returns its
// result, or ctx's cause when the caller gives up first.
func shared[T any](f *flight, ctx context.Context, key string, mode flightMode, fn func(context.Context) (T, error)) (T, error) {
	var zero T
	f.mu.Lock()
	c := f.calls[key]
	if c == nil {
		if f.ctx.Err() != nil {
			f.mu.Unlock()
			return zero, ErrShuttingDown
		}
		wctx, cancel := context.WithCancelCause(f.ctx)
		c = &call{done: make(chan struct{}), cancel: cancel}
		f.calls[key] = c
		f.wg.Add(1)
		go func() {
			defer f.wg.Done()
			val, err := fn(wctx)
			if err != nil && f.ctx.Err() != nil {
				err = ErrShuttingDown
			}
			f.mu.Lock()
			if f.calls[key] == c {
				delete(f.calls, key)
			}
			f.mu.Unlock()
			c.val, c.err = val, err
			close(c.done)
			cancel(nil)
		}()
	}
	c.waiters++
	f.mu.Unlock()

	select {
	case <-c.done:
		f.leave(key, c, detached)
		if c.err != nil {
			return zero, c.err
		}
		return c.val.(T), nil
	case <-ctx.Done():
		f.leave(key, c, mode)
		return zero, context.Cause(ctx)
	}
}

// leave counts a caller out; the last one to leave abandonable work stops it
// and forgets it, so that a later caller starts afresh rather than join a
// cancelled run.
func (f *flight) leave(key string, c *call, mode flightMode) {
	f.mu.Lock()
	defer f.mu.Unlock()
	c.waiters--
	if c.waiters == 0 && mode == abandonable && !isClosed(c.done) {
		c.cancel(errAbandoned)
		if f.calls[key] == c {
			delete(f.calls, key)
		}
	}
}
