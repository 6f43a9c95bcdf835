package encode

import (
	"fmt"
	"math"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/hlsd/hlsd/transcoder/probe"
)

// Spec is a run of one variant: which segments and at which times ffmpeg
// must cut.
type Spec struct {
	Input   string
	Kind    string // "video" or "audio"
	Track   int    // among streams of that kind
	Quality string
	First   int       // number of the first segment the run writes
	Bounds  []float64 // plan boundaries from segment First to the end of the file
	Video   probe.VideoStream
	Audio   probe.AudioStream
	Profile Profile // for video re-encodes
	OutDir  string  // ffmpeg writes s-<n>.mp4 files here
	// Container is ffprobe's format name of the source.
	Container string
	// InputIndex is the ffmpeg input the run's streams are mapped from: 0,
	// unless several runs share one command (a prepare).
	InputIndex int
	// NoSegmentList leaves out the list of written segments on stdout,
	// which several outputs of one command cannot share.
	NoSegmentList bool
}

// TSDiscont says whether ffmpeg treats the container's timestamps as
// possibly discontinuous (MPEG-TS, MPEG-PS, FLV). For those, ffmpeg
// "corrects" -start_at_zero to the first timestamp of the streams a run
// maps, not the file's: a video-only run of a TV recording whose audio
// starts 10 ms before its video would be shifted 10 ms earlier than the
// keyframes the plan is cut at. It does so only while its offset equals
// minus the file's start, so an input offset of 1 µs turns it off.
func TSDiscont(container string) bool {
	for _, name := range strings.Split(container, ",") {
		switch name {
		case "mpegts", "mpeg", "flv":
			return true
		}
	}
	return false
}

// FMP4Options make the segment muxer write fragmented MP4 whose tfdt is the
// absolute decode time of the first sample, equal to its presentation time
// (negative_cts_offsets lets B-frames sit before it without a negative dts),
// so segments of different runs join exactly. No edit list: players differ
// in whether they apply one.
const FMP4Options = "movflags=+frag_keyframe+empty_moov+default_base_moof+frag_discont+negative_cts_offsets:use_editlist=0"

// Seconds writes a time as ffmpeg takes it, to the microsecond.
func Seconds(t float64) string { return strconv.FormatFloat(t, 'f', 6, 64) }

// JoinSeconds writes times as a comma list, for -segment_times and the like.
func JoinSeconds(ts_ []float64) string {
	parts := make([]string, len(ts_))
	for i, t := range ts_ {
		parts[i] = Seconds(t)
	}
	return strings.Join(parts, ",")
}

// GlobalArgs open every run's command line.
var GlobalArgs = []string{"-hide_banner", "-nostdin", "-loglevel", "error", "-y"}

// Args builds the command line of one run: GlobalArgs, then Parts.
func Args(r Spec) []string {
	input, output := Parts(r)
	return slices.Concat(GlobalArgs, input, output)
}

// Parts builds the two halves of a run's command line: its input (the
// options before -i, and -i) and its output. A command of several runs
// (a prepare) is GlobalArgs, the inputs it needs and every run's output.
//
// Cut times: a stream copy can only cut at source keyframes, which the plan's
// boundaries are, given exactly as ffprobe printed them. A re-encode forces
// its keyframes at the boundaries minus a quarter frame, so "first frame at or
// after the cut" picks the intended frame despite timestamp rounding.
func Parts(r Spec) (input, output []string) {
	start := r.Bounds[0]
	cuts := r.Bounds[1 : len(r.Bounds)-1]
	var args, codec []string
	delta := 0.0

	switch {
	case r.Kind == "video" && r.Quality == QualityOriginal:
		quarter := 0.25 / r.Video.FPS
		delta = quarter
		// Seek a little before the boundary and keep what precedes it: the
		// run then always starts on an earlier keyframe and cuts at the
		// boundary itself (a run starting exactly on its first cut would
		// only cut at the following keyframe). publish recognises segments
		// by their timestamps and drops the leading piece.
		codec = []string{"-map", fmt.Sprintf("%d:V:%d", r.InputIndex, r.Track), "-c:v", "copy"}
		if r.First > 0 {
			args = append(args, "-ss", Seconds(start-quarter))
			codec = append(codec, "-copypriorss", "1")
			cuts = r.Bounds[:len(r.Bounds)-1]
		}
		if r.Video.Codec == "hevc" {
			codec = append(codec, "-tag:v", "hvc1")
		}
	case r.Kind == "video":
		args = append(args, ProgressArgs...) // the head measures its speed
		rung, _ := RungByName(r.Quality)
		w, h := RungSize(r.Video, rung)
		quarter := 0.25 / r.Video.FPS
		shifted := make([]float64, len(cuts))
		for i, c := range cuts {
			shifted[i] = c - quarter
		}
		cuts = shifted
		if start > 0 {
			args = append(args, "-ss", Seconds(start-quarter))
		}
		args = append(args, r.Profile.InputArgs(r.Video)...)
		codec = []string{"-map", fmt.Sprintf("%d:V:%d", r.InputIndex, r.Track), "-vf", r.Profile.Filter(r.Video, w, h),
			// Keep source timestamps: the segment muxer would otherwise make
			// ffmpeg re-time frames onto a 1/fps grid, and the encoder time
			// base would round them to it.
			"-fps_mode", "passthrough", "-enc_time_base:v", "-1"}
		codec = append(codec, r.Profile.EncoderArgs(rung, RungLevel(r.Video, rung))...)
		// SPS and PPS before every IDR: runs of one variant may come from
		// different encoders (a GPU, its software fallback, another
		// --encoder-preset before a restart) while players keep the first
		// init.mp4, whose parameter sets would not decode the others.
		codec = append(codec, "-bsf:v", "dump_extra=freq=keyframe")
		if len(cuts) > 0 {
			codec = append(codec, "-force_key_frames", JoinSeconds(cuts))
		}
	case CopiedAudio(r.Audio, r.Quality): // audio copy: as video copy
		codec = []string{"-map", fmt.Sprintf("%d:a:%d", r.InputIndex, r.Track), "-c:a", "copy"}
		if r.First == 0 {
			// Drop a priming packet MP4 places before 0: a negative tfdt
			// would wrap around. Not with an input -ss 0, which (with the
			// muxer's delay_moov) also loses the first frame after 0, so that
			// segment 0 no longer starts where the plan says.
			codec = append(codec, "-bsf:a", "noise=drop=lt(pts*tb\\,0)")
		} else {
			args = append(args, "-ss", Seconds(start-0.1))
			codec = append(codec, "-copypriorss", "1")
			cuts = r.Bounds[:len(r.Bounds)-1]
		}
	default: // audio AAC, in the source's layout or a stereo downmix (ffmpeg's -ac 2 matrix)
		sr := AACSampleRate(r.Audio)
		// Every run's AAC frames sit on one grid of 1024 samples from 0:
		// aresample pads or trims the decoded audio to start on it, the run
		// starts one frame before its first cut (the encoder warms up on that
		// frame and its priming frame) and both are dropped.
		g := int64(math.Ceil(start*float64(sr)/1024 - 1e-6))
		firstSample := max(0, g-1) * 1024
		if g > 0 {
			args = append(args, "-ss", Seconds(float64(firstSample)/float64(sr)))
		}
		codec = []string{"-map", fmt.Sprintf("%d:a:%d", r.InputIndex, r.Track),
			"-af", fmt.Sprintf("aresample=%d:first_pts=%d", sr, firstSample),
			"-c:a", "aac", "-ac", strconv.Itoa(AACChannels(r.Audio, r.Quality)), "-ar", strconv.Itoa(sr),
			"-b:a", strconv.Itoa(AACBitrate(r.Audio, r.Quality)),
			"-bsf:a", fmt.Sprintf("noise=drop=lt(pts*tb\\,%s)", Seconds((float64(g*1024)-512)/float64(sr)))}
	}

	if TSDiscont(r.Container) {
		args = append(args, "-itsoffset", "0.000001")
	}
	input = append(args, "-copyts", "-start_at_zero", "-i", r.Input)
	args = codec
	format := FMP4Options
	if r.Kind == "audio" && r.Quality == QualityOriginal && AudioCodec(r.Audio) != "" {
		// The dac3/dec3 box of the init describes the stream as its first
		// frame does: the muxer must see one before it writes the moov.
		format = strings.Replace(format, "+empty_moov", "+empty_moov+delay_moov", 1)
	}
	if r.Kind == "video" && r.Quality != QualityOriginal {
		// Fragments written and flushed as they are made: a live segment
		// sends each on (see liveSegment).
		format += fmt.Sprintf(":frag_duration=%d:flush_packets=1", FragmentDuration.Microseconds())
	}
	args = append(args, "-map_metadata", "-1", "-map_chapters", "-1",
		"-avoid_negative_ts", "disabled", "-max_muxing_queue_size", "4096",
		"-f", "segment", "-segment_format", "mp4", "-segment_format_options", format,
		"-segment_start_number", strconv.Itoa(r.First))
	if !r.NoSegmentList {
		args = append(args, "-segment_list", "pipe:1", "-segment_list_type", "flat")
	}
	if len(cuts) > 0 {
		args = append(args, "-segment_times", JoinSeconds(cuts))
		if delta > 0 {
			args = append(args, "-segment_time_delta", Seconds(delta))
		}
	} else {
		// Without a list the muxer would cut every 2 s by default.
		args = append(args, "-segment_time", "1000000000")
	}
	return input, append(args, r.OutDir+"/s-%d.mp4")
}

// FragmentDuration is how much media each moof/mdat pair of a re-encoded
// segment holds. ffmpeg flushes every fragment to disk as it completes, and
// a live segment sends it on, so a player that reads progressively has
// its first frames about this long after the encoder gets there.
const FragmentDuration = 500 * time.Millisecond

// ProgressArgs make ffmpeg report its frame count on stdout twice a second,
// beside the segment list.
var ProgressArgs = []string{"-progress", "pipe:1", "-stats_period", strconv.FormatFloat(StatsPeriod.Seconds(), 'f', -1, 64)}

// StatsPeriod is how often a run reports its progress.
const StatsPeriod = 500 * time.Millisecond
