package playlist

import (
	"cmp"
	"fmt"
	"strconv"
	"strings"
)

// Variant is one video rendition in the master playlist.
type Variant struct {
	URI              string // relative URI, e.g. "video/0/720p/index.m3u8"
	Bandwidth        int    // peak bits/s (video + the largest audio rendition)
	AverageBandwidth int
	Codecs           string // complete CODECS value: video codec + every audio codec of its group
	Width, Height    int
	FrameRate        float64
	// VideoRange is "SDR", "PQ" or "HLG"; empty writes none.
	VideoRange string
	Name       string // e.g. "720p"; the non-standard NAME attribute hls.js shows
	// AudioGroup is the GROUP-ID of its audio renditions; empty is
	// "audio" when there are any.
	AudioGroup string
}

// IFrames is an I-frame variant (EXT-X-I-FRAME-STREAM-INF): the I-frames
// playlist of one rung, for scrubbing and fast-forward.
type IFrames struct {
	URI           string
	Bandwidth     int
	Codecs        string // the video codec only
	Width, Height int
	VideoRange    string
}

// Audio is one audio rendition.
type Audio struct {
	Group    string // GROUP-ID; empty is "audio"
	URI      string
	Name     string
	Language string // BCP-47/ISO 639 as given; "und" when empty
	Default  bool
	Channels int // CHANNELS="2"; omitted when <= 0
}

// Subtitle is one subtitle rendition (a WebVTT media playlist); all share
// GROUP-ID "subs".
type Subtitle struct {
	URI      string
	Name     string
	Language string // "und" when empty
	Default  bool
	Forced   bool
}

// Master describes a master playlist.
type Master struct {
	Variants  []Variant
	IFrames   []IFrames
	Audio     []Audio
	Subtitles []Subtitle
	// NoCaptions says the video carries no CEA-608/708 captions: written as
	// CLOSED-CAPTIONS=NONE, without which some players (Shaka) load
	// segments of every variant to look for them.
	NoCaptions bool
	Query      string // raw query appended to every URI written; empty = none
	// Version is the EXT-X-VERSION, that of the media playlists listed;
	// 0 is masterVersion, that of fMP4 ones.
	Version int
}

const (
	audioGroup    = "audio"
	subtitleGroup = "subs"
)

// masterVersion is that of the media playlists the master lists (EXT-X-MAP
// needs 6): nothing in the master needs more, and PROGRAM-ID, which version
// 6 removed, is not written.
const masterVersion = mediaVersion

// WriteMaster writes the master playlist: independent segments, one
// EXT-X-MEDIA per rendition and one EXT-X-STREAM-INF per variant. It is
// written here rather than by grafov, which always writes PROGRAM-ID and
// has no CHANNELS.
func WriteMaster(m Master) []byte {
	var b strings.Builder
	fmt.Fprintf(&b, "#EXTM3U\n#EXT-X-VERSION:%d\n#EXT-X-INDEPENDENT-SEGMENTS\n", cmp.Or(m.Version, masterVersion))
	names := map[string]map[string]bool{}
	hasDefault := map[string]bool{}
	for _, a := range m.Audio {
		group := cmp.Or(safe(a.Group), audioGroup)
		if names[group] == nil {
			names[group] = map[string]bool{}
		}
		name := uniqueName(safe(a.Name), "Audio", names[group])
		// RFC 8216 4.3.4.1.1: at most one DEFAULT=YES per group.
		def := a.Default && !hasDefault[group]
		hasDefault[group] = hasDefault[group] || def
		fmt.Fprintf(&b, `#EXT-X-MEDIA:TYPE=AUDIO,GROUP-ID="%s",NAME="%s",LANGUAGE="%s",DEFAULT=%s,AUTOSELECT=YES`,
			group, name, language(a.Language), yesNo(def))
		if a.Channels > 0 {
			fmt.Fprintf(&b, `,CHANNELS="%d"`, a.Channels)
		}
		fmt.Fprintf(&b, ",URI=\"%s\"\n", withQuery(a.URI, m.Query))
	}
	subNames := map[string]bool{}
	subDefault := false
	for _, s := range m.Subtitles {
		name := uniqueName(safe(s.Name), "Subtitles", subNames)
		def := s.Default && !subDefault
		subDefault = subDefault || def
		// RFC 8216 4.3.4.1: AUTOSELECT must be YES when DEFAULT is; forced
		// tracks are selected by players on their own when the language
		// matches, which is what they are for.
		fmt.Fprintf(&b, `#EXT-X-MEDIA:TYPE=SUBTITLES,GROUP-ID="%s",NAME="%s",LANGUAGE="%s",DEFAULT=%s,AUTOSELECT=YES,FORCED=%s,URI="%s"`+"\n",
			subtitleGroup, name, language(s.Language), yesNo(def), yesNo(s.Forced), withQuery(s.URI, m.Query))
	}
	for _, v := range m.Variants {
		fmt.Fprintf(&b, "#EXT-X-STREAM-INF:BANDWIDTH=%d", max(v.Bandwidth, 0))
		if v.AverageBandwidth > 0 {
			fmt.Fprintf(&b, ",AVERAGE-BANDWIDTH=%d", v.AverageBandwidth)
		}
		if v.Codecs != "" {
			fmt.Fprintf(&b, `,CODECS="%s"`, safe(v.Codecs))
		}
		if v.Width > 0 && v.Height > 0 {
			fmt.Fprintf(&b, ",RESOLUTION=%dx%d", v.Width, v.Height)
		}
		if v.FrameRate > 0 {
			fmt.Fprintf(&b, ",FRAME-RATE=%.3f", v.FrameRate)
		}
		if r := v.VideoRange; r == "SDR" || r == "PQ" || r == "HLG" {
			b.WriteString(",VIDEO-RANGE=" + r)
		}
		if len(m.Audio) > 0 {
			fmt.Fprintf(&b, `,AUDIO="%s"`, cmp.Or(safe(v.AudioGroup), audioGroup))
		}
		if len(m.Subtitles) > 0 {
			fmt.Fprintf(&b, `,SUBTITLES="%s"`, subtitleGroup)
		}
		if m.NoCaptions {
			b.WriteString(",CLOSED-CAPTIONS=NONE")
		}
		if v.Name != "" {
			fmt.Fprintf(&b, `,NAME="%s"`, safe(v.Name))
		}
		b.WriteString("\n" + withQuery(v.URI, m.Query) + "\n")
	}
	for _, f := range m.IFrames {
		fmt.Fprintf(&b, "#EXT-X-I-FRAME-STREAM-INF:BANDWIDTH=%d", max(f.Bandwidth, 0))
		if f.Codecs != "" {
			fmt.Fprintf(&b, `,CODECS="%s"`, safe(f.Codecs))
		}
		if f.Width > 0 && f.Height > 0 {
			fmt.Fprintf(&b, ",RESOLUTION=%dx%d", f.Width, f.Height)
		}
		if r := f.VideoRange; r == "SDR" || r == "PQ" || r == "HLG" {
			b.WriteString(",VIDEO-RANGE=" + r)
		}
		fmt.Fprintf(&b, ",URI=\"%s\"\n", withQuery(f.URI, m.Query))
	}
	return []byte(b.String())
}

// language is the LANGUAGE of a rendition: Apple's players need one on every
// rendition (Authoring Specification 8.10), and "und" is the code for none.
func language(l string) string {
	if l == "" {
		return "und"
	}
	return safe(l)
}

// uniqueName suffixes repeated names: RFC 8216 4.3.4.1.1 requires distinct
// NAMEs in a group, and two tracks titled "English" are common.
func uniqueName(name, fallback string, seen map[string]bool) string {
	if name == "" {
		name = fallback
	}
	unique := name
	for n := 2; seen[unique]; n++ {
		unique = name + " " + strconv.Itoa(n)
	}
	seen[unique] = true
	return unique
}

func yesNo(b bool) string {
	if b {
		return "YES"
	}
	return "NO"
}
