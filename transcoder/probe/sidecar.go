package probe

import (
	"regexp"
	"strings"
)

// sidecarCodecs maps a sidecar's extension to its codec.
var sidecarCodecs = map[string]string{"srt": "subrip", "ass": "ass", "ssa": "ass", "vtt": "webvtt"}

var languageTag = regexp.MustCompile(`^[a-z]{2,3}(-[A-Za-z0-9]{2,8})?$`)

// Sidecar reads what follows "Movie." in a sidecar's name: optional
// dot-separated parts (a language tag, "forced", "default", "sdh", or
// anything else as a title), then the extension: "en.srt", "fr.forced.ass",
// "vtt", "en.Director's commentary.srt".
func Sidecar(rest string) (SubtitleStream, bool) {
	parts := strings.Split(rest, ".")
	codec, ok := sidecarCodecs[strings.ToLower(parts[len(parts)-1])]
	if !ok {
		return SubtitleStream{}, false
	}
	s := SubtitleStream{Index: -1, Codec: codec, Streamable: true}
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
