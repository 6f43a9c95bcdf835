// Package encode says how a rendition is made: the ladder of rungs and the
// audio qualities, the Rendition a URL names (parsed once, at the edge),
// the encoder profiles (software, NVENC, VAAPI, QSV) and the hardware's
// sessions and failures, ffmpeg's command line for a run, and how fast
// this machine encodes each kind of source.
//
// It imports playlist (codec strings), transcoder/probe (the streams),
// transcoder/child, transcoder/failure and transcoder/internal.
package encode

import (
	"fmt"
	"strings"

	"github.com/hlsd/hlsd/playlist"
	"github.com/hlsd/hlsd/transcoder/failure"
	"github.com/hlsd/hlsd/transcoder/probe"
)

// Rung is one re-encoded quality of the ladder.
type Rung struct {
	Name    string
	Height  int // of the shorter side of the picture
	Bitrate int // average, bits/s
	Maxrate int // cap, bits/s: the peak BANDWIDTH players plan for
}

// Ladder is every rung hlsd can offer; a file gets the rungs at or below its size.
var Ladder = []Rung{
	{"240p", 240, 400_000, 600_000},
	{"360p", 360, 800_000, 1_200_000},
	{"480p", 480, 1_400_000, 2_100_000},
	{"720p", 720, 2_800_000, 4_200_000},
	{"1080p", 1080, 5_000_000, 7_500_000},
	{"1440p", 1440, 9_000_000, 13_500_000},
	{"2160p", 2160, 16_000_000, 24_000_000},
}

const (
	QualityOriginal = "original"
	// QualityAAC is AAC in the source's layout: stereo, or 5.1 from 6+
	// channels (mono sources become stereo).
	QualityAAC = "aac"
	// QualityStereo is an AAC stereo downmix, offered beside QualityAAC
	// for tracks of more than two channels: Apple requires a stereo
	// rendition of every multichannel one.
	QualityStereo = "stereo"
)

func RungByName(name string) (Rung, bool) {
	for _, r := range Ladder {
		if r.Name == name {
			return r, true
		}
	}
	return Rung{}, false
}

// RungsFor lists the rungs no larger than the source; a source smaller than
// the lowest rung still gets that rung, at its own size.
func RungsFor(v probe.VideoStream) []Rung {
	w, h := v.DisplaySize()
	short := min(w, h)
	var out []Rung
	for _, r := range Ladder {
		if r.Height <= short {
			out = append(out, r)
		}
	}
	if len(out) == 0 {
		out = append(out, Ladder[0])
	}
	return out
}

// RungSize scales the display size so its shorter side is the rung height,
// keeping the aspect ratio and even dimensions (x264 4:2:0 needs them).
func RungSize(v probe.VideoStream, r Rung) (int, int) {
	w, h := v.DisplaySize()
	short := min(w, h)
	target := min(r.Height, short)
	even := func(x float64) int { return max(2, int(x/2+0.5)*2) }
	if w >= h {
		return even(float64(w) * float64(target) / float64(h)), even(float64(target))
	}
	return even(float64(target)), even(float64(h) * float64(target) / float64(w))
}

// VideoQualities is the list of video qualities a stream offers, original first.
func VideoQualities(v probe.VideoStream) []string {
	q := []string{QualityOriginal}
	for _, r := range RungsFor(v) {
		q = append(q, r.Name)
	}
	return q
}

// AudioQualities lists the qualities of a track: AAC in its layout, a
// stereo downmix of a multichannel track, and the original (a copy) of an
// AC-3 or E-AC-3 track, which Apple's players decode. An AAC copy would
// cost nothing too, but ffmpeg keeps MP4's priming packet (negative pts) on
// a copy, so segment 0 would carry a tfdt below zero; offering it needs
// the leading samples cut out of the first fragment.
func AudioQualities(a probe.AudioStream) []string {
	q := []string{QualityAAC}
	if a.Channels > 2 {
		q = append(q, QualityStereo)
	}
	if AudioCodec(a) != "" {
		q = append(q, QualityOriginal)
	}
	return q
}

// AudioCodec is the RFC 6381 name of a track's codec when it is passed
// through (AC-3, E-AC-3), else "".
func AudioCodec(a probe.AudioStream) string {
	switch a.Codec {
	case "ac3":
		return "ac-3"
	case "eac3":
		return "ec-3"
	}
	return ""
}

// CopiedAudio says whether quality q of track a is made of the source's
// own packets, with no encoder: the passthrough of AC-3 and E-AC-3, and
// the AAC rendition of an AAC-LC track already in the layout the
// rendition declares (a copy is ready at once, where an encoder on a
// loaded machine made audio slower than the video beside it).
func CopiedAudio(a probe.AudioStream, q string) bool {
	switch q {
	case QualityOriginal:
		return true
	case QualityAAC:
		return a.Codec == "aac" && a.Profile == "LC" && a.Channels == AACChannels(a, q)
	}
	return false
}

// AudioBitrate is what rendition q of a carries: the source's own rate
// for a copy, when the container says, else the encoder's target.
func AudioBitrate(a probe.AudioStream, q string) int {
	if CopiedAudio(a, q) && a.Bitrate > 0 {
		return int(max(a.Bitrate, 32_000))
	}
	if q == QualityOriginal {
		return 64_000
	}
	return AACBitrate(a, q)
}

// AACChannels is the channel count of an AAC quality of a.
func AACChannels(a probe.AudioStream, quality string) int {
	if a.Channels >= 6 && quality != QualityStereo {
		return 6
	}
	return 2
}

func AACBitrate(a probe.AudioStream, quality string) int {
	if AACChannels(a, quality) == 6 {
		return 384_000
	}
	return 128_000
}

// AACSampleRate keeps the source rate where AAC supports it, so no resampling
// blurs the sample-exact seek the audio frame grid relies on.
func AACSampleRate(a probe.AudioStream) int {
	switch a.SampleRate {
	case 8000, 11025, 12000, 16000, 22050, 24000, 32000, 44100, 48000, 64000, 88200, 96000:
		return a.SampleRate
	}
	return 48000
}

// VideoCodecString is the RFC 6381 string of the source stream, for
// `original`: the one its codec configuration gives (probe.VideoStream's
// CodecString), else one derived from ffprobe's profile and level.
func VideoCodecString(v probe.VideoStream) (string, error) {
	if v.CodecString != "" {
		switch v.Codec {
		case "h264", "hevc", "av1":
			return v.CodecString, nil
		}
	}
	switch v.Codec {
	case "h264":
		return playlist.H264Codec(v.Profile, v.Level), nil
	case "hevc":
		return playlist.HEVCCodec(v.Profile, v.Level), nil
	case "vp9":
		pixFmt, _, _ := strings.Cut(v.Format, " ")
		yuv420 := pixFmt == "" || strings.Contains(pixFmt, "420")
		return playlist.VP9Codec(v.Profile, v.Level, v.Width, v.Height, v.BitDepth, yuv420), nil
	case "av1":
		return playlist.AV1Codec(v.Profile, v.Level, v.Width, v.Height, v.FPS, v.BitDepth), nil
	}
	return "", fmt.Errorf("%w: %s cannot be stream-copied into fMP4 for HLS", failure.NotFound, v.Codec)
}

// CopyableVideo reports whether fMP4 can carry the source codec unchanged.
func CopyableVideo(v probe.VideoStream) bool {
	_, err := VideoCodecString(v)
	return err == nil
}

// RungLevel is the H.264 level the encoder is told to respect and the CODECS string names.
func RungLevel(v probe.VideoStream, r Rung) int {
	w, h := RungSize(v, r)
	return playlist.H264Level(w, h, v.FPS, r.Maxrate)
}
