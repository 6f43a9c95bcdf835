package main

import (
	"context"
	"flag"
	"fmt"
	"slices"
	"strings"

	"github.com/hlsd/hlsd/web/e2e"
)

// Players are the four ways the browser figures play a file: three
// libraries as a front end written by someone else runs them (defaults,
// the page on another origin) and hls.js as hlsd's own web player runs it.
var Players = []string{"hls.js-defaults", "hls.js", "shaka-defaults", "videojs-defaults"}

var verbose = flag.Bool("v", false, "with -players: print each startup's requests (start, first byte, end)")

// playerFiles is what each player plays: the common case, the heavy media
// and the other codecs, and an MPEG-TS variant.
var playerFiles = []string{"h264-720.mp4", "hevc-1080.mkv", "gop20.mp4", "tv-1080i.ts", "hevc.mkv", "vp9.webm", "h264.mp4"}

// playerRows plays playerFiles (names narrows them) in each of players with
// the same short scenario (e2e.Config.Player), each player against a cold
// server of its own, and gives one table per player: startup, the slowest
// seek and the loads the browser aborted.
func playerRows(ctx context.Context, players, names []string) []row {
	if err := e2e.Ready(); err != nil {
		return []row{{"player figures skipped: " + err.Error(), "", ""}}
	}
	if len(names) == 0 {
		names = playerFiles
	}
	media, _, cleanup := scratchDirs()
	defer cleanup()
	files, err := e2e.LibraryOf(ctx, media, names...)
	check(err)
	if i := len(files) - 1; names[i] == "h264.mp4" {
		files[i].Container = "ts"
	}
	var rows []row
	for _, player := range players {
		_, cache, done := scratchDirs()
		srv, err := e2e.Start(media, cache, nil, "")
		check(err)
		results, err := e2e.Run(ctx, e2e.Config{Base: srv.URL, Artifacts: cache, Files: files, Player: player})
		srv.Close()
		done()
		check(err)
		rows = append(rows, row{"", "", ""}, row{player + ": startup / slowest seek / loads aborted", "", ""})
		for i, r := range results {
			name := files[i].Name
			if files[i].Container != "" {
				name += " (" + files[i].Container + ")"
			}
			if p := r.Problems(); len(p) > 0 {
				rows = append(rows, row{"  " + name + ": problem: " + p[0], "", ""})
			}
			start, _ := r.StepMs("startup")
			seek, aborted, at := 0.0, 0, ""
			for _, s := range r.Steps {
				aborted += s.Aborted
				if s.Target > 0 && !s.Buffered && s.Ms > seek {
					seek, at = s.Ms, strings.TrimPrefix(s.Step, "seek ")
				}
			}
			target := "1500 / 1500 / 0"
			if slices.Contains(e2e.Heavy, files[i].Name) { // media a 2-core box finds hard: looser targets
				target = "3000 / 3000 / 0"
			}
			rows = append(rows, row{"  " + name, fmt.Sprintf("%.0f / %.0f (%s) / %d", start, seek, at, aborted), target})
			if *verbose {
				for _, s := range r.Steps {
					if len(s.AbortedURLs) > 0 {
						fmt.Printf("%-18s %-16s %s: aborted %s\n", player, name, s.Step, strings.Join(s.AbortedURLs, " "))
					}
				}
				for _, q := range r.Requests {
					fmt.Printf("%-18s %-16s %-40s %5.0f %5.0f %5.0f ms %8d B\n", player, name, q.URL, q.Start, q.FirstByte, q.End, q.Bytes)
				}
			}
		}
	}
	return rows
}
