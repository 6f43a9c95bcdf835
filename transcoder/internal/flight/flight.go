// Package flight runs one piece of work per key for every caller that asks
// for it while it runs: a probe, a subtitle conversion, thumbnails.
package flight

import (
	"context"
	"errors"
	"strings"
	"sync"

	"github.com/hlsd/hlsd/transcoder/failure"
)

// Mode says what becomes of shared work when every caller has left.
type Mode int

const (
	// Detached work goes on: its result is cached and worth having (a probe,
	// a subtitle conversion).
	Detached Mode = iota
	// Abandonable work is cancelled when its last caller leaves: nobody would
	// use the result soon (thumbnails of a film the viewer closed).
	Abandonable
)

var errAbandoned = errors.New("every request for it left")

// Group runs the work of its keys. The work runs on the owner's context,
// which the owner cancels when it closes, never on a caller's: one client
// leaving must not fail the others.
type Group struct {
	ctx context.Context
	wg  *sync.WaitGroup // the owner's: its Close waits for the work

	mu    sync.Mutex // a leaf: fn is never called under it
	calls map[string]*call
}

// call is one piece of shared work; val and err are set before done closes.
type call struct {
	done    chan struct{}
	val     any
	err     error
	waiters int // guarded by Group.mu
	cancel  context.CancelCauseFunc
}

// New returns a Group whose work runs on ctx, counted in wg.
func New(ctx context.Context, wg *sync.WaitGroup) *Group {
	return &Group{ctx: ctx, wg: wg, calls: map[string]*call{}}
}

// Do runs fn for key, or joins the run already going, and returns its
// result, or ctx's cause when the caller gives up first.
func Do[T any](f *Group, ctx context.Context, key string, mode Mode, fn func(context.Context) (T, error)) (T, error) {
	var zero T
	f.mu.Lock()
	c := f.calls[key]
	if c == nil {
		if f.ctx.Err() != nil {
			f.mu.Unlock()
			return zero, failure.ShuttingDown
		}
		wctx, cancel := context.WithCancelCause(f.ctx)
		c = &call{done: make(chan struct{}), cancel: cancel}
		f.calls[key] = c
		f.wg.Add(1)
		go func() {
			defer f.wg.Done()
			val, err := fn(wctx)
			if err != nil && f.ctx.Err() != nil {
				err = failure.ShuttingDown
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
		f.leave(key, c, Detached)
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
func (f *Group) leave(key string, c *call, mode Mode) {
	f.mu.Lock()
	defer f.mu.Unlock()
	c.waiters--
	if c.waiters == 0 && mode == Abandonable && !closed(c.done) {
		c.cancel(errAbandoned)
		if f.calls[key] == c {
			delete(f.calls, key)
		}
	}
}

func closed(ch chan struct{}) bool {
	select {
	case <-ch:
		return true
	default:
		return false
	}
}

// Touch takes and drops the group's lock: the health check's proof that
// nothing holds it.
func (f *Group) Touch() {
	f.mu.Lock()
	f.mu.Unlock() //nolint:staticcheck // taking it is the check
}

// Running is the done channel of the work under way whose key starts with
// prefix, nil when there is none.
func (f *Group) Running(prefix string) <-chan struct{} {
	f.mu.Lock()
	defer f.mu.Unlock()
	for key, c := range f.calls {
		if strings.HasPrefix(key, prefix) {
			return c.done
		}
	}
	return nil
}
