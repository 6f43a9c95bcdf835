package encode

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"go.uber.org/zap"

	"github.com/hlsd/hlsd/transcoder/child"
	"github.com/hlsd/hlsd/transcoder/probe"
)

// hwFailureLimit is how many hardware runs in a row may fail before the
// accelerator is switched off for the life of the process: a driver that
// fails three times will not recover by itself, and each failure costs a
// viewer a delay.
const hwFailureLimit = 3

// HWError is a hardware encoder run that failed; its segments are made again
// in software.
type HWError struct {
	Accel string
	Err   error
}

func (e *HWError) Error() string { return e.Accel + " encoder failed: " + e.Err.Error() }
func (e *HWError) Unwrap() error { return e.Err }

// ErrHWStalled stops a hardware run that wrote no segment in time.
var ErrHWStalled = errors.New("hardware encoder wrote no segment in time")

// Observer is told of the accelerator's failures (the server's metrics).
type Observer interface {
	HWFallback(accel string)
	HWEnabled(accel string, on bool)
}

// Hardware is the accelerator in use: its sessions and its failure record.
// A nil *Hardware means software only.
type Hardware struct {
	profile  Profile
	sessions chan struct{}
	log      *zap.Logger
	obs      Observer

	mu       sync.Mutex // a leaf
	failures int        // consecutive
	// disabled is atomic so that free can be asked under a variant's lock.
	disabled atomic.Bool
}

// NewHardware is the accelerator of p, with sessions concurrent encodes.
func NewHardware(p Profile, sessions int, log *zap.Logger, obs Observer) *Hardware {
	obs.HWEnabled(p.Accel, true)
	return &Hardware{profile: p, sessions: make(chan struct{}, sessions), log: log, obs: obs}
}

// Acquire takes a session without waiting: past the limit, the work goes to
// the software encoder at once rather than queue behind the GPU.
func (hw *Hardware) Acquire(v probe.VideoStream) (release func(), ok bool) {
	if hw == nil || !hw.profile.Handles(v) {
		return nil, false
	}
	if hw.disabled.Load() {
		return nil, false
	}
	select {
	case hw.sessions <- struct{}{}:
		return func() { <-hw.sessions }, true
	default:
		return nil, false
	}
}

// Free says whether Acquire would succeed now.
func (hw *Hardware) Free(v probe.VideoStream) bool {
	if hw == nil || !hw.profile.Handles(v) {
		return false
	}
	return !hw.disabled.Load() && len(hw.sessions) < cap(hw.sessions)
}

// Profile is the accelerator's profile.
func (hw *Hardware) Profile() Profile { return hw.profile }

// Usable says whether the accelerator is still on (not disabled after
// failures).
func (hw *Hardware) Usable() bool { return hw != nil && !hw.disabled.Load() }

// FreeSessions is how many sessions are free now.
func (hw *Hardware) FreeSessions() int { return cap(hw.sessions) - len(hw.sessions) }

// Succeeded records a run that wrote a segment.
func (hw *Hardware) Succeeded() {
	hw.mu.Lock()
	hw.failures = 0
	hw.mu.Unlock()
}

// Failed records a failed run, and disables the accelerator after
// hwFailureLimit of them in a row, saying so once.
func (hw *Hardware) Failed(err error) {
	hw.obs.HWFallback(hw.profile.Accel)
	hw.mu.Lock()
	hw.failures++
	disable := hw.failures >= hwFailureLimit && hw.disabled.CompareAndSwap(false, true)
	hw.mu.Unlock()
	if disable {
		hw.obs.HWEnabled(hw.profile.Accel, false)
		hw.log.Error("hardware encoding disabled until restart: every encode now runs in software",
			zap.String("accel", hw.profile.Accel), zap.Int("failures in a row", hwFailureLimit), zap.Error(err))
	}
}

// DetectAccel tries each accelerator in turn by encoding a few frames of a
// synthetic source through the profile's upload, scale and encoder chain,
// and returns the first that works, or AccelNone. why holds, per
// accelerator tried, the reason it was not picked.
func DetectAccel(ctx context.Context, ffmpeg, device string) (accel string, why map[string]string) {
	why = map[string]string{}
	for _, a := range Accels {
		if err := tryAccel(ctx, ffmpeg, Profile{Accel: a, Device: device, Preset: "veryfast"}); err != nil {
			why[a] = err.Error()
			continue
		}
		return a, why
	}
	return AccelNone, why
}

// tryAccel encodes ten frames the way a rung would (software decode, as
// lavfi frames are in memory) and throws them away.
func tryAccel(ctx context.Context, ffmpeg string, p Profile) error {
	ctx, cancel := context.WithTimeout(ctx, 15*time.Second)
	defer cancel()
	src := probe.VideoStream{Codec: "rawvideo", Width: 320, Height: 240, FPS: 25, BitDepth: 8}
	args := []string{"-hide_banner", "-nostdin", "-loglevel", "error"}
	args = append(args, p.InputArgs(src)...)
	args = append(args, "-f", "lavfi", "-i", "testsrc2=size=320x240:rate=25", "-frames:v", "10",
		"-vf", p.Filter(src, 320, 240))
	args = append(args, p.EncoderArgs(Ladder[0], 30)...)
	args = append(args, "-f", "null", "-")
	cmd := child.Command(ctx, nil, ffmpeg, args...)
	stderr := &child.Tail{Max: 2048}
	cmd.Stderr = stderr
	if err := cmd.Run(); err != nil {
		if msg := firstLine(stderr.String()); msg != "" {
			return fmt.Errorf("%v: %s", err, msg)
		}
		return err
	}
	return nil
}

// firstLine keeps ffmpeg's first complaint, which names the cause ("Cannot
// load libcuda.so.1"); later lines only say what failed because of it.
// The "[AVHWDeviceContext @ 0x...]" prefix goes: it changes every run.
func firstLine(s string) string {
	line, _, _ := strings.Cut(strings.TrimSpace(s), "\n")
	if strings.HasPrefix(line, "[") {
		if _, rest, ok := strings.Cut(line, "] "); ok {
			line = rest
		}
	}
	return strings.TrimSpace(line)
}
