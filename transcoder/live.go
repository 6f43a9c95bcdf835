package transcoder

import (
	"context"
	"fmt"
	"io"
	"os"
	"time"

	"github.com/hlsd/hlsd/transcoder/failure"
	"github.com/hlsd/hlsd/transcoder/fmp4"
)

// livePoll is how often a live segment looks for new fragments.
const livePoll = 20 * time.Millisecond

// liveSegment streams a segment while its head writes it: each whole
// fragment as soon as ffmpeg has flushed it, in the bytes publish will put
// in the cache (ftyp and moov go to init.mp4, so they are skipped). A
// player then starts on the first fragment instead of the whole segment.
// Only re-encoded video streams live: its segments are numbered as
// planned, and it is the only kind slower than the network.
type liveSegment struct {
	v        *variant
	h        *head
	n        int
	clientID string
	ctx      context.Context
	ch       chan struct{} // closed when segment n is published
	path     string        // ffmpeg's file of segment n in the head's work directory

	f      *os.File      // the work file, once it exists
	buf    []byte        // for reads from f
	rest   io.ReadCloser // the ordinary path's answer, when the work file went before it was opened
	frames fmp4.Framer   // of what was read from f
	out    []byte        // whole fragments to return
	sent   bool
	eof    bool
	left   bool // no longer counted as waiting on h
}

// live returns a live segment for n from head h, counted as a request
// waiting on h, so h keeps its priority. Caller holds v.mu.
func (v *variant) live(ctx context.Context, h *head, n int, clientID string) *liveSegment {
	ch, ok := v.waiters[n]
	if !ok {
		ch = make(chan struct{})
		v.waiters[n] = ch
	}
	h.wait(false)
	return &liveSegment{v: v, h: h, n: n, clientID: clientID, ctx: ctx, ch: ch,
		path: h.file(n), frames: fmp4.Framer{N: n}}
}

// canLive says whether segments of v may be streamed while made.
func (v *variant) canLive() bool { return v.costClass() == "encode" }

func (l *liveSegment) Read(p []byte) (int, error) {
	for len(l.out) == 0 {
		if l.rest != nil {
			k, err := l.rest.Read(p)
			l.sent = l.sent || k > 0
			return k, err
		}
		if l.eof {
			return 0, io.EOF
		}
		if err := l.fill(); err != nil {
			return 0, err
		}
	}
	k := copy(p, l.out)
	l.out = l.out[k:]
	l.sent = true
	return k, nil
}

// fill moves whatever ffmpeg has written since the last call into out, or
// waits a little for more.
func (l *liveSegment) fill() error {
	published := isClosed(l.ch)
	ended := isClosed(l.h.done) && !published
	if l.f == nil {
		if f, err := os.Open(l.path); err == nil {
			l.f = f
		} else if published {
			return l.fallback(nil) // already moved into the cache
		}
	}
	if ended && !l.sent && len(l.out) == 0 {
		// The run stopped before this segment was under way: the ordinary
		// path makes it again, as for a request that waited on the run.
		return l.fallback(l.h)
	}
	if l.f != nil {
		if l.buf == nil {
			l.buf = make([]byte, 256<<10)
		}
		k, err := l.f.Read(l.buf)
		if err != nil && err != io.EOF {
			return fmt.Errorf("%w: reading segment %d as it is written: %v", failure.Encoder, l.n, err)
		}
		l.out = append(l.out, l.frames.Write(l.buf[:k])...)
		if k > 0 {
			return nil
		}
		// Nothing new. Once published, the file was complete when looked at.
		if published {
			rest, err := l.frames.End()
			if err != nil {
				return fmt.Errorf("%w: %v", failure.Encoder, err)
			}
			l.out = append(l.out, rest...)
			l.eof = true
			l.leave()
			return nil
		}
		if ended {
			// The run stopped in the middle: what was sent cannot be
			// completed, so the response must fail and the player retry.
			return fmt.Errorf("%w: the encoder stopped while segment %d was being sent", failure.Encoder, l.n)
		}
	}
	timer := time.NewTimer(livePoll)
	defer timer.Stop()
	select {
	case <-l.ch:
	case <-l.h.done:
	case <-timer.C:
	case <-l.ctx.Done():
		return l.ctx.Err()
	}
	return nil
}

// fallback hands the request to the ordinary path, which serves the cached
// segment or starts a run for it, knowing that ended stopped first.
func (l *liveSegment) fallback(ended *head) error {
	l.leave()
	if l.f != nil {
		l.f.Close()
		l.f = nil
	}
	rc, err := l.v.segment(l.ctx, l.n, l.clientID, false, ended)
	if err != nil {
		return err
	}
	l.rest = rc
	return nil
}

// leave stops counting l as waiting on its head.
func (l *liveSegment) leave() {
	if l.left {
		return
	}
	l.left = true
	l.v.mu.Lock()
	l.h.leave(false)
	l.v.mu.Unlock()
	l.v.env.sched.reprioritize()
}

// Close ends the stream; a player that goes away no longer holds the head up.
func (l *liveSegment) Close() error {
	l.leave()
	if l.rest != nil {
		l.rest.Close()
	}
	if l.f != nil {
		return l.f.Close()
	}
	return nil
}
