package transcoder

import (
	"context"
	"fmt"
	"sync"
	"sync/atomic"
	"time"

	"github.com/hlsd/hlsd/keyframes"
	"github.com/hlsd/hlsd/playlist"
	"github.com/hlsd/hlsd/transcoder/encode"
	"github.com/hlsd/hlsd/transcoder/failure"
	"github.com/hlsd/hlsd/transcoder/probe"
)

// SegmentTarget is the segment duration the plans aim for, in seconds.
const SegmentTarget = 4.0

// media is one source file, identified by (path, size, mtime).
type media struct {
	name    string // relative to the media root, slash-separated
	size    int64
	modTime time.Time
	key     string
	info    *probe.Info
	kf      *keyframes.Keyframes
	// pins counts the requests and heads using m; -1 once the registry
	// has forgotten it. See files.
	pins atomic.Int64

	mu       sync.Mutex // a leaf
	plans    *plans
	variants map[string]*variant // by cache directory
}

// release ends a use of m that acquire or a head's start began.
func (m *media) release() { m.pins.Add(-1) }

// retire marks m as forgotten when nothing uses it and its keyframes are
// read (a read still running would be started again by the next open).
// The registry calls it under its lock, the only place pins grow from 0.
func (m *media) retire() bool {
	select {
	case <-m.kf.Done():
	default:
		return false
	}
	return m.pins.CompareAndSwap(0, -1)
}

// plans are the segment grids of one file. Every variant of the adaptive set
// (the rungs, audio, and original when its keyframes allow) shares one grid.
type plans struct {
	original         playlist.Plan // cut at source keyframes
	adaptive         playlist.Plan
	originalAdaptive bool
	gopBytes         []int64
	keyframeTimes    []float64
}

// getPlans waits for the keyframe scan to finish: a playlist must never change
// after a player has seen it, and the long-GOP decision needs every keyframe.
func (m *media) getPlans(ctx context.Context) (*plans, error) {
	m.mu.Lock()
	p := m.plans
	m.mu.Unlock()
	if p != nil {
		return p, nil
	}
	select {
	case <-m.kf.Done():
	case <-ctx.Done():
		return nil, ctx.Err()
	}
	times, gopBytes, _, complete, err := m.kf.Snapshot()
	if err != nil {
		return nil, fmt.Errorf("%w: keyframe scan failed: %v", failure.NotMedia, err)
	}
	if !complete || len(times) == 0 {
		return nil, fmt.Errorf("%w: no video keyframes found", failure.NotMedia)
	}
	dur := m.info.Duration
	orig := playlist.KeyframePlan(times, dur, SegmentTarget)
	p = &plans{original: orig, adaptive: orig, originalAdaptive: true, gopBytes: gopBytes, keyframeTimes: times}
	if playlist.LongGOP(orig, SegmentTarget) {
		p.adaptive = playlist.GridPlan(dur, m.info.Video[0].FPS, SegmentTarget)
		p.originalAdaptive = false
	}
	m.mu.Lock()
	if m.plans == nil { // two first callers computed it: everyone shares the first
		m.plans = p
	}
	p = m.plans
	m.mu.Unlock()
	return p, nil
}

func (p *plans) forVariant(kind, quality string) playlist.Plan {
	if kind == "video" && quality == encode.QualityOriginal {
		return p.original
	}
	return p.adaptive
}

// originalBitrates measures the source's own bits per second, per segment of
// the original plan: the average and the peak a player must plan for.
func (p *plans) originalBitrates() (avg, peak int) {
	var total int64
	for _, b := range p.gopBytes {
		total += b
	}
	d := p.original.Bounds[len(p.original.Bounds)-1]
	if d <= 0 {
		return 0, 0
	}
	avg = int(float64(total*8) / d)
	// Sum GOP bytes into the segments they belong to.
	seg := make([]int64, p.original.Len())
	for i, b := range p.gopBytes {
		if i < len(p.keyframeTimes) {
			seg[p.original.Index(p.keyframeTimes[i])] += b
		}
	}
	for i, b := range seg {
		if d := p.original.Duration(i); d > 0.5 {
			peak = max(peak, int(float64(b*8)/d))
		}
	}
	return avg, max(peak, avg)
}
