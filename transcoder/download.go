package transcoder

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"sync"
	"time"

	"github.com/hlsd/hlsd/transcoder/encode"
	"github.com/hlsd/hlsd/transcoder/failure"
	"github.com/hlsd/hlsd/transcoder/fmp4"
	"go.uber.org/zap"
)

// Download is one answer to download.mp4: the finished file, or a reader
// of the file as it is made.
type Download struct {
	Name    string        // the file's base name, for Content-Disposition
	File    *os.File      // complete: serve it with its size and ranges
	Partial io.ReadCloser // being made: read it to the end
}

// downloads are the download files being made, one per file version,
// quality and audio track, so that two requests for the same one share its
// encoders. mu is a leaf.
type downloads struct {
	mu sync.Mutex
	by map[string]*download
}

// download makes one download file: the video rendition's init and the
// audio's, joined, then each segment of both in time order, written to a
// temporary file that every request for it reads as it grows. Its
// segments come through the variants as a player's do, so cached ones are
// reused and missing ones made by heads, which run in the background (see
// background): a player waiting on something else goes first.
type download struct {
	file, quality string
	audio         int
	final, tmp    string
	total         float64

	cancel context.CancelFunc
	done   chan struct{} // closed when run returns

	mu       sync.Mutex // a leaf
	size     int64
	made     float64 // media seconds written
	err      error
	finished bool
	readers  int
	// cancelled: its last reader left; it is ending.
	cancelled bool
	changed   chan struct{} // closed and replaced at each change
}

// DownloadActivity is a download being made, for the Activity view.
type DownloadActivity struct {
	File    string  `json:"file"`
	Quality string  `json:"quality"`
	Audio   int     `json:"audio"`
	Done    float64 `json:"done"`  // media seconds written
	Total   float64 `json:"total"` // the file's duration
	Bytes   int64   `json:"bytes"`
	Readers int     `json:"readers"`
}

// Download returns file path as one MP4 with its video at quality and audio
// track audio (-1: the default track) as AAC stereo: the finished file when
// there is one, else a reader of the one being made, started if need be.
func (t *Transcoder) Download(ctx context.Context, path, quality string, audio int) (Download, error) {
	vr := encode.Rendition{Kind: "video", Track: 0, Quality: quality}
	v, releaseV, err := t.variant(ctx, path, vr)
	if err != nil {
		return Download{}, err
	}
	defer releaseV()
	m := v.m
	name := filepath.Base(m.name)
	if len(m.info.Audio) > 0 {
		if audio < 0 {
			audio = defaultAudio(m.info.Audio)
		}
		if audio >= len(m.info.Audio) {
			return Download{}, fmt.Errorf("%w: the file has no audio track %d", failure.NotFound, audio)
		}
	} else if audio > 0 {
		return Download{}, fmt.Errorf("%w: the file has no audio track %d", failure.NotFound, audio)
	}
	final := t.layout.download(m.key, quality, audio)
	if f, err := os.Open(final); err == nil {
		if st, err := f.Stat(); err == nil {
			t.cache.add(final, st.Size(), nil, 0, true) // after a restart; known: a touch
			t.cache.touch(final)
		}
		return Download{Name: name, File: f}, nil
	}
	for {
		d, err := t.startDownload(m, path, quality, audio, final)
		if err != nil {
			return Download{}, err
		}
		if d.join() {
			f, err := os.Open(d.tmp)
			if err == nil {
				return Download{Name: name, Partial: &downloadReader{ctx: ctx, d: d, f: f}}, nil
			}
			d.leave()
			// Finished or failed since: its end says which.
		}
		// Its last reader left a moment ago, or it ended: let it end, then
		// serve the file it made or start anew.
		select {
		case <-d.done:
		case <-ctx.Done():
			return Download{}, ctx.Err()
		}
		if f, err := os.Open(final); err == nil {
			return Download{Name: name, File: f}, nil
		}
		if err := d.failed(); err != nil && !d.stopping() {
			return Download{}, err
		}
	}
}

// startDownload returns the download of final being made, started now if
// none is.
func (t *Transcoder) startDownload(m *media, path, quality string, audio int, final string) (*download, error) {
	t.downloads.mu.Lock()
	d := t.downloads.by[final]
	t.downloads.mu.Unlock()
	if d != nil {
		return d, nil
	}
	if t.ctx.Err() != nil {
		return nil, failure.ShuttingDown
	}
	if err := os.MkdirAll(filepath.Dir(final), 0o755); err != nil {
		return nil, err
	}
	// Its own temporary, and its cancel set, before it is published: a
	// request that finds d in the map may open d.tmp and, leaving, cancel.
	out, err := os.CreateTemp(filepath.Dir(final), ".tmp-"+filepath.Base(final)+"-")
	if err != nil {
		return nil, err
	}
	d = &download{file: m.name, quality: quality, audio: audio, final: final, tmp: out.Name(), total: m.info.Duration,
		done: make(chan struct{}), changed: make(chan struct{})}
	dctx, cancel := context.WithCancel(background(t.ctx))
	d.cancel = cancel
	t.downloads.mu.Lock()
	if other := t.downloads.by[final]; other != nil { // another request was first
		t.downloads.mu.Unlock()
		cancel()
		out.Close()
		os.Remove(out.Name())
		return other, nil
	}
	t.downloads.by[final] = d
	t.downloads.mu.Unlock()
	m.pins.Add(1) // the media stays while the download runs
	t.wg.Add(1)
	go func() {
		defer t.wg.Done()
		defer m.release()
		t.runDownload(dctx, d, path, out)
	}()
	return d, nil
}

// runDownload makes d and ends by publishing it (renamed to its final
// name and accounted in the cache within the prepare budget) or removing it.
func (t *Transcoder) runDownload(ctx context.Context, d *download, path string, out *os.File) {
	defer close(d.done)
	err := t.runDownloadInner(ctx, d, path, out)
	t.downloads.mu.Lock()
	delete(t.downloads.by, d.final)
	t.downloads.mu.Unlock()
	if err == nil {
		var st os.FileInfo
		if st, err = os.Stat(d.final); err == nil {
			t.cache.add(d.final, st.Size(), nil, 0, true)
		}
	}
	if err != nil {
		os.Remove(d.tmp)
		if errors.Is(err, context.Canceled) {
			err = fmt.Errorf("%w: the download was cancelled", failure.Unavailable)
		}
		t.log.Info("download stopped", zap.String("file", d.file), zap.String("quality", d.quality), zap.Error(err))
	} else {
		t.log.Info("download made", zap.String("file", d.file), zap.String("quality", d.quality), zap.Int("audio", d.audio))
	}
	d.mu.Lock()
	d.err, d.finished = err, true
	close(d.changed)
	d.mu.Unlock()
}

func (t *Transcoder) runDownloadInner(ctx context.Context, d *download, path string, out *os.File) error {
	defer out.Close()
	clientID := "download:" + filepath.Base(filepath.Dir(filepath.Dir(d.final))) + "/" + filepath.Base(d.final)
	v, release, err := t.variant(ctx, path, encode.Rendition{Kind: "video", Track: 0, Quality: d.quality})
	if err != nil {
		return err
	}
	defer release()
	vs := []*variant{v}
	if a := d.audio; a >= 0 && len(v.m.info.Audio) > 0 {
		av, releaseA, err := t.variant(ctx, path, encode.Rendition{Kind: "audio", Track: a, Quality: stereoQuality(v.m.info.Audio[a])})
		if err != nil {
			return err
		}
		defer releaseA()
		vs = append(vs, av)
	}
	defer func() {
		for _, v := range vs {
			v.release(clientID, -1) // stops the heads only this download read
		}
	}()
	var j fmp4.Joiner
	var header []byte
	inits := make([][]byte, len(vs))
	for i, v := range vs {
		if inits[i], err = t.downloadPart(ctx, func() (io.ReadCloser, error) { return v.initSegment(ctx, 0, clientID) }); err != nil {
			return fmt.Errorf("%s init: %w", v.name(), err)
		}
	}
	// The video's first segment before the header, which depends on it.
	v0 := vs[0]
	t.clients.track(clientID, v0, 0)
	first, err := t.downloadPart(ctx, func() (io.ReadCloser, error) { return v0.segment(ctx, 0, clientID, false, nil) })
	if err != nil {
		return fmt.Errorf("%s segment 0: %w", v0.name(), err)
	}
	inits = append(inits, nil) // no audio track: a video-only file
	if header, err = j.Header(inits[0], inits[1], first, d.total); err != nil {
		return fmt.Errorf("%w: joining the init segments: %v", failure.Encoder, err)
	}
	if err := d.write(out, header, 0); err != nil {
		return err
	}
	// Segments in time order, so a player reading the file as it comes
	// finds audio beside its video; the original's plan may differ from
	// the audio's.
	next := make([]int, len(vs))
	for {
		pick := -1
		for i, v := range vs {
			if next[i] < v.plan.Len() && (pick < 0 || v.plan.Bounds[next[i]] < vs[pick].plan.Bounds[next[pick]]) {
				pick = i
			}
		}
		if pick < 0 {
			break
		}
		v, n := vs[pick], next[pick]
		body := first
		if pick != 0 || n != 0 {
			t.clients.track(clientID, v, n)
			if body, err = t.downloadPart(ctx, func() (io.ReadCloser, error) { return v.segment(ctx, n, clientID, false, nil) }); err != nil {
				return fmt.Errorf("%s segment %d: %w", v.name(), n, err)
			}
		}
		next[pick]++
		made := d.total
		for i, v := range vs {
			if next[i] < v.plan.Len() {
				made = min(made, v.plan.Bounds[next[i]])
			}
		}
		if err := d.write(out, j.Add(uint32(pick+1), body), made); err != nil {
			return err
		}
	}
	if err := d.write(out, j.End(), d.total); err != nil {
		return err
	}
	if err := out.Sync(); err != nil {
		return err
	}
	return os.Rename(d.tmp, d.final)
}

// downloadPart reads one init or segment whole, waiting out a full set of
// encoders rather than failing the download: it has all the time it needs.
func (t *Transcoder) downloadPart(ctx context.Context, get func() (io.ReadCloser, error)) ([]byte, error) {
	for {
		rc, err := get()
		var ce *failure.CapacityError
		if errors.As(err, &ce) {
			select {
			case <-time.After(ce.RetryAfter):
				continue
			case <-ctx.Done():
				return nil, ctx.Err()
			}
		}
		if err != nil {
			return nil, err
		}
		b, err := io.ReadAll(rc)
		rc.Close()
		return b, err
	}
}

// write appends b to the file and lets readers see it.
func (d *download) write(out *os.File, b []byte, made float64) error {
	if _, err := out.Write(b); err != nil {
		return fmt.Errorf("writing the download: %w", err)
	}
	d.mu.Lock()
	d.size += int64(len(b))
	d.made = made
	close(d.changed)
	d.changed = make(chan struct{})
	d.mu.Unlock()
	return nil
}

// leave ends one reader; the last one gone stops an unfinished download.
func (d *download) leave() {
	d.mu.Lock()
	d.readers--
	last := d.readers == 0 && !d.finished
	d.cancelled = d.cancelled || last
	d.mu.Unlock()
	if last {
		d.cancel()
	}
}

// join counts a new reader, unless d was cancelled or has ended.
func (d *download) join() bool {
	d.mu.Lock()
	defer d.mu.Unlock()
	if d.cancelled || d.finished {
		return false
	}
	d.readers++
	return true
}

// stopping says whether d was cancelled: its last reader left.
func (d *download) stopping() bool {
	d.mu.Lock()
	defer d.mu.Unlock()
	return d.cancelled
}

// failed is why d ended without its file, once it has.
func (d *download) failed() error {
	d.mu.Lock()
	defer d.mu.Unlock()
	return d.err
}

// downloadReader reads a download file as it grows, to its end.
type downloadReader struct {
	ctx  context.Context
	d    *download
	f    *os.File
	off  int64
	once sync.Once
}

func (r *downloadReader) Read(p []byte) (int, error) {
	for {
		r.d.mu.Lock()
		size, err, finished, changed := r.d.size, r.d.err, r.d.finished, r.d.changed
		r.d.mu.Unlock()
		if r.off < size {
			n, err := r.f.ReadAt(p[:min(int64(len(p)), size-r.off)], r.off)
			r.off += int64(n)
			if errors.Is(err, io.EOF) && n > 0 {
				err = nil
			}
			return n, err
		}
		switch {
		case err != nil:
			return 0, err
		case finished:
			return 0, io.EOF
		}
		select {
		case <-changed:
		case <-r.ctx.Done():
			return 0, r.ctx.Err()
		}
	}
}

func (r *downloadReader) Close() error {
	r.once.Do(r.d.leave)
	return r.f.Close()
}

// Downloads lists the downloads being made.
func (t *Transcoder) Downloads() []DownloadActivity {
	t.downloads.mu.Lock()
	ds := make([]*download, 0, len(t.downloads.by))
	for _, d := range t.downloads.by {
		ds = append(ds, d)
	}
	t.downloads.mu.Unlock()
	out := []DownloadActivity{}
	for _, d := range ds {
		d.mu.Lock()
		out = append(out, DownloadActivity{File: d.file, Quality: d.quality, Audio: d.audio,
			Done: d.made, Total: d.total, Bytes: d.size, Readers: d.readers})
		d.mu.Unlock()
	}
	return out
}

// backgroundKey marks a context whose waits on a head are not a player's:
// the head runs niced, is paused while a player waits on a re-encode, and
// gives its slot up to one (see variant.segment).
type backgroundKey struct{}

func background(ctx context.Context) context.Context {
	return context.WithValue(ctx, backgroundKey{}, true)
}

func isBackground(ctx context.Context) bool {
	b, _ := ctx.Value(backgroundKey{}).(bool)
	return b
}
