package keyframes

import (
	"context"
	"errors"
	"slices"
	"testing"
	"time"
)

func TestKeyframesAdd(t *testing.T) {
	k := newKeyframes()
	k.add(-0.1, 7, false) // before the first keyframe: counted nowhere
	k.add(0, 100, true)
	k.add(0.2, 10, false)
	k.add(0.1, 20, false) // B-frame: pts goes back, scanned must not
	k.add(0, 5, true)     // not after the previous keyframe: plain packet
	k.add(2, 200, true)
	k.add(2.5, 30, false)

	times, gop, scanned, complete, err := k.Snapshot()
	if !slices.Equal(times, []float64{0, 2}) {
		t.Errorf("times = %v", times)
	}
	if !slices.Equal(gop, []int64{135, 230}) {
		t.Errorf("gopBytes = %v", gop)
	}
	if scanned != 2.5 || complete || err != nil {
		t.Errorf("scanned, complete, err = %v, %v, %v", scanned, complete, err)
	}
	k.finish(nil)
	if _, _, _, complete, _ := k.Snapshot(); !complete {
		t.Error("not complete after finish")
	}
}

func TestKeyframesWait(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()

	k := newKeyframes()
	result := make(chan error, 1)
	go func() { result <- k.Wait(ctx, 1) }()
	// Fewer lines than a batch: only the publish timer can wake the waiter.
	k.add(0, 1, true)
	k.add(1.5, 1, false)
	if err := <-result; err != nil {
		t.Fatalf("Wait = %v", err)
	}

	short, stop := context.WithCancel(ctx)
	stop()
	if err := k.Wait(short, 10); !errors.Is(err, context.Canceled) {
		t.Errorf("Wait on canceled ctx = %v", err)
	}

	boom := errors.New("boom")
	go func() { result <- k.Wait(ctx, 10) }()
	k.finish(boom)
	if err := <-result; err != boom {
		t.Errorf("Wait after failure = %v", err)
	}
	select {
	case <-k.Done():
	default:
		t.Error("Done not closed after finish")
	}
}
