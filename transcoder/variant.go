package transcoder

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"slices"
	"sync"
	"sync/atomic"
	"time"

	"github.com/hlsd/hlsd/playlist"

	"github.com/hlsd/hlsd/transcoder/child"
	"github.com/hlsd/hlsd/transcoder/encode"
	"github.com/hlsd/hlsd/transcoder/failure"
	"github.com/hlsd/hlsd/transcoder/fmp4"
	"github.com/hlsd/hlsd/transcoder/internal/atomicfile"
	"github.com/hlsd/hlsd/transcoder/probe"
)

// variant is one (file, track, quality): its segments on disk and the heads producing them.
type variant struct {
	env     *env
	m       *media
	kind    string // "video" or "audio"
	track   int
	quality string
	plan    playlist.Plan
	dir     string
	// firstKeyframe is where the file's segment 0 starts (it may follow 0).
	firstKeyframe float64

	// mu is a leaf: nothing else is locked, and no other component called,
	// while it is held.
	mu      sync.Mutex
	ready   []bool
	waiters map[int]chan struct{}
	initCh  chan struct{} // closed when init.mp4 exists
	heads   []*head
	// noHW: a hardware run of this variant failed, so its later runs use
	// software even while the accelerator stays enabled for others.
	noHW bool
	// initKey names the encoder configuration whose init segment is shared
	// by every variant made the same way (init.go); "" for none.
	initKey string
}

// video is the source stream of a video variant's track.
func (v *variant) video() probe.VideoStream { return v.m.info.Video[v.track] }

func (v *variant) softwareOnly() bool {
	v.mu.Lock()
	defer v.mu.Unlock()
	return v.noHW
}

func (v *variant) setSoftwareOnly() {
	v.mu.Lock()
	v.noHW = true
	v.mu.Unlock()
}

func (v *variant) name() string { return fmt.Sprintf("%s/%d/%s", v.kind, v.track, v.quality) }

// copies says whether v's runs copy the source's packets: they cut only
// where the source has a packet, so a segment is known by its timestamps.
func (v *variant) copies() bool {
	if v.kind == "video" {
		return v.quality == encode.QualityOriginal
	}
	return encode.CopiedAudio(v.m.info.Audio[v.track], v.quality)
}

// costClass says which encoder cap a head of this variant counts against.
func (v *variant) costClass() string {
	if v.kind == "video" && v.quality != encode.QualityOriginal {
		return "encode"
	}
	return "copy"
}

// speedKey is the class of v's runs with profile, for speed estimates.
func (v *variant) speedKey(p encode.Profile) string {
	return encode.SpeedKey(v.video(), v.quality, p)
}

// lookahead is how many segments a request waits for a running head to reach
// rather than starting another: copies run far faster than playback, while
// a re-encode start costs about as much as encoding a segment or two. An
// audio encode counts as a re-encode here: a new run answers in about
// 0.2 s, where a 5.1 one waiting six segments behind took 0.5 s on an idle
// machine and 6 s on a loaded one.
func (v *variant) lookahead() int {
	if !v.copies() {
		return 2
	}
	return 8
}

// maxAhead is how far a head may run past the furthest segment a reader asked for.
func (v *variant) maxAhead() int {
	if v.costClass() == "encode" {
		return 30
	}
	return 90
}

func (v *variant) segmentPath(n int) string {
	return segmentFile(v.dir, n)
}

func (v *variant) initPath() string { return initFile(v.dir) }

// load reuses what is on disk (an earlier run's segments, or this run's
// from before the file was last forgotten by the registry) and returns the
// segment numbers found. Work directories are not touched: the cache's load
// clears those of killed runs at start-up, and a head of this run may be
// using one.
func (v *variant) load() []int {
	v.ready = make([]bool, v.plan.Len())
	v.waiters = map[int]chan struct{}{}
	v.initCh = make(chan struct{})
	entries, _ := os.ReadDir(v.dir)
	var found []int
	for _, e := range entries {
		name := e.Name()
		if name == "init.mp4" {
			close(v.initCh)
			continue
		}
		if n, ok := segmentNumber(name); ok && n < len(v.ready) && e.Type().IsRegular() {
			v.ready[n] = true
			found = append(found, n)
		}
	}
	return found
}

// evictSeq makes the names evicted segments are moved to unique.
var evictSeq atomic.Int64

// forget takes segment n out of the variant for the cache, which evicts it,
// and returns where its file now is, for the cache to remove with no lock
// held; "" when there is nothing to remove.
func (v *variant) forget(n int, path string) string {
	v.mu.Lock()
	defer v.mu.Unlock()
	if n >= len(v.ready) || !v.ready[n] {
		return ""
	}
	v.ready[n] = false
	trash := filepath.Join(v.dir, fmt.Sprintf(".tmp-evicted-%d-%d", n, evictSeq.Add(1)))
	if err := os.Rename(path, trash); err != nil {
		return "" // already gone
	}
	return trash
}

func (v *variant) spec(start int, dir string, profile encode.Profile) encode.Spec {
	r := encode.Spec{
		Input: child.Input, Kind: v.kind, Track: v.track, Quality: v.quality, First: start,
		Bounds: v.plan.Bounds[start:], Profile: profile, OutDir: dir, Container: v.m.info.Container,
	}
	if v.kind == "video" {
		r.Video = v.video()
	} else {
		r.Audio = v.m.info.Audio[v.track]
	}
	return r
}

// headFor returns a running head that is at n or will reach it within the lookahead.
func (v *variant) headFor(n int) *head {
	for _, h := range v.heads {
		if h.start <= n && h.next <= n && n-h.next <= v.lookahead() && h.ctx.Err() == nil {
			return h
		}
	}
	return nil
}

// startHead registers a head before it has an encoder slot, so concurrent
// requests for the same segments find and share it. Caller holds v.mu.
func (v *variant) startHead(n int, reason, clientID string) *head {
	e := v.env
	ctx, cancel := context.WithCancelCause(e.ctx)
	id := int(e.headSeq.Add(1))
	h := &head{
		v: v, id: id, start: n, next: n, heavy: v.costClass() == "encode", reason: reason,
		dir: runDir(v.dir, id), ctx: ctx, cancel: cancel,
		done: make(chan struct{}), lastDemand: time.Now(), demandSeg: n, readers: map[string]time.Time{},
	}
	if clientID != "" {
		h.readers[clientID] = time.Now()
	}
	v.heads = append(v.heads, h)
	v.m.pins.Add(1) // a request holds a pin, so the media is not retired meanwhile
	e.wg.Add(1)
	go h.run()
	return h
}

// noteDemand records that a reader wants segment n from the heads that serve it.
// Caller holds v.mu.
func (v *variant) noteDemand(n int, clientID string) {
	now := time.Now()
	for _, h := range v.heads {
		if h.start <= n && n <= h.next+v.lookahead() {
			h.lastDemand = now
			h.demandSeg = max(h.demandSeg, n)
			if clientID != "" {
				h.readers[clientID] = now
			}
		}
	}
}

// segment returns segment n, open, once it is complete on disk. It is opened
// under v.mu, so the cache cannot evict it between the check and the open;
// once open, an eviction does not matter. With live, a segment a head is
// about to write is streamed as it is written instead (see liveSegment).
//
// ended is a head a live segment followed that stopped before writing n;
// the request goes on as if it had waited on it.
func (v *variant) segment(ctx context.Context, n int, clientID string, live bool, ended *head) (io.ReadCloser, error) {
	began := time.Now()
	defer func() { v.env.obs.SegmentWaited(time.Since(began)) }()
	reason := "seek"
	retried := false
	bg := isBackground(ctx)
	if ended != nil {
		var err error
		if reason, retried, err = afterEnd(ended, n, false); err != nil {
			return nil, err
		}
	}
	runs := 0        // heads this request started
	restarts := 0    // of which hlsd stopped, not counted in runs
	evicted := false // the segment was made, then evicted before this request could open it
	for {
		if v.env.ctx.Err() != nil {
			return nil, failure.ShuttingDown
		}
		v.mu.Lock()
		v.noteDemand(n, clientID)
		if v.ready[n] {
			f, err := os.Open(v.segmentPath(n))
			if err == nil {
				v.prefetch(n, clientID)
				v.mu.Unlock()
				v.env.cache.touch(v.segmentPath(n))
				return f, nil
			}
			// Deleted behind our back (an operator cleaning the cache):
			// make it again rather than promise a file that is gone.
			v.ready[n] = false
		}
		h := v.headFor(n)
		if h == nil {
			if runs >= 3 {
				v.mu.Unlock()
				if evicted {
					return nil, fmt.Errorf("%w: segment %d was evicted before it could be sent, %d times: the cache budget is too small for the load", failure.Unavailable, n, runs)
				}
				return nil, fmt.Errorf("%w: segment %d was not produced after %d encoder runs", failure.Encoder, n, runs)
			}
			if n == 0 && reason == "seek" {
				reason = "start"
			}
			h = v.startHead(n, reason, clientID)
			runs++
		}
		if live && v.canLive() {
			l := v.live(ctx, h, n, clientID)
			v.mu.Unlock()
			v.env.sched.reprioritize()
			return l, nil
		}
		ch, ok := v.waiters[n]
		if !ok {
			ch = make(chan struct{})
			v.waiters[n] = ch
		}
		h.wait(bg)
		v.mu.Unlock()
		v.env.sched.reprioritize()

		published := false
		select {
		case <-ch:
			published = true
		case <-h.done:
		case <-ctx.Done():
		}
		v.mu.Lock()
		h.leave(bg)
		ready := v.ready[n]
		v.mu.Unlock()
		v.env.sched.reprioritize()
		switch {
		case ready || published:
			evicted = true // unless it is still there at the top, where it is served
			continue       // served at the top, with the prefetch check
		case ctx.Err() != nil:
			return nil, ctx.Err()
		}
		select {
		case <-h.done:
			var err error
			if reason, retried, err = afterEnd(h, n, retried); err != nil {
				return nil, err
			}
			if reason == "restart" && restarts < maxRestarts {
				// hlsd stopped the run on purpose (preempted, released by
				// another reader, reached a segment since evicted): not
				// the encoder's failure, so it does not count as one of
				// the request's runs. The cap keeps a livelock finite.
				restarts++
				runs = max(runs-1, 0)
			}
		default:
		}
	}
}

// maxRestarts bounds the runs hlsd itself stops under one request.
const maxRestarts = 12

// afterEnd says what a request does when the head it waited on ended
// without segment n: the reason for its next run, or the error to answer.
func afterEnd(h *head, n int, retried bool) (string, bool, error) {
	switch {
	case errors.As(h.err, new(*encode.HWError)):
		// The same segments again, in software (the head marked the
		// variant): the GPU's failure is not the file's.
		return "fallback", retried, nil
	case h.err != nil:
		if retried || !errors.Is(h.err, failure.Encoder) {
			return "", retried, h.err // capacity is answered now, with Retry-After
		}
		// One failed run is retried: ffmpeg killed from outside (the OOM
		// killer, an operator) should cost a delay, not an error. A second
		// failure is the file's fault and is reported.
		return "retry", true, nil
	case h.stoppedBy == nil:
		return "", retried, fmt.Errorf("%w: ffmpeg ended before writing segment %d", failure.Encoder, n)
	}
	return "restart", retried, nil
}

// prefetch keeps playback ahead of the reader: when the next few segments
// are not on disk and no head is coming, start one now rather than when the
// player hits the gap. Caller holds v.mu.
func (v *variant) prefetch(n int, clientID string) {
	for k := n + 1; k < len(v.ready) && k <= n+3; k++ {
		if v.ready[k] {
			continue
		}
		if v.headFor(k) == nil && v.env.sched.canPrefetch(v) {
			v.startHead(k, "prefetch", clientID)
		}
		return
	}
}

// initSegment returns init.mp4, open: the one kept for the variant's
// encoder configuration, else the header its running head writes first
// (a head is started if none runs; an init is never made for its own sake).
func (v *variant) initSegment(ctx context.Context, hint int, clientID string) (*os.File, error) {
	if b, ok := v.env.inits.get(v.initKey); ok {
		if err := v.setInit(b); err != nil {
			return nil, err
		}
	}
	reason := "init"
	for attempt := 0; attempt < 3; attempt++ {
		v.mu.Lock()
		if isClosed(v.initCh) {
			f, err := os.Open(v.initPath())
			if err == nil {
				v.mu.Unlock()
				return f, nil
			}
			v.initCh = make(chan struct{}) // deleted behind our back: make it again
		}
		var h *head
		for _, x := range v.heads {
			if x.ctx.Err() == nil {
				h = x
			}
		}
		if h == nil {
			h = v.startHead(min(max(hint, 0), len(v.ready)-1), reason, clientID)
		}
		bg := isBackground(ctx)
		h.wait(bg)
		initCh := v.initCh // replaced under v.mu when the file went missing
		v.mu.Unlock()
		v.env.sched.reprioritize()
		v.awaitInit(ctx, h, initCh)
		v.mu.Lock()
		h.leave(bg)
		v.mu.Unlock()
		v.env.sched.reprioritize()
		if ctx.Err() != nil {
			return nil, ctx.Err()
		}
		select {
		case <-h.done:
			if errors.As(h.err, new(*encode.HWError)) {
				attempt-- // a software run follows; it gets the attempts
				reason = "fallback"
			} else if h.err != nil && (attempt > 0 || !errors.Is(h.err, failure.Encoder)) {
				return nil, h.err
			}
		default:
		}
	}
	v.mu.Lock()
	defer v.mu.Unlock()
	if isClosed(v.initCh) {
		if f, err := os.Open(v.initPath()); err == nil {
			return f, nil
		}
	}
	return nil, fmt.Errorf("%w: no init segment was produced", failure.Encoder)
}

// awaitInit waits until the variant has an init segment, h ends or ctx
// does, taking the init from h's first output file as soon as ffmpeg has
// written its header there.
func (v *variant) awaitInit(ctx context.Context, h *head, initCh chan struct{}) {
	tick := time.NewTicker(livePoll)
	defer tick.Stop()
	for {
		select {
		case <-initCh:
			return
		case <-h.done:
			return
		case <-ctx.Done():
			return
		case <-tick.C:
		}
		v.mu.Lock()
		path := h.file(h.next)
		v.mu.Unlock()
		if b, ok := headerOf(path); ok {
			if v.setInit(b) == nil {
				if !h.hw.Load() {
					v.env.inits.keep(v.initKey, b)
				}
				return
			}
		}
	}
}

// timeline is the plan as media playlists list it. Players put the first
// frame of segment 0 where the playlist starts it and count on from there:
// hls.js takes a frame at 0.021 s (audio priming in Matroska) for 0, so
// every later boundary sits 21 ms earlier than a playlist from 0 says, and
// a seek to just before one loads the wrong segment first. The timeline
// therefore starts at that frame; segments keep their timestamps.
func (v *variant) timeline() playlist.Plan {
	plan := v.plan
	if fk := v.firstKeyframe; fk > 0 && plan.Len() > 0 && fk < plan.Bounds[1] {
		b := slices.Clone(plan.Bounds)
		b[0] = fk
		plan = playlist.Plan{Bounds: b}
	}
	return plan
}

// publish moves a finished segment of h from ffmpeg's work directory into
// the cache, and stops h once it reaches segments that exist or runs too
// far ahead of its readers.
func (v *variant) publish(h *head, n int, src string) error {
	n, ok, err := v.store(n, src, &h.initSeen, h.hw.Load(), false)
	if err != nil || !ok {
		return err
	}
	v.mu.Lock()
	h.next = n + 1
	switch {
	case h.next < len(v.ready) && v.ready[h.next]:
		h.stop(errReachedExisting)
	case h.next-h.demandSeg > v.maxAhead():
		h.stop(errTooFarAhead)
	}
	v.mu.Unlock()
	return nil
}

// store moves a segment ffmpeg finished into the cache: init part once,
// media part as segment-n.m4s, each visible only when complete (rename),
// and wakes whoever waits for it. initSeen is the run's: its first init is
// kept for the encoder configuration (unless made on a GPU, hw) or checked
// against the one kept. pin asks the cache to keep it from eviction (a
// prepared rung). It returns the segment's number in the plan, and false
// for the piece a copy writes before its first boundary.
func (v *variant) store(n int, src string, initSeen *bool, hw, pin bool) (int, bool, error) {
	data, err := os.ReadFile(src)
	if err != nil {
		return n, false, fmt.Errorf("%w: reading segment %d: %v", failure.Encoder, n, err)
	}
	init, body, err := fmp4.Split(data)
	if err != nil {
		// A truncated segment is what ffmpeg leaves when the disk fills
		// up; say so while the partial file still takes the space.
		err = fmt.Errorf("%w: segment %d: %v%s", failure.Encoder, n, err, atomicfile.DiskFullHint(v.dir))
	}
	os.Remove(src)
	if err != nil {
		return n, false, err
	}
	if v.copies() {
		start, err := fmp4.Start(init, body)
		if err != nil {
			return n, false, fmt.Errorf("%w: segment %d: %v", failure.Encoder, n, err)
		}
		if n = v.identify(start); n < 0 {
			return n, false, nil // the piece before the run's first boundary
		}
	}
	if n >= len(v.ready) {
		return n, false, fmt.Errorf("%w: ffmpeg wrote segment %d beyond the plan's %d", failure.Encoder, n, len(v.ready))
	}
	if err := v.setInit(init); err != nil {
		return n, false, err
	}
	if !*initSeen {
		// Once per run: keep it for the configuration, or check it
		// against the one kept.
		*initSeen = true
		if !hw {
			v.env.inits.keep(v.initKey, init)
		}
	}
	fmp4.Number(body, n)
	if err := atomicfile.Write(v.segmentPath(n), body); err != nil {
		return n, false, fmt.Errorf("%w: writing segment %d: %v", failure.Encoder, n, err)
	}

	v.mu.Lock()
	v.ready[n] = true
	if ch, ok := v.waiters[n]; ok {
		close(ch)
		delete(v.waiters, n)
	}
	v.mu.Unlock()
	v.env.cache.add(v.segmentPath(n), int64(len(body)), v, n, pin)
	return n, true, nil
}

// identify maps the start time of a copied segment to its plan index, or -1
// when it starts at no boundary. A video copy starts exactly at a boundary
// keyframe; an audio copy at the first packet at or after the boundary,
// within a frame (1024 samples of AAC, 1536 of AC-3).
func (v *variant) identify(start float64) int {
	i := v.plan.Index(start + 1e-4)
	b := v.plan.Start(i)
	tol := 1e-3
	if v.kind == "audio" {
		a := v.m.info.Audio[v.track]
		tol = 1024.0 / float64(max(a.SampleRate, 8000))
		if encode.AudioCodec(a) != "" {
			tol = 1536.0 / float64(max(a.SampleRate, 8000)) // an AC-3 frame
		}
		if i == 0 {
			b = a.Start
		}
	} else if i == 0 {
		// Segment 0 starts at the file's first keyframe, which may follow 0.
		b = v.firstKeyframe
	}
	if start < b-1e-3 || start-b >= tol {
		return -1
	}
	return i
}

// headEnded wakes everyone waiting on h.
func (v *variant) headEnded(h *head, err error) {
	v.mu.Lock()
	defer v.mu.Unlock()
	for i, x := range v.heads {
		if x == h {
			v.heads = append(v.heads[:i], v.heads[i+1:]...)
			break
		}
	}
	h.err = err
	h.stoppedBy = context.Cause(h.ctx)
	close(h.done)
}

// release forgets clientID as a reader of heads that do not serve segment
// keep (-1: none), and stops heads nobody else reads.
func (v *variant) release(clientID string, keep int) {
	v.mu.Lock()
	defer v.mu.Unlock()
	for _, h := range v.heads {
		if _, ok := h.readers[clientID]; !ok {
			continue
		}
		if keep >= 0 && h.start <= keep && keep <= h.next+v.lookahead() {
			continue
		}
		delete(h.readers, clientID)
		if len(h.readers) == 0 {
			// A request may still wait on it: the one the player is about
			// to abandon. It stops when that request leaves.
			h.released = true
			if h.waiting == 0 && h.background == 0 {
				h.stop(errReleased)
			}
		}
	}
}

func isClosed(ch chan struct{}) bool {
	select {
	case <-ch:
		return true
	default:
		return false
	}
}
