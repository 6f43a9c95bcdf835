package playlist

import (
	"math"
	"slices"
	"testing"
)

// ntsc converts a frame count at 29.97 fps to seconds; real keyframe times
// are rarely whole milliseconds.
func ntsc(frames int) float64 { return float64(frames) * 1001 / 30000 }

// every returns keyframes at 0, step, 2*step, ... below end.
func every(step, end float64) []float64 {
	var kf []float64
	for i := 0; float64(i)*step < end; i++ {
		kf = append(kf, float64(i)*step)
	}
	return kf
}

func TestKeyframePlan(t *testing.T) {
	tests := []struct {
		name      string
		keyframes []float64
		duration  float64
		target    float64
		want      []float64
	}{
		{"2s GOPs", every(2, 30), 30, 6, []float64{0, 6, 12, 18, 24, 30}},
		{"tail kept at min", []float64{0, 2, 4, 6, 8, 10, 12, 14}, 15.5, 6, []float64{0, 6, 12, 15.5}},
		{"short tail merged", every(2, 20), 20, 6, []float64{0, 6, 12, 20}},
		{"short tail kept when merge too long", []float64{0, 10}, 11, 6, []float64{0, 10, 11}},
		{"window prefers the last keyframe", []float64{0, 3, 4, 5, 7}, 12, 6, []float64{0, 5, 12}},
		{"min is inclusive", []float64{0, 3, 9.5}, 14, 6, []float64{0, 3, 9.5, 14}},
		{"forced segment then merged tail", []float64{0, 3, 9.5}, 12, 6, []float64{0, 3, 12}},
		{"long GOP forces longer segment", []float64{0, 10, 20}, 30, 6, []float64{0, 10, 20, 30}},
		{"first keyframe late", []float64{0.5, 4, 8}, 12, 6, []float64{0, 4, 8, 12}},
		{"no keyframes", nil, 7, 6, []float64{0, 7}},
		{"keyframes at or past duration ignored", []float64{0, 6, 12, 18}, 12, 6, []float64{0, 6, 12}},
		{"duplicates", []float64{0, 6, 6, 12, 12}, 18, 6, []float64{0, 6, 12, 18}},
		{"unsorted", []float64{12, 0, 6}, 18, 6, []float64{0, 6, 12, 18}},
		{"sub-millisecond tail always merged", []float64{0, 10, 20}, 20.0004, 6, []float64{0, 10, 20.0004}},
		{"short file", every(2, 2.5), 2.5, 6, []float64{0, 2.5}},
		{"empty file", every(2, 10), 0, 6, []float64{0}},
		{"no target", every(2, 10), 10, 0, []float64{0, 10}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			p := KeyframePlan(tt.keyframes, tt.duration, tt.target)
			if !slices.Equal(p.Bounds, tt.want) {
				t.Fatalf("KeyframePlan = %v, want %v", p.Bounds, tt.want)
			}
			if tt.duration > 0 && tt.target > 0 {
				checkKeyframePlan(t, p, tt.keyframes, tt.duration, tt.target)
			}
		})
	}
}

func TestGridPlan(t *testing.T) {
	tests := []struct {
		name                  string
		duration, fps, target float64
		want                  []float64
	}{
		{"whole frames", 20, 30, 6, []float64{0, 6, 12, 20}},
		{"ntsc snaps to frame", 16, 30000.0 / 1001, 6, []float64{0, ntsc(180), ntsc(360), 16}},
		{"ntsc short tail merged", 13, 30000.0 / 1001, 6, []float64{0, ntsc(180), 13}},
		{"no snapping", 16, 0, 6, []float64{0, 6, 12, 16}},
		{"long tail kept", 16, 25, 6, []float64{0, 6, 12, 16}},
		{"target below a frame", 0.2, 10, 0.05, []float64{0, 0.1, 0.2}},
		{"short file", 3, 30, 6, []float64{0, 3}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			p := GridPlan(tt.duration, tt.fps, tt.target)
			if !slices.Equal(p.Bounds, tt.want) {
				t.Fatalf("GridPlan = %v, want %v", p.Bounds, tt.want)
			}
			checkPlan(t, p, tt.duration)
			for _, b := range p.Bounds[:p.Len()] {
				if tt.fps > 0 && b != snap(b, tt.fps) {
					t.Errorf("boundary %v is not on a frame", b)
				}
			}
		})
	}
}

func TestPlanMethods(t *testing.T) {
	p := Plan{Bounds: []float64{0, ntsc(180), ntsc(360), 13.0004}}
	if got := p.Len(); got != 3 {
		t.Fatalf("Len = %d", got)
	}
	// 6.006 s, 6.006 s, then 13.000 - 12.012 = 0.988 s.
	for i, want := range []float64{6.006, 6.006, 0.988} {
		if got := p.Duration(i); got != want {
			t.Errorf("Duration(%d) = %v, want %v", i, got, want)
		}
	}
	if got := p.TargetDuration(); got != 7 {
		t.Errorf("TargetDuration = %d, want 7", got)
	}
	for _, c := range []struct {
		t    float64
		want int
	}{{-1, 0}, {0, 0}, {6, 0}, {ntsc(180), 1}, {12.5, 2}, {13.0004, 2}, {99, 2}} {
		if got := p.Index(c.t); got != c.want {
			t.Errorf("Index(%v) = %d, want %d", c.t, got, c.want)
		}
	}
	if got := (Plan{Bounds: []float64{0, 2}}).TargetDuration(); got != 2 {
		t.Errorf("exact 2 s segment: TargetDuration = %d, want 2", got)
	}
	if got := (Plan{Bounds: []float64{0, 0.2}}).TargetDuration(); got != 1 {
		t.Errorf("TargetDuration = %d, want at least 1", got)
	}
	var empty Plan
	if empty.Len() != 0 || empty.Index(3) != 0 || empty.TargetDuration() != 1 {
		t.Errorf("empty plan: Len %d Index %d Target %d", empty.Len(), empty.Index(3), empty.TargetDuration())
	}
}

func TestLongGOP(t *testing.T) {
	tests := []struct {
		name      string
		keyframes []float64
		duration  float64
		want      bool
	}{
		{"regular", every(2, 60), 60, false},
		{"13 s GOP inside", []float64{0, 2, 4, 6, 19, 21}, 30, true},
		{"exactly 2*target", []float64{0, 12}, 20, false},
		{"long last segment only", []float64{0, 2, 4, 6}, 40, false},
	}
	for _, tt := range tests {
		p := KeyframePlan(tt.keyframes, tt.duration, 6)
		if got := LongGOP(p, 6); got != tt.want {
			t.Errorf("%s: LongGOP(%v) = %v, want %v", tt.name, p.Bounds, got, tt.want)
		}
	}
}

// TestLongFileDurations checks that EXTINFs of a 4-hour file (2400
// segments, non-millisecond keyframe times) add up to the file duration.
func TestLongFileDurations(t *testing.T) {
	const duration = 4*3600 + 0.123
	for name, p := range map[string]Plan{
		"keyframes": KeyframePlan(every(ntsc(60), duration), duration, 6),
		"grid":      GridPlan(duration, 24000.0/1001, 6),
	} {
		if p.Len() < 2000 {
			t.Fatalf("%s: only %d segments", name, p.Len())
		}
		checkPlan(t, p, duration)
	}
}

// checkPlan asserts the invariants every plan must hold.
func checkPlan(t *testing.T, p Plan, duration float64) {
	t.Helper()
	b := p.Bounds
	if len(b) < 2 || b[0] != 0 || b[len(b)-1] != duration {
		t.Fatalf("bounds %v must run from 0 to %v", b, duration)
	}
	sumMs, sum := int64(0), kahan{}
	for i := range p.Len() {
		if !(b[i] < b[i+1]) {
			t.Fatalf("bounds not strictly increasing at %d: %v", i, b)
		}
		if millis(duration) > 0 && p.Duration(i) <= 0 {
			t.Fatalf("segment %d [%v,%v) has EXTINF %v", i, b[i], b[i+1], p.Duration(i))
		}
		if float64(p.TargetDuration()) < math.Round(p.Duration(i)) {
			t.Fatalf("target %d below segment %d duration %v", p.TargetDuration(), i, p.Duration(i))
		}
		if p.Index(p.Start(i)) != i || p.Index((b[i]+b[i+1])/2) != i {
			t.Fatalf("Index disagrees with segment %d [%v,%v)", i, b[i], b[i+1])
		}
		sumMs += millis(p.Duration(i))
		sum.add(p.Duration(i))
	}
	if p.Index(-1) != 0 || p.Index(duration+1) != p.Len()-1 {
		t.Fatalf("Index does not clamp")
	}
	if sumMs != millis(duration) {
		t.Fatalf("EXTINFs add up to %d ms, want %d", sumMs, millis(duration))
	}
	if want := float64(millis(duration)) / 1000; math.Abs(sum.sum()-want) > 1e-9 {
		t.Fatalf("sum of durations %v, want %v", sum.sum(), want)
	}
}

// kahan is a compensated (Neumaier) sum. A plain float loop over 2400
// EXTINFs accumulates ~1e-9 of its own rounding error, which would hide
// whether the durations themselves drift.
type kahan struct{ s, c float64 }

func (k *kahan) add(x float64) {
	t := k.s + x
	if math.Abs(k.s) >= math.Abs(x) {
		k.c += (k.s - t) + x
	} else {
		k.c += (x - t) + k.s
	}
	k.s = t
}

func (k kahan) sum() float64 { return k.s + k.c }

// checkKeyframePlan asserts checkPlan plus the greedy rules, stated directly
// rather than by re-running the algorithm.
func checkKeyframePlan(t *testing.T, p Plan, keyframes []float64, duration, target float64) {
	t.Helper()
	checkPlan(t, p, duration)
	min := target / 2
	// any reports whether a usable keyframe lies in [lo, hi].
	any := func(lo, hi float64) bool {
		for _, k := range keyframes {
			if k >= lo && k <= hi && k < duration {
				return true
			}
		}
		return false
	}
	b := p.Bounds
	last := p.Len() - 1
	for i := range p.Len() {
		s, e := b[i], b[i+1]
		if i < last {
			if !slices.Contains(keyframes, e) {
				t.Fatalf("inner boundary %v is not a keyframe", e)
			}
			if e < s+min {
				t.Fatalf("segment %d [%v,%v) shorter than %v", i, s, e, min)
			}
			if e <= s+target && any(math.Nextafter(e, math.Inf(1)), s+target) {
				t.Fatalf("segment %d [%v,%v): a later keyframe fits the window", i, s, e)
			}
			if e > s+target && any(s+min, math.Nextafter(e, math.Inf(-1))) {
				t.Fatalf("segment %d [%v,%v) longer than needed", i, s, e)
			}
			continue
		}
		long := e-s > target+0.0005 && e-s > 1.5*target
		if long && any(s+min, s+target) {
			t.Fatalf("last segment [%v,%v) longer than needed", s, e)
		}
		if i > 0 && e-s < min && e-b[i-1] <= 1.5*target {
			t.Fatalf("short last segment [%v,%v) not merged", s, e)
		}
	}
}

// FuzzKeyframePlan builds keyframes at 29.97 fps from frame gaps (a zero gap
// repeats a keyframe) and checks the plan invariants and Final's promise.
func FuzzKeyframePlan(f *testing.F) {
	f.Fuzz(func(t *testing.T, gaps []byte, durationFrames uint32, targetMs uint16) {
		if targetMs < 100 {
			t.Skip("target below 100 ms is not a real configuration")
		}
		target := float64(targetMs) / 1000
		duration := ntsc(int(durationFrames % (1 << 22)))
		var kf []float64
		frame := 0
		for _, g := range gaps {
			frame += int(g)
			kf = append(kf, ntsc(frame))
		}
		p := KeyframePlan(kf, duration, target)
		if duration == 0 {
			if p.Len() != 0 {
				t.Fatalf("empty file got %v", p.Bounds)
			}
			return
		}
		checkKeyframePlan(t, p, kf, duration, target)
		for i := 1; i <= 8; i++ {
			checkFinal(t, kf, duration, duration*float64(i)/8, target)
		}
	})
}

// FuzzGridPlan checks the grid for re-encoded rungs: it runs from 0 to the
// duration, strictly increasing, every inner boundary on the frame grid, and
// no segment longer than the target by more than a frame, except a final one
// that absorbed a short tail (at most 1.5 targets plus a frame).
func FuzzGridPlan(f *testing.F) {
	f.Fuzz(func(t *testing.T, durationMs uint32, fpsMilli uint32, targetMs uint16) {
		if targetMs < 100 || fpsMilli < 1000 || fpsMilli > 240_000 {
			t.Skip("not a real configuration")
		}
		duration := float64(durationMs%(1<<26)) / 1000
		fps := float64(fpsMilli) / 1000
		target := float64(targetMs) / 1000
		p := GridPlan(duration, fps, target)
		if millis(duration) == 0 {
			return
		}
		checkPlan(t, p, duration)
		frame := 1 / fps
		for i := range p.Len() {
			if i > 0 {
				if f := p.Start(i) * fps; math.Abs(f-math.Round(f)) > 1e-6 {
					t.Fatalf("boundary %v is not on the %v fps grid", p.Start(i), fps)
				}
			}
			limit := target + frame
			if i == p.Len()-1 {
				limit = 1.5*target + frame
			}
			if d := p.Bounds[i+1] - p.Bounds[i]; d > limit+1e-9 {
				t.Fatalf("segment %d is %v s, over %v (target %v, fps %v)", i, d, limit, target, fps)
			}
		}
	})
}
