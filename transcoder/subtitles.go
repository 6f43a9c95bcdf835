package transcoder

import (
	"bytes"
	"context"
	"fmt"
	"os"
	"path"
	"path/filepath"
	"sort"
	"strconv"
	"strings"
	"time"

	"github.com/hlsd/hlsd/playlist"
	"github.com/hlsd/hlsd/transcoder/child"
	"github.com/hlsd/hlsd/transcoder/failure"
	"github.com/hlsd/hlsd/transcoder/internal/atomicfile"
	"github.com/hlsd/hlsd/transcoder/internal/flight"
	"github.com/hlsd/hlsd/transcoder/probe"
)

// subtitleTracks lists the subtitles of m: its own tracks in stream order,
// then the sidecar files beside it in name order. The folder is read on
// every call, so a subtitle file dropped in shows up without a restart.
func (t *Transcoder) subtitleTracks(m *media) []probe.SubtitleStream {
	out := append([]probe.SubtitleStream(nil), m.info.Subtitles...)
	for i := range out {
		// Not from the probe: probes cached before this field existed lack it.
		out[i].Streamable = probe.TextSubtitles[out[i].Codec]
	}
	dir, base := path.Split(m.name)
	stem := strings.TrimSuffix(base, path.Ext(base)) + "."
	entries, err := t.lib.ReadDir(dir)
	if err != nil {
		return out
	}
	sort.Slice(entries, func(i, j int) bool { return entries[i].Name() < entries[j].Name() })
	for _, e := range entries {
		if e.IsDir() || !strings.HasPrefix(e.Name(), stem) {
			continue
		}
		if s, ok := probe.Sidecar(strings.TrimPrefix(e.Name(), stem)); ok {
			s.File = path.Join(dir, e.Name())
			out = append(out, s)
		}
	}
	return out
}

// subtitleTrack returns track s of the file, or failure.NotFound. The media is
// pinned when err is nil: the caller releases it.
func (t *Transcoder) subtitleTrack(ctx context.Context, file string, s int) (_ *media, _ probe.SubtitleStream, err error) {
	m, err := t.open(ctx, file)
	if err != nil {
		return nil, probe.SubtitleStream{}, err
	}
	defer func() {
		if err != nil {
			m.release()
		}
	}()
	tracks := t.subtitleTracks(m)
	if s < 0 || s >= len(tracks) {
		return nil, probe.SubtitleStream{}, fmt.Errorf("%w: the file has no subtitle track %d", failure.NotFound, s)
	}
	if !tracks[s].Streamable {
		return nil, probe.SubtitleStream{}, fmt.Errorf("%w: subtitle track %d is %s, a bitmap format that cannot be served as WebVTT", failure.NotFound, s, tracks[s].Codec)
	}
	return m, tracks[s], nil
}

// SubtitlePlaylist is the media playlist of subtitle track s: the whole
// WebVTT file as one segment.
func (t *Transcoder) SubtitlePlaylist(ctx context.Context, file string, s int, query string) ([]byte, error) {
	m, _, err := t.subtitleTrack(ctx, file, s)
	if err != nil {
		return nil, err
	}
	defer m.release()
	return playlist.WriteSubtitles(m.info.Duration, strconv.Itoa(s)+".vtt", query), nil
}

// Subtitle returns subtitle track s converted to WebVTT, open, converting
// it on first use. Cue times are on the segments' timeline: the file's
// start time is subtracted, as it is from the video.
func (t *Transcoder) Subtitle(ctx context.Context, file string, s int) (*os.File, error) {
	m, track, err := t.subtitleTrack(ctx, file, s)
	if err != nil {
		return nil, err
	}
	defer m.release()
	id := m.key + "-" + strconv.Itoa(track.Index)
	if track.File != "" {
		f, st, err := t.lib.Open(track.File)
		if err != nil {
			return nil, err
		}
		f.Close()
		id = probe.IdentityOf(track.File, st).Key()
	}
	out := t.layout.subtitle(id)
	// Shared: others may wait for the same track, and one inside a large
	// file takes a while (it is read to the end); the result is kept.
	return t.made(ctx, "subtitle\x00"+out, out, "subtitle track "+strconv.Itoa(s), flight.Detached, false, func(ctx context.Context) error {
		var src *os.File
		var err error
		if track.File != "" {
			src, _, err = t.lib.Open(track.File)
		} else {
			src, err = t.run.source(m)
		}
		if err != nil {
			return err
		}
		return t.convertSubtitle(ctx, src, track, out)
	})
}

// convertSubtitle runs ffmpeg on src (the media file or a sidecar) and
// writes the WebVTT to out. It owns src.
func (t *Transcoder) convertSubtitle(ctx context.Context, src *os.File, track probe.SubtitleStream, out string) error {
	defer src.Close()
	ctx, cancel := context.WithTimeout(ctx, 10*time.Minute)
	defer cancel()
	args := []string{"-hide_banner", "-nostdin", "-loglevel", "error"}
	stream := "0:s:0"
	if track.File == "" {
		args = append(args, "-copyts", "-start_at_zero")
		stream = "0:" + strconv.Itoa(track.Index)
	}
	args = append(args, "-i", child.Input, "-map", stream, "-c:s", "webvtt", "-f", "webvtt", "pipe:1")
	cmd := child.Command(ctx, src, t.cfg.FFmpeg, args...)
	var stdout bytes.Buffer
	stderr := &child.Tail{Max: 2048}
	cmd.Stdout, cmd.Stderr = &stdout, stderr
	if err := cmd.Run(); err != nil {
		return fmt.Errorf("%w: converting subtitles to WebVTT: %v: %s", failure.Encoder, err, stderr.String())
	}
	vtt := playlist.WithTimestampMap(stdout.Bytes())
	if err := atomicfile.Write(out, vtt); err != nil {
		return fmt.Errorf("%w: writing subtitles: %v%s", failure.Encoder, err, atomicfile.DiskFullHint(filepath.Dir(out)))
	}
	return nil
}
