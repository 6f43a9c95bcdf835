package transcoder

import (
	"bytes"
	"context"
	"fmt"
	"io"
	"os"
	"path/filepath"

	"github.com/hlsd/hlsd/playlist"
	"github.com/hlsd/hlsd/transcoder/child"
	"github.com/hlsd/hlsd/transcoder/encode"
	"github.com/hlsd/hlsd/transcoder/failure"
	"github.com/hlsd/hlsd/transcoder/fmp4"
	"github.com/hlsd/hlsd/transcoder/internal/atomicfile"
	"github.com/hlsd/hlsd/transcoder/internal/flight"
	"github.com/hlsd/hlsd/transcoder/probe"
)

// tsOffset is added to every MPEG-TS timestamp, as ffmpeg's own muxer
// does: B-frames decode before they show, and a decode time below zero
// cannot be written in MPEG-TS.
const tsOffset = 1.4

// MPEG-TS variants (master.m3u8?container=ts) are for players without
// fMP4 support (some TVs): the same rungs and boundaries as the fMP4
// ones, each segment muxed with the default audio track as AAC stereo,
// made by remuxing the fMP4 video and audio segments, so nothing is
// encoded twice and every segment starts where its fMP4 one does.

// tsQuality reports whether video quality q of the file can be offered as
// MPEG-TS: the rungs, and an H.264 original (Apple requires fMP4 for HEVC).
func tsQuality(v probe.VideoStream, q string) bool {
	return q != encode.QualityOriginal || v.Codec == "h264"
}

// tsAudio is the track and quality muxed into MPEG-TS segments: the default
// track, stereo. ok is false for a file without audio.
func tsAudio(info *probe.Info) (track int, quality string, ok bool) {
	if len(info.Audio) == 0 {
		return 0, "", false
	}
	track = defaultAudio(info.Audio)
	return track, stereoQuality(info.Audio[track]), true
}

// stereoQuality is the AAC stereo rendition of a track: its downmix, or,
// for a track of two channels or fewer, its own AAC rendition.
func stereoQuality(a probe.AudioStream) string {
	if contains(encode.AudioQualities(a), encode.QualityStereo) {
		return encode.QualityStereo
	}
	return encode.QualityAAC
}

// TSPlaylist is the media playlist of a video variant with MPEG-TS segments.
func (t *Transcoder) TSPlaylist(ctx context.Context, path string, r encode.Rendition, query string) ([]byte, error) {
	v, release, err := t.tsVariant(ctx, path, r)
	if err != nil {
		return nil, err
	}
	defer release()
	return playlist.WriteTS(v.timeline(), func(i int) string {
		return fmt.Sprintf("segment-%d.ts", i)
	}, query), nil
}

func (t *Transcoder) tsVariant(ctx context.Context, path string, r encode.Rendition) (*variant, func(), error) {
	if r.Kind != "video" {
		return nil, nil, fmt.Errorf("%w: MPEG-TS segments are served for video renditions", failure.BadRequest)
	}
	track, quality := r.Track, r.Quality
	v, release, err := t.variant(ctx, path, r)
	if err != nil {
		return nil, nil, err
	}
	if !tsQuality(v.m.info.Video[track], quality) {
		release()
		return nil, nil, fmt.Errorf("%w: the %s original is not offered as MPEG-TS (HLS carries only H.264 in it)", failure.NotFound, v.m.info.Video[track].Codec)
	}
	// Segment n of audio is cut where the rungs' segment n is; so is the
	// original's, unless its keyframes are too far apart for that.
	if p, err := v.m.getPlans(ctx); err != nil || (quality == encode.QualityOriginal && !p.originalAdaptive) {
		release()
		if err != nil {
			return nil, nil, err
		}
		return nil, nil, fmt.Errorf("%w: the original of a file with keyframes this far apart is not offered as MPEG-TS", failure.NotFound)
	}
	return v, release, nil
}

// TSSegment returns segment n of a video variant as MPEG-TS, open, making
// it if needed.
func (t *Transcoder) TSSegment(ctx context.Context, path string, r encode.Rendition, n int, clientID string) (*os.File, error) {
	v, release, err := t.tsVariant(ctx, path, r)
	if err != nil {
		return nil, err
	}
	defer release()
	if n < 0 || n >= v.plan.Len() {
		return nil, fmt.Errorf("%w: segment %d is out of range (the playlist has %d)", failure.NotFound, n, v.plan.Len())
	}
	out := t.layout.tsSegment(v.dir, n)
	if f, err := os.Open(out); err == nil {
		t.cache.touch(out)
		return f, nil
	}
	// The fMP4 segments are asked for on the caller's context, as any
	// request's are; only the remux is shared.
	video, err := t.fmp4(ctx, v, n, clientID)
	if err != nil {
		return nil, err
	}
	var audio []byte
	if a, q, ok := tsAudio(v.m.info); ok {
		av, releaseA, err := t.variant(ctx, path, encode.Rendition{Kind: "audio", Track: a, Quality: q})
		if err != nil {
			return nil, err
		}
		audio, err = t.fmp4(ctx, av, n, clientID)
		releaseA()
		if err != nil {
			return nil, err
		}
	}
	return t.made(ctx, "ts\x00"+out, out, fmt.Sprintf("MPEG-TS segment %d", n), flight.Detached, true, func(ctx context.Context) error {
		return t.remuxTS(ctx, v.m, video, audio, out)
	})
}

// fmp4 returns segment n of v whole, with its init before it.
func (t *Transcoder) fmp4(ctx context.Context, v *variant, n int, clientID string) ([]byte, error) {
	t.clients.track(clientID, v, n)
	rc, err := v.segment(ctx, n, clientID, false, nil)
	if err != nil {
		return nil, err
	}
	body, err := io.ReadAll(rc)
	rc.Close()
	if err != nil {
		return nil, fmt.Errorf("%w: reading segment %d: %v", failure.Encoder, n, err)
	}
	init, err := v.initSegment(ctx, n, clientID)
	if err != nil {
		return nil, err
	}
	head, err := io.ReadAll(init)
	init.Close()
	if err != nil {
		return nil, fmt.Errorf("%w: reading init: %v", failure.Encoder, err)
	}
	return append(head, body...), nil
}

// remuxTS writes video and audio (fMP4, init then segment; audio may be
// nil) as one MPEG-TS segment at out: PAT and PMT first, H.264 and AAC
// with their timestamps kept plus tsOffset, so segments of any runs join.
func (t *Transcoder) remuxTS(ctx context.Context, m *media, video, audio []byte, out string) error {
	if err := os.MkdirAll(filepath.Dir(out), 0o755); err != nil {
		return fmt.Errorf("%w: MPEG-TS: %v", failure.Encoder, err)
	}
	work, err := os.MkdirTemp(filepath.Dir(out), "run-")
	if err != nil {
		return fmt.Errorf("%w: MPEG-TS: %v%s", failure.Encoder, err, atomicfile.DiskFullHint(filepath.Dir(out)))
	}
	defer os.RemoveAll(work)
	// ffmpeg's MP4 reader shows a fragment's frames late by its largest
	// negative composition offset (the B-frame delay), which players of
	// fMP4 do not: taken off again, so video stays on the audio's time.
	shift := fmp4.NegativeCTS(video)
	args := []string{"-hide_banner", "-nostdin", "-loglevel", "error", "-y", "-copyts",
		"-itsoffset", encode.Seconds(tsOffset - shift), "-i", filepath.Join(work, "v.mp4")}
	inputs := map[string][]byte{"v.mp4": video}
	maps := []string{"-map", "0:v"}
	if audio != nil {
		args = append(args, "-itsoffset", encode.Seconds(tsOffset), "-i", filepath.Join(work, "a.mp4"))
		inputs["a.mp4"] = audio
		maps = append(maps, "-map", "1:a")
	}
	for name, b := range inputs {
		if err := os.WriteFile(filepath.Join(work, name), b, 0o644); err != nil {
			return fmt.Errorf("%w: MPEG-TS: %v%s", failure.Encoder, err, atomicfile.DiskFullHint(work))
		}
	}
	tmp := filepath.Join(work, "out.ts")
	args = append(args, maps...)
	args = append(args, "-c", "copy", "-map_metadata", "-1", "-avoid_negative_ts", "disabled",
		// Every segment is muxed on its own, so its continuity counters
		// start again: the discontinuity indicator on each stream's first
		// packet says so, or demuxers (ffmpeg's) mark those packets corrupt.
		"-mpegts_flags", "+initial_discontinuity",
		"-muxdelay", "0", "-muxpreload", "0", "-f", "mpegts", tmp)
	cmd := child.Command(ctx, nil, t.cfg.FFmpeg, args...)
	var stderr bytes.Buffer
	cmd.Stderr = &stderr
	if err := cmd.Run(); err != nil {
		if ctx.Err() != nil {
			return context.Cause(ctx)
		}
		return fmt.Errorf("%w: MPEG-TS remux: %v: %s", failure.Encoder, err, child.LastLines(stderr.String(), 3))
	}
	b, err := os.ReadFile(tmp)
	if err != nil {
		return fmt.Errorf("%w: MPEG-TS: %v", failure.Encoder, err)
	}
	b = dropSDT(b)
	if err := atomicfile.Write(out, b); err != nil {
		return fmt.Errorf("%w: MPEG-TS: %v%s", failure.Encoder, err, atomicfile.DiskFullHint(filepath.Dir(out)))
	}
	t.cache.add(out, int64(len(b)), nil, 0, false)
	return nil
}

// dropSDT removes the DVB service description (PID 0x11) ffmpeg writes
// before the PAT: HLS wants each segment to start with its PAT and PMT
// (RFC 8216 3.2), and no HLS player reads the SDT.
func dropSDT(b []byte) []byte {
	out := b[:0]
	for off := 0; off+188 <= len(b); off += 188 {
		pkt := b[off : off+188]
		if pkt[0] == 0x47 && (int(pkt[1]&0x1f)<<8|int(pkt[2])) == 0x11 {
			continue
		}
		out = append(out, pkt...)
	}
	return out
}
