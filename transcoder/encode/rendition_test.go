package encode

import (
	"errors"
	"testing"

	"github.com/hlsd/hlsd/transcoder/failure"
)

func TestParseRendition(t *testing.T) {
	for _, c := range []struct {
		kind, track, quality string
		want                 error // nil: parsed
	}{
		{"video", "0", "original", nil},
		{"video", "2", "720p", nil},
		{"audio", "1", "aac", nil},
		{"audio", "0", "stereo", nil},
		{"audio", "0", "original", nil},
		{"subtitles", "0", "720p", failure.NotFound},
		{"video", "-1", "720p", failure.BadRequest},
		{"video", "1x", "720p", failure.BadRequest},
		{"video", "1000", "720p", failure.BadRequest},
		{"video", "0", "721p", failure.BadRequest},
		{"video", "0", "aac", failure.BadRequest},
		{"audio", "0", "720p", failure.BadRequest},
	} {
		r, err := ParseRendition(c.kind, c.track, c.quality)
		switch {
		case c.want == nil && err != nil:
			t.Errorf("%s/%s/%s: %v", c.kind, c.track, c.quality, err)
		case c.want == nil && r.String() != c.kind+"/"+c.track+"/"+c.quality:
			t.Errorf("%s/%s/%s parsed as %s", c.kind, c.track, c.quality, r)
		case c.want != nil && !errors.Is(err, c.want):
			t.Errorf("%s/%s/%s: %v, want %v", c.kind, c.track, c.quality, err, c.want)
		}
	}
	if _, ok := (Rendition{Kind: "video", Quality: "480p"}).Rung(); !ok {
		t.Error("480p video is a rung")
	}
	if _, ok := (Rendition{Kind: "video", Quality: "original"}).Rung(); ok {
		t.Error("the original is not a rung")
	}
}
