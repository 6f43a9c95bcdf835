// Package probe says what a media file holds: ffprobe's streams and format
// as Info, kept on disk and in memory by a Prober, the language names of
// its tracks, and the Identity every cache of hlsd files a file version
// under.
//
// It imports keyframes (whether a container has an index), transcoder/child
// (to run ffprobe), transcoder/failure and transcoder/internal.
package probe

import (
	"encoding/json"
	"fmt"
	"strconv"
	"strings"
	"time"

	"github.com/hlsd/hlsd/transcoder/failure"
)

// Info is what hlsd knows about a media file; it is served as /info.
type Info struct {
	Duration  float64          `json:"duration"`
	Container string           `json:"container"`
	Size      int64            `json:"size"`
	Bitrate   int64            `json:"bitrate"`
	StartTime float64          `json:"startTime"`
	Video     []VideoStream    `json:"video"`
	Audio     []AudioStream    `json:"audio"`
	Subtitles []SubtitleStream `json:"subtitles"`
	Qualities Qualities        `json:"qualities"`
	Keyframes KeyframeStatus   `json:"keyframes"`
	// TrickplayInterval is the time between thumbnails (0: none), and
	// Trickplay the URL of their WebVTT map, which the server fills in.
	TrickplayInterval float64   `json:"trickplayInterval,omitempty"`
	Trickplay         string    `json:"trickplay,omitempty"`
	ModTime           time.Time `json:"-"`
	ProbedPath        string    `json:"-"`
}

type VideoStream struct {
	Index    int     `json:"index"`
	Codec    string  `json:"codec"`
	Profile  string  `json:"profile"`
	Level    int     `json:"level"`
	Width    int     `json:"width"`
	Height   int     `json:"height"`
	FPS      float64 `json:"fps"`
	BitDepth int     `json:"bitDepth"`
	HDR      bool    `json:"hdr"`
	// Range is the HLS VIDEO-RANGE of the picture: "SDR", "PQ" or "HLG".
	Range string `json:"range"`
	// Interlaced is true for a field-coded source (ffprobe's field order
	// tt, bb, tb or bt): every re-encoded rung is deinterlaced.
	Interlaced bool `json:"interlaced,omitempty"`
	// BottomFirst: of an interlaced source, the bottom field is shown first.
	BottomFirst bool `json:"bottomFirst,omitempty"`
	// Captions is true when the video carries CEA-608/708 captions.
	Captions bool  `json:"captions,omitempty"`
	Rotation int   `json:"rotation"`
	Bitrate  int64 `json:"bitrate"`
	// SAR is the sample aspect ratio (1 for square pixels).
	SAR float64 `json:"sar"`
	// CodecString is the RFC 6381 string read from the stream's own codec
	// configuration (playlist.ConfigCodec), "" when there was none to read.
	CodecString string `json:"codecString,omitempty"`
	// Format is the decoded picture and its timing as ffprobe names them:
	// pixel format, colour range, space, transfer, primaries, chroma
	// location, field order and time base. With the encoder settings it
	// determines a re-encoded rung's init segment (see initKey).
	Format string `json:"format,omitempty"`
}

type AudioStream struct {
	Index      int    `json:"index"`
	Codec      string `json:"codec"`
	Profile    string `json:"profile"`
	Channels   int    `json:"channels"`
	SampleRate int    `json:"sampleRate"`
	Language   string `json:"language"`
	Title      string `json:"title"`
	Default    bool   `json:"default"`
	// Comment marks a commentary track (disposition "comment").
	Comment bool  `json:"comment,omitempty"`
	Bitrate int64 `json:"bitrate"`
	// Start is the stream's first timestamp relative to the file start; the AAC
	// frame grid of every encoder run is anchored there.
	Start float64 `json:"start"`
	// Format is the decoded audio as ffprobe names it: sample format,
	// channel layout and time base (see VideoStream.Format).
	Format string `json:"format,omitempty"`
}

type SubtitleStream struct {
	// Index is the stream's index in the file; -1 for a sidecar file.
	Index    int    `json:"index"`
	Codec    string `json:"codec"`
	Language string `json:"language"`
	Title    string `json:"title"`
	Forced   bool   `json:"forced"`
	Default  bool   `json:"default"`
	// File is a sidecar's path relative to the media root.
	File string `json:"file,omitempty"`
	// Streamable is false for bitmap formats (PGS, VobSub, DVB), which
	// cannot become WebVTT: they would need burning in.
	Streamable bool `json:"streamable"`
	// URL of the WebVTT, set by the server for streamable tracks.
	URL string `json:"url,omitempty"`
}

type Qualities struct {
	Video []string `json:"video"`
	Audio []string `json:"audio"`
}

type KeyframeStatus struct {
	Count    int  `json:"count"`
	Complete bool `json:"complete"`
	// Source is "index" (the container's keyframe index) or "scan" (a
	// packet scan of the whole file); absent while the index is being read.
	Source string `json:"source,omitempty"`
}

// DisplaySize is the frame size a viewer sees: rotation and non-square pixels applied.
func (v VideoStream) DisplaySize() (int, int) {
	w, h := v.Width, v.Height
	if v.SAR > 0 && v.SAR != 1 {
		w = int(float64(w)*v.SAR + 0.5)
	}
	if v.Rotation == 90 || v.Rotation == 270 {
		w, h = h, w
	}
	return w, h
}

type ffprobeOutput struct {
	Streams []struct {
		Index            int               `json:"index"`
		CodecName        string            `json:"codec_name"`
		CodecType        string            `json:"codec_type"`
		Profile          string            `json:"profile"`
		Level            int               `json:"level"`
		Width            int               `json:"width"`
		Height           int               `json:"height"`
		SampleAspect     string            `json:"sample_aspect_ratio"`
		PixFmt           string            `json:"pix_fmt"`
		ColorTransfer    string            `json:"color_transfer"`
		ColorRange       string            `json:"color_range"`
		ColorSpace       string            `json:"color_space"`
		ColorPrimaries   string            `json:"color_primaries"`
		ChromaLocation   string            `json:"chroma_location"`
		FieldOrder       string            `json:"field_order"`
		TimeBase         string            `json:"time_base"`
		SampleFmt        string            `json:"sample_fmt"`
		ChannelLayout    string            `json:"channel_layout"`
		AvgFrameRate     string            `json:"avg_frame_rate"`
		RFrameRate       string            `json:"r_frame_rate"`
		BitsPerRaw       string            `json:"bits_per_raw_sample"`
		Channels         int               `json:"channels"`
		SampleRate       string            `json:"sample_rate"`
		StartTime        string            `json:"start_time"`
		BitRate          string            `json:"bit_rate"`
		Tags             map[string]string `json:"tags"`
		Disposition      map[string]int    `json:"disposition"`
		SideDataList     []map[string]any  `json:"side_data_list"`
		ClosedCaptions   int               `json:"closed_captions"`
		ExtradataSizeRaw int               `json:"extradata_size"`
	} `json:"streams"`
	Format struct {
		FormatName string `json:"format_name"`
		Duration   string `json:"duration"`
		StartTime  string `json:"start_time"`
		BitRate    string `json:"bit_rate"`
		Size       string `json:"size"`
	} `json:"format"`
}

// Parse reads the JSON of ffprobe -show_format -show_streams.
func Parse(b []byte) (*Info, error) {
	var out ffprobeOutput
	if err := json.Unmarshal(b, &out); err != nil {
		return nil, fmt.Errorf("%w: unreadable ffprobe output: %v", failure.NotMedia, err)
	}
	info := &Info{
		Container: out.Format.FormatName,
		Duration:  parseFloat(out.Format.Duration),
		StartTime: parseFloat(out.Format.StartTime),
		Bitrate:   int64(parseFloat(out.Format.BitRate)),
		Video:     []VideoStream{},
		Audio:     []AudioStream{},
		Subtitles: []SubtitleStream{},
	}
	for _, s := range out.Streams {
		switch s.CodecType {
		case "video":
			if s.Disposition["attached_pic"] == 1 {
				continue
			}
			v := VideoStream{
				Index: s.Index, Codec: s.CodecName, Profile: s.Profile, Level: s.Level,
				Width: s.Width, Height: s.Height, FPS: parseRate(s.AvgFrameRate),
				BitDepth:    bitDepth(s.PixFmt, s.BitsPerRaw),
				HDR:         s.ColorTransfer == "smpte2084" || s.ColorTransfer == "arib-std-b67",
				Range:       videoRange(s.ColorTransfer),
				Interlaced:  s.FieldOrder == "tt" || s.FieldOrder == "bb" || s.FieldOrder == "tb" || s.FieldOrder == "bt",
				BottomFirst: s.FieldOrder == "bb" || s.FieldOrder == "tb",
				Captions:    s.ClosedCaptions == 1,
				Rotation:    rotation(s.Tags, s.SideDataList), Bitrate: int64(parseFloat(s.BitRate)),
				SAR:    parseRatio(s.SampleAspect),
				Format: streamFormat(s.PixFmt, s.ColorRange, s.ColorSpace, s.ColorTransfer, s.ColorPrimaries, s.ChromaLocation, s.FieldOrder, s.TimeBase),
			}
			if v.FPS <= 0 || v.FPS > 240 {
				v.FPS = parseRate(s.RFrameRate)
			}
			if v.FPS <= 0 || v.FPS > 240 {
				v.FPS = 25
			}
			info.Video = append(info.Video, v)
		case "audio":
			info.Audio = append(info.Audio, AudioStream{
				Index: s.Index, Codec: s.CodecName, Profile: s.Profile, Channels: s.Channels,
				SampleRate: int(parseFloat(s.SampleRate)), Language: s.Tags["language"],
				Title: s.Tags["title"], Default: s.Disposition["default"] == 1,
				Comment: s.Disposition["comment"] == 1, Bitrate: int64(parseFloat(s.BitRate)),
				Start:  max(0, parseFloat(s.StartTime)-info.StartTime),
				Format: streamFormat(s.SampleFmt, s.ChannelLayout, s.TimeBase),
			})
		case "subtitle":
			info.Subtitles = append(info.Subtitles, SubtitleStream{
				Index: s.Index, Codec: s.CodecName, Language: s.Tags["language"],
				Title: s.Tags["title"], Forced: s.Disposition["forced"] == 1,
				Default: s.Disposition["default"] == 1, Streamable: TextSubtitles[s.CodecName],
			})
		}
	}
	if len(info.Video) == 0 {
		return nil, fmt.Errorf("%w: the file has no video stream", failure.NotMedia)
	}
	if info.Duration <= 0 {
		return nil, fmt.Errorf("%w: the file has no duration", failure.NotMedia)
	}
	return info, nil
}

// videoRange is the VIDEO-RANGE of a transfer characteristic.
func videoRange(transfer string) string {
	switch transfer {
	case "smpte2084":
		return "PQ"
	case "arib-std-b67":
		return "HLG"
	}
	return "SDR"
}

// streamFormat joins ffprobe's names, "" for each one it left out.
func streamFormat(parts ...string) string { return strings.Join(parts, " ") }

func parseFloat(s string) float64 {
	f, err := strconv.ParseFloat(s, 64)
	if err != nil {
		return 0
	}
	return f
}

func parseRate(s string) float64 {
	num, den, ok := strings.Cut(s, "/")
	if !ok {
		return parseFloat(s)
	}
	d := parseFloat(den)
	if d == 0 {
		return 0
	}
	return parseFloat(num) / d
}

func parseRatio(s string) float64 {
	num, den, ok := strings.Cut(s, ":")
	if !ok || parseFloat(den) == 0 || parseFloat(num) == 0 {
		return 1
	}
	return parseFloat(num) / parseFloat(den)
}

func bitDepth(pixFmt, raw string) int {
	if n, err := strconv.Atoi(raw); err == nil && n > 0 {
		return n
	}
	for _, d := range []string{"16", "12", "10"} {
		if strings.Contains(pixFmt, "p"+d) {
			n, _ := strconv.Atoi(d)
			return n
		}
	}
	return 8
}

// rotation returns the clockwise display rotation in degrees (0, 90, 180, 270).
func rotation(tags map[string]string, side []map[string]any) int {
	deg := 0.0
	if r, ok := tags["rotate"]; ok {
		deg = -parseFloat(r)
	}
	for _, sd := range side {
		if r, ok := sd["rotation"].(float64); ok {
			deg = r
		}
	}
	// ffprobe reports the display matrix angle counter-clockwise.
	d := (int(-deg)%360 + 360) % 360
	return (d + 45) / 90 * 90 % 360
}

// TextSubtitles are the codecs ffmpeg converts to WebVTT. Bitmap ones
// (hdmv_pgs_subtitle, dvd_subtitle, dvb_subtitle) would need burning in.
var TextSubtitles = map[string]bool{
	"subrip": true, "srt": true, "ass": true, "ssa": true, "webvtt": true, "mov_text": true, "text": true,
}
