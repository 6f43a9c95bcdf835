package transcoder

import (
	"testing"

	"github.com/hlsd/hlsd/transcoder/probe"
)

func TestTrackNames(t *testing.T) {
	for _, c := range []struct{ title, lang, want string }{
		{"Director's commentary", "eng", "Director's commentary"},
		{"", "fre", "French"},
		{"", "fra", "French"},
		{"", "de", "German"},
		{"", "pt-br", "Portuguese (BR)"},
		{"", "tlh", "tlh"},
		{"", "und", "Track 3"},
		{"", "", "Track 3"},
	} {
		if got := trackName(c.title, c.lang, 2); got != c.want {
			t.Errorf("trackName(%q, %q) = %q, want %q", c.title, c.lang, got, c.want)
		}
	}
}

func TestDefaultAudio(t *testing.T) {
	main := probe.AudioStream{Title: "English"}
	comm := probe.AudioStream{Title: "Commentary with the director", Default: true}
	flagged := probe.AudioStream{Title: "Français", Default: true}
	for _, c := range []struct {
		name   string
		tracks []probe.AudioStream
		want   int
	}{
		{"first when none is flagged", []probe.AudioStream{main, main}, 0},
		{"the flagged one", []probe.AudioStream{main, flagged}, 1},
		{"never a commentary, even flagged", []probe.AudioStream{comm, main}, 1},
		{"commentary by disposition", []probe.AudioStream{{Comment: true}, main}, 1},
		{"a lone commentary still plays", []probe.AudioStream{comm}, 0},
	} {
		if got := defaultAudio(c.tracks); got != c.want {
			t.Errorf("%s: track %d, want %d", c.name, got, c.want)
		}
	}
}

// Bitmap subtitles are listed but not streamable; text ones are.
func TestBitmapSubtitlesListed(t *testing.T) {
	info, err := probe.Parse([]byte(`{"format":{"format_name":"matroska,webm","duration":"10","start_time":"0"},
		"streams":[{"index":0,"codec_type":"video","codec_name":"h264","width":320,"height":240,"avg_frame_rate":"24/1"},
		{"index":1,"codec_type":"subtitle","codec_name":"hdmv_pgs_subtitle","tags":{"language":"eng"}},
		{"index":2,"codec_type":"subtitle","codec_name":"subrip","tags":{"language":"fre"},"disposition":{"forced":1}}]}`))
	if err != nil {
		t.Fatal(err)
	}
	want := []probe.SubtitleStream{
		{Index: 1, Codec: "hdmv_pgs_subtitle", Language: "eng"},
		{Index: 2, Codec: "subrip", Language: "fre", Forced: true, Streamable: true},
	}
	if len(info.Subtitles) != len(want) || info.Subtitles[0] != want[0] || info.Subtitles[1] != want[1] {
		t.Errorf("subtitles %+v, want %+v", info.Subtitles, want)
	}
}
