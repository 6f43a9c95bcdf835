package playlist

import (
	"math/rand/v2"
	"slices"
	"testing"
)

func TestFinal(t *testing.T) {
	tests := []struct {
		name      string
		keyframes []float64
		scanned   float64
		want      int
	}{
		{"nothing scanned", every(2, 100), 0, 0},
		{"first window not complete", every(2, 100), 6, 0},
		{"first boundary settled", every(2, 100), 10, 1},
		// The file might end at 8.5: the 2.5 s tail would merge away 6.
		{"settled but tail could merge", every(2, 8.5), 8.5, 0},
		{"keyframe at scanned is unknown", every(2, 100), 6.0000001, 0},
		{"long GOP still open", []float64{0, 2, 20}, 19, 0},
		{"long GOP settled by known keyframe", []float64{0, 2, 20}, 24, 1},
		{"later keyframes ignored", every(2, 100), 10, 1},
		{"well into the file", every(2, 100), 61, 9},
		{"unsorted input", []float64{8, 0, 6, 2, 4}, 10, 1},
	}
	for _, tt := range tests {
		if got := Final(tt.keyframes, tt.scanned, 6); got != tt.want {
			t.Errorf("%s: Final = %d, want %d", tt.name, got, tt.want)
		}
	}
}

// TestFinalProperty: for random keyframe sets and every scanned cutoff, the
// first Final boundaries of the prefix plan equal those of the full plan.
func TestFinalProperty(t *testing.T) {
	r := rand.New(rand.NewPCG(1, 2))
	for range 2000 {
		target := []float64{2, 4, 6, 10}[r.IntN(4)]
		var kf []float64
		frame := 0
		for range r.IntN(80) {
			// Mostly regular GOPs with the occasional very long one.
			gap := []int{1 + r.IntN(30), 48, 60, 60, 120, 250 + r.IntN(600)}[r.IntN(6)]
			frame += gap
			kf = append(kf, ntsc(frame))
		}
		duration := ntsc(frame + r.IntN(400) + 1)
		for range 10 {
			checkFinal(t, kf, duration, r.Float64()*duration, target)
		}
		checkFinal(t, kf, duration, duration, target)
	}
}

func TestFinalIsUseful(t *testing.T) {
	kf := every(ntsc(60), 600)
	full := KeyframePlan(kf, 600, 6)
	if got := Final(kf, 600, 6); got < full.Len()-2 {
		t.Fatalf("Final with the whole file scanned = %d of %d segments", got, full.Len())
	}
}

func checkFinal(t *testing.T, kf []float64, duration, scanned, target float64) {
	t.Helper()
	var known []float64
	for _, k := range kf {
		if k < scanned {
			known = append(known, k)
		}
	}
	n := Final(known, scanned, target)
	if n != Final(kf, scanned, target) {
		t.Fatalf("Final depends on keyframes past scanned")
	}
	prefix := KeyframePlan(known, scanned, target)
	full := KeyframePlan(kf, duration, target)
	if n > prefix.Len() || n > full.Len() || !slices.Equal(prefix.Bounds[:n+1], full.Bounds[:n+1]) {
		t.Fatalf("keyframes %v, duration %v, scanned %v, target %v: Final = %d but prefix plan %v, full plan %v",
			kf, duration, scanned, target, n, prefix.Bounds, full.Bounds)
	}
}
