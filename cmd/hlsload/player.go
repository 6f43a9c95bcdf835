package main

import (
	"bufio"
	"bytes"
	"context"
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	mrand "math/rand/v2"
	"net/http"
	"net/url"
	"regexp"
	"sort"
	"strconv"
	"strings"
	"sync"
	"time"
)

// player is one simulated HLS player: a goroutine that loads the master,
// one video and one audio playlist and their inits, then fetches segments
// against a playhead that advances at Config.Speed times real time, seeking
// every 20-40 s (real time) and when it reaches the end.
type player struct {
	id        int
	transcode bool
	file      string
	speed     float64       // media seconds per second of real time
	timeout   time.Duration // a request still unanswered after this hung
	hung      *hangDump     // shared by the players of a run
	clientID  string
	rng       *mrand.Rand
	client    *http.Client
	master    *url.URL
	rung      string // video quality played now
	startRung string // a transcode player's first rung (-rung)
	altRung   string // the rung it switches to and back from: 240p, or 360p from 240p
	log       *logWriter

	videoURI     map[string]*url.URL // playlist by quality, from the master
	video, audio *track

	phase     phase
	pos       float64   // playhead (s); while playing, where it was at anchor
	anchor    time.Time // when the playhead was at pos, while playing
	stallAt   time.Time
	loadStart time.Time // when the current startup (first load or seek) began
	seeking   bool      // the current startup follows a seek
	nextSeek  time.Time

	s stats
}

type phase int

const (
	starting phase = iota // buffering up to 2 segments before playing
	playing
	stalled
	ended // the playhead reached the end of the media
)

// track is a media playlist and what of it is buffered.
type track struct {
	kind, quality string
	playlist      *url.URL
	init          *url.URL
	segs          []segment
	next          int     // next segment to fetch
	end           float64 // end of the media buffered contiguously since the last seek
	count         int     // segments buffered since the last seek
}

type segment struct {
	n          int
	start, dur float64
	uri        *url.URL
}

// stats are one player's figures; mu guards them, as audio and video are
// fetched at once.
type stats struct {
	mu                        sync.Mutex
	requests, aborted, failed int
	hung, retried503          int
	segments, late, stalls    int
	seeks, switches           int
	stallTime                 time.Duration
	bytes                     int64
	failures                  map[string]int
	messages                  []timedMsg
	lateExamples              []timedMsg
	startup, seek, seg, req   []time.Duration
	startupsCut               int
}

type timedMsg struct {
	at  time.Time
	msg string
}

func newPlayer(i int, transcode bool, cfg Config, file string, master *url.URL, lw *logWriter, hung *hangDump) *player {
	var b [8]byte
	_, _ = rand.Read(b[:])
	p := &player{
		id:        i,
		transcode: transcode,
		file:      file,
		speed:     cfg.Speed,
		timeout:   cfg.RequestTimeout,
		hung:      hung,
		clientID:  hex.EncodeToString(b[:]),
		rng:       seededRand(cfg.Seed, i),
		log:       lw,
		rung:      "original",
		client: &http.Client{Transport: &http.Transport{
			Proxy:               nil, // loopback only
			MaxIdleConnsPerHost: 4,
			IdleConnTimeout:     30 * time.Second,
		}},
		s: stats{failures: map[string]int{}},
	}
	if transcode {
		p.rung, p.startRung = cfg.Rung, cfg.Rung
		p.altRung = "240p"
		if cfg.Rung == "240p" {
			p.altRung = "360p"
		}
	}
	m := *master
	m.RawQuery = url.Values{"clientId": {p.clientID}}.Encode()
	p.master = &m
	return p
}

func (p *player) name() string {
	if p.transcode {
		return fmt.Sprintf("p%02d %s transcode %s", p.id, p.file, p.rung)
	}
	return fmt.Sprintf("p%02d %s original", p.id, p.file)
}

func (p *player) logf(format string, args ...any) {
	if p.log != nil {
		p.log.printf("%s: "+format, append([]any{p.name()}, args...)...)
	}
}

// run plays until ctx ends.
func (p *player) run(ctx context.Context) {
	defer p.client.CloseIdleConnections()
	defer func() {
		// A stall still going on at the end counts up to the end.
		if p.phase == stalled {
			p.s.stallTime += time.Since(p.stallAt)
		}
		if p.phase == starting {
			p.s.startupsCut++
		}
	}()
	p.loadStart = time.Now()
	if !p.load(ctx) {
		return
	}
	for ctx.Err() == nil {
		now := time.Now()
		p.advance(now)
		if p.phase == ended || (p.phase != starting && !now.Before(p.nextSeek)) {
			p.seek(ctx, now)
			continue
		}
		if p.needFetch(now) {
			p.fetchStep(ctx)
			continue
		}
		// Buffer full: wait until it falls under forward (or, all of it
		// fetched, until the end), or the next seek.
		ahead := p.bufEnd() - p.position(now)
		if !p.allFetched() {
			ahead -= forward
		}
		wait := min(seconds(ahead/p.speed), p.nextSeek.Sub(now)) + time.Millisecond
		sleep(ctx, wait)
	}
}

// load fetches the master, both media playlists and both inits.
func (p *player) load(ctx context.Context) bool {
	var body []byte
	if !p.retry(ctx, func() (err error) { body, err = p.get(ctx, p.master, true); return err }) {
		return false
	}
	videos, audio, err := parseMaster(p.master, body)
	if err != nil {
		p.fail(fmt.Sprintf("master: %v", err), "parse master")
		return false
	}
	p.videoURI = videos
	vURI := p.variantURI(p.rung)
	if audio == nil {
		p.fail("master: no audio rendition", "parse master")
		return false
	}
	var wg sync.WaitGroup
	var okV, okA bool
	wg.Go(func() { p.video, okV = p.loadTrack(ctx, "video", p.rung, vURI) })
	wg.Go(func() { p.audio, okA = p.loadTrack(ctx, "audio", "aac", audio) })
	wg.Wait()
	if !okV || !okA {
		return false
	}
	p.logf("loaded: %d video and %d audio segments, %.0f s", len(p.video.segs), len(p.audio.segs), p.video.duration())
	return true
}

// variantURI is the playlist of a video quality: from the master, or built
// as the master's would be for rungs the master leaves out (still requestable).
func (p *player) variantURI(q string) *url.URL {
	if u, ok := p.videoURI[q]; ok {
		return u
	}
	u := p.master.ResolveReference(&url.URL{Path: "video/0/" + q + "/index.m3u8"})
	u.RawQuery = p.master.RawQuery
	return u
}

// loadTrack fetches a media playlist and its init segment.
func (p *player) loadTrack(ctx context.Context, kind, quality string, u *url.URL) (*track, bool) {
	var body []byte
	if !p.retry(ctx, func() (err error) { body, err = p.get(ctx, u, true); return err }) {
		return nil, false
	}
	t, err := parseMedia(u, body)
	if err != nil {
		p.fail(fmt.Sprintf("%s: %v", u.Path, err), "parse "+kind+" playlist")
		return nil, false
	}
	t.kind, t.quality = kind, quality
	if !p.retry(ctx, func() error { _, err := p.get(ctx, t.init, false); return err }) {
		return nil, false
	}
	return t, true
}

// retry runs f until it succeeds or ctx ends, waiting as the server asks.
func (p *player) retry(ctx context.Context, f func() error) bool {
	for ctx.Err() == nil {
		err := f()
		if err == nil {
			return true
		}
		sleep(ctx, backoff(err))
	}
	return false
}

func backoff(err error) time.Duration {
	var he *httpError
	if errors.As(err, &he) && he.retry > 0 {
		return he.retry
	}
	return time.Second
}

// position is the playhead at now.
func (p *player) position(now time.Time) float64 {
	if p.phase != playing {
		return p.pos
	}
	return p.pos + p.speed*now.Sub(p.anchor).Seconds()
}

// bufEnd is where the media buffered in both tracks ends.
func (p *player) bufEnd() float64 { return min(p.video.end, p.audio.end) }

func (p *player) allFetched() bool { return p.video.done() && p.audio.done() }

// advance moves the playhead to now and notices when it ran out of buffer.
func (p *player) advance(now time.Time) {
	if p.phase != playing {
		return
	}
	end := p.bufEnd()
	if p.position(now) < end {
		return
	}
	at := p.anchor.Add(seconds((end - p.pos) / p.speed))
	p.pos = end
	if p.allFetched() {
		p.phase = ended
		p.logf("reached the end at %.1f s", end)
		return
	}
	p.phase, p.stallAt = stalled, at
	p.s.stalls++
	p.logf("stall at %.1f s", end)
}

func (p *player) needFetch(now time.Time) bool {
	if p.allFetched() {
		return false
	}
	if p.phase == playing {
		return p.bufEnd()-p.position(now) < forward
	}
	return true
}

// fetchStep fetches the next video segment and, at once, the audio segments
// that cover the same time, as hls.js's two stream controllers would.
func (p *player) fetchStep(ctx context.Context) {
	v, a := p.video, p.audio
	inPlay := p.phase == playing || p.phase == stalled
	var vseg *segment
	until := v.end // audio is fetched up to the end of the video fetched
	if !v.done() {
		vseg = &v.segs[v.next]
		until = vseg.start + vseg.dur
	}
	var aseg []segment
	for j := a.next; j < len(a.segs) && (a.segs[j].start < until-0.001 || v.done()); j++ {
		aseg = append(aseg, a.segs[j])
	}
	var vok bool
	var verr error
	aok := 0
	var aerr error
	var wg sync.WaitGroup
	if vseg != nil {
		wg.Go(func() { vok, verr = p.fetchSegment(ctx, v, *vseg, inPlay) })
	}
	if len(aseg) > 0 {
		wg.Go(func() {
			for _, s := range aseg {
				ok, err := p.fetchSegment(ctx, a, s, inPlay)
				if !ok {
					aerr = err
					return
				}
				aok++
			}
		})
	}
	wg.Wait()
	if ctx.Err() != nil {
		return
	}
	now := time.Now()
	p.advance(now) // the playhead ran while we waited: it may have stalled meanwhile
	if vok {
		v.next++
		v.end = vseg.start + vseg.dur
		v.count++
	}
	for _, s := range aseg[:aok] {
		a.next++
		a.end = s.start + s.dur
		a.count++
	}
	p.buffered(now)
	// The longer wait of the two, so that neither is retried before its Retry-After.
	var wait time.Duration
	for _, err := range []error{verr, aerr} {
		if err != nil {
			wait = max(wait, backoff(err))
		}
	}
	sleep(ctx, wait)
}

// buffered starts or resumes playback after data arrived.
func (p *player) buffered(now time.Time) {
	v, a := p.video, p.audio
	switch p.phase {
	case starting:
		if (v.count >= 2 || v.done()) && (a.count >= 2 || a.done()) {
			d := now.Sub(p.loadStart)
			p.s.mu.Lock()
			if p.seeking {
				p.s.seek = append(p.s.seek, d)
			} else {
				p.s.startup = append(p.s.startup, d)
			}
			p.s.mu.Unlock()
			p.phase, p.anchor = playing, now
			p.nextSeek = now.Add(seconds(20 + 20*p.rng.Float64()))
			p.logf("playing at %.1f s after %s", p.pos, d.Round(time.Millisecond))
		}
	case stalled:
		if p.bufEnd() > p.pos {
			d := now.Sub(p.stallAt)
			p.s.stallTime += d
			p.phase, p.anchor = playing, now
			p.logf("resumed at %.1f s after a %s stall", p.pos, d.Round(time.Millisecond))
		}
	}
}

// seek jumps to a random segment, dropping the buffer; transcode players
// switch rung at their first seek and one in three after, continuing in the
// new rung from there (the first, so that a slow run still switches).
func (p *player) seek(ctx context.Context, now time.Time) {
	if p.phase == stalled {
		p.s.stallTime += now.Sub(p.stallAt)
	}
	from := p.position(now)
	p.phase, p.seeking, p.loadStart = starting, true, now
	p.s.seeks++
	target := p.video.segs[p.rng.IntN(len(p.video.segs))].start
	if p.transcode && (p.s.switches == 0 || p.rng.IntN(3) == 0) {
		to := p.altRung
		if p.rung == p.altRung {
			to = p.startRung
		}
		p.s.switches++
		p.logf("switch to %s", to)
		t, ok := p.loadTrack(ctx, "video", to, p.variantURI(to))
		if !ok {
			return
		}
		p.video, p.rung = t, to
	}
	v, a := p.video, p.audio
	v.next = v.index(target)
	p.pos = v.segs[v.next].start
	v.end, v.count = p.pos, 0
	a.next = a.index(p.pos)
	a.end, a.count = a.segs[a.next].start, 0
	p.logf("seek %.1f s -> segment %d (%.1f s)", from, v.next, p.pos)
}

// fetchSegment fetches one segment; inPlay says whether lateness counts: a
// segment is late when it took longer than the playhead takes to play it.
func (p *player) fetchSegment(ctx context.Context, t *track, s segment, inPlay bool) (bool, error) {
	start := time.Now()
	_, err := p.get(ctx, s.uri, false)
	d := time.Since(start)
	if err != nil {
		return false, err
	}
	p.s.mu.Lock()
	defer p.s.mu.Unlock()
	p.s.segments++
	p.s.seg = append(p.s.seg, d)
	if inPlay && d.Seconds() > s.dur/p.speed {
		p.s.late++
		if len(p.s.lateExamples) < maxMessages {
			p.s.lateExamples = append(p.s.lateExamples, timedMsg{at: start, msg: fmt.Sprintf("%s: %s/%s segment %d took %s (%.2f s of media)",
				p.name(), t.kind, t.quality, s.n, d.Round(time.Millisecond), s.dur)})
		}
		p.logf("late: %s/%s segment %d took %s", t.kind, t.quality, s.n, d.Round(time.Millisecond))
	}
	return true, nil
}

// httpError is a response other than 200.
type httpError struct {
	status int
	msg    string
	retry  time.Duration
}

func (e *httpError) Error() string { return fmt.Sprintf("%d %s", e.status, e.msg) }

// get fetches u, reading the body fully; it returns the body if keep. A
// 503 with Retry-After is not a failure: every caller waits that long and
// asks again.
func (p *player) get(ctx context.Context, u *url.URL, keep bool) ([]byte, error) {
	p.s.mu.Lock()
	p.s.requests++
	p.s.mu.Unlock()
	rctx, cancel := context.WithTimeout(ctx, p.timeout)
	defer cancel()
	start := time.Now()
	body, err := p.do(rctx, u, keep)
	d := time.Since(start)
	if err != nil && ctx.Err() != nil {
		// Cut off by the end of the run.
		p.s.mu.Lock()
		p.s.aborted++
		p.s.mu.Unlock()
		return nil, ctx.Err()
	}
	p.s.mu.Lock()
	p.s.req = append(p.s.req, d)
	p.s.mu.Unlock()
	var he *httpError
	switch {
	case err == nil:
		return body, nil
	case rctx.Err() != nil:
		p.hung.take()
		p.s.mu.Lock()
		p.s.hung++
		p.s.mu.Unlock()
		p.fail(fmt.Sprintf("GET %s: no answer within %s", pathPattern(u, false), p.timeout), "hung "+pathPattern(u, true))
	case errors.As(err, &he) && he.status == http.StatusServiceUnavailable && he.retry > 0:
		p.s.mu.Lock()
		p.s.retried503++
		p.s.mu.Unlock()
		p.logf("503 on %s: retry in %s (%s)", pathPattern(u, false), he.retry, he.msg)
	case he != nil:
		p.fail(fmt.Sprintf("GET %s: %v", pathPattern(u, false), err), strconv.Itoa(he.status)+" "+pathPattern(u, true))
	default:
		p.fail(fmt.Sprintf("GET %s: %v", pathPattern(u, false), err), "error "+pathPattern(u, true))
	}
	return nil, err
}

// do is one GET: the body when the status is 200, else an *httpError.
func (p *player) do(ctx context.Context, u *url.URL, keep bool) ([]byte, error) {
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, u.String(), nil)
	if err != nil {
		return nil, err
	}
	resp, err := p.client.Do(req)
	if err != nil {
		return nil, err
	}
	defer resp.Body.Close()
	var buf bytes.Buffer
	var n int64
	if keep || resp.StatusCode != http.StatusOK {
		n, err = buf.ReadFrom(resp.Body)
	} else {
		n, err = io.Copy(io.Discard, resp.Body)
	}
	p.s.mu.Lock()
	p.s.bytes += n
	p.s.mu.Unlock()
	if err != nil {
		return nil, fmt.Errorf("reading body (status %d): %w", resp.StatusCode, err)
	}
	if resp.StatusCode != http.StatusOK {
		he := &httpError{status: resp.StatusCode, msg: errorMessage(buf.Bytes())}
		if s, err := strconv.Atoi(resp.Header.Get("Retry-After")); err == nil && s > 0 {
			he.retry = time.Duration(s) * time.Second
		}
		return nil, he
	}
	return buf.Bytes(), nil
}

// errorMessage is the "error" of hlsd's JSON error body, or the body itself.
func errorMessage(b []byte) string {
	var e struct {
		Error string `json:"error"`
	}
	if json.Unmarshal(b, &e) == nil && e.Error != "" {
		return e.Error
	}
	s := strings.TrimSpace(string(b))
	if len(s) > 200 {
		s = s[:200] + "..."
	}
	return s
}

// fail counts a failure under key and keeps its message.
func (p *player) fail(msg, key string) {
	p.s.mu.Lock()
	defer p.s.mu.Unlock()
	p.s.failed++
	p.s.failures[key]++
	if len(p.s.messages) < maxMessages {
		p.s.messages = append(p.s.messages, timedMsg{at: time.Now(), msg: p.name() + ": " + msg})
	}
	p.logf("failed: %s", msg)
}

var segmentName = regexp.MustCompile(`segment-[0-9]+\.m4s$`)

// pathPattern is u's path after the media id; generic replaces the
// segment number by N.
func pathPattern(u *url.URL, generic bool) string {
	pth := u.Path
	if i := strings.Index(pth, "/videos/"); i >= 0 {
		rest := pth[i+len("/videos/"):]
		if j := strings.IndexByte(rest, '/'); j >= 0 {
			pth = rest[j+1:]
		}
	}
	if generic {
		pth = segmentName.ReplaceAllString(pth, "segment-N.m4s")
	}
	return pth
}

// parseMaster finds the video variants by quality and the first audio
// rendition's playlist.
func parseMaster(base *url.URL, body []byte) (videos map[string]*url.URL, audio *url.URL, err error) {
	videos = map[string]*url.URL{}
	sc := bufio.NewScanner(bytes.NewReader(body))
	streamInf := false
	for sc.Scan() {
		line := strings.TrimSpace(sc.Text())
		switch {
		case strings.HasPrefix(line, "#EXT-X-MEDIA:"):
			if audio == nil && strings.Contains(line, "TYPE=AUDIO") {
				if uri := attr(line, "URI"); uri != "" {
					if audio, err = base.Parse(uri); err != nil {
						return nil, nil, err
					}
				}
			}
		case strings.HasPrefix(line, "#EXT-X-STREAM-INF:"):
			streamInf = true
		case line == "" || strings.HasPrefix(line, "#"):
		case streamInf:
			streamInf = false
			u, err := base.Parse(line)
			if err != nil {
				return nil, nil, err
			}
			// video/{v}/{quality}/index.m3u8
			parts := strings.Split(u.Path, "/")
			if len(parts) >= 4 && parts[len(parts)-4] == "video" && parts[len(parts)-3] == "0" {
				videos[parts[len(parts)-2]] = u
			}
		}
	}
	if !strings.HasPrefix(string(body), "#EXTM3U") {
		return nil, nil, errors.New("not a playlist")
	}
	if len(videos) == 0 {
		return nil, nil, errors.New("no variant of video track 0")
	}
	return videos, audio, nil
}

// attr is the value of a quoted attribute of a playlist tag.
func attr(line, name string) string {
	i := strings.Index(line, name+`="`)
	if i < 0 {
		return ""
	}
	rest := line[i+len(name)+2:]
	j := strings.IndexByte(rest, '"')
	if j < 0 {
		return ""
	}
	return rest[:j]
}

// parseMedia reads a media playlist's init and segments.
func parseMedia(base *url.URL, body []byte) (*track, error) {
	t := &track{playlist: base}
	sc := bufio.NewScanner(bytes.NewReader(body))
	dur, have := 0.0, false
	start := 0.0
	for sc.Scan() {
		line := strings.TrimSpace(sc.Text())
		switch {
		case strings.HasPrefix(line, "#EXT-X-MAP:"):
			u, err := base.Parse(attr(line, "URI"))
			if err != nil {
				return nil, err
			}
			t.init = u
		case strings.HasPrefix(line, "#EXTINF:"):
			d, _, _ := strings.Cut(strings.TrimPrefix(line, "#EXTINF:"), ",")
			f, err := strconv.ParseFloat(d, 64)
			if err != nil {
				return nil, fmt.Errorf("bad %q", line)
			}
			dur, have = f, true
		case line == "" || strings.HasPrefix(line, "#"):
		case have:
			u, err := base.Parse(line)
			if err != nil {
				return nil, err
			}
			t.segs = append(t.segs, segment{n: len(t.segs), start: start, dur: dur, uri: u})
			start += dur
			have = false
		}
	}
	if t.init == nil || len(t.segs) == 0 {
		return nil, errors.New("no init or no segment")
	}
	return t, nil
}

func (t *track) done() bool { return t.next >= len(t.segs) }

func (t *track) duration() float64 {
	last := t.segs[len(t.segs)-1]
	return last.start + last.dur
}

// index is the segment holding time pos.
func (t *track) index(pos float64) int {
	i := sort.Search(len(t.segs), func(i int) bool { return t.segs[i].start+t.segs[i].dur > pos+0.001 })
	return min(i, len(t.segs)-1)
}

func seconds(s float64) time.Duration { return time.Duration(s * float64(time.Second)) }

// sleep waits d or until ctx ends.
func sleep(ctx context.Context, d time.Duration) {
	if d <= 0 {
		return
	}
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-ctx.Done():
	case <-t.C:
	}
}
