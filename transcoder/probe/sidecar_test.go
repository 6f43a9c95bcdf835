package probe

import "testing"

func TestParseSidecar(t *testing.T) {
	for _, c := range []struct {
		rest string
		ok   bool
		want SubtitleStream
	}{
		{"en.srt", true, SubtitleStream{Index: -1, Codec: "subrip", Language: "en", Streamable: true}},
		{"fr.forced.ass", true, SubtitleStream{Index: -1, Codec: "ass", Language: "fr", Forced: true, Streamable: true}},
		{"vtt", true, SubtitleStream{Index: -1, Codec: "webvtt", Streamable: true}},
		{"pt-BR.default.SRT", true, SubtitleStream{Index: -1, Codec: "subrip", Language: "pt-BR", Default: true, Streamable: true}},
		{"eng.sdh.srt", true, SubtitleStream{Index: -1, Codec: "subrip", Language: "eng", Title: "SDH", Streamable: true}},
		{"en.Director Commentary.srt", true, SubtitleStream{Index: -1, Codec: "subrip", Language: "en", Title: "Director Commentary", Streamable: true}},
		{"nfo", false, SubtitleStream{}},
		{"en.sub", false, SubtitleStream{}},
	} {
		got, ok := Sidecar(c.rest)
		if ok != c.ok || got != c.want {
			t.Errorf("Sidecar(%q) = %+v, %v; want %+v, %v", c.rest, got, ok, c.want, c.ok)
		}
	}
}
