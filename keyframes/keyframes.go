// Package keyframes finds the video keyframe timestamps of a file: from its
// container's own index (MP4 sample tables, Matroska Cues) when it has one
// that can be trusted, else with a packet-level ffprobe scan whose progress
// is streamed to waiters. Completed results are persisted on disk.
package keyframes

import (
	"context"
	"sync"
	"time"
)

const (
	// Waiters are woken in batches so a fast scan does not close a channel
	// per packet; the timer bounds how long a small batch stays unannounced.
	publishLines = 64
	publishDelay = 50 * time.Millisecond
)

// Where keyframes came from, as /info reports it.
const (
	SourceIndex = "index"
	SourceScan  = "scan"
)

// Keyframes is the result of one read, possibly still growing.
type Keyframes struct {
	mu       sync.Mutex
	source   string
	times    []float64
	gopBytes []int64
	scanned  float64
	complete bool
	err      error
	// changed is closed and replaced on every published update.
	changed chan struct{}
	done    chan struct{}
	pending int
	timer   *time.Timer
}

func newKeyframes() *Keyframes {
	return &Keyframes{changed: make(chan struct{}), done: make(chan struct{})}
}

// newCompleteKeyframes wraps a result loaded from disk.
func newCompleteKeyframes(times []float64, gopBytes []int64, scanned float64, source string) *Keyframes {
	k := newKeyframes()
	k.times, k.gopBytes, k.scanned, k.source = times, gopBytes, scanned, source
	k.finish(nil)
	return k
}

// Source says where the keyframes come from: SourceIndex, SourceScan, or ""
// while the index is being read.
func (k *Keyframes) Source() string {
	k.mu.Lock()
	defer k.mu.Unlock()
	return k.source
}

func (k *Keyframes) setSource(source string) {
	k.mu.Lock()
	defer k.mu.Unlock()
	k.source = source
}

// setIndex takes the whole result from a container index at once.
func (k *Keyframes) setIndex(idx *index, startTime float64) {
	k.mu.Lock()
	defer k.mu.Unlock()
	k.source = SourceIndex
	k.times = make([]float64, len(idx.times))
	for i, t := range idx.times {
		k.times[i] = t - startTime
	}
	k.gopBytes = append([]int64(nil), idx.gopBytes...)
	k.scanned = k.times[len(k.times)-1]
}

// Snapshot copies the current state. times are keyframe timestamps in
// seconds relative to the file's start, ascending and unique. gopBytes[i] is
// the size of all video packets from keyframe i up to keyframe i+1; the last
// entry grows until the scan ends. scanned is the highest relative pts seen.
// complete reports that the scan finished successfully.
func (k *Keyframes) Snapshot() (times []float64, gopBytes []int64, scanned float64, complete bool, err error) {
	k.mu.Lock()
	defer k.mu.Unlock()
	times = append([]float64(nil), k.times...)
	gopBytes = append([]int64(nil), k.gopBytes...)
	return times, gopBytes, k.scanned, k.complete, k.err
}

// Wait blocks until scanned >= until, the scan completed, the scan failed
// (returning its error), or ctx is done (returning ctx.Err()).
func (k *Keyframes) Wait(ctx context.Context, until float64) error {
	for {
		k.mu.Lock()
		err, ready, changed := k.err, k.complete || k.scanned >= until, k.changed
		k.mu.Unlock()
		if err != nil {
			return err
		}
		if ready {
			return nil
		}
		select {
		case <-changed:
		case <-ctx.Done():
			return ctx.Err()
		}
	}
}

// Done is closed when the scan has completed or failed.
func (k *Keyframes) Done() <-chan struct{} {
	return k.done
}

// add records one video packet; pts is already relative to the file start.
func (k *Keyframes) add(pts float64, size int64, key bool) {
	k.mu.Lock()
	defer k.mu.Unlock()
	if pts > k.scanned {
		k.scanned = pts
	}
	n := len(k.times)
	switch {
	case key && (n == 0 || pts > k.times[n-1]):
		k.times = append(k.times, pts)
		k.gopBytes = append(k.gopBytes, size)
	case n > 0:
		k.gopBytes[n-1] += size
	default:
		// Packets before the first keyframe belong to no GOP.
	}

	k.pending++
	if k.pending >= publishLines {
		k.publishLocked()
		return
	}
	if k.timer == nil {
		k.timer = time.AfterFunc(publishDelay, k.flush)
	}
}

func (k *Keyframes) flush() {
	k.mu.Lock()
	defer k.mu.Unlock()
	k.timer = nil
	if k.pending > 0 {
		k.publishLocked()
	}
}

func (k *Keyframes) publishLocked() {
	close(k.changed)
	k.changed = make(chan struct{})
	k.pending = 0
}

// finish ends the scan; err == nil means it completed.
func (k *Keyframes) finish(err error) {
	k.mu.Lock()
	defer k.mu.Unlock()
	if k.timer != nil {
		k.timer.Stop()
		k.timer = nil
	}
	k.err = err
	k.complete = err == nil
	k.publishLocked()
	close(k.done)
}
