// Command hlsdemo builds a small demo library for hlsd: generated test clips
// laid out in a folder tree with the kind of names real libraries have
// (spaces, parentheses, accents), so the web player has something to show.
//
//	hlsdemo -out ./demo-media [-long]
//	hlsdemo -test-media
//
// Clips are generated once into the shared test media cache and hard-linked
// (or copied, across file systems) into the library, so running it again is
// instant.
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"os/signal"
	"path/filepath"
	"time"

	"github.com/hlsd/hlsd/transcoder/testmedia"
)

type item struct {
	clip, dest string
}

var library = []item{
	{"h264.mp4", "Movies/Big Buck Test (2024).mp4"},
	{"h264-1080.mp4", "Movies/Full HD Pattern (2024).mp4"},
	{"hevc.mkv", "Movies/Éclair de lune (2023).mkv"},
	{"longgop.mp4", "Movies/Slow Keyframes (2019).mp4"},
	{"twoaudio.mkv", "Shows/Test Show/S01E01.mkv"},
	{"vp9.webm", "Shows/Test Show/S01E02.webm"},
}

// A non-media file shows that the listing leaves such files out.
const notes = "This folder was made by hlsdemo. hlsd lists only media files, so this note does not appear in the player.\n"

func main() {
	out := flag.String("out", "./demo-media", "directory to create the demo library in")
	cache := flag.String("cache", testmedia.CacheDir(), "where generated clips are kept between runs")
	long := flag.Bool("long", false, "also add a 32-minute 1080p file (about 250 MB, takes a few more seconds)")
	testMedia := flag.Bool("test-media", false, "only make every clip the tests use in -cache, one at a time, and make no library (make test runs this first)")
	flag.Parse()

	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt)
	defer stop()
	do := func() error { return run(ctx, *out, *cache, *long) }
	if *testMedia {
		do = func() error { return makeAll(ctx, *cache) }
	}
	if err := do(); err != nil {
		fmt.Fprintln(os.Stderr, "hlsdemo:", err)
		os.Exit(1)
	}
}

func run(ctx context.Context, out, cache string, long bool) error {
	items := library
	if long {
		items = append(items, item{"long.mp4", "Movies/Long Feature (2020).mp4"})
	}
	fmt.Printf("demo library in %s (clips cached in %s)\n", out, cache)
	for _, it := range items {
		start := time.Now()
		src, err := testmedia.Make(ctx, cache, it.clip)
		if err != nil {
			return err
		}
		dst := filepath.Join(out, filepath.FromSlash(it.dest))
		if err := place(src, dst); err != nil {
			return err
		}
		fi, err := os.Stat(dst)
		if err != nil {
			return err
		}
		fmt.Printf("  %-52s %7.1f MB  (%s, %v)\n", it.dest, float64(fi.Size())/1e6, it.clip, time.Since(start).Round(10*time.Millisecond))
	}
	if err := os.WriteFile(filepath.Join(out, "Movies", "notes.txt"), []byte(notes), 0o644); err != nil {
		return err
	}
	fmt.Println("  Movies/notes.txt (not media: hidden by the listing)")
	return nil
}

// makeAll makes every clip before the test packages start: made there, in
// parallel processes on a slow machine, heavy clips outlast the tests'
// deadlines.
func makeAll(ctx context.Context, cache string) error {
	names := testmedia.Names()
	for i, name := range names {
		start := time.Now()
		fmt.Printf("test media %d/%d: %s ", i+1, len(names), name)
		path, err := testmedia.Make(ctx, cache, name)
		if err != nil {
			fmt.Println()
			return err
		}
		fi, err := os.Stat(path)
		if err != nil {
			return err
		}
		fmt.Printf("%.1f MB (%v)\n", float64(fi.Size())/1e6, time.Since(start).Round(10*time.Millisecond))
	}
	return nil
}

// place puts src at dst, replacing what is there: a hard link costs no space
// and no time; a copy covers a cache on another file system.
func place(src, dst string) error {
	if err := os.MkdirAll(filepath.Dir(dst), 0o755); err != nil {
		return err
	}
	if same(src, dst) {
		return nil
	}
	if err := os.Remove(dst); err != nil && !errors.Is(err, os.ErrNotExist) {
		return err
	}
	if err := os.Link(src, dst); err == nil {
		return nil
	}
	return copyFile(src, dst)
}

func same(a, b string) bool {
	fa, err := os.Stat(a)
	if err != nil {
		return false
	}
	fb, err := os.Stat(b)
	return err == nil && os.SameFile(fa, fb)
}

func copyFile(src, dst string) error {
	in, err := os.Open(src)
	if err != nil {
		return err
	}
	defer in.Close()
	tmp := dst + ".partial"
	out, err := os.Create(tmp)
	if err != nil {
		return err
	}
	if _, err := io.Copy(out, in); err != nil {
		out.Close()
		os.Remove(tmp)
		return err
	}
	if err := out.Close(); err != nil {
		os.Remove(tmp)
		return err
	}
	return os.Rename(tmp, dst)
}
