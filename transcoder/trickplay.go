package transcoder

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"image"
	"image/jpeg"
	"io"
	"math"
	"os"
	"path/filepath"
	"sort"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"time"

	"go.uber.org/zap"
	"golang.org/x/sync/errgroup"

	"github.com/hlsd/hlsd/transcoder/child"
	"github.com/hlsd/hlsd/transcoder/encode"
	"github.com/hlsd/hlsd/transcoder/failure"
	"github.com/hlsd/hlsd/transcoder/internal/atomicfile"
	"github.com/hlsd/hlsd/transcoder/internal/flight"
	"github.com/hlsd/hlsd/transcoder/probe"
)

// 240 px is the size seek-bar previews are shown at; sheets of 10×10 tiles
// keep a film's thumbnails to a handful of requests.
const (
	tileWidth   = 240
	sheetCols   = 10
	sheetTiles  = sheetCols * 10
	jpegQuality = 80
	// thumbNice is the niceness of thumbnail children: previews are worth
	// less than the segments a player is waiting for.
	thumbNice = 10
)

// trickplay is the thumbnail map of one file version: tile i stands for
// [i*Interval, (i+1)*Interval) of the timeline and shows the keyframe at
// Times[i], the one nearest to i*Interval. Decoding keyframes only is what
// makes a film's thumbnails take seconds rather than minutes.
type trickplay struct {
	Interval float64   `json:"interval"`
	Duration float64   `json:"duration"`
	Width    int       `json:"width"`
	Height   int       `json:"height"`
	Times    []float64 `json:"times"`
	dir      string
}

// Trickplay returns the WebVTT map of the file's thumbnails. Sheet URLs are
// relative to the map's own URL and carry query, as playlist URIs do.
func (t *Transcoder) Trickplay(ctx context.Context, path, query string) ([]byte, error) {
	tp, err := t.trickplay(ctx, path)
	if err != nil {
		return nil, err
	}
	return tp.vtt(query), nil
}

// TrickplaySheet returns the path of thumbnail sheet n of the file.
func (t *Transcoder) TrickplaySheet(ctx context.Context, path string, n int) (string, error) {
	tp, err := t.trickplay(ctx, path)
	if err != nil {
		return "", err
	}
	if n < 0 || n >= tp.sheets() {
		return "", fmt.Errorf("%w: thumbnail sheet %d is out of range (the file has %d)", failure.NotFound, n, tp.sheets())
	}
	return filepath.Join(tp.dir, fmt.Sprintf("sheet-%d.jpg", n)), nil
}

// trickplay returns the file's thumbnails, made once per file version and
// kept in the cache directory.
func (t *Transcoder) trickplay(ctx context.Context, path string) (*trickplay, error) {
	if t.cfg.TrickplayInterval < 0 {
		return nil, fmt.Errorf("%w: thumbnails are turned off on this server", failure.NotFound)
	}
	m, err := t.open(ctx, path)
	if err != nil {
		return nil, err
	}
	defer m.release()
	p, err := m.getPlans(ctx)
	if err != nil {
		return nil, err
	}
	interval := t.cfg.TrickplayInterval.Seconds()
	dir := t.layout.trickplay(m.key, interval, tileWidth)
	// Abandonable: the viewer who closed the film will not look at its
	// seek bar; a later one starts again. The directory is renamed into
	// place whole, so its index is there once the sheets are.
	f, err := t.made(ctx, "trickplay\x00"+dir, filepath.Join(dir, "trickplay.json"), "thumbnails", flight.Abandonable, false, func(ctx context.Context) error {
		tp := newTrickplay(m.info, p.keyframeTimes, interval)
		tp.dir = dir
		began := time.Now()
		err := t.makeTrickplay(ctx, m, tp)
		switch {
		case err == nil:
			t.obs.TrickplayMade(time.Since(began))
			t.log.Info("thumbnails made", zap.String("file", m.name), zap.Int("tiles", len(tp.Times)),
				zap.Duration("took", time.Since(began)))
		case ctx.Err() == nil:
			t.log.Error("thumbnails failed", zap.String("file", m.name), zap.Error(err))
		}
		return err
	})
	if err != nil {
		return nil, err
	}
	f.Close()
	return loadTrickplay(dir)
}

func newTrickplay(info *probe.Info, keyframes []float64, interval float64) *trickplay {
	// A remainder under a millisecond would be a cue of zero length.
	n := max(1, int(math.Ceil(info.Duration/interval-1e-3/interval)))
	tp := &trickplay{Interval: interval, Duration: info.Duration, Width: tileWidth,
		Height: tileHeight(info.Video[0]), Times: make([]float64, n)}
	for i := range tp.Times {
		tp.Times[i] = nearest(keyframes, float64(i)*interval)
	}
	return tp
}

// tileHeight keeps the picture's display aspect at tileWidth, in even pixels (4:2:0).
func tileHeight(v probe.VideoStream) int {
	w, h := v.DisplaySize()
	if w <= 0 || h <= 0 {
		w, h = 16, 9
	}
	th := int(math.Round(float64(tileWidth)*float64(h)/float64(w)/2)) * 2
	return min(max(th, 2), 4*tileWidth)
}

// nearest returns the element of sorted times closest to x, the earlier on a tie.
func nearest(times []float64, x float64) float64 {
	i := sort.SearchFloat64s(times, x)
	switch {
	case i == len(times):
		return times[i-1]
	case i > 0 && x-times[i-1] <= times[i]-x:
		return times[i-1]
	}
	return times[i]
}

func loadTrickplay(dir string) (*trickplay, error) {
	b, err := os.ReadFile(filepath.Join(dir, "trickplay.json"))
	if err != nil {
		return nil, fmt.Errorf("%w: thumbnails: %v", failure.Encoder, err)
	}
	var tp trickplay
	if err := json.Unmarshal(b, &tp); err != nil || len(tp.Times) == 0 {
		return nil, fmt.Errorf("%w: thumbnails: unreadable %s", failure.Encoder, filepath.Join(dir, "trickplay.json"))
	}
	tp.dir = dir
	return &tp, nil
}

func (tp *trickplay) sheets() int { return (len(tp.Times) + sheetTiles - 1) / sheetTiles }

// tile is where tile i is: its sheet and its top left corner there.
func (tp *trickplay) tile(i int) (sheet, x, y int) {
	k := i % sheetTiles
	return i / sheetTiles, k % sheetCols * tp.Width, k / sheetCols * tp.Height
}

// sheetBounds fits the tiles sheet s holds: the last one may hold fewer.
func (tp *trickplay) sheetBounds(s int) image.Rectangle {
	n := min(sheetTiles, len(tp.Times)-s*sheetTiles)
	return image.Rect(0, 0, min(n, sheetCols)*tp.Width, (n+sheetCols-1)/sheetCols*tp.Height)
}

// vttQuery keeps a query from ending a cue: WebVTT reads "-->" as a new cue's timing.
var vttQuery = strings.NewReplacer("\r", "", "\n", "", ">", "%3E", " ", "%20", "#", "%23")

func (tp *trickplay) vtt(query string) []byte {
	if query != "" {
		query = "?" + vttQuery.Replace(query)
	}
	var b bytes.Buffer
	b.WriteString("WEBVTT\n")
	for i := range tp.Times {
		start := float64(i) * tp.Interval
		end := min(start+tp.Interval, tp.Duration)
		if i == len(tp.Times)-1 {
			end = tp.Duration
		}
		s, x, y := tp.tile(i)
		fmt.Fprintf(&b, "\n%s --> %s\ntrickplay/sheet-%d.jpg%s#xywh=%d,%d,%d,%d\n",
			vttTime(start), vttTime(end), s, query, x, y, tp.Width, tp.Height)
	}
	return b.Bytes()
}

func vttTime(t float64) string {
	ms := int64(math.Round(t * 1000))
	return fmt.Sprintf("%02d:%02d:%02d.%03d", ms/3600000, ms/60000%60, ms/1000%60, ms%1000)
}

// chunk is a run of tiles of one sheet that one ffmpeg makes.
type chunk struct{ sheet, first, end int }

// chunks cuts every sheet into enough pieces that each of the parallel
// children has one from the start; pieces never straddle sheets, so a sheet
// is written as soon as its own pieces are done.
func (tp *trickplay) chunks(parallel int) []chunk {
	per := max(1, (parallel+tp.sheets()-1)/tp.sheets())
	var out []chunk
	for s := 0; s < tp.sheets(); s++ {
		lo, hi := s*sheetTiles, min(len(tp.Times), (s+1)*sheetTiles)
		parts := min(per, hi-lo)
		for p := 0; p < parts; p++ {
			out = append(out, chunk{s, lo + (hi-lo)*p/parts, lo + (hi-lo)*(p+1)/parts})
		}
	}
	return out
}

// makeTrickplay decodes the tiles' keyframes in chunks, at most
// cap(t.thumbSlots) children at once over every file, assembles the sheets
// and publishes them by renaming their directory into place.
func (t *Transcoder) makeTrickplay(ctx context.Context, m *media, tp *trickplay) error {
	parent := filepath.Dir(tp.dir)
	if err := os.MkdirAll(parent, 0o755); err != nil {
		return fmt.Errorf("%w: thumbnails: %v", failure.Encoder, err)
	}
	tmp, err := os.MkdirTemp(parent, ".tmp-")
	if err != nil {
		return fmt.Errorf("%w: thumbnails: %v", failure.Encoder, err)
	}
	defer os.RemoveAll(tmp) // nothing left to remove after the rename

	chunks := tp.chunks(cap(t.thumbSlots))
	var mu sync.Mutex
	sheets := map[int]*image.YCbCr{}
	left := make([]int, tp.sheets())
	for _, c := range chunks {
		left[c.sheet]++
	}
	// A sheet exists only while its chunks run, which bounds the memory a
	// long film takes to a few sheets.
	sheet := func(s int) *image.YCbCr {
		mu.Lock()
		defer mu.Unlock()
		if sheets[s] == nil {
			img := image.NewYCbCr(tp.sheetBounds(s), image.YCbCrSubsampleRatio420)
			// Black, not the green of zero chroma, where a last row ends early.
			for i := range img.Cb {
				img.Cb[i], img.Cr[i] = 128, 128
			}
			sheets[s] = img
		}
		return sheets[s]
	}
	finished := func(s int) *image.YCbCr {
		mu.Lock()
		defer mu.Unlock()
		if left[s]--; left[s] > 0 {
			return nil
		}
		img := sheets[s]
		delete(sheets, s)
		return img
	}

	// In order, as many at once as there are thumbnail slots: the first
	// failure stops the others.
	g, gctx := errgroup.WithContext(ctx)
	g.SetLimit(min(cap(t.thumbSlots), len(chunks)))
	for _, c := range chunks {
		g.Go(func() error {
			if err := t.decodeChunk(gctx, m, tp, c, sheet(c.sheet)); err != nil {
				return err
			}
			if img := finished(c.sheet); img != nil {
				return writeJPEG(filepath.Join(tmp, fmt.Sprintf("sheet-%d.jpg", c.sheet)), img)
			}
			return nil
		})
	}
	if err := g.Wait(); err != nil {
		if ctx.Err() != nil {
			return context.Cause(ctx) // the caller's reason, not the chunk's
		}
		return err
	}
	b, err := json.Marshal(tp)
	if err == nil {
		err = os.WriteFile(filepath.Join(tmp, "trickplay.json"), b, 0o644)
	}
	if err != nil {
		return fmt.Errorf("%w: thumbnails: %v%s", failure.Encoder, err, atomicfile.DiskFullHint(parent))
	}
	if err := os.Rename(tmp, tp.dir); err != nil && !exists(tp.dir) {
		return fmt.Errorf("%w: thumbnails: %v", failure.Encoder, err)
	}
	return nil
}

func writeJPEG(path string, img image.Image) error {
	var b bytes.Buffer
	if err := jpeg.Encode(&b, img, &jpeg.Options{Quality: jpegQuality}); err != nil {
		return fmt.Errorf("%w: thumbnails: %v", failure.Encoder, err)
	}
	if err := os.WriteFile(path, b.Bytes(), 0o644); err != nil {
		return fmt.Errorf("%w: thumbnails: %v%s", failure.Encoder, err, atomicfile.DiskFullHint(filepath.Dir(path)))
	}
	return nil
}

// decodeChunk fills the tiles of c on img. It asks the decoder for
// keyframes only; should a keyframe of the list not come out that way (an
// I-frame the container marks as a keyframe but the decoder does not start
// on), the chunk is decoded in full.
func (t *Transcoder) decodeChunk(ctx context.Context, m *media, tp *trickplay, c chunk, img *image.YCbCr) error {
	select {
	case t.thumbSlots <- struct{}{}:
	case <-ctx.Done():
		return context.Cause(ctx)
	}
	defer func() { <-t.thumbSlots }()
	err := t.runChunk(ctx, m, tp, c, img, true)
	if errors.Is(err, errMissingFrames) {
		t.log.Warn("keyframe-only decoding missed frames; decoding every frame", zap.String("file", m.name),
			zap.Int("sheet", c.sheet), zap.Error(err))
		err = t.runChunk(ctx, m, tp, c, img, false)
	}
	return err
}

var errMissingFrames = errors.New("ffmpeg gave fewer frames than asked")

func (t *Transcoder) runChunk(ctx context.Context, m *media, tp *trickplay, c chunk, img *image.YCbCr, keyOnly bool) error {
	var want []float64 // distinct keyframe times, ascending as the tiles are
	for _, x := range tp.Times[c.first:c.end] {
		if len(want) == 0 || x != want[len(want)-1] {
			want = append(want, x)
		}
	}
	v := m.info.Video[0]
	// Frames are matched by timestamp within a quarter frame, as heads cut.
	tol := min(max(0.25/v.FPS, 0.001), 0.02)
	args := []string{"-hide_banner", "-nostdin", "-loglevel", "error", "-threads", "1", "-filter_threads", "1"}
	lead := 0.0
	if keyOnly {
		// The decoder still sees every packet, so frame timestamps stay
		// right; dropping packets at the demuxer (-discard nokey) instead
		// leaves B-frame streams with wrong ones.
		args = append(args, "-skip_frame", "nokey", "-skip_loop_filter", "all")
	} else {
		// In case the seek itself missed the first keyframe.
		lead = 10
	}
	// The seek lands on the first keyframe wanted, or earlier where the
	// index is sparse; -t counts from there. It only bounds the work when a
	// frame does not come: -frames:v ends the run otherwise.
	args = append(args, "-copyts", "-start_at_zero", "-noaccurate_seek",
		"-ss", encode.Seconds(max(0, want[0]+tol-lead)), "-t", encode.Seconds(want[len(want)-1]-want[0]+60+lead), "-i", child.Input,
		"-map", "0:V:0", "-vf", selectTimes(want, tol)+","+encode.Profile{Accel: encode.AccelNone}.Filter(v, tp.Width, tp.Height)+
			// JPEG's YCbCr: BT.601, full range.
			",scale=out_color_matrix=bt601:out_range=full,format=yuvj420p",
		"-fps_mode", "passthrough", "-frames:v", strconv.Itoa(len(want)), "-f", "rawvideo", "pipe:1")
	cmd, stdout, stderr, err := t.run.startFFmpeg(ctx, m, args)
	if err != nil {
		return err
	}
	// The whole group, threads included: they all run at the lower priority.
	_ = syscall.Setpriority(syscall.PRIO_PGRP, cmd.Process.Pid, thumbNice)

	frame := make([]byte, tp.Width*tp.Height*3/2)
	got, tile := 0, c.first
	for ; got < len(want); got++ {
		if _, err := io.ReadFull(stdout, frame); err != nil {
			break
		}
		for ; tile < c.end && tp.Times[tile] == want[got]; tile++ {
			_, x, y := tp.tile(tile)
			place(img, frame, x, y, tp.Width, tp.Height)
		}
	}
	_, _ = io.Copy(io.Discard, stdout)
	waitErr := cmd.Wait()
	switch {
	case ctx.Err() != nil:
		return context.Cause(ctx)
	case waitErr != nil:
		return fmt.Errorf("%w: thumbnails: ffmpeg exited with %v: %s", failure.Encoder, waitErr, stderr.String())
	case got < len(want):
		return fmt.Errorf("%w: thumbnails: %w: %d of the %d keyframes from %.3f s", failure.Encoder, errMissingFrames, got, len(want), want[0])
	}
	return nil
}

// selectTimes is a select filter that keeps the frames at times. Its terms
// are summed in groups of ten: ffmpeg's expression parser refuses a flat
// sum of a hundred.
func selectTimes(times []float64, tol float64) string {
	var groups []string
	for i := 0; i < len(times); i += 10 {
		var terms []string
		for _, x := range times[i:min(i+10, len(times))] {
			terms = append(terms, fmt.Sprintf("between(t,%s,%s)", encode.Seconds(x-tol), encode.Seconds(x+tol)))
		}
		groups = append(groups, "("+strings.Join(terms, "+")+")")
	}
	return "select='" + strings.Join(groups, "+") + "'"
}

// place copies a w×h yuvj420p frame onto img at (x, y), both even.
func place(img *image.YCbCr, frame []byte, x, y, w, h int) {
	cw, ch := w/2, h/2
	for r := 0; r < h; r++ {
		copy(img.Y[(y+r)*img.YStride+x:], frame[r*w:(r+1)*w])
	}
	cb, cr := frame[w*h:], frame[w*h+cw*ch:]
	for r := 0; r < ch; r++ {
		off := (y/2+r)*img.CStride + x/2
		copy(img.Cb[off:off+cw], cb[r*cw:(r+1)*cw])
		copy(img.Cr[off:off+cw], cr[r*cw:(r+1)*cw])
	}
}
