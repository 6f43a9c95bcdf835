package playlist

import (
	"math"
	"slices"
)

// KeyframePlan groups source keyframes (seconds, ascending, relative to the
// file start) greedily into segments of about target seconds, so a stream
// copy can cut exactly at keyframes. From the current start s the next
// boundary is the last keyframe in [s+target/2, s+target]; when there is none
// the source forces a longer segment ending at the first keyframe after
// s+target/2; with no keyframe left the segment runs to duration. Keyframes
// at or after duration are ignored. A final segment shorter than target/2 is
// merged into the previous one when that stays within 1.5*target.
//
// A non-positive target yields one segment for the whole file.
func KeyframePlan(keyframes []float64, duration, target float64) Plan {
	if !(duration > 0) {
		return Plan{Bounds: []float64{0}}
	}
	if !(target > 0) {
		return Plan{Bounds: []float64{0, duration}}
	}
	kf := sortedKeyframes(keyframes)
	bounds := []float64{0}
	for {
		next, ok := nextBoundary(kf, bounds[len(bounds)-1], target, duration)
		if !ok {
			break
		}
		bounds = append(bounds, next)
	}
	bounds = append(bounds, duration)
	return Plan{Bounds: mergeShortTail(bounds, target/2, target)}
}

// sortedKeyframes tolerates unsorted input (merged streams, B-frame pts
// order) without copying in the common, already sorted case.
func sortedKeyframes(kf []float64) []float64 {
	if slices.IsSorted(kf) {
		return kf
	}
	kf = slices.Clone(kf)
	slices.Sort(kf)
	return kf
}

// nextBoundary applies one greedy step from start s, considering only
// keyframes before end. It is shared by KeyframePlan and Final so that the
// two can never disagree about a step.
func nextBoundary(kf []float64, s, target, end float64) (float64, bool) {
	lo, hi := s+target/2, s+target
	// First keyframe >= lo; NaNs sort first and are skipped here too.
	i, _ := slices.BinarySearch(kf, lo)
	for i < len(kf) && !(kf[i] >= lo) {
		i++
	}
	if i == len(kf) || kf[i] >= end {
		return 0, false
	}
	if kf[i] > hi {
		return kf[i], true
	}
	// Last keyframe <= hi (and < end) in the window.
	j, _ := slices.BinarySearch(kf, math.Nextafter(hi, math.Inf(1)))
	for j > i+1 && kf[j-1] >= end {
		j--
	}
	return kf[j-1], true
}

// Final reports how many leading segments of KeyframePlan(known, scanned,
// target) are also the leading segments of the full file's plan, whatever
// keyframes and duration the rest of the scan reveals. keyframes must contain
// every keyframe before scanned (later ones are ignored).
//
// A greedy step from s is settled once s+target < scanned (every keyframe
// that could land in its window is known) and it picked a known keyframe.
// The last settled boundary b can still vanish through the short-tail merge
// if the file ends right after it, unless scanned-b >= target/2 already
// proves the tail long enough; an earlier settled boundary is safe because
// the merge only ever removes the last inner boundary.
func Final(keyframes []float64, scanned, target float64) int {
	if !(target > 0) {
		return 0
	}
	kf := sortedKeyframes(keyframes)
	s, n := 0.0, 0
	for s+target < scanned {
		next, ok := nextBoundary(kf, s, target, scanned)
		if !ok {
			break
		}
		s = next
		n++
	}
	if n > 0 && scanned-s < target/2 {
		n--
	}
	return n
}
