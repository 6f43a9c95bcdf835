package testmedia

import (
	"context"
	"encoding/json"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
)

// HLS makes dir/index.m3u8 and its 2 s segments from src with ffmpeg's
// HLS muxer, streams copied: what an import fetches. extra comes before
// the playlist's name (-hls_playlist_type, -hls_segment_type, keys).
func HLS(ctx context.Context, src, dir string, extra ...string) error {
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return err
	}
	args := append([]string{"-i", src, "-c", "copy", "-f", "hls", "-hls_time", "2", "-hls_list_size", "0"}, extra...)
	return ffmpeg(ctx, append(args, filepath.Join(dir, "index.m3u8"))...)
}

// Frames decodes data (an init segment and media segments after it) as one
// stream and returns the presentation times of its video frames, and
// whether the first is a keyframe. A decoder error is an error.
func Frames(ctx context.Context, data []byte) (times []float64, firstKey bool, err error) {
	f, err := os.CreateTemp("", "testmedia-frames-*.mp4")
	if err != nil {
		return nil, false, err
	}
	defer os.Remove(f.Name())
	if _, err := f.Write(data); err != nil {
		f.Close()
		return nil, false, err
	}
	f.Close()
	if out, err := exec.CommandContext(ctx, "ffmpeg", "-v", "error", "-xerror", "-i", f.Name(), "-f", "null", "-").CombinedOutput(); err != nil || len(out) > 0 {
		return nil, false, fmt.Errorf("does not decode as one stream: %v %s", err, tail(string(out), 1500))
	}
	out, err := exec.CommandContext(ctx, "ffprobe", "-v", "error", "-select_streams", "v:0",
		"-show_entries", "frame=pts_time,key_frame", "-of", "json", f.Name()).Output()
	if err != nil {
		return nil, false, fmt.Errorf("ffprobe: %v", err)
	}
	var probe struct {
		Frames []struct {
			PTS string `json:"pts_time"`
			Key int    `json:"key_frame"`
		} `json:"frames"`
	}
	if err := json.Unmarshal(out, &probe); err != nil {
		return nil, false, err
	}
	for i, fr := range probe.Frames {
		v, err := strconv.ParseFloat(fr.PTS, 64)
		if err != nil {
			return nil, false, fmt.Errorf("frame %d has no time (%q)", i, fr.PTS)
		}
		times = append(times, v)
	}
	return times, len(probe.Frames) > 0 && probe.Frames[0].Key == 1, nil
}

// Uneven lists the frames of times that do not follow the one before at
// the stream's mean frame step (within half a step): a hole or an overlap
// where two runs' segments join.
func Uneven(times []float64) []string {
	if len(times) < 2 {
		return nil
	}
	var out []string
	step := (times[len(times)-1] - times[0]) / float64(len(times)-1)
	for i := 1; i < len(times); i++ {
		if d := times[i] - times[i-1]; d <= 0 || d > step*1.5 {
			out = append(out, fmt.Sprintf("frame %d at %.3f s follows %.3f s (frames every %.3f s)", i, times[i], times[i-1], step))
		}
	}
	return out
}
