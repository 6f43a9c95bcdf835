package transcoder

import (
	"context"
	"errors"
	"syscall"

	"go.uber.org/zap"
)

// aheadNice is the niceness of a head no request waits on: it works for a
// later need, while another head's segment is late now.
const aheadNice = 10

// A head's CPU standing, applied to its ffmpeg's process group.
const (
	prioNormal = iota // a request waits on it
	prioNiced         // it runs ahead, or prefetches
	prioPaused        // SIGSTOPped while a waited-for re-encode needs the cores
)

// prioritize gives the CPU to what players wait for. It runs on a kick
// after any head starts or ends, and whenever a request begins or stops
// waiting on one; a single goroutine applies every change, so two
// decisions never cross.
func (s *scheduler) prioritize(ctx context.Context) {
	for {
		select {
		case <-ctx.Done():
			return
		case <-s.prioKick:
		}
		s.rebalance()
	}
}

// reprioritize asks for a rebalance soon. It takes no lock, so it may be
// called from anywhere.
func (s *scheduler) reprioritize() {
	select {
	case s.prioKick <- struct{}{}:
	default:
	}
}

// rebalance runs waited-for heads at normal priority, the others niced,
// and pauses the re-encodes nobody waits for while a waited-for re-encode
// runs: on a small machine one x264 takes every core, and a segment a
// player waits for is worth more than one it may want later.
func (s *scheduler) rebalance() {
	type state struct {
		h      *head
		waited bool
	}
	var hs []state
	urgent := false
	for _, h := range s.live() {
		w := h.waited()
		hs = append(hs, state{h, w})
		urgent = urgent || (w && h.heavy && h.started())
	}
	// Resume first, so a waited head never waits on a pause being applied.
	for _, pass := range []bool{true, false} {
		for _, st := range hs {
			if st.waited != pass {
				continue
			}
			want := prioNormal
			switch {
			case st.waited:
			case st.h.heavy && urgent && !st.h.hw.Load():
				want = prioPaused
			default:
				want = prioNiced
			}
			s.apply(st.h, want)
		}
	}
}

// apply moves h to want, if its ffmpeg runs.
func (s *scheduler) apply(h *head, want int) {
	h.sigMu.Lock()
	defer h.sigMu.Unlock()
	if h.pid == 0 || h.prio == want {
		return
	}
	nice := aheadNice
	if want == prioNormal {
		nice = 0
	}
	if s.niceOK.Load() {
		// The whole group, threads included. Lowering the niceness back to
		// 0 needs CAP_SYS_NICE (or RLIMIT_NICE); without it, heads stay
		// at normal priority and only pausing is used.
		if err := syscall.Setpriority(syscall.PRIO_PGRP, h.pid, nice); err != nil && nice == 0 &&
			(errors.Is(err, syscall.EPERM) || errors.Is(err, syscall.EACCES)) {
			s.niceOK.Store(false)
			_ = syscall.Setpriority(syscall.PRIO_PGRP, h.pid, aheadNice)
			s.log.Info("cannot raise an encoder's priority back (no CAP_SYS_NICE): encoders are no longer niced, only paused", zap.Error(err))
		}
	}
	switch {
	case want == prioPaused:
		_ = syscall.Kill(-h.pid, syscall.SIGSTOP)
	case h.prio == prioPaused:
		_ = syscall.Kill(-h.pid, syscall.SIGCONT)
	}
	h.prio = want
	h.paused.Store(want == prioPaused)
}
