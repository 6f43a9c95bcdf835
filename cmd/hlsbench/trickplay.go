package main

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"time"

	"github.com/hlsd/hlsd/transcoder"
)

// trickplayRows times the thumbnails of the 32-minute file and of a 2-hour
// 1080p film made by stream-copy looping the 20 s 1080p clip in dir.
func trickplayRows(ctx context.Context, long, clip, dir string, runs int, film bool) []row {
	rows := []row{{"trickplay for a 30 min file (32 min 1080p, cold)", ms(coldTrickplay(long, runs)), ""}}
	if !film {
		return rows
	}
	tmp, err := os.MkdirTemp(dir, "hlsbench-film-")
	check(err)
	defer os.RemoveAll(tmp)
	big := filepath.Join(tmp, "film.mp4")
	ffmpeg(ctx, "-stream_loop", "359", "-i", clip, "-c", "copy", "-movflags", "+faststart", big)
	return append(rows, row{"trickplay for a 2 h 1080p file (keyframes every 2 s, cold)", ms(coldTrickplay(big, runs)), "< 60000 ms"})
}

// coldTrickplay is the median time of the thumbnail map of file on fresh
// servers, once its probe and keyframes are known.
func coldTrickplay(file string, runs int) time.Duration {
	var ds []time.Duration
	for i := 0; i < runs; i++ {
		video, stop := coldServer(file, transcoder.Config{})
		get(video + "/master.m3u8")
		start := time.Now()
		b := get(video + "/trickplay.vtt")
		ds = append(ds, time.Since(start))
		if len(b) == 0 {
			check(fmt.Errorf("%s: empty trickplay map", file))
		}
		stop()
	}
	return median(ds)
}
