package playlist

import (
	"bytes"
	"fmt"
	"strconv"
	"strings"

	"github.com/grafov/m3u8"
)

// Variant is one video rendition in the master playlist.
type Variant struct {
	URI              string // relative URI, e.g. "video/0/720p/index.m3u8"
	Bandwidth        int    // peak bits/s (video + the largest audio rendition)
	AverageBandwidth int
	Codecs           string // complete CODECS value: video codec + every audio codec of its group
	Width, Height    int
	FrameRate        float64
	Name             string // e.g. "720p"; written as the non-standard NAME attribute grafov supports
}

// Audio is one audio rendition; all share GROUP-ID "audio".
type Audio struct {
	URI      string
	Name     string
	Language string // BCP-47/ISO 639 as given; omitted when empty or "und"
	Default  bool
	Channels int // CHANNELS="2"; omitted when <= 0
}

// Subtitle is one subtitle rendition (a WebVTT media playlist); all share
// GROUP-ID "subs".
type Subtitle struct {
	URI      string
	Name     string
	Language string // omitted when empty or "und"
	Default  bool
	Forced   bool
}

// Master describes a master playlist.
type Master struct {
	Variants  []Variant
	Audio     []Audio
	Subtitles []Subtitle
	Query     string // raw query appended to every URI written; empty = none
}

const (
	audioGroup    = "audio"
	subtitleGroup = "subs"
)

// masterVersion: grafov always writes PROGRAM-ID on EXT-X-STREAM-INF, an
// attribute removed in protocol version 6, so the master must declare less.
// 4 is the version RFC 8216 suggests for EXT-X-MEDIA and the AUDIO attribute.
const masterVersion = 4

// WriteMaster writes the master playlist: independent segments, one
// EXT-X-MEDIA per audio rendition and one EXT-X-STREAM-INF per variant.
func WriteMaster(m Master) []byte {
	pl := m3u8.NewMasterPlaylist()
	pl.SetIndependentSegments(true)
	if len(m.Audio) > 0 || len(m.Subtitles) > 0 {
		pl.SetCustomTag(mediaTags{audio: m.Audio, subtitles: m.Subtitles, query: m.Query})
	}
	for _, v := range m.Variants {
		params := m3u8.VariantParams{
			Bandwidth:        uint32(max(v.Bandwidth, 0)),
			AverageBandwidth: uint32(max(v.AverageBandwidth, 0)),
			Codecs:           safe(v.Codecs),
			FrameRate:        v.FrameRate,
			Name:             safe(v.Name),
		}
		if v.Width > 0 && v.Height > 0 {
			params.Resolution = fmt.Sprintf("%dx%d", v.Width, v.Height)
		}
		if len(m.Audio) > 0 {
			params.Audio = audioGroup
		}
		if len(m.Subtitles) > 0 {
			params.Subtitles = subtitleGroup
		}
		pl.Append(withQuery(v.URI, m.Query), nil, params)
	}
	pl.SetVersion(masterVersion)
	return pl.Encode().Bytes()
}

// mediaTags writes all EXT-X-MEDIA lines as one custom tag. grafov's
// Alternative has no CHANNELS field, and its custom tags live in a map keyed
// by tag name (one tag per name, written in random map order), so a single
// tag must carry every rendition to keep them all and keep them ordered.
type mediaTags struct {
	audio     []Audio
	subtitles []Subtitle
	query     string
}

func (mediaTags) TagName() string { return "#EXT-X-MEDIA:" }

func (t mediaTags) String() string { return t.Encode().String() }

func (t mediaTags) Encode() *bytes.Buffer {
	var lines []string
	names := map[string]bool{}
	hasDefault := false
	for _, a := range t.audio {
		name := uniqueName(safe(a.Name), "Audio", names)
		// RFC 8216 4.3.4.1.1: at most one DEFAULT=YES per group.
		def := a.Default && !hasDefault
		hasDefault = hasDefault || def
		line := fmt.Sprintf(`#EXT-X-MEDIA:TYPE=AUDIO,GROUP-ID="%s",NAME="%s"`, audioGroup, name) +
			language(a.Language) + fmt.Sprintf(",DEFAULT=%s,AUTOSELECT=YES", yesNo(def))
		if a.Channels > 0 {
			line += fmt.Sprintf(`,CHANNELS="%d"`, a.Channels)
		}
		lines = append(lines, line+fmt.Sprintf(`,URI="%s"`, withQuery(a.URI, t.query)))
	}
	names = map[string]bool{}
	hasDefault = false
	for _, s := range t.subtitles {
		name := uniqueName(safe(s.Name), "Subtitles", names)
		def := s.Default && !hasDefault
		hasDefault = hasDefault || def
		// RFC 8216 4.3.4.1: AUTOSELECT must be YES when DEFAULT is; forced
		// tracks are selected by players on their own when the language
		// matches, which is what they are for.
		lines = append(lines, fmt.Sprintf(`#EXT-X-MEDIA:TYPE=SUBTITLES,GROUP-ID="%s",NAME="%s"`, subtitleGroup, name)+
			language(s.Language)+fmt.Sprintf(",DEFAULT=%s,AUTOSELECT=YES,FORCED=%s,URI=\"%s\"",
			yesNo(def), yesNo(s.Forced), withQuery(s.URI, t.query)))
	}
	// grafov adds the final newline itself.
	return bytes.NewBufferString(strings.Join(lines, "\n"))
}

func language(l string) string {
	if l == "" || l == "und" {
		return ""
	}
	return fmt.Sprintf(`,LANGUAGE="%s"`, safe(l))
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

var _ m3u8.CustomTag = mediaTags{}
