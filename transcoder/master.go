package transcoder

import (
	"context"
	"fmt"
	"strings"

	"github.com/hlsd/hlsd/playlist"
	"github.com/hlsd/hlsd/transcoder/encode"
	"github.com/hlsd/hlsd/transcoder/probe"
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

	groups := audioGroups(info.Audio)
	for _, g := range groups {
		out.Audio = append(out.Audio, g.renditions...)
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
	v := info.Video[0]
	originalAvg := 0
	var original *playlist.Variant
	// An interlaced original is not offered: players would show it combed
	// (Apple's Authoring Specification 1.14 requires deinterlacing). It
	// stays requestable.
	if p.originalAdaptive && encode.CopyableVideo(v) && !v.Interlaced {
		codec, _ := encode.VideoCodecString(v)
		avg, peak := p.originalBitrates()
		originalAvg = avg
		w, h := v.DisplaySize()
		original = &playlist.Variant{
			URI: "video/0/original/index.m3u8", Name: encode.QualityOriginal,
			Bandwidth: peak, AverageBandwidth: avg,
			Codecs: codec, Width: w, Height: h, FrameRate: v.FPS,
			VideoRange: v.Range,
		}
	}
	// Rungs, largest first: those made fast enough, and the others, which
	// stay requestable but are not advertised.
	profile, gpu := t.sched.profileFor(v, t.cfg.Preset)
	busy := t.sched.encoders(nil)
	var fast, slow []playlist.Variant
	start := -1 // in fast: the rung players start on
	rungs := encode.RungsFor(v)
	for i := len(rungs) - 1; i >= 0; i-- {
		r := rungs[i]
		if originalAvg > 0 && plainH264(v) && r.Bitrate >= originalAvg {
			// Whoever decodes this rung decodes the original too, which is
			// sharper and cheaper: players on a fast link (hls.js on a LAN)
			// would otherwise climb to a re-encode the CPU cannot keep up
			// with. The rung stays requestable; it is only not advertised.
			continue
		}
		w, h := encode.RungSize(v, r)
		variant := playlist.Variant{
			URI: fmt.Sprintf("video/0/%s/index.m3u8", r.Name), Name: r.Name,
			Bandwidth: r.Maxrate, AverageBandwidth: r.Bitrate,
			Codecs: playlist.H264Codec("High", encode.RungLevel(v, r)),
			Width:  w, Height: h, FrameRate: v.FPS,
			VideoRange: "SDR", // tone-mapped from HDR sources
		}
		// A GPU makes every rung faster than real time; on the CPU, the
		// rung is made by the next head while `busy` others run. Nothing
		// known yet (a first file of its kind) means every rung up to
		// unmeasuredMax.
		speed, known := t.speeds.RungSpeed(v, r, profile)
		speed /= float64(1 + busy)
		switch {
		case gpu || (!known && r.Height <= unmeasuredMax) || speed >= minSpeed:
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
		if v.Name == encode.QualityOriginal {
			continue
		}
		r, _ := encode.RungByName(v.Name)
		out.IFrames = append(out.IFrames, playlist.IFrames{
			URI: fmt.Sprintf("video/0/%s/iframes.m3u8", r.Name), Bandwidth: iframeBandwidth(r),
			Codecs: v.Codecs, Width: v.Width, Height: v.Height, VideoRange: v.VideoRange,
		})
	}
	// Every variant once per audio group, with the group's codecs and
	// bandwidth (one group: no AUDIO name but the default).
	var each []playlist.Variant
	for _, g := range groups {
		for _, v := range out.Variants {
			v.Bandwidth += g.peak
			v.AverageBandwidth += g.avg
			v.Codecs = strings.Join(append([]string{v.Codecs}, g.codecs...), ",")
			if len(groups) > 1 {
				v.AudioGroup = g.id
			}
			each = append(each, v)
		}
	}
	if len(groups) > 0 {
		out.Variants = each
	}
	return playlist.WriteMaster(out), nil
}

// plainH264 reports whether the source is 8-bit H.264, which every HLS
// player decodes (unlike High 10, HEVC or VP9).
func plainH264(v probe.VideoStream) bool {
	return v.Codec == "h264" && v.BitDepth <= 8
}

// trackName is what a player shows in its menus: the track's title, else
// its language's name, else its number.
func trackName(title, lang string, i int) string {
	if title != "" {
		return title
	}
	if name := probe.LanguageName(lang); name != "" {
		return name
	}
	return fmt.Sprintf("Track %d", i+1)
}

// defaultAudio picks the track players start with: the one the file flags
// default, else the first; never a commentary when there is another track.
func defaultAudio(tracks []probe.AudioStream) int {
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

func commentary(a probe.AudioStream) bool {
	return a.Comment || strings.Contains(strings.ToLower(a.Title), "commentary")
}

// tsMaster turns the fMP4 master into the MPEG-TS one: H.264 variants
// only, each with the default audio track muxed in, so no audio renditions,
// and no I-frame playlists (theirs are fMP4).
func tsMaster(m playlist.Master, info *probe.Info) playlist.Master {
	m.Audio, m.IFrames, m.Version = nil, nil, playlist.TSVersion
	var kept []playlist.Variant
	for _, v := range m.Variants {
		if v.Name == encode.QualityOriginal && !tsQuality(info.Video[0], encode.QualityOriginal) {
			continue
		}
		if len(info.Audio) > 0 {
			v.Codecs += ",mp4a.40.2"
			stereo := probe.AudioStream{Channels: 2}
			v.Bandwidth += encode.AACBitrate(stereo, encode.QualityStereo) * 11 / 10
			v.AverageBandwidth += encode.AACBitrate(stereo, encode.QualityStereo)
		}
		kept = append(kept, v)
	}
	m.Variants = kept
	return m
}

// audioGroup is one GROUP-ID of audio renditions, a rendition of every
// track, and what it adds to a variant that names it.
type audioGroup struct {
	id         string
	renditions []playlist.Audio
	codecs     []string
	peak, avg  int
}

// audioGroups lays the tracks out in groups as Apple's Authoring
// Specification asks:
//   - one group of AAC renditions, each track in its own layout, when no
//     track has more than two channels;
//   - otherwise a "stereo" group (multichannel tracks downmixed) and a
//     "surround" group (each in its own layout), which declare the same
//     bandwidth, the larger, so that players listing variants (hls.js) merge
//     the copies of a variant into one;
//   - and, when a track is AC-3 or E-AC-3, an "original" group where those
//     tracks are passed through (copied) for the players that decode them
//     (Apple's); CODECS says "ac-3" or "ec-3", so browsers skip its
//     variants.
//
// Every group holds every track, under the same NAME and LANGUAGE.
func audioGroups(tracks []probe.AudioStream) []audioGroup {
	if len(tracks) == 0 {
		return nil
	}
	surround, passthrough := false, false
	for _, a := range tracks {
		surround = surround || encode.AACChannels(a, encode.QualityAAC) > 2
		passthrough = passthrough || encode.AudioCodec(a) != ""
	}
	type group struct {
		id      string
		quality func(a probe.AudioStream) string
	}
	aac := func(probe.AudioStream) string { return encode.QualityAAC }
	layouts := []group{{"audio", aac}}
	if surround {
		layouts = []group{{"stereo", func(a probe.AudioStream) string {
			if contains(encode.AudioQualities(a), encode.QualityStereo) {
				return encode.QualityStereo
			}
			return encode.QualityAAC // a stereo track is its own downmix
		}}, {"surround", aac}}
	}
	if passthrough {
		layouts = append(layouts, group{"original", func(a probe.AudioStream) string {
			if encode.AudioCodec(a) != "" {
				return encode.QualityOriginal
			}
			return encode.QualityAAC
		}})
	}
	def := defaultAudio(tracks)
	var groups []audioGroup
	aacPeak, aacAvg := 0, 0
	for _, l := range layouts {
		g := audioGroup{id: l.id}
		for i, a := range tracks {
			q := l.quality(a)
			codec, channels, bw := "mp4a.40.2", encode.AACChannels(a, q), encode.AudioBitrate(a, q)
			if q == encode.QualityOriginal {
				codec, channels = encode.AudioCodec(a), a.Channels
			}
			if !contains(g.codecs, codec) {
				g.codecs = append(g.codecs, codec)
			}
			g.peak = max(g.peak, bw*11/10)
			g.avg = max(g.avg, bw)
			g.renditions = append(g.renditions, playlist.Audio{
				Group:    l.id,
				URI:      fmt.Sprintf("audio/%d/%s/index.m3u8", i, q),
				Name:     trackName(a.Title, a.Language, i),
				Language: a.Language,
				Default:  i == def,
				Channels: channels,
			})
		}
		if l.id != "original" {
			aacPeak, aacAvg = max(aacPeak, g.peak), max(aacAvg, g.avg)
		}
		groups = append(groups, g)
	}
	for i := range groups {
		if groups[i].id != "original" {
			groups[i].peak, groups[i].avg = aacPeak, aacAvg
		}
	}
	return groups
}
