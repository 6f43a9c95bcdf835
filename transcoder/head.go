package transcoder

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/hlsd/hlsd/transcoder/encode"
	"github.com/hlsd/hlsd/transcoder/failure"
	"go.uber.org/zap"
)

// head is one ffmpeg run producing segments of a variant from `start` onward.
type head struct {
	v      *variant
	id     int
	start  int
	heavy  bool // re-encodes video: counts against the CPU-bound cap
	reason string
	dir    string
	// hw: holds a hardware session and encodes on the GPU. running: holds
	// its encoder slot. Atomics, so the scheduler reads them without v.mu.
	hw, running atomic.Bool

	ctx       context.Context
	cancel    context.CancelCauseFunc
	done      chan struct{}
	err       error // set before done is closed
	stoppedBy error // why hlsd stopped it; nil when ffmpeg ended by itself

	// guarded by v.mu
	next       int       // the segment ffmpeg is writing now
	lastDemand time.Time // last time a reader asked for a segment this head serves
	demandSeg  int       // furthest segment a reader asked for
	readers    map[string]time.Time
	waiting    int // requests of players waiting on it
	// background: requests waiting on it that are no player's (downloads):
	// it is kept from going idle, but runs as if nobody waited.
	background int
	// released: every client that read from it moved elsewhere.
	released bool
	// initSeen: its init was kept or checked (publish, the head's goroutine only).
	initSeen bool

	// sigMu guards pid, the ffmpeg's process group while it may be
	// signalled (0 before it starts and once it is about to be reaped, so
	// a reused pid is never signalled), and prio, its CPU standing, which
	// only the scheduler's prioritize goroutine changes.
	sigMu sync.Mutex
	pid   int
	// began is when its ffmpeg started (set before pid).
	began time.Time
	prio  int
	// paused mirrors prio == prioPaused for spare, which runs under v.mu.
	paused atomic.Bool
}

// waited says whether a request waits on h now.
func (h *head) waited() bool {
	h.v.mu.Lock()
	defer h.v.mu.Unlock()
	return h.waiting > 0
}

// started says whether h's ffmpeg runs.
func (h *head) started() bool {
	h.sigMu.Lock()
	defer h.sigMu.Unlock()
	return h.pid != 0
}

// setPID records h's ffmpeg (0: gone) and has priorities looked at again.
func (h *head) setPID(pid int) {
	h.sigMu.Lock()
	if pid != 0 {
		h.began = time.Now()
	}
	h.pid = pid
	h.sigMu.Unlock()
	h.v.env.sched.reprioritize()
}

// Reasons a head stops; logged and counted, so the set is fixed.
var (
	errReachedExisting = errors.New("reached segments that already exist")
	errTooFarAhead     = errors.New("too far ahead of every reader")
	errIdle            = errors.New("idle: nobody asked for its output")
	errReleased        = errors.New("released by its client")
	errPreempted       = errors.New("preempted by a waiting request")
	errShutdown        = errors.New("server shutting down")
)

func (h *head) stop(cause error) { h.cancel(cause) }

// wait counts a request's wait on h. Caller holds v.mu.
func (h *head) wait(background bool) {
	if background {
		h.background++
	} else {
		h.waiting++
	}
}

// leave ends a request's wait on h; the last one to leave a released head
// stops it: its players are elsewhere. Caller holds v.mu.
func (h *head) leave(background bool) {
	if background {
		h.background--
	} else {
		h.waiting--
	}
	if h.waiting == 0 && h.background == 0 && h.released && len(h.readers) == 0 {
		h.stop(errReleased)
	}
}

// class labels the head in metrics: "hardware" for GPU encodes, else the
// variant's cost class. Only the head's own goroutine may call it.
func (h *head) class() string {
	if h.hw.Load() {
		return "hardware"
	}
	return h.v.costClass()
}

// spare says whether the head could give its slot up to a waiting request,
// with how far it is ahead of its readers and when they last asked.
func (h *head) spare() (ahead int, last time.Time, ok bool) {
	h.v.mu.Lock()
	defer h.v.mu.Unlock()
	if h.waiting > 0 {
		return 0, time.Time{}, false
	}
	if h.paused.Load() {
		// It holds a slot and makes nothing: the first to give it up.
		return h.next - h.demandSeg, h.lastDemand, true
	}
	if h.next == h.start {
		return 0, time.Time{}, false
	}
	ahead = h.next - h.demandSeg
	if time.Since(h.lastDemand) <= 2*time.Second && ahead < 2 {
		return 0, time.Time{}, false
	}
	return ahead, h.lastDemand, true
}

// idle says whether nobody has asked anything of the head for d.
func (h *head) idle(d time.Duration) bool {
	h.v.mu.Lock()
	defer h.v.mu.Unlock()
	return h.waiting == 0 && h.background == 0 && time.Since(h.lastDemand) > d
}

// run owns the ffmpeg process; it ends when ffmpeg does.
func (h *head) run() {
	e := h.v.env
	defer e.wg.Done()
	defer h.v.m.release()
	e.sched.register(h)
	defer func() {
		e.sched.unregister(h)
		e.sched.reprioritize() // a waited-for head that ends may free paused ones
	}()
	err := h.runInner()
	cause := context.Cause(h.ctx)
	switch {
	case h.ctx.Err() != nil && !errors.Is(err, failure.Encoder):
		// Stopped on purpose (idle, released, preempted, a prefetch with no
		// free slot, shutdown). A publish failure also cancels the context,
		// but it is a failure.
		err = nil
		e.log.Debug("encoder stopped", append(h.fields(), zap.String("why", cause.Error()))...)
	case err == nil:
		e.log.Debug("encoder finished", h.fields()...)
	case errors.As(err, new(*failure.CapacityError)):
		e.log.Warn("no free encoder", append(h.fields(), zap.Error(err))...)
	case errors.As(err, new(*encode.HWError)):
		// The variant's next runs are in software; the request that waits
		// on this head starts one at once.
		e.log.Warn("hardware encoder failed, falling back to software", append(h.fields(), zap.Error(err))...)
		h.v.setSoftwareOnly()
		e.sched.hw.Failed(err)
	default:
		e.log.Error("encoder failed", append(h.fields(), zap.Error(err))...)
	}
	h.v.headEnded(h, err)
	os.RemoveAll(h.dir)
	h.cancel(nil)
}

func (h *head) fields() []zap.Field {
	v := h.v
	return []zap.Field{zap.String("file", v.m.name), zap.String("variant", v.name()),
		zap.Int("start", h.start), zap.Int("head", h.id)}
}

func (h *head) runInner() error {
	e := h.v.env
	release, err := e.sched.acquire(h.ctx, h)
	if errors.Is(err, errNoSlotForPrefetch) {
		h.stop(err) // a deliberate stop: whoever joined the head starts their own
		return nil
	}
	if err != nil {
		return err
	}
	h.running.Store(true)
	defer func() {
		h.running.Store(false)
		release()
	}()

	if err := os.MkdirAll(h.dir, 0o755); err != nil {
		return fmt.Errorf("%w: cannot create work directory: %v", failure.Encoder, err)
	}
	profile := encode.Profile{Accel: encode.AccelNone, Preset: e.preset}
	if h.hw.Load() {
		profile = e.sched.hw.Profile()
	}
	return h.encode(profile)
}

// encode runs ffmpeg with the given video profile until it ends.
func (h *head) encode(profile encode.Profile) error {
	e := h.v.env
	args := encode.Args(h.v.spec(h.start, h.dir, profile))
	e.log.Debug("ffmpeg command", append(h.fields(), zap.Strings("args", args))...)
	run, err := e.run.startRun(h.ctx, h.v.m, args, h.class(), h.reason)
	if err != nil {
		return err
	}
	h.setPID(run.cmd.Process.Pid)
	e.log.Debug("encoder started", append(h.fields(), zap.String("reason", h.reason))...)

	hw := h.hw.Load()
	var stall *time.Timer
	if hw {
		// A GPU that hangs rather than fails would hold its viewers forever.
		stall = time.AfterFunc(e.hwStall, func() { h.stop(encode.ErrHWStalled) })
		defer stall.Stop()
	}

	// Speeds are learnt from re-encodes, over the time the head had the
	// cores to itself.
	var meter *encode.Meter
	speedKey := ""
	if h.heavy {
		meter = encode.NewMeter(func() bool { return !h.paused.Load() && e.sched.encoders(h) == 0 })
		speedKey = h.v.speedKey(profile)
		defer func() {
			if fps, ok := meter.Take(2 * time.Second); ok {
				e.speeds.Observe(speedKey, fps)
			}
		}()
	}
	sc := bufio.NewScanner(run.stdout)
	var pubErr error
	published := false
	for sc.Scan() {
		name := strings.TrimSpace(sc.Text())
		n, ok := parseSegmentName(name)
		if !ok {
			if meter != nil {
				meter.Line(name)
			}
			continue
		}
		if err := h.v.publish(h, n, filepath.Join(h.dir, filepath.Base(name))); err != nil {
			pubErr = err
			h.stop(err)
			break
		}
		if meter != nil {
			if fps, ok := meter.Take(4 * time.Second); ok {
				e.speeds.Observe(speedKey, fps)
			}
		}
		if hw && !published {
			published = true
			stall.Stop()
			e.sched.hw.Succeeded()
		}
	}
	// Drain so ffmpeg never blocks on a full pipe while it is being killed.
	go func() { _, _ = bufio.NewReader(run.stdout).WriteTo(discard{}) }()
	h.setPID(0) // before Wait reaps it: after, the pid may be another process's
	waitErr := run.wait()
	if pubErr != nil {
		return pubErr
	}
	err = nil
	switch {
	case hw && !published && errors.Is(context.Cause(h.ctx), encode.ErrHWStalled):
		err = fmt.Errorf("%w: no segment after %s", failure.Encoder, e.hwStall)
	case waitErr != nil && h.ctx.Err() == nil:
		err = fmt.Errorf("%w: ffmpeg exited with %v: %s", failure.Encoder, waitErr, strings.TrimSpace(run.stderr.String()))
	}
	if err != nil && hw {
		// Only the encoder's own failures: a full disk is not the GPU's fault.
		err = &encode.HWError{Accel: profile.Accel, Err: err}
	}
	return err
}

func parseSegmentName(name string) (int, bool) {
	base := filepath.Base(name)
	if !strings.HasPrefix(base, "s-") || !strings.HasSuffix(base, ".mp4") {
		return 0, false
	}
	n, err := strconv.Atoi(strings.TrimSuffix(strings.TrimPrefix(base, "s-"), ".mp4"))
	return n, err == nil && n >= 0
}

type discard struct{}

func (discard) Write(p []byte) (int, error) { return len(p), nil }
