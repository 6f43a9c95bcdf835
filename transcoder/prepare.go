package transcoder

import (
	"bufio"
	"context"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"time"

	"github.com/hlsd/hlsd/transcoder/encode"
	"github.com/hlsd/hlsd/transcoder/failure"
	"go.uber.org/zap"
	"golang.org/x/sync/errgroup"
)

// Prepare makes the rungs of a file before anyone watches them: one ffmpeg
// decodes the source once and encodes every requested rung (ffmpeg feeds
// one decoder's frames to each output's filter and encoder), each output a
// segment muxer on the file's plan with the very arguments a head uses, so
// that prepared and on-demand segments mix in one player. The file is cut
// into chunks on segment boundaries, one process each, as many as there
// are free hardware sessions (or PrepareChunks in software). Segments
// already made are skipped, so a prepare interrupted by a restart goes on
// where it was. Prepared segments are pinned in the cache within
// PrepareBytes.
//
// Players come first: the processes run at the lowest CPU priority and are
// stopped (SIGSTOP) while any request waits for a head.
func (t *Transcoder) Prepare(ctx context.Context, path string, qualities []string, chunks int, progress func(done, total float64)) error {
	var vs []*variant
	var releases []func()
	defer func() {
		for _, r := range releases {
			r()
		}
	}()
	add := func(kind string, track int, q string) error {
		v, release, err := t.variant(ctx, path, encode.Rendition{Kind: kind, Track: track, Quality: q})
		if err != nil {
			return err
		}
		releases = append(releases, release)
		vs = append(vs, v)
		return nil
	}
	for _, q := range qualities {
		if q == encode.QualityOriginal {
			return fmt.Errorf("%w: prepare makes re-encoded rungs; original is a copy", failure.BadRequest)
		}
		if err := add("video", 0, q); err != nil {
			return err
		}
	}
	// The AAC renditions the master lists, so that a seek needs no encoder
	// at all: audio is cheap beside video, and made in the same process.
	m := vs[0].m
	for a, as := range m.info.Audio {
		for _, q := range encode.AudioQualities(as) {
			if !encode.CopiedAudio(as, q) { // a copy needs no encoder for any seek
				if err := add("audio", a, q); err != nil {
					return err
				}
			}
		}
	}
	plan := vs[0].plan
	n := plan.Len()
	missing := func(k int) []*variant {
		var out []*variant
		for _, v := range vs {
			v.mu.Lock()
			if !v.ready[k] {
				out = append(out, v)
			}
			v.mu.Unlock()
		}
		return out
	}
	// Progress: media seconds of segments every rung has.
	var pmu sync.Mutex
	have := make([]bool, n)
	done := 0.0
	report := func(k int) {
		pmu.Lock()
		defer pmu.Unlock()
		if !have[k] && len(missing(k)) == 0 {
			have[k] = true
			done += plan.Duration(k)
		}
		if progress != nil {
			progress(done, plan.Bounds[n]-plan.Bounds[0])
		}
	}
	for k := 0; k < n; k++ {
		report(k)
	}
	// Video and audio in processes of their own, one after the other in
	// each chunk: the rungs share one decode, and the audio's cost shows
	// apart (class prepare-audio).
	var groups [][]*variant
	var video, audio []*variant
	for _, v := range vs {
		if v.kind == "video" {
			video = append(video, v)
		} else {
			audio = append(audio, v)
		}
	}
	groups = append(groups, video)
	if len(audio) > 0 {
		groups = append(groups, audio)
	}
	chunks = max(1, min(chunks, n))
	var g errgroup.Group
	for c := range chunks {
		a, b := c*n/chunks, (c+1)*n/chunks
		g.Go(func() error {
			// One process at a time per chunk: each chunk holds one slot
			// of the jobs' pool.
			for _, group := range groups {
				missingHere := func(k int) []*variant {
					var out []*variant
					for _, v := range missing(k) {
						if slices.Contains(group, v) {
							out = append(out, v)
						}
					}
					return out
				}
				if err := t.prepareChunk(ctx, group, a, b, missingHere, report); err != nil {
					return err
				}
			}
			return nil
		})
	}
	if err := g.Wait(); err != nil {
		return err
	}
	return ctx.Err()
}

// Pin keeps the segments of qualities of a prepared file from eviction
// again, after a restart: the cache found them as ordinary segments.
func (t *Transcoder) Pin(ctx context.Context, path string, qualities []string) error {
	for _, q := range qualities {
		v, release, err := t.variant(ctx, path, encode.Rendition{Kind: "video", Quality: q})
		if err != nil {
			return err
		}
		v.mu.Lock()
		var made []int
		for n, ok := range v.ready {
			if ok {
				made = append(made, n)
			}
		}
		v.mu.Unlock()
		for _, n := range made {
			t.cache.pin(v.segmentPath(n))
		}
		release()
	}
	return nil
}

// PrepareChunks is how many processes a prepare would run at once.
func (t *Transcoder) PrepareChunks() int {
	if hw := t.sched.hw; hw.Usable() {
		return max(1, hw.FreeSessions())
	}
	return t.cfg.PrepareChunks
}

// prepareChunk makes the missing segments of [a, b) of every variant in vs
// with one ffmpeg per run: from the first segment some rung lacks, until
// every rung has them all. A run that stops short (a segment made by a
// head meanwhile, a restart) is followed by another from the next gap.
func (t *Transcoder) prepareChunk(ctx context.Context, vs []*variant, a, b int, missing func(int) []*variant, report func(int)) error {
	for k := a; k < b; {
		if ctx.Err() != nil {
			return ctx.Err()
		}
		if len(missing(k)) == 0 {
			k++
			continue
		}
		next, err := t.prepareRun(ctx, vs, k, b, missing, report)
		if err != nil {
			return err
		}
		k = max(next, k+1)
	}
	return nil
}

// prepareRun runs one ffmpeg from segment start for every variant, and
// returns the first segment it did not make.
func (t *Transcoder) prepareRun(ctx context.Context, vs []*variant, start, end int, missing func(int) []*variant, report func(int)) (int, error) {
	m := vs[0].m
	video := m.info.Video[0]
	profile := encode.Profile{Accel: encode.AccelNone, Preset: t.cfg.Preset}
	hw := false
	if vs[0].kind == "video" {
		if release, ok := t.sched.hw.Acquire(video); ok {
			defer release()
			profile, hw = t.sched.hw.Profile(), true
		}
	}
	work, err := os.MkdirTemp(t.layout.root(), ".prepare-")
	if err != nil {
		return start, fmt.Errorf("%w: cannot create work directory: %v", failure.Encoder, err)
	}
	defer os.RemoveAll(work)

	// The heads' own arguments: the video rungs share one input (one
	// decode), each audio rendition has an input of its own (its run
	// starts on the AAC frame grid, not at the video's seek point).
	var ins, outs []string
	dirs := make([]string, len(vs))
	n := 0 // inputs so far
	for i, v := range vs {
		dirs[i] = filepath.Join(work, strconv.Itoa(i))
		if err := os.Mkdir(dirs[i], 0o755); err != nil {
			return start, err
		}
		spec := v.spec(start, dirs[i], profile)
		spec.NoSegmentList = true // a prepare finds its segments on disk
		own := i == 0 || v.kind == "audio"
		if own {
			spec.InputIndex = n
			n++
		}
		input, output := encode.Parts(spec)
		if own {
			ins = append(ins, input...)
		}
		outs = append(outs, output...)
	}
	args := slices.Concat(encode.GlobalArgs, ins, outs)
	parent := ctx
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	class := "prepare"
	if vs[0].kind == "audio" {
		class = "prepare-audio"
	}
	run, err := t.run.startRun(ctx, m, args, class, "prepare")
	if err != nil {
		return start, err
	}
	stopped := t.yieldToPlayers(ctx, run.cmd.Process.Pid)
	t.log.Debug("prepare run", zap.String("file", m.name), zap.Int("from", start), zap.Int("to", end), zap.Bool("hw", hw))

	// A rung's segment k is complete once ffmpeg opens k+1 (the segment
	// muxer closes one before it opens the next), or once ffmpeg ended well.
	next := make([]int, len(vs))
	initSeen := make([]bool, len(vs))
	for i := range next {
		next[i] = start
	}
	collect := func(final bool) error {
		for i, v := range vs {
			for {
				cur := filepath.Join(dirs[i], fmt.Sprintf("s-%d.mp4", next[i]))
				if _, err := os.Stat(cur); err != nil {
					break
				}
				if _, err := os.Stat(filepath.Join(dirs[i], fmt.Sprintf("s-%d.mp4", next[i]+1))); err != nil && !final {
					break
				}
				k := next[i]
				next[i]++
				v.mu.Lock()
				made := v.ready[k]
				v.mu.Unlock()
				if k >= end || made {
					// Past the chunk, or made by a head meanwhile: the
					// segment players may already hold stays.
					os.Remove(cur)
					continue
				}
				if _, _, err := v.store(k, cur, &initSeen[i], hw, true); err != nil {
					return err
				}
				report(k)
			}
		}
		return nil
	}
	finished := func() bool {
		for i := range vs {
			if next[i] < end {
				return false
			}
		}
		return true
	}
	// Progress lines are read only to keep the pipe flowing; segments are
	// found on disk.
	lines := make(chan struct{})
	go func() {
		_, _ = bufio.NewReader(run.stdout).WriteTo(discard{})
		close(lines)
	}()
	tick := time.NewTicker(200 * time.Millisecond)
	defer tick.Stop()
	var runErr error
	ended := false
	for !ended && !finished() && runErr == nil {
		select {
		case <-lines:
			ended = true
		case <-tick.C:
			runErr = collect(false)
		}
	}
	if !ended {
		cancel() // done with it, or it failed: the rest of its output is not wanted
	}
	waitErr := run.wait()
	if ended && ctx.Err() == nil {
		cancel()
	}
	<-stopped
	switch {
	case runErr != nil:
		return start, runErr
	case parent.Err() != nil:
		return slices.Min(next), parent.Err()
	case finished():
		return slices.Min(next), nil
	case waitErr != nil && !ended:
		return start, fmt.Errorf("%w: prepare: ffmpeg stopped: %v", failure.Encoder, waitErr)
	case waitErr != nil:
		return start, fmt.Errorf("%w: prepare: ffmpeg exited with %v: %s", failure.Encoder, waitErr, strings.TrimSpace(run.stderr.String()))
	}
	// ffmpeg reached the end of the file: its last segments are complete.
	if err := collect(true); err != nil {
		return start, err
	}
	return slices.Min(next), nil
}

// yieldToPlayers runs a prepare's ffmpeg at the lowest priority and stops
// it while a request waits for a head, until ctx ends; the returned channel
// is closed once it has let the process go on for good.
func (t *Transcoder) yieldToPlayers(ctx context.Context, pid int) <-chan struct{} {
	_ = syscall.Setpriority(syscall.PRIO_PGRP, pid, 19)
	out := make(chan struct{})
	go func() {
		defer close(out)
		stopped := false
		// Often: a player's first segment must not share the CPU for long.
		tick := time.NewTicker(25 * time.Millisecond)
		defer tick.Stop()
		for {
			select {
			case <-ctx.Done():
				if stopped {
					_ = syscall.Kill(-pid, syscall.SIGCONT)
				}
				return
			case <-tick.C:
			}
			wait := t.sched.playerWaiting()
			if wait != stopped {
				sig := syscall.SIGCONT
				if wait {
					sig = syscall.SIGSTOP
				}
				_ = syscall.Kill(-pid, sig)
				stopped = wait
			}
		}
	}()
	return out
}

// playerWaiting says whether a request waits for a head's segment now.
func (s *scheduler) playerWaiting() bool {
	for _, h := range s.live() {
		if h.waited() {
			return true
		}
	}
	return false
}

// HeadActivity is a running encoder head, for the Activity view.
type HeadActivity struct {
	File     string   `json:"file"`
	Variant  string   `json:"variant"`
	Start    int      `json:"start"`   // first segment of its run
	Segment  int      `json:"segment"` // the one it makes now
	Clients  []string `json:"clients"`
	Reason   string   `json:"reason"`
	Speed    float64  `json:"speed"` // media seconds made per second since it started
	CPU      float64  `json:"cpu"`   // CPU seconds its ffmpeg used so far
	Waited   bool     `json:"waited"`
	Hardware bool     `json:"hardware"`
	Paused   bool     `json:"paused"`
}

// Activity lists the running encoder heads.
func (t *Transcoder) Activity() []HeadActivity {
	out := []HeadActivity{}
	for _, h := range t.sched.live() {
		h.sigMu.Lock()
		pid, began := h.pid, h.began
		h.sigMu.Unlock()
		if pid == 0 {
			continue
		}
		v := h.v
		a := HeadActivity{File: v.m.name, Variant: v.name(), Start: h.start, Reason: h.reason,
			Hardware: h.hw.Load(), Paused: h.paused.Load(), CPU: processCPU(pid)}
		v.mu.Lock()
		a.Segment = h.next
		a.Waited = h.waiting > 0
		for c := range h.readers {
			a.Clients = append(a.Clients, c)
		}
		if el := time.Since(began).Seconds(); el > 0 && h.next > h.start && h.next < len(v.plan.Bounds) {
			a.Speed = (v.plan.Bounds[h.next] - v.plan.Bounds[h.start]) / el
		}
		v.mu.Unlock()
		out = append(out, a)
	}
	return out
}

// processCPU reads a process's user and system time from /proc (clock
// ticks of 1/100 s on Linux), 0 when it cannot.
func processCPU(pid int) float64 {
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", pid))
	if err != nil {
		return 0
	}
	s := string(b)
	fields := strings.Fields(s[strings.LastIndexByte(s, ')')+1:])
	if len(fields) < 13 {
		return 0
	}
	utime, _ := strconv.ParseFloat(fields[11], 64)
	stime, _ := strconv.ParseFloat(fields[12], 64)
	return (utime + stime) / 100
}
