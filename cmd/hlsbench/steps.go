package main

import (
	"bufio"
	"context"
	"fmt"
	"io"
	"net/http"
	"os/exec"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/hlsd/hlsd/transcoder"
	"github.com/hlsd/hlsd/transcoder/encode"
	"github.com/hlsd/hlsd/transcoder/testmedia"
)

// stepRows times a cold start of each file step by step, as a player at its
// defaults makes it: the master (probe and keyframes), the first variant's
// playlist, its init, the first bytes of segment 0 and all of it. Beside
// them, bare ffmpeg doing the same first segment on the same machine in the
// same run: the floor. (The players' tables give the first frame.)
func stepRows(ctx context.Context, names []string) []row {
	rows := []row{{"", "", ""}, {"cold start, step by step (ms): master / playlist / init / first bytes / segment 0 || bare ffmpeg", "", ""}}
	for _, name := range names {
		path, err := testmedia.Make(ctx, testmedia.CacheDir(), name)
		check(err)
		video, stop := coldServer(path, transcoder.Config{})
		t0 := time.Now()
		master := string(get(video + "/master.m3u8"))
		tMaster := time.Since(t0)
		variant := firstVariant(master)
		base := video + "/" + strings.TrimSuffix(variant, "/index.m3u8")
		t0 = time.Now()
		playlist := string(get(video + "/" + strings.SplitN(variant, "?", 2)[0]))
		tPlaylist := time.Since(t0)
		t0 = time.Now()
		get(base + "/init.mp4")
		tInit := time.Since(t0)
		t0 = time.Now()
		resp, err := http.Get(base + "/segment-0.m4s?progressive=1") // first bytes as the web player gets them
		check(err)
		buf := make([]byte, 32<<10)
		_, err = resp.Body.Read(buf)
		tFirst := time.Since(t0)
		if err != io.EOF {
			check(err)
			_, err = io.Copy(io.Discard, resp.Body)
			check(err)
		}
		resp.Body.Close()
		tSegment := time.Since(t0)
		stop()
		quality := strings.Split(variant, "/")[2]
		bare := bareFFmpeg(ctx, path, quality, firstDuration(playlist))
		rows = append(rows, row{fmt.Sprintf("  %s (%s)", name, quality),
			fmt.Sprintf("%d / %d / %d / %d / %d || %d", tMaster.Milliseconds(), tPlaylist.Milliseconds(), tInit.Milliseconds(),
				tFirst.Milliseconds(), tSegment.Milliseconds(), bare.Milliseconds()), ""})
		// The init request starts the run that makes segment 0: the first
		// segment takes the two together.
		rows = append(rows, row{"    init and segment 0 against bare ffmpeg", fmt.Sprintf("%.2fx", float64(tInit+tSegment)/float64(bare)), "<= 1.15x"})
	}
	return rows
}

// stepFiles is names, or the players' files, each once.
func stepFiles(names []string) []string {
	if len(names) == 0 {
		names = playerFiles
	}
	var out []string
	for _, n := range names {
		if !slices.Contains(out, n) {
			out = append(out, n)
		}
	}
	return out
}

// firstVariant is the URI of the first variant a master lists.
func firstVariant(master string) string {
	sc := bufio.NewScanner(strings.NewReader(master))
	for sc.Scan() {
		if strings.HasPrefix(sc.Text(), "#EXT-X-STREAM-INF:") && sc.Scan() {
			return strings.SplitN(sc.Text(), "?", 2)[0]
		}
	}
	check(fmt.Errorf("master lists no variant:\n%s", master))
	return ""
}

// firstDuration is the first EXTINF of a media playlist.
func firstDuration(playlist string) float64 {
	for _, l := range strings.Split(playlist, "\n") {
		if d, ok := strings.CutPrefix(l, "#EXTINF:"); ok {
			v, err := strconv.ParseFloat(strings.TrimSuffix(d, ","), 64)
			check(err)
			return v
		}
	}
	return 0
}

// bareFFmpeg times ffmpeg alone making the first d seconds of quality q of
// the file's video as fragmented MP4: a copy, or the rung's size, bitrate
// and cap with hlsd's default preset.
func bareFFmpeg(ctx context.Context, path, q string, d float64) time.Duration {
	args := []string{"-hide_banner", "-nostdin", "-loglevel", "error", "-i", path, "-t", strconv.FormatFloat(d, 'f', 3, 64), "-map", "0:V:0"}
	if q == encode.QualityOriginal {
		args = append(args, "-c:v", "copy")
	} else {
		var r encode.Rung
		for _, x := range encode.Ladder {
			if x.Name == q {
				r = x
			}
		}
		args = append(args, "-vf", fmt.Sprintf("scale=-2:%d,format=yuv420p", r.Height), "-c:v", "libx264", "-preset", "veryfast",
			"-b:v", strconv.Itoa(r.Bitrate), "-maxrate", strconv.Itoa(r.Maxrate), "-bufsize", strconv.Itoa(2*r.Maxrate))
	}
	args = append(args, "-f", "mp4", "-movflags", "+frag_keyframe+empty_moov", "-y", "/dev/null")
	t0 := time.Now()
	out, err := exec.CommandContext(ctx, "ffmpeg", args...).CombinedOutput()
	if err != nil {
		check(fmt.Errorf("bare ffmpeg: %v: %s", err, out))
	}
	return time.Since(t0)
}

// audioRows times the cold segments of hevc-1080.mkv's 5.1 AC-3 track as
// 5.1 AAC and as the stereo downmix, each from a cold server: segment 0
// and one in the middle.
func audioRows(ctx context.Context) []row {
	path, err := testmedia.Make(ctx, testmedia.CacheDir(), "hevc-1080.mkv")
	check(err)
	rows := []row{{"", "", ""}, {"5.1 AC-3 track, cold segment (ms): 5.1 AAC / stereo downmix", "", ""}}
	for _, n := range []int{0, 7} {
		var took [2]time.Duration
		for i, q := range []string{"aac", "stereo"} {
			video, stop := coldServer(path, transcoder.Config{})
			get(video + "/master.m3u8")
			get(video + "/audio/0/" + q + "/index.m3u8")
			t0 := time.Now()
			get(video + fmt.Sprintf("/audio/0/%s/segment-%d.m4s", q, n))
			took[i] = time.Since(t0)
			stop()
		}
		rows = append(rows, row{fmt.Sprintf("  segment %d", n), fmt.Sprintf("%d / %d (%.2fx)", took[0].Milliseconds(), took[1].Milliseconds(),
			float64(took[0])/float64(took[1])), "<= 1.5x"})
	}
	return rows
}
