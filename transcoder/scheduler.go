package transcoder

import (
	"context"
	"errors"
	"sync"
	"sync/atomic"
	"time"

	"github.com/hlsd/hlsd/transcoder/encode"
	"github.com/hlsd/hlsd/transcoder/failure"
	"github.com/hlsd/hlsd/transcoder/probe"
	"go.uber.org/zap"
)

// errNoSlotForPrefetch stops a prefetch that found no free encoder: work
// nobody waits for yet is not worth queueing for, so it is a deliberate
// stop, not a failure.
var errNoSlotForPrefetch = errors.New("no free encoder for a prefetch")

// scheduler owns the encoder slots: a cap on CPU-bound re-encodes (heavy),
// one on stream copies and audio encodes (light), and the hardware
// sessions. It knows every live head, so that a request that finds no free
// slot can take one from a head nobody waits for, and the janitor can stop
// idle ones.
type scheduler struct {
	heavy, light chan struct{}
	hw           *encode.Hardware // nil: software only
	capacityWait time.Duration
	log          *zap.Logger
	prioKick     chan struct{} // wakes prioritize (priority.go)
	niceOK       atomic.Bool   // false once raising a niced head back failed

	mu    sync.Mutex // a leaf: head state is read after it is released
	heads map[*head]struct{}
}

func newScheduler(maxEncoders, maxCopies int, hw *encode.Hardware, capacityWait time.Duration, log *zap.Logger) *scheduler {
	s := &scheduler{heavy: make(chan struct{}, maxEncoders), light: make(chan struct{}, maxCopies),
		hw: hw, capacityWait: capacityWait, log: log, prioKick: make(chan struct{}, 1), heads: map[*head]struct{}{}}
	s.niceOK.Store(true)
	return s
}

// register and unregister bracket a head's life.
func (s *scheduler) register(h *head) {
	s.mu.Lock()
	s.heads[h] = struct{}{}
	s.mu.Unlock()
}

func (s *scheduler) unregister(h *head) {
	s.mu.Lock()
	delete(s.heads, h)
	s.mu.Unlock()
}

// live is a snapshot of the live heads.
func (s *scheduler) live() []*head {
	s.mu.Lock()
	defer s.mu.Unlock()
	hs := make([]*head, 0, len(s.heads))
	for h := range s.heads {
		hs = append(hs, h)
	}
	return hs
}

// acquire waits for an encoder slot of the head's class. When none is free,
// a head nobody is waiting on gives its slot up: a waiting request goes first.
func (s *scheduler) acquire(ctx context.Context, h *head) (func(), error) {
	if h.heavy && !h.v.softwareOnly() {
		if release, ok := s.hw.Acquire(h.v.video()); ok {
			h.hw.Store(true)
			return release, nil
		}
	}
	sem := s.light
	if h.heavy {
		sem = s.heavy
	}
	release := func() { <-sem }
	select {
	case sem <- struct{}{}:
		return release, nil
	default:
	}
	if h.reason == "prefetch" {
		return nil, errNoSlotForPrefetch
	}
	timer := time.NewTimer(s.capacityWait)
	defer timer.Stop()
	// A head that is not preemptible now (its reader asked a moment ago)
	// may be soon, so look again while waiting rather than only once.
	again := time.NewTicker(200 * time.Millisecond)
	defer again.Stop()
	for {
		s.preempt(h)
		select {
		case sem <- struct{}{}:
			return release, nil
		case <-again.C:
		case <-timer.C:
			return nil, &failure.CapacityError{RetryAfter: 2 * time.Second}
		case <-ctx.Done():
			return nil, context.Cause(ctx)
		}
	}
}

// canPrefetch leaves the last re-encode slot to requests that wait; a free
// hardware session may always prefetch. It takes no lock, so a variant may
// ask under its own.
func (s *scheduler) canPrefetch(v *variant) bool {
	if v.costClass() == "encode" {
		return len(s.heavy) < cap(s.heavy) || (!v.noHW && s.hw.Free(v.video()))
	}
	return len(s.light) < cap(s.light)
}

// preempt stops a running head of the same class that nobody waits on and
// that can spare its slot: one whose readers have not asked for 2 s, or one
// at least two segments ahead of the furthest segment asked for (its reader
// has 8 s of content in hand, far more than a restart costs). The head
// furthest ahead goes first, then the one wanted least recently.
func (s *scheduler) preempt(for_ *head) {
	var victim *head
	var most int
	var oldest time.Time
	for _, h := range s.live() {
		// A hardware head holds a GPU session, not the CPU slot for_ waits for.
		if h == for_ || h.heavy != for_.heavy || h.hw.Load() {
			continue
		}
		if h.ctx.Err() != nil {
			if h.running.Load() {
				// One is already giving its slot up: wait for it rather
				// than stop a second.
				return
			}
			continue
		}
		if !h.running.Load() {
			continue
		}
		ahead, last, ok := h.spare()
		if !ok {
			continue
		}
		if victim == nil || ahead > most || (ahead == most && last.Before(oldest)) {
			victim, most, oldest = h, ahead, last
		}
	}
	if victim != nil {
		victim.stop(errPreempted)
	}
}

// stopIdle stops the heads nobody has asked anything of for idle.
func (s *scheduler) stopIdle(idle time.Duration) {
	for _, h := range s.live() {
		if h.idle(idle) {
			h.stop(errIdle)
		}
	}
}

// encoders counts the software re-encodes other than except (nil: none)
// that run and are not paused: the heads sharing the cores, whose speed
// measures the load rather than the machine.
func (s *scheduler) encoders(except *head) int {
	n := 0
	for _, h := range s.live() {
		if h != except && h.heavy && !h.hw.Load() && h.started() && !h.paused.Load() {
			n++
		}
	}
	return n
}

// profileFor is the profile the next head of a rung of v gets, as far as
// the master can tell: the accelerator's when it is on and takes v.
func (s *scheduler) profileFor(v probe.VideoStream, preset string) (encode.Profile, bool) {
	if s.hw.Usable() && s.hw.Profile().Handles(v) {
		return s.hw.Profile(), true
	}
	return encode.Profile{Accel: encode.AccelNone, Preset: preset}, false
}
