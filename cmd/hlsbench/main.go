// Command hlsbench measures hlsd's cold-start figures on generated media and
// prints them as a table beside their targets.
package main

import (
	"context"
	"flag"
	"fmt"
	"io"
	"net/http"
	"os"
	"slices"
	"strings"
	"time"

	"github.com/hlsd/hlsd/keyframes"
	"github.com/hlsd/hlsd/transcoder"
	"github.com/hlsd/hlsd/transcoder/child"
	"github.com/hlsd/hlsd/transcoder/testmedia"
	"github.com/hlsd/hlsd/web/e2e"
)

type row struct {
	name   string
	value  string
	target string
}

func main() {
	runs := flag.Int("runs", 3, "cold runs per figure (the median is reported)")
	browser := flag.Bool("browser", true, "also time startup and seeks in hls.js in Chromium (needs `make e2e-deps`)")
	big := flag.Bool("big", true, "also time the first playlists of a 10 GB mp4 and mkv, index against scan (needs 21 GB free in -big-dir)")
	bigDir := flag.String("big-dir", os.TempDir(), "where the 10 GB files are made and removed afterwards")
	film := flag.Bool("film", true, "also time the thumbnails of a 2-hour 1080p file (1.8 GB, made in -big-dir and removed afterwards)")
	heavyOnly := flag.Bool("heavy", false, "only play the heavy media in the browser, cold, one file at a time, and print their table")
	playersOnly := flag.Bool("players", false, "only play in hls.js (defaults and as the web player runs it), Shaka Player and video.js (defaults), and print their tables")
	players := flag.String("player", strings.Join(Players, ","), "with -players: the players, comma-separated, from "+strings.Join(Players, ", "))
	files := flag.String("files", "", "with -players: the clips to play, comma-separated (default: "+strings.Join(playerFiles, ", ")+")")
	downloadOnly := flag.Bool("download", false, "only time download.mp4 of a 50-minute file (made in -big-dir from the 32-minute clip) at 360p and as the original, against a player fetching the same rung, and print their table")
	prepareOnly := flag.Bool("prepare", false, "only compare a prepare's CPU with heads', and a player's wait beside it, and print their table")
	flag.Parse()
	ctx := context.Background()
	if *prepareOnly {
		printRows(prepareRows(ctx))
		return
	}
	if *downloadOnly {
		printRows(downloadRows(ctx, *bigDir))
		return
	}
	if *heavyOnly {
		printRows(heavyRows(ctx))
		return
	}
	if *playersOnly {
		rows := playerRows(ctx, strings.Split(*players, ","), split(*files))
		rows = append(rows, stepRows(ctx, stepFiles(split(*files)))...)
		printRows(append(rows, audioRows(ctx)...))
		return
	}
	dir := testmedia.CacheDir()
	short, err := testmedia.Make(ctx, dir, "h264-1080.mp4")
	check(err)
	long, err := testmedia.Make(ctx, dir, "long.mp4")
	check(err)

	var rows []row
	var first time.Duration
	seg := func(file, variant string, n int) (playlist, segment time.Duration) {
		var ps, ss, fs []time.Duration
		for i := 0; i < *runs; i++ {
			p, s, f := coldSegment(file, variant, n)
			ps, ss, fs = append(ps, p), append(ss, s), append(fs, f)
		}
		first = median(fs)
		return median(ps), median(ss)
	}
	p, s := seg(short, "video/0/original", 0)
	rows = append(rows, row{"original first segment, 1080p H.264 (cold)", ms(s), "<= 100 ms"})
	_, s = seg(short, "video/0/720p", 0)
	rows = append(rows, row{"720p first segment, 1080p H.264 source (cold)", ms(s), "<= 800 ms"},
		row{"720p first segment's first fragment (0.5 s of media), same", ms(first), ""})
	rows = append(rows, row{"first playlist, 20 s file (probe + keyframes)", ms(p), ""})
	st, err := os.Stat(long)
	check(err)
	n := int(0.9 * 1920 / transcoder.SegmentTarget)
	lp, s := seg(long, "video/0/720p", n)
	rows = append(rows, row{fmt.Sprintf("720p segment %d at 90%% of a 32 min file (cold, after playlist)", n), ms(s), "< 1500 ms"})
	_, s = seg(long, "video/0/original", n)
	rows = append(rows, row{fmt.Sprintf("original segment %d at 90%% of a 32 min file (cold)", n), ms(s), "< 300 ms"})
	rows = append(rows, row{"first playlist, 32 min file (probe + keyframes)", ms(lp), ""})

	var scans []time.Duration
	for i := 0; i < *runs; i++ {
		tmp, err := os.MkdirTemp("", "hlsbench-kf-")
		check(err)
		store := keyframes.NewStore(tmp, keyframes.Options{Runner: child.Runner("ffprobe"), ScanOnly: true})
		start := time.Now()
		kf, err := store.Get(long, "long", 0)
		check(err)
		<-kf.Done()
		scans = append(scans, time.Since(start))
		store.Close()
		os.RemoveAll(tmp)
	}
	mbps := float64(st.Size()) / 1e6 / median(scans).Seconds()
	rows = append(rows, row{fmt.Sprintf("keyframe scan throughput (%d MB file)", st.Size()/1e6), fmt.Sprintf("%.0f MB/s", mbps), ""})

	rows = append(rows, trickplayRows(ctx, long, short, *bigDir, *runs, *film)...)
	rows = append(rows, prepareRows(ctx)...)
	rows = append(rows, downloadRows(ctx, *bigDir)...)
	if *big {
		rows = append(rows, bigFileRows(ctx, *bigDir, *runs)...)
	}
	if *browser {
		rows = append(rows, browserRows(ctx)...)
		rows = append(rows, playerRows(ctx, Players, nil)...)
		rows = append(rows, stepRows(ctx, stepFiles(nil))...)
		rows = append(rows, audioRows(ctx)...)
		rows = append(rows, heavyRows(ctx)...)
	}

	printRows(rows)
}

func split(s string) []string {
	if s == "" {
		return nil
	}
	return strings.Split(s, ",")
}

func printRows(rows []row) {
	fmt.Printf("\n%-70s %28s %16s\n", "figure (median of cold runs)", "measured", "target")
	for _, r := range rows {
		fmt.Printf("%-70s %28s %16s\n", r.name, r.value, r.target)
	}
}

// coldSegment starts a fresh server with an empty cache and times the
// playlist request, then segment n of one variant.
// It also returns when the segment's first bytes came: a re-encoded segment
// is sent while it is made, and a progressive player starts on them.
func coldSegment(file, variant string, n int) (playlist, segment, firstBytes time.Duration) {
	video, stop := coldServer(file, transcoder.Config{})
	defer stop()
	base := video + "/" + variant + "/"
	t0 := time.Now()
	get(base + "index.m3u8")
	t1 := time.Now()
	resp, err := http.Get(base + fmt.Sprintf("segment-%d.m4s?progressive=1", n)) // its first bytes as a progressive player gets them
	check(err)
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		check(fmt.Errorf("segment %d of %s: %s", n, variant, resp.Status))
	}
	buf := make([]byte, 64<<10)
	_, err = resp.Body.Read(buf)
	t2 := time.Now()
	if err != io.EOF {
		check(err)
		_, err = io.Copy(io.Discard, resp.Body)
		check(err)
	}
	return t1.Sub(t0), time.Since(t1), t2.Sub(t1)
}

// coldServer serves file alone from a fresh server with an empty cache and
// returns the file's /videos/{id} URL.
func coldServer(file string, cfg transcoder.Config) (video string, stop func()) {
	s := newJobServer(cfg, file)
	return s.video[0], s.stop
}

// scratchDirs makes an empty media root and cache for one cold run.
func scratchDirs() (media, cache string, cleanup func()) {
	media, err := os.MkdirTemp("", "hlsbench-media-")
	check(err)
	cache, err = os.MkdirTemp("", "hlsbench-cache-")
	check(err)
	return media, cache, func() {
		os.RemoveAll(media)
		os.RemoveAll(cache)
	}
}

func get(url string) []byte {
	resp, err := http.Get(url)
	check(err)
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	check(err)
	if resp.StatusCode != http.StatusOK {
		check(fmt.Errorf("GET %s: %d %s", url, resp.StatusCode, b))
	}
	return b
}

func median(d []time.Duration) time.Duration {
	s := slices.Clone(d)
	slices.Sort(s)
	return s[len(s)/2]
}

func ms(d time.Duration) string { return fmt.Sprintf("%d ms", d.Milliseconds()) }

func check(err error) {
	if err != nil {
		fmt.Fprintln(os.Stderr, "hlsbench:", err)
		os.Exit(1)
	}
}

// browserRows plays the browser corpus once, cold, in hls.js in Chromium,
// and reports the median startup and seek across its files.
func browserRows(ctx context.Context) []row {
	if err := e2e.Ready(); err != nil {
		return []row{{"browser figures skipped: " + err.Error(), "", ""}}
	}
	media, cache, cleanup := scratchDirs()
	defer cleanup()
	cfg, err := e2e.Library(ctx, media)
	check(err)
	srv, err := e2e.Start(media, cache, nil, "")
	check(err)
	defer srv.Close()
	cfg.Base, cfg.Artifacts, cfg.Page = srv.URL, cache, nil
	results, err := e2e.Run(ctx, cfg)
	check(err)
	var rows []row
	for _, r := range results {
		if p := r.Problems(); len(p) > 0 {
			rows = append(rows, row{"browser: " + r.Name + " had problems: " + p[0], "", ""})
		}
	}
	for _, r := range results {
		st, _ := r.StepMs("startup")
		s50, _ := r.StepMs("seek 50%")
		s90, _ := r.StepMs("seek 90%")
		rows = append(rows, row{fmt.Sprintf("browser %s: startup / seek 50%% / seek 90%%", r.Name), fmt.Sprintf("%.0f/%.0f/%.0f ms", st, s50, s90), ""})
	}
	n := len(results)
	return append(rows,
		row{fmt.Sprintf("browser startup, hls.js in Chromium (median of %d files)", n), fmt.Sprintf("%.0f ms", e2e.Median(results, "startup")), "< 2000 ms"},
		row{fmt.Sprintf("browser seek to 50%% and 90%% (median over %d files)", n), fmt.Sprintf("%.0f ms", e2e.Median(results, "seek")), "< 2000 ms"},
	)
}
