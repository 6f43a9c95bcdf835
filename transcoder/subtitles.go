package transcoder

import (
	"bytes"
	"context"
	"fmt"
	"os"
	"path"
	"path/filepath"
	"regexp"
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

// sidecarCodecs maps a sidecar's extension to its codec.
var sidecarCodecs = map[string]string{"srt": "subrip", "ass": "ass", "ssa": "ass", "vtt": "webvtt"}

var languageTag = regexp.MustCompile(`^[a-z]{2,3}(-[A-Za-z0-9]{2,8})?$`)

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
		if s, ok := parseSidecar(strings.TrimPrefix(e.Name(), stem)); ok {
			s.File = path.Join(dir, e.Name())
			out = append(out, s)
		}
	}
	return out
}

// parseSidecar reads what follows "Movie." in a sidecar's name: optional
// dot-separated parts (a language tag, "forced", "default", "sdh", or
// anything else as a title), then the extension: "en.srt", "fr.forced.ass",
// "vtt", "en.Director's commentary.srt".
func parseSidecar(rest string) (probe.SubtitleStream, bool) {
	parts := strings.Split(rest, ".")
	codec, ok := sidecarCodecs[strings.ToLower(parts[len(parts)-1])]
	if !ok {
		return probe.SubtitleStream{}, false
	}
	s := probe.SubtitleStream{Index: -1, Codec: codec, Streamable: true}
	var title []string
	for _, p := range parts[:len(parts)-1] {
		switch low := strings.ToLower(p); {
		case low == "forced":
			s.Forced = true
		case low == "default":
			s.Default = true
		case low == "sdh" || low == "cc" || low == "hi":
			title = append(title, "SDH")
		case s.Language == "" && languageTag.MatchString(p):
			s.Language = p
		case p != "":
			title = append(title, p)
		}
	}
	s.Title = strings.Join(title, " ")
	return s, true
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

// Subtitle returns the path of subtitle track s converted to WebVTT,
// converting it on first use. Cue times are on the segments' timeline: the
// file's start time is subtracted, as it is from the video.
func (t *Transcoder) Subtitle(ctx context.Context, file string, s int) (string, error) {
	m, track, err := t.subtitleTrack(ctx, file, s)
	if err != nil {
		return "", err
	}
	defer m.release()
	id := m.key + "-" + strconv.Itoa(track.Index)
	if track.File != "" {
		f, st, err := t.lib.Open(track.File)
		if err != nil {
			return "", err
		}
		f.Close()
		id = probe.IdentityOf(track.File, st).Key()
	}
	out := t.layout.subtitle(id)
	if exists(out) {
		return out, nil
	}
	// Detached: others may wait for the same track, and one inside a large
	// file takes a while (it is read to the end); the result is kept.
	_, err = flight.Do(t.flight, ctx, "subtitle\x00"+out, flight.Detached, func(ctx context.Context) (struct{}, error) {
		var src *os.File
		var err error
		if track.File != "" {
			src, _, err = t.lib.Open(track.File)
		} else {
			src, err = t.source(m)
		}
		if err != nil {
			return struct{}{}, err
		}
		return struct{}{}, t.convertSubtitle(ctx, src, track, out)
	})
	return out, err
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
	vtt := withTimestampMap(stdout.Bytes())
	if err := atomicfile.Write(out, vtt); err != nil {
		return fmt.Errorf("%w: writing subtitles: %v%s", failure.Encoder, err, atomicfile.DiskFullHint(filepath.Dir(out)))
	}
	return nil
}

// withTimestampMap adds X-TIMESTAMP-MAP to the WebVTT header. Segment
// timestamps are the playlist's times (0 at the file's start), so cue time 0
// is media time 0; HLS players need the mapping said to align cues with
// fMP4 video, and other WebVTT readers ignore the line.
func withTimestampMap(vtt []byte) []byte {
	first, rest, _ := bytes.Cut(vtt, []byte("\n"))
	if !bytes.HasPrefix(first, []byte("WEBVTT")) {
		first, rest = []byte("WEBVTT"), vtt
	}
	var b bytes.Buffer
	b.Write(bytes.TrimRight(first, "\r"))
	b.WriteString("\nX-TIMESTAMP-MAP=MPEGTS:0,LOCAL:00:00:00.000\n")
	b.Write(rest)
	return b.Bytes()
}
