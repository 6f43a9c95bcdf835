package transcoder

import (
	"context"
	"fmt"
	"strings"

	"github.com/hlsd/hlsd/playlist"
)

// Master writes the master playlist: the original where it shares the grid,
// every rung at or below the source that is worth its bits (see plainH264),
// and one audio rendition per track. With ts, the variants have MPEG-TS
// segments with the default audio muxed in (see TSSegment).
func (t *Transcoder) Master(ctx context.Context, path, query string, ts bool) ([]byte, error) {
	m, err := t.open(ctx, path)
	if err != nil {
		return nil, err
	}
	defer m.release()
	p, err := m.getPlans(ctx)
	if err != nil {
		return nil, err
	}
	info := m.info
	var out playlist.Master
	out.Query = query
	// Re-encodes carry the source's captions (x264 passes them on) and
	// copies keep them, so the source says for every variant.
	out.NoCaptions = !info.Video[0].Captions

	// Multichannel tracks follow Apple's layout: a group of stereo
	// renditions (multichannel tracks downmixed) and a group of each track
	// in its own layout, each group referenced by its own copy of every
	// variant. Both copies declare the same bandwidth, the larger, so
	// players that list variants (hls.js) see one per rung.
	groups := []struct{ id, quality string }{{"audio", QualityAAC}}
	for _, a := range info.Audio {
		if aacChannels(a, QualityAAC) > 2 {
			groups = []struct{ id, quality string }{{"stereo", QualityStereo}, {"surround", QualityAAC}}
			break
		}
	}
	audioCodecs := []string{}
	maxAudioBw, maxAudioAvg := 0, 0
	def := defaultAudio(info.Audio)
	for _, g := range groups {
		for i, a := range info.Audio {
			q, codec := g.quality, "mp4a.40.2"
			if !contains(audioQualities(a), q) {
				q = QualityAAC // a stereo track is its own downmix
			}
			if !contains(audioCodecs, codec) {
				audioCodecs = append(audioCodecs, codec)
			}
			bw := aacBitrate(a, q)
			maxAudioBw = max(maxAudioBw, bw*11/10)
			maxAudioAvg = max(maxAudioAvg, bw)
			out.Audio = append(out.Audio, playlist.Audio{
				Group:    g.id,
				URI:      fmt.Sprintf("audio/%d/%s/index.m3u8", i, q),
				Name:     trackName(a.Title, a.Language, i),
				Language: a.Language,
				Default:  i == def,
				Channels: aacChannels(a, q),
			})
		}
	}
	for i, s := range t.subtitleTracks(m) {
		if !s.Streamable {
			continue
		}
		out.Subtitles = append(out.Subtitles, playlist.Subtitle{
			URI:  fmt.Sprintf("subtitles/%d.m3u8", i),
			Name: trackName(s.Title, s.Language, i), Language: s.Language,
			// Forced tracks are for everyone who has the language on: a
			// default text track would show dialogue to all viewers.
			Default: s.Default && !s.Forced, Forced: s.Forced,
		})
	}
	withAudio := func(video string) string {
		return strings.Join(append([]string{video}, audioCodecs...), ",")
	}

	v := info.Video[0]
	originalAvg := 0
	var original *playlist.Variant
	// An interlaced original is not offered: players would show it combed
	// (Apple's Authoring Specification 1.14 requires deinterlacing). It
	// stays requestable.
	if p.originalAdaptive && copyableVideo(v) && !v.Interlaced {
		codec, _ := videoCodecString(v)
		avg, peak := p.originalBitrates()
		originalAvg = avg
		w, h := v.DisplaySize()
		original = &playlist.Variant{
			URI: "video/0/original/index.m3u8", Name: QualityOriginal,
			Bandwidth: peak + maxAudioBw, AverageBandwidth: avg + maxAudioAvg,
			Codecs: withAudio(codec), Width: w, Height: h, FrameRate: v.FPS,
			VideoRange: v.Range,
		}
	}
	// Rungs, largest first: those made fast enough, and the others, which
	// stay requestable but are not advertised.
	profile, gpu := t.sched.profileFor(v, t.cfg.Preset)
	busy := t.sched.encoders(nil)
	var fast, slow []playlist.Variant
	start := -1 // in fast: the rung players start on
	rungs := rungsFor(v)
	for i := len(rungs) - 1; i >= 0; i-- {
		r := rungs[i]
		if originalAvg > 0 && plainH264(v) && r.Bitrate >= originalAvg {
			// Whoever decodes this rung decodes the original too, which is
			// sharper and cheaper: players on a fast link (hls.js on a LAN)
			// would otherwise climb to a re-encode the CPU cannot keep up
			// with. The rung stays requestable; it is only not advertised.
			continue
		}
		w, h := rungSize(v, r)
		variant := playlist.Variant{
			URI: fmt.Sprintf("video/0/%s/index.m3u8", r.Name), Name: r.Name,
			Bandwidth: r.Maxrate + maxAudioBw, AverageBandwidth: r.Bitrate + maxAudioAvg,
			Codecs: withAudio(playlist.H264Codec("High", rungLevel(v, r))),
			Width:  w, Height: h, FrameRate: v.FPS,
			VideoRange: "SDR", // tone-mapped from HDR sources
		}
		// A GPU makes every rung faster than real time; on the CPU, the
		// rung is made by the next head while `busy` others run. Nothing
		// known yet (a first file of its kind) means every rung.
		speed, known := t.speeds.rungSpeed(v, r, profile)
		speed /= float64(1 + busy)
		switch {
		case gpu || !known || speed >= minSpeed:
			fast = append(fast, variant)
			if start < 0 && (gpu || speed >= startSpeed || (!known && r.Height <= unmeasuredStart)) {
				start = len(fast) - 1
			}
		default:
			slow = append(slow, variant)
		}
	}
	if !gpu {
		t.calibrate(m, v)
	}
	if len(fast) == 0 && len(slow) > 0 {
		fast = slow[len(slow)-1:] // too slow everywhere: the smallest still plays, with pauses
	}
	if start < 0 {
		start = len(fast) - 1
	}
	// The first variant is where players start (native ones always, and
	// the web player sets hls.js's start level to it): the original when
	// every player decodes it, as it costs no encoding, else the best rung
	// made at startSpeed. Players climb from there as far as minSpeed.
	if original != nil && plainH264(v) {
		out.Variants = append(out.Variants, *original)
		original = nil
	}
	if start >= 0 {
		out.Variants = append(out.Variants, fast[start])
	}
	if original != nil {
		out.Variants = append(out.Variants, *original)
	}
	for i, f := range fast {
		if i != start {
			out.Variants = append(out.Variants, f)
		}
	}
	if ts {
		return playlist.WriteMaster(tsMaster(out, info)), nil
	}
	// An I-frame playlist per rung listed, for native players' scrubbing
	// and fast-forward (Apple's Authoring Specification 6.1).
	for _, v := range out.Variants {
		if v.Name == QualityOriginal {
			continue
		}
		r, _ := rungByName(v.Name)
		codec, _, _ := strings.Cut(v.Codecs, ",")
		out.IFrames = append(out.IFrames, playlist.IFrames{
			URI: fmt.Sprintf("video/0/%s/iframes.m3u8", r.Name), Bandwidth: iframeBandwidth(r),
			Codecs: codec, Width: v.Width, Height: v.Height, VideoRange: v.VideoRange,
		})
	}
	if len(groups) > 1 {
		var each []playlist.Variant
		for _, g := range groups {
			for _, v := range out.Variants {
				v.AudioGroup = g.id
				each = append(each, v)
			}
		}
		out.Variants = each
	}
	return playlist.WriteMaster(out), nil
}

// plainH264 reports whether the source is 8-bit H.264, which every HLS
// player decodes (unlike High 10, HEVC or VP9).
func plainH264(v VideoStream) bool {
	return v.Codec == "h264" && v.BitDepth <= 8
}

// trackName is what a player shows in its menus: the track's title, else
// its language's name, else its number.
func trackName(title, lang string, i int) string {
	if title != "" {
		return title
	}
	if name := languageName(lang); name != "" {
		return name
	}
	return fmt.Sprintf("Track %d", i+1)
}

// defaultAudio picks the track players start with: the one the file flags
// default, else the first; never a commentary when there is another track.
func defaultAudio(tracks []AudioStream) int {
	pick := -1
	for i, a := range tracks {
		if a.Default && !commentary(a) {
			return i
		}
		if pick < 0 && !commentary(a) {
			pick = i
		}
	}
	return max(pick, 0)
}

func commentary(a AudioStream) bool {
	return a.Comment || strings.Contains(strings.ToLower(a.Title), "commentary")
}

// tsMaster turns the fMP4 master into the MPEG-TS one: H.264 variants
// only, each with the default audio track muxed in, so no audio renditions,
// and no I-frame playlists (theirs are fMP4).
func tsMaster(m playlist.Master, info *Info) playlist.Master {
	m.Audio, m.IFrames, m.Version = nil, nil, playlist.TSVersion
	var kept []playlist.Variant
	for _, v := range m.Variants {
		if v.Name == QualityOriginal && !tsQuality(info.Video[0], QualityOriginal) {
			continue
		}
		codec, _, _ := strings.Cut(v.Codecs, ",")
		if len(info.Audio) > 0 {
			codec += ",mp4a.40.2"
		}
		v.Codecs = codec
		kept = append(kept, v)
	}
	m.Variants = kept
	return m
}
