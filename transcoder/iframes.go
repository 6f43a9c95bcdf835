package transcoder

import (
	"context"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"syscall"

	"go.uber.org/zap"

	"github.com/hlsd/hlsd/playlist"
	"github.com/hlsd/hlsd/transcoder/child"
	"github.com/hlsd/hlsd/transcoder/encode"
	"github.com/hlsd/hlsd/transcoder/failure"
	"github.com/hlsd/hlsd/transcoder/fmp4"
	"github.com/hlsd/hlsd/transcoder/internal/atomicfile"
	"github.com/hlsd/hlsd/transcoder/internal/flight"
)

// iframeChunk is how many I-frames one ffmpeg makes: a player scrubbing
// asks for entries near each other, and one run amortises its start.
const iframeChunk = 10

// iframes is the I-frame rendition of one rung (RFC 8216 EXT-X-I-FRAMES-ONLY,
// for scrubbing and fast-forward in native players): one entry per segment
// of the rung, the source keyframe nearest the segment's start, encoded
// alone as an IDR at the rung's size. Entries are made on demand, a chunk
// at a time, from the source's keyframes only (the decoder skips every
// other frame), as thumbnails are.
type iframes struct {
	m     *media
	track int
	rung  encode.Rung
	times []float64 // source times of the entries, ascending
	dir   string
}

// IFramePlaylist is the I-frame playlist of a re-encoded rung.
func (t *Transcoder) IFramePlaylist(ctx context.Context, path string, r encode.Rendition, query string) ([]byte, error) {
	f, release, err := t.iframes(ctx, path, r)
	if err != nil {
		return nil, err
	}
	defer release()
	bounds := append(slices.Clone(f.times), f.m.info.Duration)
	return playlist.WriteIFrames(playlist.Plan{Bounds: bounds}, "iframes-init.mp4", func(i int) string {
		return fmt.Sprintf("iframe-%d.m4s", i)
	}, query), nil
}

// IFrame returns I-frame entry n of a rung, open, making it if needed.
func (t *Transcoder) IFrame(ctx context.Context, path string, r encode.Rendition, n int) (*os.File, error) {
	f, release, err := t.iframes(ctx, path, r)
	if err != nil {
		return nil, err
	}
	defer release()
	if n < 0 || n >= len(f.times) {
		return nil, fmt.Errorf("%w: I-frame %d is out of range (the rung has %d)", failure.NotFound, n, len(f.times))
	}
	return t.iframeFile(ctx, f, n, f.entryPath(n))
}

// IFrameInit returns the initialization section the I-frames of a rung
// share, open, making the first chunk if needed.
func (t *Transcoder) IFrameInit(ctx context.Context, path string, r encode.Rendition) (*os.File, error) {
	f, release, err := t.iframes(ctx, path, r)
	if err != nil {
		return nil, err
	}
	defer release()
	return t.iframeFile(ctx, f, 0, f.initPath())
}

// iframes validates the rung and lists its entries, with the media pinned
// until release is called.
func (t *Transcoder) iframes(ctx context.Context, path string, r encode.Rendition) (*iframes, func(), error) {
	rung, ok := r.Rung()
	if !ok {
		return nil, nil, fmt.Errorf("%w: I-frame playlists are offered for re-encoded rungs (240p ... 2160p), not %q", failure.BadRequest, r.Quality)
	}
	track, quality := r.Track, r.Quality
	m, err := t.open(ctx, path)
	if err != nil {
		return nil, nil, err
	}
	fail := func(err error) (*iframes, func(), error) {
		m.release()
		return nil, nil, err
	}
	if track < 0 || track >= len(m.info.Video) {
		return fail(fmt.Errorf("%w: the file has no video track %d", failure.NotFound, track))
	}
	if !contains(encode.VideoQualities(m.info.Video[track]), quality) {
		return fail(fmt.Errorf("%w: quality %q is not offered for this file", failure.NotFound, quality))
	}
	p, err := m.getPlans(ctx)
	if err != nil {
		return fail(err)
	}
	f := &iframes{m: m, track: track, rung: rung, times: iframeTimes(p.keyframeTimes, p.adaptive),
		dir: t.layout.iframes(m.key, track, quality)}
	return f, m.release, nil
}

// iframeTimes is the source keyframe nearest the start of each segment,
// each once: the segment starts themselves where they are keyframes (the
// plan of most files), and the keyframes of a long-GOP file cut on a grid.
func iframeTimes(keyframes []float64, plan playlist.Plan) []float64 {
	var out []float64
	for i := range plan.Len() {
		k := nearest(keyframes, plan.Start(i))
		if len(out) == 0 || k > out[len(out)-1] {
			out = append(out, k)
		}
	}
	return out
}

func (f *iframes) entryPath(n int) string {
	return filepath.Join(f.dir, fmt.Sprintf("iframe-%d.m4s", n))
}
func (f *iframes) initPath() string { return filepath.Join(f.dir, "iframes-init.mp4") }

// iframeFile opens path, a file of f's chunk holding entry n, making the
// chunk when the file is not there (never made, or evicted).
func (t *Transcoder) iframeFile(ctx context.Context, f *iframes, n int, path string) (*os.File, error) {
	c := n / iframeChunk
	// Entries are kept: a player scrubbing comes back for them.
	return t.made(ctx, fmt.Sprintf("iframes\x00%s\x00%d", f.dir, c), path, fmt.Sprintf("I-frame %d", n),
		flight.Detached, path != f.initPath(), func(ctx context.Context) error { return t.makeIFrames(ctx, f, c) })
}

// makeIFrames encodes the entries of chunk c, each as its own fMP4 segment
// of one IDR, and moves them into f.dir with the shared init.
func (t *Transcoder) makeIFrames(ctx context.Context, f *iframes, c int) error {
	first, end := c*iframeChunk, min((c+1)*iframeChunk, len(f.times))
	want := f.times[first:end]
	if err := os.MkdirAll(f.dir, 0o755); err != nil {
		return fmt.Errorf("%w: I-frames: %v", failure.Encoder, err)
	}
	work, err := os.MkdirTemp(f.dir, "run-")
	if err != nil {
		return fmt.Errorf("%w: I-frames: %v%s", failure.Encoder, err, atomicfile.DiskFullHint(f.dir))
	}
	defer os.RemoveAll(work)

	select {
	case t.thumbSlots <- struct{}{}:
	case <-ctx.Done():
		return context.Cause(ctx)
	}
	err = t.runIFrames(ctx, f, first, want, work)
	<-t.thumbSlots
	if err != nil {
		return err
	}
	for j := range want {
		n := first + j
		data, err := os.ReadFile(filepath.Join(work, fmt.Sprintf("s-%d.mp4", n)))
		if err != nil {
			return fmt.Errorf("%w: I-frames: ffmpeg made no entry %d at %.3f s", failure.Encoder, n, want[j])
		}
		init, body, err := fmp4.Split(data)
		if err != nil {
			return fmt.Errorf("%w: I-frame %d: %v", failure.Encoder, n, err)
		}
		if !exists(f.initPath()) {
			if err := atomicfile.Write(f.initPath(), init); err != nil {
				return fmt.Errorf("%w: I-frames: %v%s", failure.Encoder, err, atomicfile.DiskFullHint(f.dir))
			}
		}
		fmp4.Number(body, n)
		if err := atomicfile.Write(f.entryPath(n), body); err != nil {
			return fmt.Errorf("%w: I-frames: %v%s", failure.Encoder, err, atomicfile.DiskFullHint(f.dir))
		}
		// Within the segment budget, evicted like segments; nothing else
		// refers to an entry, so its file simply goes.
		t.cache.add(f.entryPath(n), int64(len(body)), nil, n, false)
	}
	t.log.Debug("I-frames made", zap.String("file", f.m.name), zap.String("rung", f.rung.Name),
		zap.Int("first", first), zap.Int("count", len(want)))
	return nil
}

// runIFrames runs the ffmpeg that writes entries first... of want into work
// as s-<n>.mp4. Every output frame is an IDR (-g 1), so the segment muxer
// cuts before each; the frames keep their source times, as rung segments
// do, so an entry sits exactly where the rung's segment starts.
func (t *Transcoder) runIFrames(ctx context.Context, f *iframes, first int, want []float64, work string) error {
	v := f.m.info.Video[f.track]
	w, h := encode.RungSize(v, f.rung)
	tol := min(max(0.25/v.FPS, 0.001), 0.02)
	cuts := make([]float64, 0, len(want)-1)
	for _, x := range want[1:] {
		cuts = append(cuts, x-tol)
	}
	args := []string{"-hide_banner", "-nostdin", "-loglevel", "error", "-y",
		"-skip_frame", "nokey", "-skip_loop_filter", "all"}
	if encode.TSDiscont(f.m.info.Container) {
		args = append(args, "-itsoffset", "0.000001")
	}
	args = append(args, "-copyts", "-start_at_zero", "-noaccurate_seek",
		"-ss", encode.Seconds(max(0, want[0]-tol)), "-t", encode.Seconds(want[len(want)-1]-want[0]+60), "-i", child.Input,
		"-map", fmt.Sprintf("0:V:%d", f.track),
		"-vf", selectTimes(want, tol)+","+encode.Profile{Accel: encode.AccelNone}.Filter(v, w, h),
		"-fps_mode", "passthrough", "-enc_time_base:v", "-1", "-frames:v", strconv.Itoa(len(want)),
		"-c:v", "libx264", "-preset", "veryfast", "-profile:v", "high",
		"-level:v", fmt.Sprintf("%d.%d", encode.RungLevel(v, f.rung)/10, encode.RungLevel(v, f.rung)%10),
		"-g", "1", "-keyint_min", "1", "-bf", "0", "-crf", "23", "-maxrate", strconv.Itoa(f.rung.Maxrate*2),
		"-bufsize", strconv.Itoa(f.rung.Maxrate*2), "-bsf:v", "dump_extra=freq=keyframe",
		"-map_metadata", "-1", "-map_chapters", "-1", "-avoid_negative_ts", "disabled",
		"-f", "segment", "-segment_format", "mp4", "-segment_format_options", encode.FMP4Options,
		"-segment_start_number", strconv.Itoa(first), "-segment_list", "pipe:1", "-segment_list_type", "flat")
	if len(cuts) > 0 {
		args = append(args, "-segment_times", encode.JoinSeconds(cuts))
	} else {
		args = append(args, "-segment_time", "1000000000")
	}
	args = append(args, work+"/s-%d.mp4")
	cmd, stdout, stderr, err := t.run.startFFmpeg(ctx, f.m, args)
	if err != nil {
		return err
	}
	_ = syscall.Setpriority(syscall.PRIO_PGRP, cmd.Process.Pid, thumbNice)
	_, _ = io.Copy(io.Discard, stdout)
	if err := cmd.Wait(); err != nil {
		if ctx.Err() != nil {
			return context.Cause(ctx)
		}
		return fmt.Errorf("%w: I-frames: ffmpeg exited with %v: %s", failure.Encoder, err, stderr.String())
	}
	return nil
}

// iframeBandwidth is the declared peak of a rung's I-frame playlist: an
// IDR of the rung every segment (about 4 s), at the size x264 gives one
// at CRF 23, which is a fraction of a second of the rung's cap.
func iframeBandwidth(r encode.Rung) int { return r.Maxrate / 8 }
