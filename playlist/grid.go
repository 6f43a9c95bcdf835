package playlist

import "math"

// GridPlan is a regular grid for re-encoded variants, which can place a
// keyframe anywhere: a boundary every ~target seconds, each snapped to the
// nearest frame time of frameRate so that the forced keyframe lands exactly
// on it. Boundaries are computed from the index rather than accumulated, so
// snapping error never builds up. A short final segment is merged as in
// KeyframePlan. frameRate <= 0 disables snapping.
func GridPlan(duration, frameRate, target float64) Plan {
	if !(duration > 0) {
		return Plan{Bounds: []float64{0}}
	}
	if !(target > 0) {
		return Plan{Bounds: []float64{0, duration}}
	}
	bounds := []float64{0}
	for i := 1; ; i++ {
		b := snap(float64(i)*target, frameRate)
		if b >= duration {
			break
		}
		// With target below one frame several grid points snap to the same frame.
		if b > bounds[len(bounds)-1] {
			bounds = append(bounds, b)
		}
	}
	bounds = append(bounds, duration)
	return Plan{Bounds: mergeShortTail(bounds, target/2, target)}
}

func snap(t, fps float64) float64 {
	if !(fps > 0) {
		return t
	}
	return math.Round(t*fps) / fps
}
