package transcoder

import (
	"fmt"
	"math"
	"slices"
	"strconv"
	"strings"

	"github.com/hlsd/hlsd/transcoder/probe"
)

// A run of one variant: which segments and at which times ffmpeg must cut.
type runSpec struct {
	input   string
	kind    string // "video" or "audio"
	track   int    // among streams of that kind
	qual    string
	first   int       // number of the first segment the run writes
	bounds  []float64 // plan boundaries from segment `first` to the end of the file
	video   probe.VideoStream
	audio   probe.AudioStream
	profile videoProfile // for video re-encodes
	outDir  string       // ffmpeg writes s-<n>.mp4 files here
	// container is ffprobe's format name of the source.
	container string
}

// tsDiscont says whether ffmpeg treats the container's timestamps as
// possibly discontinuous (MPEG-TS, MPEG-PS, FLV). For those, ffmpeg
// "corrects" -start_at_zero to the first timestamp of the streams a run
// maps, not the file's: a video-only run of a TV recording whose audio
// starts 10 ms before its video would be shifted 10 ms earlier than the
// keyframes the plan is cut at. It does so only while its offset equals
// minus the file's start, so an input offset of 1 µs turns it off.
func tsDiscont(container string) bool {
	for _, name := range strings.Split(container, ",") {
		switch name {
		case "mpegts", "mpeg", "flv":
			return true
		}
	}
	return false
}

// fmp4Options make the segment muxer write fragmented MP4 whose tfdt is the
// absolute decode time of the first sample, equal to its presentation time
// (negative_cts_offsets lets B-frames sit before it without a negative dts),
// so segments of different runs join exactly. No edit list: players differ
// in whether they apply one.
const fmp4Options = "movflags=+frag_keyframe+empty_moov+default_base_moof+frag_discont+negative_cts_offsets:use_editlist=0"

func ts(t float64) string { return strconv.FormatFloat(t, 'f', 6, 64) }

func joinTimes(ts_ []float64) string {
	parts := make([]string, len(ts_))
	for i, t := range ts_ {
		parts[i] = ts(t)
	}
	return strings.Join(parts, ",")
}

// globalArgs open every run's command line.
var globalArgs = []string{"-hide_banner", "-nostdin", "-loglevel", "error", "-y"}

// ffmpegArgs builds the command line of one run.
//
// Cut times: a stream copy can only cut at source keyframes, which the plan's
// boundaries are, given exactly as ffprobe printed them. A re-encode forces
// its keyframes at the boundaries minus a quarter frame, so "first frame at or
// after the cut" picks the intended frame despite timestamp rounding.
func ffmpegArgs(r runSpec) []string {
	start := r.bounds[0]
	cuts := r.bounds[1 : len(r.bounds)-1]
	args := slices.Clone(globalArgs)
	var codec []string
	delta := 0.0

	switch {
	case r.kind == "video" && r.qual == QualityOriginal:
		quarter := 0.25 / r.video.FPS
		delta = quarter
		// Seek a little before the boundary and keep what precedes it: the
		// run then always starts on an earlier keyframe and cuts at the
		// boundary itself (a run starting exactly on its first cut would
		// only cut at the following keyframe). publish recognises segments
		// by their timestamps and drops the leading piece.
		codec = []string{"-map", fmt.Sprintf("0:V:%d", r.track), "-c:v", "copy"}
		if r.first > 0 {
			args = append(args, "-ss", ts(start-quarter))
			codec = append(codec, "-copypriorss", "1")
			cuts = r.bounds[:len(r.bounds)-1]
		}
		if r.video.Codec == "hevc" {
			codec = append(codec, "-tag:v", "hvc1")
		}
	case r.kind == "video":
		args = append(args, progressArgs...) // the head measures its speed
		rung, _ := rungByName(r.qual)
		w, h := rungSize(r.video, rung)
		quarter := 0.25 / r.video.FPS
		shifted := make([]float64, len(cuts))
		for i, c := range cuts {
			shifted[i] = c - quarter
		}
		cuts = shifted
		if start > 0 {
			args = append(args, "-ss", ts(start-quarter))
		}
		args = append(args, r.profile.inputArgs(r.video)...)
		codec = []string{"-map", fmt.Sprintf("0:V:%d", r.track), "-vf", r.profile.filter(r.video, w, h),
			// Keep source timestamps: the segment muxer would otherwise make
			// ffmpeg re-time frames onto a 1/fps grid, and the encoder time
			// base would round them to it.
			"-fps_mode", "passthrough", "-enc_time_base:v", "-1"}
		codec = append(codec, r.profile.encoderArgs(rung, rungLevel(r.video, rung))...)
		// SPS and PPS before every IDR: runs of one variant may come from
		// different encoders (a GPU, its software fallback, another
		// --encoder-preset before a restart) while players keep the first
		// init.mp4, whose parameter sets would not decode the others.
		codec = append(codec, "-bsf:v", "dump_extra=freq=keyframe")
		if len(cuts) > 0 {
			codec = append(codec, "-force_key_frames", joinTimes(cuts))
		}
	case copiedAudio(r.audio, r.qual): // audio copy: as video copy
		codec = []string{"-map", fmt.Sprintf("0:a:%d", r.track), "-c:a", "copy"}
		if r.first == 0 {
			// Drop a priming packet MP4 places before 0: a negative tfdt
			// would wrap around. Not with an input -ss 0, which (with the
			// muxer's delay_moov) also loses the first frame after 0, so that
			// segment 0 no longer starts where the plan says.
			codec = append(codec, "-bsf:a", "noise=drop=lt(pts*tb\\,0)")
		} else {
			args = append(args, "-ss", ts(start-0.1))
			codec = append(codec, "-copypriorss", "1")
			cuts = r.bounds[:len(r.bounds)-1]
		}
	default: // audio AAC, in the source's layout or a stereo downmix (ffmpeg's -ac 2 matrix)
		sr := aacSampleRate(r.audio)
		// Every run's AAC frames sit on one grid of 1024 samples from 0:
		// aresample pads or trims the decoded audio to start on it, the run
		// starts one frame before its first cut (the encoder warms up on that
		// frame and its priming frame) and both are dropped.
		g := int64(math.Ceil(start*float64(sr)/1024 - 1e-6))
		firstSample := max(0, g-1) * 1024
		if g > 0 {
			args = append(args, "-ss", ts(float64(firstSample)/float64(sr)))
		}
		codec = []string{"-map", fmt.Sprintf("0:a:%d", r.track),
			"-af", fmt.Sprintf("aresample=%d:first_pts=%d", sr, firstSample),
			"-c:a", "aac", "-ac", strconv.Itoa(aacChannels(r.audio, r.qual)), "-ar", strconv.Itoa(sr),
			"-b:a", strconv.Itoa(aacBitrate(r.audio, r.qual)),
			"-bsf:a", fmt.Sprintf("noise=drop=lt(pts*tb\\,%s)", ts((float64(g*1024)-512)/float64(sr)))}
	}

	if tsDiscont(r.container) {
		args = append(args, "-itsoffset", "0.000001")
	}
	args = append(args, "-copyts", "-start_at_zero", "-i", r.input)
	args = append(args, codec...)
	format := fmp4Options
	if r.kind == "audio" && r.qual == QualityOriginal && audioCodec(r.audio) != "" {
		// The dac3/dec3 box of the init describes the stream as its first
		// frame does: the muxer must see one before it writes the moov.
		format = strings.Replace(format, "+empty_moov", "+empty_moov+delay_moov", 1)
	}
	if r.kind == "video" && r.qual != QualityOriginal {
		// Fragments written and flushed as they are made: a live segment
		// sends each on (see liveSegment).
		format += fmt.Sprintf(":frag_duration=%d:flush_packets=1", fragmentDuration.Microseconds())
	}
	args = append(args, "-map_metadata", "-1", "-map_chapters", "-1",
		"-avoid_negative_ts", "disabled", "-max_muxing_queue_size", "4096",
		"-f", "segment", "-segment_format", "mp4", "-segment_format_options", format,
		"-segment_start_number", strconv.Itoa(r.first),
		"-segment_list", "pipe:1", "-segment_list_type", "flat")
	if len(cuts) > 0 {
		args = append(args, "-segment_times", joinTimes(cuts))
		if delta > 0 {
			args = append(args, "-segment_time_delta", ts(delta))
		}
	} else {
		// Without a list the muxer would cut every 2 s by default.
		args = append(args, "-segment_time", "1000000000")
	}
	return append(args, r.outDir+"/s-%d.mp4")
}
