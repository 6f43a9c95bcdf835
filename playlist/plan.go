// Package playlist plans segment boundaries, derives RFC 6381 codec strings
// and writes HLS master and VOD media playlists for hlsd.
package playlist

import (
	"math"
	"sort"
)

// Plan is the segment grid of one file, shared by every variant that uses it.
// Bounds[0] = 0, Bounds[len-1] = duration; segment i covers [Bounds[i], Bounds[i+1]).
// A file with no positive duration has Bounds = [0] and no segments.
type Plan struct{ Bounds []float64 }

// Len is the number of segments.
func (p Plan) Len() int {
	if len(p.Bounds) < 2 {
		return 0
	}
	return len(p.Bounds) - 1
}

// Start is where segment i begins, in seconds from the file start.
func (p Plan) Start(i int) float64 { return p.Bounds[i] }

// Duration is the EXTINF value of segment i. Both ends are quantized to whole
// milliseconds before subtracting, so the written durations telescope to the
// file duration instead of drifting by up to 0.5 ms per segment.
func (p Plan) Duration(i int) float64 {
	return float64(millis(p.Bounds[i+1])-millis(p.Bounds[i])) / 1000
}

// TargetDuration is the EXT-X-TARGETDURATION value: the ceiling of the longest
// EXTINF (stricter than RFC 8216's rounding rule, which some validators
// apply as a ceiling), and never 0, which players reject.
func (p Plan) TargetDuration() int {
	longest := 0.0
	for i := range p.Len() {
		longest = max(longest, p.Duration(i))
	}
	return max(1, int(math.Ceil(longest)))
}

// Index is the segment containing time t, clamped to the first and last segment.
func (p Plan) Index(t float64) int {
	n := p.Len()
	if n == 0 {
		return 0
	}
	// First bound after t, minus one, is the segment that starts at or before t.
	i := sort.Search(n, func(i int) bool { return p.Bounds[i+1] > t })
	return min(i, n-1)
}

func millis(t float64) int64 { return int64(math.Round(t * 1000)) }

// mergeShortTail drops the last inner boundary when the final segment is
// shorter than min and the merged segment stays within 1.5*target: a tiny
// last segment costs a request for almost no media. A tail that would round
// to 0 ms is always merged because EXTINF:0.000 confuses players.
func mergeShortTail(bounds []float64, min, target float64) []float64 {
	n := len(bounds)
	if n < 3 {
		return bounds
	}
	tail := bounds[n-1] - bounds[n-2]
	merged := bounds[n-1] - bounds[n-3]
	zero := millis(bounds[n-1]) == millis(bounds[n-2])
	if tail < min && (merged <= 1.5*target || zero) {
		bounds[n-2] = bounds[n-1]
		return bounds[:n-1]
	}
	return bounds
}

// LongGOP reports whether a keyframe plan has a segment (other than the last)
// longer than 2*target. Such a source cannot be copied as `original` on the
// shared grid without very uneven segments.
func LongGOP(p Plan, target float64) bool {
	for i := 0; i+1 < p.Len(); i++ {
		if p.Bounds[i+1]-p.Bounds[i] > 2*target {
			return true
		}
	}
	return false
}
