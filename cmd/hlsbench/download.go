package main

import (
	"context"
	"fmt"
	"io"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"time"

	"github.com/hlsd/hlsd/transcoder"
	"github.com/hlsd/hlsd/transcoder/testmedia"
)

// downloadRows times download.mp4 of a 50-minute 1080p H.264 file at 360p
// and as the original, each on a fresh server, with the CPU its encoders
// used, against a player that watches the same rung: every segment of the
// 360p video and of its audio, in order, as fast as they come.
func downloadRows(ctx context.Context, dir string) []row {
	long, err := testmedia.Make(ctx, testmedia.CacheDir(), "long.mp4")
	check(err)
	film := filepath.Join(dir, "hlsbench-50min.mp4")
	defer os.Remove(film)
	// Two copies of the 32-minute file, cut at 50 minutes: a stream copy,
	// made in seconds.
	list := filepath.Join(dir, "hlsbench-50min.txt")
	check(os.WriteFile(list, []byte(fmt.Sprintf("file '%s'\nfile '%s'\n", long, long)), 0o644))
	defer os.Remove(list)
	out, err := exec.CommandContext(ctx, "ffmpeg", "-v", "error", "-y", "-f", "concat", "-safe", "0", "-i", list,
		"-t", "3000", "-c", "copy", film).CombinedOutput()
	if err != nil {
		check(fmt.Errorf("making the 50-minute file: %v: %s", err, out))
	}
	cpu := func(s *jobServer) time.Duration { return cpuOf(s.reg, "encode") + cpuOf(s.reg, "copy") }

	var rows []row
	for _, q := range []string{"360p", "original"} {
		s := newJobServer(transcoder.Config{}, film)
		start := time.Now()
		resp, err := http.Get(s.video[0] + "/download.mp4?quality=" + q)
		check(err)
		n, err := io.Copy(io.Discard, resp.Body)
		resp.Body.Close()
		check(err)
		wall := time.Since(start)
		time.Sleep(time.Second) // the last heads end, and their CPU is counted
		rows = append(rows, row{fmt.Sprintf("download.mp4 of a 50 min 1080p H.264 file at %s (cold)", q),
			fmt.Sprintf("%.0f s wall, %.0f s CPU, %.0f MB", wall.Seconds(), cpu(s).Seconds(), float64(n)/1e6), ""})
		s.stop()
	}

	s := newJobServer(transcoder.Config{}, film)
	start := time.Now()
	for _, v := range []string{"video/0/360p", "audio/0/aac"} {
		base := s.video[0] + "/" + v + "/"
		pl := string(get(base + "index.m3u8"))
		get(base + "init.mp4")
		for n := 0; n < strings.Count(pl, "#EXTINF"); n++ {
			get(base + fmt.Sprintf("segment-%d.m4s?clientId=player", n))
		}
	}
	wall := time.Since(start)
	time.Sleep(time.Second)
	rows = append(rows, row{"a player fetching every 360p and audio segment of it in order (cold)",
		fmt.Sprintf("%.0f s wall, %.0f s CPU", wall.Seconds(), cpu(s).Seconds()), ""})
	s.stop()

	// A player's cold segment of another file, alone, then while a
	// download is made: the download's heads run as a prepare's do.
	clip, err := testmedia.Make(ctx, testmedia.CacheDir(), "h264-1080.mp4")
	check(err)
	cold := func(busy bool) time.Duration {
		var ds []time.Duration
		for n := 1; n <= 3; n++ {
			s := newJobServer(transcoder.Config{}, clip, film)
			var download io.Closer = io.NopCloser(nil)
			if busy {
				resp, err := http.Get(s.video[1] + "/download.mp4?quality=480p")
				check(err)
				download = resp.Body
				go func() { _, _ = io.Copy(io.Discard, resp.Body) }()
				time.Sleep(2 * time.Second) // its encoder is at work
			}
			get(s.video[0] + "/video/0/360p/index.m3u8")
			t0 := time.Now()
			get(s.video[0] + fmt.Sprintf("/video/0/360p/segment-%d.m4s", n))
			ds = append(ds, time.Since(t0))
			download.Close() // the client leaves, and the download stops
			s.stop()
		}
		return median(ds)
	}
	alone, beside := cold(false), cold(true)
	return append(rows,
		row{"player's cold 360p segment (1080p H.264), alone", ms(alone), ""},
		row{"the same while a 480p download of the 50 min file is made", fmt.Sprintf("%s (%+.0f %%)", ms(beside), 100*(beside.Seconds()/alone.Seconds()-1)), "<= +10 %"})
}
