package transcoder

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"io"
	"strconv"
	"strings"
	"syscall"
	"time"

	"go.uber.org/zap"

	"github.com/hlsd/hlsd/transcoder/child"
	"github.com/hlsd/hlsd/transcoder/encode"
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
	p := encode.Profile{Accel: encode.AccelNone, Preset: t.cfg.Preset}
	rungs := encode.RungsFor(v)
	var todo []encode.Rung
	for i := len(rungs) - 1; i >= 0; i-- {
		if _, ok := t.speeds.Get(encode.SpeedKey(v, rungs[i].Name, p)); !ok {
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
		_, _ = flight.Do(t.flight, t.ctx, "calibrate "+encode.SpeedKey(v, "", p), flight.Detached, func(ctx context.Context) (struct{}, error) {
			for _, r := range todo {
				if !t.waitIdle(ctx, calibrationIdle, calibrationPatience) {
					return struct{}{}, nil
				}
				fps, err := t.calibrateRung(ctx, m, v, r, p)
				if err != nil {
					t.log.Debug("calibration stopped", zap.String("file", m.name), zap.String("rung", r.Name), zap.Error(err))
					return struct{}{}, nil
				}
				t.speeds.Observe(encode.SpeedKey(v, r.Name, p), fps)
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
func (t *Transcoder) calibrateRung(ctx context.Context, m *media, v probe.VideoStream, r encode.Rung, p encode.Profile) (float64, error) {
	ctx, cancel := context.WithCancelCause(ctx)
	defer cancel(nil)
	w, h := encode.RungSize(v, r)
	args := append([]string{"-hide_banner", "-nostdin", "-loglevel", "error"}, encode.ProgressArgs...)
	// From a third in (past opening titles), or from the start of a short file.
	args = append(args, "-ss", encode.Seconds(max(0, min(m.info.Duration/3, m.info.Duration-calibrationSeconds))))
	args = append(args, p.InputArgs(v)...)
	args = append(args, "-i", child.Input, "-t", strconv.Itoa(calibrationSeconds),
		"-map", fmt.Sprintf("0:V:%d", 0), "-vf", p.Filter(v, w, h), "-fps_mode", "passthrough")
	args = append(args, p.EncoderArgs(r, encode.RungLevel(v, r))...)
	args = append(args, "-f", "null", "-")
	cmd, stdout, stderr, err := t.run.startFFmpeg(ctx, m, args)
	if err != nil {
		return 0, err
	}
	_ = syscall.Setpriority(syscall.PRIO_PGRP, cmd.Process.Pid, 19)
	meter := encode.NewMeter(func() bool { return true })
	sc := bufio.NewScanner(stdout)
	for sc.Scan() {
		meter.Line(sc.Text())
		if meter.Busy() >= calibrationTime {
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
	fps, ok := meter.Take(encode.StatsPeriod) // a short file ends sooner
	if !ok {
		return 0, fmt.Errorf("too short to measure")
	}
	return fps, nil
}
