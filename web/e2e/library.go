package e2e

import (
	"context"
	"encoding/base64"
	"fmt"
	"net/http/httptest"
	"os"
	"path/filepath"

	"github.com/prometheus/client_golang/prometheus"
	"go.uber.org/zap"

	"github.com/hlsd/hlsd/server"
	"github.com/hlsd/hlsd/transcoder"
	"github.com/hlsd/hlsd/transcoder/jobs"
	"github.com/hlsd/hlsd/transcoder/library"
	"github.com/hlsd/hlsd/transcoder/testmedia"
)

// Corpus is what the browser suite plays, one clip per kind of source a
// player meets: H.264/AAC mp4 with B-frames, 10-bit HEVC with 5.1 AC-3 and a
// second audio track (neither codec decodes in Chromium's MSE), VP9/Opus
// WebM, a 25 s GOP, two audio tracks of different pitch, and 32 minutes.
var Corpus = []string{"h264.mp4", "hevc.mkv", "vp9.webm", "longgop.mp4", "twoaudio.mkv", "long.mp4"}

// Heavy is media a 2-core box finds hard, played cold with hls.js's own
// ABR: a minute of 1080p 10-bit HEVC with 5.1 AC-3 and a second track,
// 80 s with a keyframe every 20 s, and a 1080i MPEG-TS TV recording.
var Heavy = []string{"hevc-1080.mkv", "gop20.mp4", "tv-1080i.ts"}

// pageFolder holds the file the page walk browses to.
const pageFolder = "Shows"

// twoAudio gets a sidecar subtitle file and its tones checked; see testmedia.
const twoAudio = "twoaudio.mkv"

// sidecarCues are written as twoaudio.en.srt. Their boundaries are checked
// within 0.1 s, so a subtitle timeline off by more than that fails.
var sidecarCues = []Cue{{Start: 2, End: 4, Text: "first cue"}, {Start: 4, End: 6.5, Text: "second cue"}}

// Library fills dir with the corpus and the heavy media (hard links to clips made once per
// machine by testmedia) and a copy of the first clip in a folder, and
// returns the configuration to play it all, minus Base and Artifacts.
func Library(ctx context.Context, dir string) (Config, error) {
	var cfg Config
	if err := os.MkdirAll(filepath.Join(dir, pageFolder), 0o755); err != nil {
		return cfg, err
	}
	for i, name := range append(append([]string{}, Corpus...), Heavy...) {
		src, err := testmedia.Make(ctx, testmedia.CacheDir(), name)
		if err != nil {
			return cfg, err
		}
		if err := link(src, filepath.Join(dir, name)); err != nil {
			return cfg, err
		}
		f := File{Name: name, ID: ID(name)}
		if name == twoAudio {
			f.Tones, f.Cues = []float64{440, 880}, sidecarCues
			if err := os.WriteFile(filepath.Join(dir, "twoaudio.en.srt"), srt(sidecarCues), 0o644); err != nil {
				return cfg, err
			}
		}
		cfg.Files = append(cfg.Files, f)
		if i == 0 {
			if err := link(src, filepath.Join(dir, pageFolder, name)); err != nil {
				return cfg, err
			}
			cfg.Page = &PageCheck{Folder: pageFolder, Name: name, MissingID: ID(pageFolder + "/missing.mp4")}
		}
	}
	return cfg, nil
}

// srt writes cues as a SubRip file.
func srt(cues []Cue) []byte {
	ts := func(s float64) string {
		ms := int(s*1000 + 0.5)
		return fmt.Sprintf("%02d:%02d:%02d,%03d", ms/3600000, ms/60000%60, ms/1000%60, ms%1000)
	}
	var b []byte
	for i, c := range cues {
		b = fmt.Appendf(b, "%d\n%s --> %s\n%s\n\n", i+1, ts(c.Start), ts(c.End), c.Text)
	}
	return b
}

// ID is the media id of a path relative to the media root (api.md).
func ID(rel string) string { return base64.RawURLEncoding.EncodeToString([]byte(rel)) }

// link hard-links, falling back to a symlink across file systems.
func link(src, dst string) error {
	if err := os.Link(src, dst); err == nil {
		return nil
	}
	return os.Symlink(src, dst)
}

// Server is hlsd running in this process on a loopback port.
type Server struct {
	URL      string
	Registry *prometheus.Registry
	hs       *httptest.Server
	tc       *transcoder.Transcoder
	jobs     *jobs.Runner
	srv      *server.Server
	lib      *library.Library
}

// Start serves media with a fresh transcoder caching in cache, configured
// as the hlsd command's defaults would; a token turns access control on.
func Start(media, cache string, log *zap.Logger, token string) (*Server, error) {
	return StartWith(transcoder.Config{}, media, cache, log, token)
}

// StartWith is Start with the transcoder configured as cfg (its media,
// cache, log and observer set here).
func StartWith(cfg transcoder.Config, media, cache string, log *zap.Logger, token string) (*Server, error) {
	reg := prometheus.NewRegistry()
	lib, err := library.Open(media)
	if err != nil {
		return nil, err
	}
	srv, err := server.New(server.Config{Library: lib, AllowOrigin: "*", AuthToken: token, Log: log, Registry: reg})
	if err != nil {
		lib.Close()
		return nil, err
	}
	cfg.Library, cfg.CacheDir, cfg.Log, cfg.Observer = lib, cache, log, srv.Observer()
	tc := transcoder.New(cfg)
	if err := tc.Initialize(); err != nil {
		lib.Close()
		return nil, fmt.Errorf("transcoder: %w", err)
	}
	// Imports allowed: the browser suite watches one in the Activity view.
	jobs := jobs.New(jobs.Config{Library: lib, StateDir: filepath.Join(cache, "jobs"),
		AllowImport: true, Preparer: tc, Log: log, Observer: srv.JobObserver()})
	if err := jobs.Initialize(); err != nil {
		tc.Close()
		lib.Close()
		return nil, fmt.Errorf("jobs: %w", err)
	}
	srv.Initialize(tc, jobs)
	hs := httptest.NewServer(srv)
	return &Server{URL: hs.URL, Registry: reg, hs: hs, tc: tc, jobs: jobs, srv: srv, lib: lib}, nil
}

// Close stops serving, then stops every job and encoder.
func (s *Server) Close() {
	s.hs.Close()
	s.jobs.Close()
	s.tc.Close()
	s.lib.Close()
}

// LibraryOf fills dir with the named clips only, for figures per file.
func LibraryOf(ctx context.Context, dir string, names ...string) ([]File, error) {
	var files []File
	for _, name := range names {
		src, err := testmedia.Make(ctx, testmedia.CacheDir(), name)
		if err != nil {
			return nil, err
		}
		if err := link(src, filepath.Join(dir, name)); err != nil {
			return nil, err
		}
		files = append(files, File{Name: name, ID: ID(name)})
	}
	return files, nil
}
