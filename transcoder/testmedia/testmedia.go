// Package testmedia generates small media files with ffmpeg's synthetic
// (lavfi) sources, for tests, benchmarks and the demo library. Each clip is
// shaped to exercise one thing the server has to cope with: B-frames,
// irregular GOPs, 10-bit HEVC with 5.1 audio, VP9/Opus, very long GOPs,
// several audio tracks, 1080p, and a half-hour file.
//
// Start times are 0, except where the container expresses the audio
// encoder's priming delay by moving the video a few milliseconds later (AAC
// and AC-3 in Matroska, Opus in WebM). Real files made by ffmpeg look the same,
// so the clips keep it rather than hide it.
package testmedia

import (
	"bytes"
	"context"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
)

// Version names the generation of recipes. Bump it whenever a recipe changes,
// so CacheDir points somewhere new and stale clips are not reused.
const Version = "v2"

// recipe writes one clip to out. It gets the directory so that clips built
// from other files can keep their intermediates next to the result.
type recipe func(ctx context.Context, dir, out string) error

var recipes = map[string]recipe{
	"h264.mp4":      simple(h264Args),
	"hevc.mkv":      simple(hevcArgs),
	"vp9.webm":      simple(vp9Args),
	"longgop.mp4":   simple(longGOPArgs),
	"twoaudio.mkv":  simple(twoAudioArgs),
	"h264-1080.mp4": simple(h264HDArgs),
	"long.mp4":      makeLong,
	// Heavy media: what a 2-core box finds hard (see issue "plays at once").
	"hevc-1080.mkv": simple(hevcHDArgs),
	"gop20.mp4":     simple(gop20Args),
	"tv-1080i.ts":   simple(interlacedArgs),
	// What native players check (see issue "native players and TVs").
	"hdr-pq.mkv": simple(pqArgs),
	// What a front end's player at its defaults starts on (see issue "fast
	// in every player").
	"h264-720.mp4": simple(h264SDArgs),
}

// Names lists every clip Make knows, the short ones first.
func Names() []string {
	return []string{"h264.mp4", "hevc.mkv", "vp9.webm", "longgop.mp4", "twoaudio.mkv", "h264-1080.mp4", "long.mp4",
		"hevc-1080.mkv", "gop20.mp4", "tv-1080i.ts", "hdr-pq.mkv", "h264-720.mp4"}
}

// CacheDir returns a directory shared by test runs, so clips are generated
// once per machine rather than once per test: $HLSD_TESTMEDIA if set, else
// hlsd-testmedia/<Version> under the user cache directory.
func CacheDir() string {
	if d := os.Getenv("HLSD_TESTMEDIA"); d != "" {
		return d
	}
	base, err := os.UserCacheDir()
	if err != nil {
		// No HOME (some CI sandboxes): the temp dir still lets runs share clips.
		base = os.TempDir()
	}
	return filepath.Join(base, "hlsd-testmedia", Version)
}

// Make ensures the named clip exists in dir (creating dir) and returns its
// path. An existing file is reused. The clip is written under a temporary
// name in dir and renamed when complete, so no caller ever sees a partial
// file. go test runs packages in parallel processes: a lock file per clip
// makes one of them encode it while the others wait, instead of several
// encodes of the same clip sharing the cores, each under its own deadline.
func Make(ctx context.Context, dir, name string) (string, error) {
	r, ok := recipes[name]
	if !ok {
		return "", fmt.Errorf("testmedia: unknown clip %q (known: %s)", name, strings.Join(Names(), ", "))
	}
	path := filepath.Join(dir, name)
	if fi, err := os.Stat(path); err == nil && fi.Size() > 0 {
		return path, nil
	}
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return "", fmt.Errorf("testmedia: %w", err)
	}
	unlock, err := lock(ctx, filepath.Join(dir, "."+name+".lock"))
	if err != nil {
		return "", fmt.Errorf("testmedia: making %s: %w", name, err)
	}
	defer unlock()
	// Another process may have made it while this one waited.
	if fi, err := os.Stat(path); err == nil && fi.Size() > 0 {
		return path, nil
	}
	// The temp name keeps the clip's extension: ffmpeg picks the muxer from it.
	f, err := os.CreateTemp(dir, ".partial-*-"+name)
	if err != nil {
		return "", fmt.Errorf("testmedia: %w", err)
	}
	tmp := f.Name()
	f.Close()
	defer os.Remove(tmp) // no-op after a successful rename
	// CreateTemp makes the file private; clips are meant to be read by
	// others too, e.g. a server running as another user over a demo library.
	if err := os.Chmod(tmp, 0o644); err != nil {
		return "", fmt.Errorf("testmedia: %w", err)
	}

	if err := r(ctx, dir, tmp); err != nil {
		return "", fmt.Errorf("testmedia: making %s: %w", name, err)
	}
	if err := os.Rename(tmp, path); err != nil {
		return "", fmt.Errorf("testmedia: %w", err)
	}
	return path, nil
}

func simple(args func(out string) []string) recipe {
	return func(ctx context.Context, _, out string) error {
		return ffmpeg(ctx, args(out)...)
	}
}

// ffmpeg runs ffmpeg quietly and, on failure, reports the end of its stderr,
// which is where it says what went wrong.
func ffmpeg(ctx context.Context, args ...string) error {
	full := append([]string{"-hide_banner", "-nostdin", "-loglevel", "error", "-y"}, args...)
	cmd := exec.CommandContext(ctx, "ffmpeg", full...)
	var stderr bytes.Buffer
	cmd.Stderr = &stderr
	if err := cmd.Run(); err != nil {
		if ctx.Err() != nil {
			return ctx.Err()
		}
		return fmt.Errorf("ffmpeg: %w: %s", err, tail(stderr.String(), 1500))
	}
	return nil
}

func tail(s string, n int) string {
	s = strings.TrimSpace(s)
	if len(s) > n {
		s = "..." + s[len(s)-n:]
	}
	if s == "" {
		return "(no output)"
	}
	return s
}

// video is a lavfi test pattern: moving content, so encoders do real work
// and frames differ from each other.
func video(w, h, fps, seconds int) []string {
	return []string{"-f", "lavfi", "-i", fmt.Sprintf("testsrc2=size=%dx%d:rate=%d:duration=%d", w, h, fps, seconds)}
}

func tone(hz, seconds int) []string {
	return []string{"-f", "lavfi", "-i", fmt.Sprintf("sine=frequency=%d:sample_rate=48000:duration=%d", hz, seconds)}
}

// tags drops whatever lavfi would carry over and sets a recognisable title.
func tags(name string) []string {
	return []string{"-map_metadata", "-1", "-metadata", "title=hlsd test clip " + name, "-metadata", "comment=generated by hlsd testmedia " + Version}
}

func join(parts ...[]string) []string {
	var out []string
	for _, p := range parts {
		out = append(out, p...)
	}
	return out
}

// h264Args: High profile with B-frames (so pts != dts) and a GOP of 50
// frames at 24 fps, i.e. keyframes every 2.083 s that never land on a
// round segment length.
func h264Args(out string) []string {
	return join(video(640, 360, 24, 20), tone(440, 20),
		[]string{"-map", "0:v", "-map", "1:a",
			// veryfast, not ultrafast: ultrafast turns off 8x8dct and CABAC, which demotes the stream from High.
			"-c:v", "libx264", "-preset", "veryfast", "-profile:v", "high", "-pix_fmt", "yuv420p",
			"-bf", "3", "-g", "50", "-keyint_min", "50", "-sc_threshold", "0",
			"-c:a", "aac", "-ac", "2", "-b:a", "128k",
			"-movflags", "+faststart"},
		tags("h264.mp4"), []string{out})
}

// hevcArgs: 10-bit HEVC in Matroska with 5.1 AC-3, a track browsers cannot
// play as is, so the server must offer the AAC rung, and a second, stereo
// track at another pitch, so switching tracks is audible.
func hevcArgs(out string) []string {
	// One tone per channel, so a mix-down that drops or swaps channels is audible.
	surround := "aevalsrc=0.2*sin(2*PI*220*t)|0.2*sin(2*PI*330*t)|0.2*sin(2*PI*440*t)|0.2*sin(2*PI*55*t)|0.2*sin(2*PI*550*t)|0.2*sin(2*PI*660*t):s=48000:d=20:c=5.1"
	return join(video(640, 360, 30, 20), []string{"-f", "lavfi", "-i", surround}, tone(880, 20),
		[]string{"-map", "0:v", "-map", "1:a", "-map", "2:a",
			"-c:v", "libx265", "-preset", "ultrafast", "-profile:v", "main10", "-pix_fmt", "yuv420p10le",
			"-x265-params", "keyint=60:min-keyint=60:scenecut=0:log-level=error",
			"-c:a:0", "ac3", "-b:a:0", "384k", "-c:a:1", "aac", "-b:a:1", "128k", "-ac:a:1", "2",
			"-metadata:s:a:0", "language=eng", "-metadata:s:a:1", "language=fra"},
		tags("hevc.mkv"), []string{out})
}

func vp9Args(out string) []string {
	return join(video(640, 360, 30, 20), tone(440, 20),
		[]string{"-map", "0:v", "-map", "1:a",
			"-c:v", "libvpx-vp9", "-deadline", "realtime", "-cpu-used", "8", "-row-mt", "1", "-b:v", "1M", "-g", "90",
			"-c:a", "libopus", "-ac", "2", "-b:a", "96k"},
		tags("vp9.webm"), []string{out})
}

// longGOPArgs: one keyframe every 25 s, far longer than any sane segment,
// so the original rung cannot join the adaptive set.
func longGOPArgs(out string) []string {
	return join(video(640, 360, 24, 40), tone(440, 40),
		[]string{"-map", "0:v", "-map", "1:a",
			"-c:v", "libx264", "-preset", "ultrafast", "-pix_fmt", "yuv420p",
			"-g", "600", "-keyint_min", "600", "-sc_threshold", "0",
			"-c:a", "aac", "-ac", "2", "-b:a", "128k",
			"-movflags", "+faststart"},
		tags("longgop.mp4"), []string{out})
}

// twoAudioArgs: two audio tracks that differ in everything a player shows
// (language, title, channel count, default flag) and in pitch, so a wrong
// pick is audible.
func twoAudioArgs(out string) []string {
	return join(video(640, 360, 25, 20), tone(440, 20), tone(880, 20),
		[]string{"-map", "0:v", "-map", "1:a", "-map", "2:a",
			"-c:v", "libx264", "-preset", "ultrafast", "-pix_fmt", "yuv420p", "-g", "75",
			"-c:a", "aac", "-b:a", "128k", "-ac:a:0", "2", "-ac:a:1", "1"},
		tags("twoaudio.mkv"),
		[]string{
			"-metadata:s:a:0", "language=eng", "-metadata:s:a:0", "title=English",
			"-metadata:s:a:1", "language=fra", "-metadata:s:a:1", "title=Français",
			"-disposition:v:0", "default", "-disposition:a:0", "default", "-disposition:a:1", "0",
			out})
}

// h264HDArgs is the benchmark source: big enough that scaling and encoding
// cost something.
func h264HDArgs(out string) []string {
	return join(video(1920, 1080, 24, 20), tone(440, 20),
		[]string{"-map", "0:v", "-map", "1:a",
			"-c:v", "libx264", "-preset", "veryfast", "-crf", "30", "-pix_fmt", "yuv420p",
			"-g", "48", "-keyint_min", "48", "-sc_threshold", "0",
			"-c:a", "aac", "-ac", "2", "-b:a", "128k",
			"-movflags", "+faststart"},
		tags("h264-1080.mp4"), []string{out})
}

// h264SDArgs: a minute and a half of 720p30 H.264/AAC with a 2 s GOP, the
// most common shape of a file in a library, and longer than any player's
// default forward buffer, so that its seeks reach the server.
func h264SDArgs(out string) []string {
	return join(video(1280, 720, 30, 90), tone(440, 90),
		[]string{"-map", "0:v", "-map", "1:a",
			"-c:v", "libx264", "-preset", "veryfast", "-crf", "26", "-pix_fmt", "yuv420p",
			"-g", "60", "-keyint_min", "60", "-sc_threshold", "0",
			"-c:a", "aac", "-ac", "2", "-b:a", "128k",
			"-movflags", "+faststart"},
		tags("h264-720.mp4"), []string{out})
}

// makeLong builds a 32-minute 1080p file by encoding one minute and copying
// it 32 times over: seconds instead of the many minutes a real encode takes.
// ffmpeg's -stream_loop offsets each pass after the previous one, so
// timestamps keep increasing across loop points. A capped bitrate keeps the
// result around 250 MB.
func makeLong(ctx context.Context, dir, out string) error {
	f, err := os.CreateTemp(dir, ".partial-*-long-source.mp4")
	if err != nil {
		return err
	}
	src := f.Name()
	f.Close()
	defer os.Remove(src)

	err = ffmpeg(ctx, join(video(1920, 1080, 24, 60), tone(440, 60),
		[]string{"-map", "0:v", "-map", "1:a",
			"-c:v", "libx264", "-preset", "ultrafast", "-pix_fmt", "yuv420p",
			"-b:v", "1M", "-maxrate", "1500k", "-bufsize", "3M",
			"-g", "96", "-keyint_min", "96", "-sc_threshold", "0",
			"-c:a", "aac", "-ac", "2", "-b:a", "64k",
			"-movflags", "+faststart", src})...)
	if err != nil {
		return err
	}
	return ffmpeg(ctx, join([]string{"-stream_loop", "31", "-i", src, "-map", "0", "-c", "copy", "-movflags", "+faststart"},
		tags("long.mp4"), []string{out})...)
}

// hevcHDArgs: a minute of 1080p 10-bit HEVC with 5.1 AC-3 and a second,
// stereo track, like a film from a disc rip: two cores decode it and
// re-encode it to 1080p H.264 slower than real time.
func hevcHDArgs(out string) []string {
	surround := "aevalsrc=0.2*sin(2*PI*220*t)|0.2*sin(2*PI*330*t)|0.2*sin(2*PI*440*t)|0.2*sin(2*PI*55*t)|0.2*sin(2*PI*550*t)|0.2*sin(2*PI*660*t):s=48000:d=60:c=5.1"
	return join(video(1920, 1080, 24, 60), []string{"-f", "lavfi", "-i", surround}, tone(880, 60),
		[]string{"-map", "0:v", "-map", "1:a", "-map", "2:a",
			"-c:v", "libx265", "-preset", "ultrafast", "-profile:v", "main10", "-pix_fmt", "yuv420p10le",
			"-x265-params", "keyint=48:min-keyint=48:scenecut=0:bitrate=4000:log-level=error",
			"-c:a:0", "ac3", "-b:a:0", "384k", "-c:a:1", "aac", "-b:a:1", "128k", "-ac:a:1", "2",
			"-metadata:s:a:0", "language=eng", "-metadata:s:a:1", "language=fra"},
		tags("hevc-1080.mkv"), []string{out})
}

// gop20Args: 80 s of 360p with a keyframe every 20 s, as some screen
// recorders and cameras write.
func gop20Args(out string) []string {
	return join(video(640, 360, 24, 80), tone(440, 80),
		[]string{"-map", "0:v", "-map", "1:a",
			"-c:v", "libx264", "-preset", "veryfast", "-pix_fmt", "yuv420p",
			"-g", "480", "-keyint_min", "480", "-sc_threshold", "0",
			"-c:a", "aac", "-ac", "2", "-b:a", "128k",
			"-movflags", "+faststart"},
		tags("gop20.mp4"), []string{out})
}

// interlacedArgs: 30 s of a 1080i25 TV recording in MPEG-TS: top field
// first H.264 coded as fields, with MPEG audio, as DVB broadcasts it.
func interlacedArgs(out string) []string {
	return join(video(1920, 1080, 50, 30), tone(440, 30),
		[]string{"-map", "0:v", "-map", "1:a",
			"-vf", "tinterlace=mode=interleave_top,setfield=tff",
			"-c:v", "libx264", "-preset", "ultrafast", "-pix_fmt", "yuv420p", "-flags", "+ildct+ilme",
			"-x264-params", "tff=1", "-b:v", "6M", "-g", "25", "-keyint_min", "25", "-sc_threshold", "0",
			"-c:a", "mp2", "-b:a", "192k", "-f", "mpegts"},
		tags("tv-1080i.ts"), []string{out})
}

// pqArgs: 10 s of HDR10-style HEVC (BT.2020, PQ transfer, 10-bit) with an
// untagged 5.1 AAC track: the master must say VIDEO-RANGE=PQ for the copy
// and LANGUAGE="und" for the track.
func pqArgs(out string) []string {
	surround := "aevalsrc=0.2*sin(2*PI*220*t)|0.2*sin(2*PI*330*t)|0.2*sin(2*PI*440*t)|0.2*sin(2*PI*55*t)|0.2*sin(2*PI*550*t)|0.2*sin(2*PI*660*t):s=48000:d=10:c=5.1"
	return join(video(640, 360, 24, 10), []string{"-f", "lavfi", "-i", surround},
		[]string{"-map", "0:v", "-map", "1:a",
			"-c:v", "libx265", "-preset", "ultrafast", "-profile:v", "main10", "-pix_fmt", "yuv420p10le",
			"-color_primaries", "bt2020", "-color_trc", "smpte2084", "-colorspace", "bt2020nc",
			"-x265-params", "keyint=48:min-keyint=48:scenecut=0:colorprim=bt2020:transfer=smpte2084:colormatrix=bt2020nc:log-level=error",
			"-c:a", "aac", "-b:a", "384k"},
		tags("hdr-pq.mkv"), []string{out})
}
