package encode

import (
	"fmt"
	"regexp"
	"strconv"

	"github.com/hlsd/hlsd/transcoder/failure"
)

// Rendition names one rendition of a file: a video or audio track at a
// quality. The server parses it from a URL once, with ParseRendition, and
// everything after trusts it: what is left to check is whether a given
// file offers it.
type Rendition struct {
	Kind    string // "video" or "audio"
	Track   int    // among the file's streams of that kind
	Quality string // QualityOriginal, a rung's name, or an audio quality
}

var trackRe = regexp.MustCompile(`^[0-9]{1,3}$`)

// ParseRendition checks the parts of a rendition's URL: a kind other than
// video and audio is not a route (failure.NotFound); a malformed track or
// a quality no file can have is a bad request. No file is opened, so a
// typo costs no probe.
func ParseRendition(kind, track, quality string) (Rendition, error) {
	if kind != "video" && kind != "audio" {
		return Rendition{}, fmt.Errorf("%w: no such route: track kind must be video or audio", failure.NotFound)
	}
	if !trackRe.MatchString(track) {
		return Rendition{}, fmt.Errorf("%w: malformed track index: %s", failure.BadRequest, track)
	}
	n, _ := strconv.Atoi(track)
	r := Rendition{Kind: kind, Track: n, Quality: quality}
	if !r.known() {
		return Rendition{}, fmt.Errorf("%w: unknown %s quality %q", failure.BadRequest, kind, quality)
	}
	return r, nil
}

func (r Rendition) known() bool {
	switch {
	case r.Quality == QualityOriginal:
		return true
	case r.Kind == "audio":
		return r.Quality == QualityAAC || r.Quality == QualityStereo
	}
	_, ok := RungByName(r.Quality)
	return ok
}

// Rung is the ladder rung of a re-encoded video rendition; false for an
// original or audio.
func (r Rendition) Rung() (Rung, bool) {
	if r.Kind != "video" {
		return Rung{}, false
	}
	return RungByName(r.Quality)
}

// String is the rendition as its URLs name it: video/0/720p.
func (r Rendition) String() string { return fmt.Sprintf("%s/%d/%s", r.Kind, r.Track, r.Quality) }
