package server

import (
	"cmp"
	"encoding/binary"
	"encoding/json"
	"fmt"
	"math"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"testing"

	"github.com/hlsd/hlsd/transcoder"
	"github.com/hlsd/hlsd/transcoder/probe"
)

const srtCues = "1\n00:00:01,000 --> 00:00:02,500\nHello\n\n2\n00:00:04,000 --> 00:00:05,250\nWorld\n"

const assCues = `[Script Info]
ScriptType: v4.00+

[V4+ Styles]
Format: Name, Fontname, Fontsize, PrimaryColour, SecondaryColour, OutlineColour, BackColour, Bold, Italic, Underline, StrikeOut, ScaleX, ScaleY, Spacing, Angle, BorderStyle, Outline, Shadow, Alignment, MarginL, MarginR, MarginV, Encoding
Style: Default,Arial,20,&H00FFFFFF,&H000000FF,&H00000000,&H00000000,0,0,0,0,100,100,0,0,1,1,0,2,10,10,10,1

[Events]
Format: Layer, Start, End, Style, Name, MarginL, MarginR, MarginV, Effect, Text
Dialogue: 0,0:00:01.00,0:00:02.50,Default,,0,0,0,,Hello
Dialogue: 0,0:00:04.00,0:00:05.25,Default,,0,0,0,,World
`

// wantCues are the cues of srtCues and assCues on the video's timeline.
var wantCues = []vttCue{{1, 2.5, "Hello"}, {4, 5.25, "World"}}

type vttCue struct {
	start, end float64
	text       string
}

// Hours are optional in WebVTT timestamps, and ffmpeg leaves them out.
var cueTiming = regexp.MustCompile(`^(?:(\d+):)?(\d\d):(\d\d)\.(\d{3}) --> (?:(\d+):)?(\d\d):(\d\d)\.(\d{3})`)

func parseVTT(t *testing.T, b []byte) []vttCue {
	t.Helper()
	var cues []vttCue
	lines := strings.Split(strings.ReplaceAll(string(b), "\r\n", "\n"), "\n")
	for i, l := range lines {
		m := cueTiming.FindStringSubmatch(l)
		if m == nil {
			continue
		}
		n := make([]float64, 8)
		for j := range n {
			n[j], _ = strconv.ParseFloat(m[j+1], 64) // "" (no hours) is 0
		}
		c := vttCue{start: n[0]*3600 + n[1]*60 + n[2] + n[3]/1000, end: n[4]*3600 + n[5]*60 + n[6] + n[7]/1000}
		for _, text := range lines[i+1:] {
			if text == "" {
				break
			}
			c.text += text
		}
		cues = append(cues, c)
	}
	return cues
}

// TestSubtitles: tracks inside a Matroska file whose timestamps start at 5 s
// (SRT and ASS), a mov_text track in an MP4, and sidecar files (SRT with a
// language, forced ASS, plain WebVTT) are all listed in /info and in the
// master, and come out as WebVTT with the right cues on the video's
// timeline.
func TestSubtitles(t *testing.T) {
	media := t.TempDir()
	write := func(name, text string) string {
		p := filepath.Join(media, name)
		if err := os.WriteFile(p, []byte(text), 0o644); err != nil {
			t.Fatal(err)
		}
		return p
	}
	srt := write("source.srt.txt", srtCues)
	ass := write("source.ass.txt", assCues)
	ffmpeg := func(args ...string) {
		t.Helper()
		if out, err := exec.Command("ffmpeg", append([]string{"-v", "error", "-y"}, args...)...).CombinedOutput(); err != nil {
			t.Fatalf("ffmpeg: %v %s", err, out)
		}
	}
	video := []string{"-f", "lavfi", "-i", "testsrc2=size=320x240:rate=24", "-f", "lavfi", "-i", "sine=frequency=440"}
	ffmpeg(append(video, "-f", "srt", "-i", srt, "-f", "ass", "-i", ass, "-t", "8",
		"-map", "0:v", "-map", "1:a", "-map", "2", "-map", "3", "-c:v", "libx264", "-preset", "ultrafast", "-c:a", "aac",
		"-c:s:0", "srt", "-c:s:1", "ass", "-metadata:s:s:0", "language=eng", "-metadata:s:s:1", "language=ger",
		"-metadata:s:s:1", "title=Styled", "-disposition:s:0", "default",
		"-output_ts_offset", "5", filepath.Join(media, "film.mkv"))...)
	ffmpeg(append(video, "-f", "srt", "-i", srt, "-t", "8", "-map", "0:v", "-map", "1:a", "-map", "2",
		"-c:v", "libx264", "-preset", "ultrafast", "-c:a", "aac", "-c:s", "mov_text",
		"-metadata:s:s:0", "language=spa", filepath.Join(media, "clip.mp4"))...)
	write("film.en.srt", srtCues)
	write("film.fr.forced.ass", assCues)
	ffmpeg("-f", "srt", "-i", srt, filepath.Join(media, "film.vtt"))
	os.Remove(srt)
	os.Remove(ass)

	e := newEnvDirs(t, transcoder.Config{}, media, t.TempDir())
	base := e.videoURL("film.mkv")
	var info probe.Info
	if err := json.Unmarshal(e.mustGet(base+"/info"), &info); err != nil {
		t.Fatal(err)
	}
	if info.StartTime < 4.9 {
		t.Fatalf("start time %v: the clip should start at 5 s", info.StartTime)
	}
	type want struct {
		codec, lang, name string
		forced, def       bool
	}
	// The file's own tracks, then the sidecars by name.
	wants := []want{
		{"subrip", "eng", "English", false, true},
		{"ass", "ger", "Styled", false, false},
		{"subrip", "en", "English 2", false, false}, // names are unique in a group
		{"ass", "fr", "French", true, false},
		{"webvtt", "", "Track 5", false, false},
	}
	if len(info.Subtitles) != len(wants) {
		t.Fatalf("/info lists %d subtitle tracks, want %d: %+v", len(info.Subtitles), len(wants), info.Subtitles)
	}
	master := string(e.mustGet(base + "/master.m3u8?clientId=c1"))
	for i, w := range wants {
		s := info.Subtitles[i]
		if s.Codec != w.codec || s.Language != w.lang || s.Forced != w.forced || !s.Streamable ||
			!strings.HasPrefix(s.URL, fmt.Sprintf("/videos/%s/subtitles/%d.vtt?v=", encodeID("film.mkv"), i)) {
			t.Errorf("subtitle %d in /info: %+v, want %+v", i, s, w)
		}
		line := fmt.Sprintf(`TYPE=SUBTITLES,GROUP-ID="subs",NAME="%s"`, w.name)
		line += fmt.Sprintf(`,LANGUAGE="%s"`, cmp.Or(w.lang, "und"))
		line += fmt.Sprintf(`,DEFAULT=%s,AUTOSELECT=YES,FORCED=%s,URI="subtitles/%d.m3u8?clientId=c1&v=`,
			map[bool]string{true: "YES", false: "NO"}[w.def], map[bool]string{true: "YES", false: "NO"}[w.forced], i)
		if !strings.Contains(master, line) {
			t.Errorf("master lacks %s:\n%s", line, master)
		}

		pl := string(e.mustGet(fmt.Sprintf("%s/subtitles/%d.m3u8", base, i)))
		if !strings.Contains(pl, fmt.Sprintf("\n%d.vtt?v=", i)) || !strings.Contains(pl, "#EXT-X-ENDLIST") {
			t.Errorf("subtitle playlist %d:\n%s", i, pl)
		}
		status, vtt, hdr := e.get(fmt.Sprintf("%s/subtitles/%d.vtt", base, i))
		if status != 200 || !strings.HasPrefix(hdr.Get("Content-Type"), "text/vtt") {
			t.Fatalf("subtitle %d: %d %s %s", i, status, hdr.Get("Content-Type"), vtt)
		}
		if !strings.HasPrefix(string(vtt), "WEBVTT\nX-TIMESTAMP-MAP=MPEGTS:0,LOCAL:00:00:00.000\n") {
			t.Errorf("subtitle %d header: %q", i, string(vtt[:min(len(vtt), 80)]))
		}
		// The file's own cues sit at 6 s and 9 s on a timeline that starts
		// at start_time (a little before 5 s: the audio's priming); on the
		// segments' timeline they keep that distance. A sidecar's cues
		// count from the start of playback, which is 0.
		shift := 0.0
		if i < 2 {
			shift = 5 - info.StartTime
		}
		checkCues(t, fmt.Sprintf("subtitle %d", i), parseVTT(t, vtt), shift)
	}
	if n := strings.Count(master, `SUBTITLES="subs"`); n == 0 || n != strings.Count(master, "#EXT-X-STREAM-INF") {
		t.Errorf("%d of the variants name the subtitle group:\n%s", n, master)
	}

	mp4 := e.videoURL("clip.mp4")
	if err := json.Unmarshal(e.mustGet(mp4+"/info"), &info); err != nil || len(info.Subtitles) != 1 || info.Subtitles[0].Codec != "mov_text" {
		t.Fatalf("clip.mp4 subtitles: %+v %v", info.Subtitles, err)
	}
	checkCues(t, "mov_text", parseVTT(t, e.mustGet(mp4+"/subtitles/0.vtt")), -info.StartTime)
	if !strings.Contains(string(e.mustGet(mp4+"/master.m3u8")), `NAME="Spanish",LANGUAGE="spa"`) {
		t.Errorf("mov_text track not named by its language")
	}

	for _, c := range []struct {
		url  string
		want int
	}{{base + "/subtitles/9.vtt", 404}, {base + "/subtitles/9.m3u8", 404}, {base + "/subtitles/x.vtt", 400}, {base + "/subtitles/0.srt", 400}} {
		status, body, hdr := e.get(c.url)
		wantError(t, c.url, status, body, hdr, c.want)
	}
}

// checkCues holds cues to wantCues moved by shift seconds, within 1 ms.
func checkCues(t *testing.T, what string, got []vttCue, shift float64) {
	t.Helper()
	if len(got) != len(wantCues) {
		t.Fatalf("%s: cues %+v, want %+v", what, got, wantCues)
	}
	for i, c := range got {
		w := wantCues[i]
		if math.Abs(c.start-w.start-shift) > 0.001 || math.Abs(c.end-w.end-shift) > 0.001 || !strings.Contains(c.text, w.text) {
			t.Errorf("%s: cue %d is %+v, want %+v moved by %.3f s", what, i, c, w, shift)
		}
	}
}

// TestAudioRenditions: every audio track is a rendition named by its title,
// and the one the player selects is the one heard. The two tracks of
// twoaudio.mkv are tones of 440 and 880 Hz; each rendition's decoded
// audio must carry its own.
func TestAudioRenditions(t *testing.T) {
	e := newEnv(t, transcoder.Config{}, "twoaudio.mkv")
	base := e.videoURL("twoaudio.mkv")
	master := string(e.mustGet(base + "/master.m3u8"))
	for _, want := range []string{
		`TYPE=AUDIO,GROUP-ID="audio",NAME="English",LANGUAGE="eng",DEFAULT=YES`,
		`TYPE=AUDIO,GROUP-ID="audio",NAME="Français",LANGUAGE="fra",DEFAULT=NO`,
	} {
		if !strings.Contains(master, want) {
			t.Errorf("master lacks %s:\n%s", want, master)
		}
	}
	for a, hz := range []float64{440, 880} {
		rung := fmt.Sprintf("%s/audio/%d/aac/", base, a)
		path := filepath.Join(t.TempDir(), "audio.mp4")
		if err := os.WriteFile(path, append(e.mustGet(rung+"init.mp4"), e.mustGet(rung+"segment-1.m4s")...), 0o644); err != nil {
			t.Fatal(err)
		}
		pcm, err := exec.Command("ffmpeg", "-v", "error", "-i", path, "-ac", "1", "-ar", "8000", "-f", "s16le", "-").Output()
		if err != nil {
			t.Fatal(err)
		}
		if got := toneFrequency(pcm, 8000); math.Abs(got-hz) > hz*0.05 {
			t.Errorf("audio track %d sounds at %.0f Hz, want %.0f", a, got, hz)
		}
	}
}

// toneFrequency estimates the pitch of a pure tone from its zero crossings.
func toneFrequency(pcm []byte, rate int) float64 {
	crossings, prev := 0, int16(0)
	n := len(pcm) / 2
	for i := 0; i < n; i++ {
		v := int16(binary.LittleEndian.Uint16(pcm[2*i:]))
		if i > 0 && (prev < 0) != (v < 0) {
			crossings++
		}
		prev = v
	}
	return float64(crossings) / 2 / (float64(n) / float64(rate))
}
