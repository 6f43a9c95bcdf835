package transcoder

import (
	"bufio"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"time"

	"go.uber.org/zap"

	"github.com/hlsd/hlsd/transcoder/child"
	"github.com/hlsd/hlsd/transcoder/internal/atomicfile"
	"github.com/hlsd/hlsd/transcoder/internal/flight"
	"github.com/hlsd/hlsd/transcoder/probe"
)

// minSpeed is how many times real time a rung must be made, under the
// current load, to be advertised. Below 1x a player that picks the rung
// drains its buffer; and every seek on a rung waits for a cold segment, 4 s
// of media at this speed plus the run's start: at 1.2x (the old value)
// seeks on 1080p HEVC took 3.5 to 5 s. Players at their defaults climb to
// whatever their bandwidth estimate allows (Shaka and video.js take
// Chromium's 10 Mbit/s downlink hint on a LAN), so only rungs that seek in
// about 2.5 s are listed.
const minSpeed = 2

// startSpeed is how many times real time the rung players start on must be
// made. A player starts with nothing buffered, and its first segment
// arrives only as fast as it is encoded: at 2x, hls.js's abandon rule finds
// the load too slow for its half-second buffer and drops to the lowest
// rung mid-load (measured on 1080p HEVC), a second start that costs more
// than beginning one rung lower and climbing.
const startSpeed = 3

// unmeasuredStart is the largest rung players start on while nothing is
// known of a kind of source (a first file, before its calibration): two
// cores make 480p from 1080p 10-bit HEVC at 5x real time.
const unmeasuredStart = 480

// unmeasuredMax is the largest rung advertised while nothing is known of a
// kind of source. A master is read once per playback: a player that climbs
// to a rung listed before it was measured stays able to, and at its
// defaults it climbs as high as its bandwidth estimate allows. Two cores
// make 720p from 1080p 10-bit HEVC at 3x, 1080p at 1.4x, where every seek
// took 4 s (hls.js at its defaults, cold). Calibration measures the others
// at the first idle moment, for the next master.
const unmeasuredMax = 720

// speeds remembers how fast this machine re-encodes: the frames per second
// one head makes when it has the encoders to itself, per source class and
// rung (speedKey). Heads report it from ffmpeg's -progress output, and a
// calibration run fills in a class the master knows nothing of. It is kept
// in the cache directory, so a restart does not forget it.
type speeds struct {
	path string

	mu    sync.Mutex // a leaf
	fps   map[string]float64
	dirty bool
}

func newSpeeds(path string, log *zap.Logger) *speeds {
	s := &speeds{path: path, fps: map[string]float64{}}
	b, err := os.ReadFile(path)
	if err == nil {
		err = json.Unmarshal(b, &s.fps)
	}
	if err != nil && !os.IsNotExist(err) {
		log.Warn("ignoring the saved encoder speeds", zap.String("path", path), zap.Error(err))
		s.fps = map[string]float64{}
	}
	return s
}

// speedKey names what an encoder's speed depends on: the source's codec,
// depth and size (decoding), the rung (scaling, encoding) and the encoder.
func speedKey(v probe.VideoStream, rung string, p videoProfile) string {
	return fmt.Sprintf("%s %d-bit %dx%d to %s, %s %s", v.Codec, max(v.BitDepth, 8), v.Width, v.Height, rung, p.accel, p.preset)
}

// observe folds a measurement into the estimate: recent runs weigh most,
// so a machine that got busier or faster is followed within a few heads.
func (s *speeds) observe(key string, fps float64) {
	if !(fps > 0) {
		return
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	if old, ok := s.fps[key]; ok {
		fps = 0.6*old + 0.4*fps
	}
	s.fps[key] = fps
	s.dirty = true
}

func (s *speeds) get(key string) (float64, bool) {
	s.mu.Lock()
	defer s.mu.Unlock()
	f, ok := s.fps[key]
	return f, ok
}

// save writes the estimates if they changed since the last save.
func (s *speeds) save() error {
	s.mu.Lock()
	if !s.dirty {
		s.mu.Unlock()
		return nil
	}
	b, err := json.MarshalIndent(s.fps, "", "  ")
	s.dirty = false
	s.mu.Unlock()
	if err != nil {
		return err
	}
	return atomicfile.Write(s.path, b)
}

// rungSpeed estimates how many times real time one head alone makes rung r
// of v. A rung never measured is scaled from the nearest measured rung of
// the same source by pixel count (encoding dominates, and from a larger
// rung the guess errs towards speed, from a smaller one towards caution).
// known is false when nothing of the source's class was measured.
func (s *speeds) rungSpeed(v probe.VideoStream, r Rung, p videoProfile) (speed float64, known bool) {
	if !(v.FPS > 0) {
		return 0, false
	}
	pixels := func(r Rung) float64 {
		w, h := rungSize(v, r)
		return float64(w * h)
	}
	if fps, ok := s.get(speedKey(v, r.Name, p)); ok {
		return fps / v.FPS, true
	}
	best, bestDist := 0.0, 0.0
	for _, o := range rungsFor(v) {
		fps, ok := s.get(speedKey(v, o.Name, p))
		if !ok {
			continue
		}
		d := pixels(o) / pixels(r)
		dist := max(d, 1/d)
		if best == 0 || dist < bestDist {
			best, bestDist = fps*d, dist
		}
	}
	if best == 0 {
		return 0, false
	}
	return best / v.FPS, true
}

// meter turns ffmpeg's -progress reports into frames per second, counting
// only the intervals in which alone() held: a head sharing the cores with
// another re-encode measures the load, not the machine.
type meter struct {
	alone  func() bool
	last   int // frame count of the last report; -1 before the first
	at     time.Time
	frames int
	busy   time.Duration
}

func newMeter(alone func() bool) *meter { return &meter{alone: alone, last: -1} }

// line reads one line of ffmpeg's output; all but frame counts are ignored.
func (m *meter) line(l string) {
	v, ok := strings.CutPrefix(l, "frame=")
	if !ok {
		return
	}
	n, err := strconv.Atoi(strings.TrimSpace(v))
	if err != nil {
		return
	}
	now := time.Now()
	// The first report covers the start (opening, seeking, the encoder's
	// lookahead), which a long run does not pay per frame.
	// A long gap between reports is a pause (SIGSTOP), not slowness.
	if m.last >= 0 && n >= m.last && now.Sub(m.at) < 3*statsPeriod && m.alone() {
		m.frames += n - m.last
		m.busy += now.Sub(m.at)
	}
	m.last, m.at = n, now
}

// take returns the frames per second measured over at least min, and starts over.
func (m *meter) take(min time.Duration) (float64, bool) {
	if m.busy < min || m.frames == 0 {
		return 0, false
	}
	fps := float64(m.frames) / m.busy.Seconds()
	m.frames, m.busy = 0, 0
	return fps, true
}

// progressArgs make ffmpeg report its frame count on stdout twice a second,
// beside the segment list.
var progressArgs = []string{"-progress", "pipe:1", "-stats_period", strconv.FormatFloat(statsPeriod.Seconds(), 'f', -1, 64)}

const statsPeriod = 500 * time.Millisecond

// A calibration run measures for calibrationTime, after ffmpeg's first
// report, within calibrationSeconds of source.
const (
	calibrationTime    = 1500 * time.Millisecond
	calibrationSeconds = 20
)

// A calibration starts once the machine has been idle for calibrationIdle,
// and gives up waiting after calibrationPatience.
const (
	calibrationIdle     = 2 * time.Second
	calibrationPatience = 2 * time.Minute
)

// busy says whether any ffmpeg of a player's runs: a head or thumbnails.
func (t *Transcoder) busy() bool {
	return len(t.sched.live()) > 0 || len(t.thumbSlots) > 0
}

// waitIdle waits until nothing has been busy for d, or patience runs out.
func (t *Transcoder) waitIdle(ctx context.Context, d, patience time.Duration) bool {
	tick := time.NewTicker(250 * time.Millisecond)
	defer tick.Stop()
	deadline := time.Now().Add(patience)
	since := time.Now()
	for {
		if t.busy() {
			since = time.Now()
		} else if time.Since(since) >= d {
			return true
		}
		if time.Now().After(deadline) {
			return false
		}
		select {
		case <-ctx.Done():
			return false
		case <-tick.C:
		}
	}
}

// calibrate measures, for a source class the master knows nothing of, how
// fast each software rung is made, largest first (the estimate of a
// smaller rung can be scaled from it). It runs niced, only once nothing
// else has run for a while, and stops as soon as a head or thumbnails
// start: a player always comes first. A later master tries again for what
// it missed.
func (t *Transcoder) calibrate(m *media, v probe.VideoStream) {
	p := videoProfile{accel: AccelNone, preset: t.cfg.Preset}
	rungs := rungsFor(v)
	var todo []Rung
	for i := len(rungs) - 1; i >= 0; i-- {
		if _, ok := t.speeds.get(speedKey(v, rungs[i].Name, p)); !ok {
			todo = append(todo, rungs[i])
		}
	}
	if len(todo) == 0 {
		return
	}
	m.pins.Add(1)
	t.wg.Add(1)
	go func() {
		defer t.wg.Done()
		defer m.release()
		_, _ = flight.Do(t.flight, t.ctx, "calibrate "+speedKey(v, "", p), flight.Detached, func(ctx context.Context) (struct{}, error) {
			for _, r := range todo {
				if !t.waitIdle(ctx, calibrationIdle, calibrationPatience) {
					return struct{}{}, nil
				}
				fps, err := t.calibrateRung(ctx, m, v, r, p)
				if err != nil {
					t.log.Debug("calibration stopped", zap.String("file", m.name), zap.String("rung", r.Name), zap.Error(err))
					return struct{}{}, nil
				}
				t.speeds.observe(speedKey(v, r.Name, p), fps)
				t.log.Debug("calibrated", zap.String("file", m.name), zap.String("rung", r.Name),
					zap.Float64("fps", fps), zap.Float64("speed", fps/v.FPS))
			}
			return struct{}{}, nil
		})
	}()
}

var (
	errCalibrationYielded = errors.New("a re-encode started")
	errCalibrated         = errors.New("measured")
)

// calibrateRung encodes calibrationSeconds of v from a third into the file
// to rung r, discarding the output, and returns the frames per second.
func (t *Transcoder) calibrateRung(ctx context.Context, m *media, v probe.VideoStream, r Rung, p videoProfile) (float64, error) {
	ctx, cancel := context.WithCancelCause(ctx)
	defer cancel(nil)
	w, h := rungSize(v, r)
	args := append([]string{"-hide_banner", "-nostdin", "-loglevel", "error"}, progressArgs...)
	// From a third in (past opening titles), or from the start of a short file.
	args = append(args, "-ss", ts(max(0, min(m.info.Duration/3, m.info.Duration-calibrationSeconds))))
	args = append(args, p.inputArgs(v)...)
	args = append(args, "-i", child.Input, "-t", strconv.Itoa(calibrationSeconds),
		"-map", fmt.Sprintf("0:V:%d", 0), "-vf", p.filter(v, w, h), "-fps_mode", "passthrough")
	args = append(args, p.encoderArgs(r, rungLevel(v, r))...)
	args = append(args, "-f", "null", "-")
	cmd, stdout, stderr, err := t.startFFmpeg(ctx, m, args)
	if err != nil {
		return 0, err
	}
	_ = syscall.Setpriority(syscall.PRIO_PGRP, cmd.Process.Pid, 19)
	meter := newMeter(func() bool { return true })
	sc := bufio.NewScanner(stdout)
	for sc.Scan() {
		meter.line(sc.Text())
		if meter.busy >= calibrationTime {
			cancel(errCalibrated)
			break
		}
		if t.busy() {
			cancel(errCalibrationYielded)
			break
		}
	}
	go func() { _, _ = io.Copy(io.Discard, stdout) }()
	waitErr := cmd.Wait()
	if err := context.Cause(ctx); err != nil && !errors.Is(err, errCalibrated) {
		return 0, err
	}
	if waitErr != nil && ctx.Err() == nil {
		return 0, fmt.Errorf("ffmpeg: %v: %s", waitErr, strings.TrimSpace(stderr.String()))
	}
	fps, ok := meter.take(statsPeriod) // a short file ends sooner
	if !ok {
		return 0, fmt.Errorf("too short to measure")
	}
	return fps, nil
}
