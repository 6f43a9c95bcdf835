package main

import (
	"context"
	"fmt"

	"github.com/hlsd/hlsd/web/e2e"
)

// playerRows plays the browser corpus, and the MPEG-TS variant of its first
// file, in hls.js, Shaka Player and video.js with the same short scenario
// (e2e.Config.Player), each against a cold server of its own, and reports
// each file's startup in the others against hls.js's.
func playerRows(ctx context.Context) []row {
	if err := e2e.Ready(); err != nil {
		return []row{{"player figures skipped: " + err.Error(), "", ""}}
	}
	media, _, cleanup := scratchDirs()
	defer cleanup()
	files, err := e2e.LibraryOf(ctx, media, e2e.Corpus...)
	check(err)
	ts := files[0]
	ts.Container = "ts"
	files = append(files, ts)
	startup := map[string][]float64{}
	var rows []row
	for _, player := range []string{"hls.js", "shaka", "videojs"} {
		_, cache, done := scratchDirs()
		srv, err := e2e.Start(media, cache, nil, "")
		check(err)
		results, err := e2e.Run(ctx, e2e.Config{Base: srv.URL, Artifacts: cache, Files: files, Player: player})
		srv.Close()
		done()
		check(err)
		for _, r := range results {
			if p := r.Problems(); len(p) > 0 {
				rows = append(rows, row{r.Name + ": problems: " + p[0], "", ""})
			}
			ms, _ := r.StepMs("startup")
			startup[player] = append(startup[player], ms)
		}
	}
	for i, f := range files {
		name := f.Name
		if f.Container != "" {
			name += " (" + f.Container + ")"
		}
		base := startup["hls.js"][i]
		rows = append(rows, row{"cold startup " + name + ": hls.js / Shaka / video.js",
			fmt.Sprintf("%.0f / %.0f (%.1fx) / %.0f (%.1fx) ms", base, startup["shaka"][i], startup["shaka"][i]/base,
				startup["videojs"][i], startup["videojs"][i]/base), "others <= 1.5x"})
	}
	return rows
}
