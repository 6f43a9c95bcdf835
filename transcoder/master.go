package transcoder

import (
	"context"
	"fmt"
	"strings"

	"github.com/hlsd/hlsd/playlist"
	"github.com/hlsd/hlsd/transcoder/encode"
	"github.com/hlsd/hlsd/transcoder/failure"
	"github.com/hlsd/hlsd/transcoder/probe"
)

// Master writes the master playlist for client c: the original where it
// shares the grid, every rung at or below the source that is worth its
// bits (see plainH264), and one audio rendition per track, less what c
// cannot play. With c.TS, the variants have MPEG-TS segments with the
// default audio muxed in (see TSSegment).
func (t *Transcoder) Master(ctx context.Context, path, query string, c Client) ([]byte, error) {
	l, err := t.lineup(ctx, path, c, true)
	if err != nil {
		return nil, err
	}
	l.master.Query = query
	return playlist.WriteMaster(l.master), nil
}

// lineup is a master for one client, and why it is what it is.
type lineup struct {
	master   playlist.Master
	decision Decision
}

// lineup builds the master for c. Its first variant is where players start
// (native ones always, and the web player sets hls.js's start level to
// it), and its first audio group the one they start with: the original
// when c decodes it, as it costs no encoding, else the best rung made at
// startSpeed. Players climb from there as far as minSpeed. With calibrate,
// rungs of a kind of source not measured yet are measured in the
// background (see calibrate); a decision does not, as it runs no encoder.
func (t *Transcoder) lineup(ctx context.Context, path string, c Client, calibrate bool) (*lineup, error) {
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
	out := &lineup{}
	// Re-encodes carry the source's captions (x264 passes them on) and
	// copies keep them, so the source says for every variant.
	out.master.NoCaptions = !info.Video[0].Captions
	for i, s := range t.subtitleTracks(m) {
		if !s.Streamable {
			continue
		}
		out.master.Subtitles = append(out.master.Subtitles, playlist.Subtitle{
			URI:  fmt.Sprintf("subtitles/%d.m3u8", i),
			Name: trackName(s.Title, s.Language, i), Language: s.Language,
			// Forced tracks are for everyone who has the language on: a
			// default text track would show dialogue to all viewers.
			Default: s.Default && !s.Forced, Forced: s.Forced,
		})
	}

	v := info.Video[0]
	original, why := originalVariant(v, p, c)
	originalAvg := 0
	if original != nil {
		originalAvg = original.AverageBandwidth
	}
	// Rungs, largest first: those made fast enough, and the others, which
	// stay requestable but are not advertised.
	profile, gpu := t.sched.profileFor(v, t.cfg.Preset)
	busy := t.sched.encoders(nil)
	var fast, slow []playlist.Variant
	start := -1 // in fast: the rung players start on
	rungs := encode.RungsFor(v)
	tall := 0 // rungs c is too small for
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
		if !c.allows(variant.Codecs) {
			break // every rung is H.264
		}
		if c.MaxHeight > 0 && h > c.MaxHeight {
			tall++
			continue
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
	if calibrate && !gpu {
		t.calibrate(m, v)
	}
	if len(fast) == 0 && len(slow) > 0 {
		fast = slow[len(slow)-1:] // too slow everywhere: the smallest still plays, with pauses
	}
	if start < 0 {
		start = len(fast) - 1
	}
	// The original goes first when every player decodes it, or when the
	// client said it does.
	vs := &out.master.Variants
	if original != nil && (plainH264(v) || c.declared()) {
		*vs = append(*vs, *original)
		original = nil
	} else if original != nil {
		why = append(why, "codecs not given: the first variant is H.264, which every player decodes; codecs=avc1,"+
			codecFamily(original.Codecs)+",mp4a gets the copy")
	}
	if start >= 0 {
		*vs = append(*vs, fast[start])
	}
	if original != nil {
		*vs = append(*vs, *original)
	}
	for i, f := range fast {
		if i != start {
			*vs = append(*vs, f)
		}
	}
	if len(*vs) == 0 {
		return nil, nothingLeft(c, "video variant", videoHas(v, tall))
	}
	out.decision.Video = TrackDecision{Action: "transcode", Quality: (*vs)[0].Name, Reasons: why}
	if (*vs)[0].Name == encode.QualityOriginal {
		out.decision.Video = TrackDecision{Action: "copy", Quality: encode.QualityOriginal, Reasons: []string{}}
	}
	if c.TS {
		return out, tsLineup(out, info, c)
	}
	// An I-frame playlist per rung listed, for native players' scrubbing
	// and fast-forward (Apple's Authoring Specification 6.1).
	for _, v := range *vs {
		if v.Name == encode.QualityOriginal {
			continue
		}
		r, _ := encode.RungByName(v.Name)
		out.master.IFrames = append(out.master.IFrames, playlist.IFrames{
			URI: fmt.Sprintf("video/0/%s/iframes.m3u8", r.Name), Bandwidth: iframeBandwidth(r),
			Codecs: v.Codecs, Width: v.Width, Height: v.Height, VideoRange: v.VideoRange,
		})
	}
	groups := audioGroups(info.Audio, c)
	if len(info.Audio) > 0 && len(groups) == 0 {
		return nil, nothingLeft(c, "audio rendition", audioHas(info.Audio))
	}
	for _, g := range groups {
		for _, r := range g.renditions {
			out.master.Audio = append(out.master.Audio, r.Audio)
		}
	}
	if len(groups) > 0 {
		out.decision.Audio = audioDecisions(info.Audio, groups[0], c)
	}
	// Every variant once per audio group, with the group's codecs and
	// bandwidth.
	var each []playlist.Variant
	for _, g := range groups {
		for _, v := range *vs {
			v.Bandwidth += g.peak
			v.AverageBandwidth += g.avg
			v.Codecs = strings.Join(append([]string{v.Codecs}, g.codecs...), ",")
			v.AudioGroup = g.id
			each = append(each, v)
		}
	}
	if len(groups) > 0 {
		*vs = each
	}
	return out, nil
}

// originalVariant is the original as a variant, or nil and why not for c.
func originalVariant(v probe.VideoStream, p *plans, c Client) (*playlist.Variant, []string) {
	codec, err := encode.VideoCodecString(v)
	w, h := v.DisplaySize()
	var why []string
	switch {
	case err != nil:
		why = append(why, "codec "+v.Codec+" cannot be copied into fMP4")
	// An interlaced original is not offered: players would show it combed
	// (Apple's Authoring Specification 1.14 requires deinterlacing). It
	// stays requestable.
	case v.Interlaced:
		why = append(why, "interlaced: deinterlaced")
	case !p.originalAdaptive:
		why = append(why, "keyframes too far apart for 4 s segments: re-encoded on a 4 s grid")
	case c.TS && !tsQuality(v, encode.QualityOriginal):
		why = append(why, "codec "+v.Codec+" and container=ts: MPEG-TS segments carry H.264")
	}
	if err == nil && !c.allows(codec) {
		why = append(why, fmt.Sprintf("codec %s is not in codecs", v.Codec))
	}
	if c.MaxHeight > 0 && h > c.MaxHeight {
		why = append(why, fmt.Sprintf("height %d > maxheight %d", h, c.MaxHeight))
	}
	if c.SDR && (v.Range == "PQ" || v.Range == "HLG") {
		why = append(why, v.Range+" and range=sdr: tone-mapped")
	}
	if len(why) > 0 {
		return nil, why
	}
	avg, peak := p.originalBitrates()
	return &playlist.Variant{
		URI: "video/0/original/index.m3u8", Name: encode.QualityOriginal,
		Bandwidth: peak, AverageBandwidth: avg,
		Codecs: codec, Width: w, Height: h, FrameRate: v.FPS,
		VideoRange: v.Range,
	}, nil
}

// nothingLeft is the 406 for a client that can play none of the file's
// variants, or none of its audio: what it asked, and what the file has.
func nothingLeft(c Client, what, has string) error {
	return fmt.Errorf("%w: no %s is left for %s; the file has %s", failure.NotAcceptable, what, c.asked(), has)
}

// videoHas lists the file's video variants for nothingLeft.
func videoHas(v probe.VideoStream, tall int) string {
	w, h := v.DisplaySize()
	has := fmt.Sprintf("video %s %dx%d", v.Codec, w, h)
	if codec, err := encode.VideoCodecString(v); err == nil {
		has += " (" + codec + ")"
	}
	has += " and H.264 rungs (avc1)"
	if tall > 0 {
		has += fmt.Sprintf(", %d of them taller than maxheight", tall)
	}
	return has
}

// audioHas lists the file's audio tracks for nothingLeft.
func audioHas(tracks []probe.AudioStream) string {
	var has []string
	for i, a := range tracks {
		codec := "AAC (mp4a)"
		if c := encode.AudioCodec(a); c != "" {
			codec += " or " + a.Codec + " (" + c + ")"
		}
		has = append(has, fmt.Sprintf("audio %d: %d channels, %s", i, a.Channels, codec))
	}
	return strings.Join(has, "; ")
}

// codecFamily is the four-character name of an RFC 6381 codec ("hvc1").
func codecFamily(codec string) string {
	family, _, _ := strings.Cut(codec, ".")
	return family
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

// tsLineup turns the fMP4 lineup into the MPEG-TS one: H.264 variants
// only, each with the default audio track muxed in as AAC stereo, so no
// audio renditions, and no I-frame playlists (theirs are fMP4).
func tsLineup(l *lineup, info *probe.Info, c Client) error {
	m := &l.master
	m.Audio, m.IFrames, m.Version = nil, nil, playlist.TSVersion
	track, quality, hasAudio := tsAudio(info)
	if hasAudio && (!c.allows("mp4a.40.2") || c.Channels == 1) {
		return nothingLeft(c, "variant with audio", "MPEG-TS variants with AAC stereo (mp4a.40.2)")
	}
	var kept []playlist.Variant
	for _, v := range m.Variants {
		if hasAudio {
			v.Codecs += ",mp4a.40.2"
			stereo := probe.AudioStream{Channels: 2}
			v.Bandwidth += encode.AACBitrate(stereo, encode.QualityStereo) * 11 / 10
			v.AverageBandwidth += encode.AACBitrate(stereo, encode.QualityStereo)
		}
		kept = append(kept, v)
	}
	m.Variants = kept
	if hasAudio {
		a := info.Audio[track]
		d := TrackDecision{Track: track, Action: "transcode", Quality: quality,
			Reasons: []string{"container=ts: the default track, muxed in as AAC stereo"}}
		if a.Channels > 2 {
			d.Reasons = append(d.Reasons, fmt.Sprintf("%d channels > 2: downmix", a.Channels))
		}
		if encode.CopiedAudio(a, quality) {
			d.Action, d.Reasons = "copy", []string{}
		}
		l.decision.Audio = []TrackDecision{d}
	}
	return nil
}

// audioGroup is one GROUP-ID of audio renditions, a rendition of every
// track, and what it adds to a variant that names it.
type audioGroup struct {
	id         string
	renditions []rendition
	codecs     []string
	peak, avg  int
}

// rendition is one audio rendition of a group, and the track's quality
// it plays.
type rendition struct {
	playlist.Audio
	quality string
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
// Every group holds every track, under the same NAME and LANGUAGE, so a
// group with one rendition c cannot play is left out whole. The first
// group is the one players start with: the passthrough when c said it
// decodes it, then surround when c said it has the speakers, else stereo.
func audioGroups(tracks []probe.AudioStream, c Client) []audioGroup {
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
		stereo := group{"stereo", stereoQuality}
		layouts = []group{stereo, {"surround", aac}}
		if c.Channels > 2 {
			layouts = []group{{"surround", aac}, stereo}
		}
	}
	if passthrough {
		original := group{"original", func(a probe.AudioStream) string {
			if encode.AudioCodec(a) != "" {
				return encode.QualityOriginal
			}
			return encode.QualityAAC
		}}
		if c.declared() {
			layouts = append([]group{original}, layouts...)
		} else {
			layouts = append(layouts, original)
		}
	}
	def := defaultAudio(tracks)
	var groups []audioGroup
	aacPeak, aacAvg := 0, 0
next:
	for _, l := range layouts {
		g := audioGroup{id: l.id}
		for i, a := range tracks {
			q := l.quality(a)
			codec, channels, bw := "mp4a.40.2", encode.AACChannels(a, q), encode.AudioBitrate(a, q)
			if q == encode.QualityOriginal {
				codec, channels = encode.AudioCodec(a), a.Channels
			}
			if !c.allows(codec) || (c.Channels > 0 && channels > c.Channels) {
				continue next
			}
			if !contains(g.codecs, codec) {
				g.codecs = append(g.codecs, codec)
			}
			g.peak = max(g.peak, bw*11/10)
			g.avg = max(g.avg, bw)
			g.renditions = append(g.renditions, rendition{Audio: playlist.Audio{
				Group:    l.id,
				URI:      fmt.Sprintf("audio/%d/%s/index.m3u8", i, q),
				Name:     trackName(a.Title, a.Language, i),
				Language: a.Language,
				Default:  i == def,
				Channels: channels,
			}, quality: q})
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

// audioDecisions says, per track, what a client starting with group g
// gets, and why it is not the track's own packets.
func audioDecisions(tracks []probe.AudioStream, g audioGroup, c Client) []TrackDecision {
	var out []TrackDecision
	for i, r := range g.renditions {
		a := tracks[i]
		d := TrackDecision{Track: i, Action: "copy", Quality: r.quality, Reasons: []string{}}
		if !encode.CopiedAudio(a, r.quality) {
			d.Action = "transcode"
			switch codec := encode.AudioCodec(a); {
			case codec != "" && !c.allows(codec):
				d.Reasons = append(d.Reasons, fmt.Sprintf("codec %s is not in codecs: AAC", a.Codec))
			case codec != "":
				d.Reasons = append(d.Reasons, fmt.Sprintf("codecs not given: AAC, which every player decodes; codecs=...,%s gets the copy", codec))
			case a.Codec != "aac":
				d.Reasons = append(d.Reasons, fmt.Sprintf("codec %s: encoded to AAC, which every HLS player decodes", a.Codec))
			case a.Profile != "LC":
				d.Reasons = append(d.Reasons, fmt.Sprintf("AAC profile %s: AAC-LC", a.Profile))
			}
			switch {
			case r.Channels > a.Channels:
				d.Reasons = append(d.Reasons, fmt.Sprintf("%d channel: as stereo, which every player plays", a.Channels))
			case r.Channels == a.Channels:
			case c.Channels > 0 && a.Channels > c.Channels:
				d.Reasons = append(d.Reasons, fmt.Sprintf("%d channels > %d: downmix", a.Channels, c.Channels))
			default:
				d.Reasons = append(d.Reasons, fmt.Sprintf("%d channels: downmix to %d first; channels=%d gets them all", a.Channels, r.Channels, a.Channels))
			}
		}
		out = append(out, d)
	}
	return out
}

// Decision is what one client gets and why (the /decision route).
type Decision struct {
	Video TrackDecision   `json:"video"`
	Audio []TrackDecision `json:"audio"`
}

// TrackDecision is what a client gets of one track: "copy" or
// "transcode", at which quality, and the reasons in words a person can
// act on.
type TrackDecision struct {
	Track   int      `json:"track"`
	Action  string   `json:"action"`
	Quality string   `json:"quality"`
	Reasons []string `json:"reasons"`
}

// Decide is what client c gets of a file, from the very master it would
// be given. It runs no encoder.
func (t *Transcoder) Decide(ctx context.Context, path string, c Client) (Decision, error) {
	l, err := t.lineup(ctx, path, c, false)
	if err != nil {
		return Decision{}, err
	}
	if l.decision.Audio == nil {
		l.decision.Audio = []TrackDecision{}
	}
	return l.decision, nil
}
