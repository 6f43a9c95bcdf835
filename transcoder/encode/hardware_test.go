package encode

import (
	"context"
	"os"
	"os/exec"
	"testing"
	"time"
)

// TestDetectAccel runs the real detection: on a machine without a GPU every
// candidate must fail with ffmpeg's reason, and software is picked.
func TestDetectAccel(t *testing.T) {
	if _, err := exec.LookPath("ffmpeg"); err != nil {
		t.Skip("no ffmpeg")
	}
	for _, dev := range []string{"/dev/nvidia0", "/dev/dri"} {
		if _, err := os.Stat(dev); err == nil {
			t.Skipf("%s exists: an accelerator may work here", dev)
		}
	}
	began := time.Now()
	accel, why := DetectAccel(context.Background(), "ffmpeg", "")
	t.Logf("detection took %v: %v", time.Since(began), why)
	if accel != AccelNone {
		t.Fatalf("picked %q on a machine without a GPU", accel)
	}
	for _, a := range Accels {
		if why[a] == "" {
			t.Errorf("no reason given for not picking %s", a)
		}
	}
}
