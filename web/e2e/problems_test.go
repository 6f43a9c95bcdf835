package e2e

import "testing"

// TestStallProblems: a stall with seconds buffered ahead is the player's
// CPU and passes; one at the end of what is buffered (a hole, a late
// segment) fails. The reasons are hls.js 1.7.4's, as the suite met them.
func TestStallProblems(t *testing.T) {
	for _, c := range []struct {
		reason string
		fails  bool
	}{
		{`Playback stalling at @18.440257 due to low buffer ({"len":3.5760760000000005,"start":18.005666,"end":22.016333,"buffered":[{"start":18.005666,"end":22.016333}],"bufferedIndex":0})`, false},
		{`Playback stalling at @9.950286 due to low buffer ({"len":0.05537999999999954,"start":2,"end":10.005666,"nextStart":11.505978})`, true},
		{`Playback stalling at @14.306277 due to low buffer ({"len":0,"start":14.306277,"end":14.306277})`, true},
		{`something else`, true},
	} {
		r := Result{Errors: []PlayerError{{Type: "mediaError", Details: "bufferStalledError", Reason: c.reason}}}
		if got := len(r.Problems()) > 0; got != c.fails {
			t.Errorf("%s: fails %v, want %v", c.reason, got, c.fails)
		}
	}
}
