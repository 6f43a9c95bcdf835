// Package server is hlsd's HTTP face: routes of the API contract, ids and
// file versions (paths refused lexically before the library's root sees
// them), the one error-to-status table, logging and metrics. It declares
// what it needs of the transcoder (Streamer) and the jobs (Jobs).
package server

import (
	"context"
	"errors"
	"io"
	"net/http"
	"os"

	"github.com/go-chi/chi/v5"
	"github.com/go-chi/chi/v5/middleware"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/promhttp"
	"go.uber.org/zap"

	"github.com/hlsd/hlsd/transcoder"
	"github.com/hlsd/hlsd/transcoder/encode"
	"github.com/hlsd/hlsd/transcoder/jobs"
	"github.com/hlsd/hlsd/transcoder/library"
	"github.com/hlsd/hlsd/transcoder/probe"
	"github.com/hlsd/hlsd/web"
)

// Health is what the health routes ask of the transcoder.
type Health interface {
	// Live fails when the transcoder cannot take its own locks before ctx
	// ends, or its janitor has stalled.
	Live(ctx context.Context) error
	// Ready fails while the transcoder cannot serve: ffmpeg missing, cache
	// not writable, shutting down. It returns by the time ctx ends.
	Ready(ctx context.Context) error
}

// Streamer is what the server needs from the transcoder.
type Streamer interface {
	Health
	Info(ctx context.Context, path string) (*probe.Info, error)
	// Master lists what client c can play (master.m3u8's filters and
	// container=ts); Decide says what that is and why.
	Master(ctx context.Context, path, query string, c transcoder.Client) ([]byte, error)
	Decide(ctx context.Context, path string, c transcoder.Client) (transcoder.Decision, error)
	MediaPlaylist(ctx context.Context, path string, r encode.Rendition, query string) ([]byte, error)
	// Init and Segment return the file open, so that the cache may evict it
	// while it is being sent; the server closes it.
	Init(ctx context.Context, path string, r encode.Rendition, clientID string) (*os.File, error)
	// Segment is an *os.File when complete, else a stream of it as it is made.
	Segment(ctx context.Context, path string, r encode.Rendition, n int, clientID string, progressive bool) (io.ReadCloser, error)
	KnownDuration(path string, st os.FileInfo) (float64, bool)
	SubtitlePlaylist(ctx context.Context, path string, s int, query string) ([]byte, error)
	Subtitle(ctx context.Context, path string, s int) (*os.File, error)
	Trickplay(ctx context.Context, path, query string) ([]byte, error)
	TrickplaySheet(ctx context.Context, path string, n int) (string, error)
	// IFramePlaylist, IFrameInit and IFrame serve a rung's I-frame rendition.
	IFramePlaylist(ctx context.Context, path string, r encode.Rendition, query string) ([]byte, error)
	IFrameInit(ctx context.Context, path string, r encode.Rendition) (*os.File, error)
	IFrame(ctx context.Context, path string, r encode.Rendition, n int) (*os.File, error)
	// TSPlaylist and TSSegment serve a video variant as MPEG-TS.
	TSPlaylist(ctx context.Context, path string, r encode.Rendition, query string) ([]byte, error)
	TSSegment(ctx context.Context, path string, r encode.Rendition, n int, clientID string) (*os.File, error)
	// Activity lists the encoder heads running now.
	Activity() []transcoder.HeadActivity
	// Download is a whole file as one MP4: complete, or being made;
	// Downloads lists those being made.
	Download(ctx context.Context, path, quality string, audio int) (transcoder.Download, error)
	Downloads() []transcoder.DownloadActivity
}

// Config of a Server.
type Config struct {
	Library     *library.Library // the media root; the caller owns it
	AllowOrigin string           // Access-Control-Allow-Origin; empty disables CORS headers
	AuthToken   string           // when set, required on every route but /healthz and /readyz
	NodeName    string           // when set, sent as X-Hlsd-Node on every answer
	Log         *zap.Logger
	Registry    *prometheus.Registry
}

// Server routes HTTP requests to a Streamer.
type Server struct {
	cfg     Config
	log     *zap.Logger
	lib     *library.Library
	tc      Streamer
	jobs    Jobs
	metrics *metrics
	router  chi.Router
}

// New builds a server; the metrics it exports are registered on cfg.Registry.
// Observer returns the metrics sink the transcoder should report to.
func New(cfg Config) (*Server, error) {
	if cfg.Library == nil {
		return nil, errors.New("server: no media library")
	}
	if cfg.Log == nil {
		cfg.Log = zap.NewNop()
	}
	if cfg.Registry == nil {
		cfg.Registry = prometheus.NewRegistry()
	}
	return &Server{cfg: cfg, log: cfg.Log, lib: cfg.Library, metrics: newMetrics(cfg.Registry)}, nil
}

// Observer is the metrics sink for the transcoder's events.
func (s *Server) Observer() transcoder.Observer { return s.metrics }

// JobObserver is the metrics sink for the jobs' events.
func (s *Server) JobObserver() jobs.Observer { return s.metrics }

// Initialize attaches the streamer and the jobs, and builds the routes.
func (s *Server) Initialize(tc Streamer, jobs Jobs) {
	s.tc, s.jobs = tc, jobs
	r := chi.NewRouter()
	// GetHead: a HEAD is answered as its GET without the body; CDNs and
	// some TV players ask for one before a segment.
	r.Use(s.recoverer, s.observe, s.cors, s.auth, compress, middleware.GetHead)
	r.NotFound(s.handle(func(http.ResponseWriter, *http.Request) error {
		return errorf(http.StatusNotFound, "no such route")
	}))
	r.MethodNotAllowed(s.handle(func(http.ResponseWriter, *http.Request) error {
		return errorf(http.StatusMethodNotAllowed, "method not allowed")
	}))
	r.Get("/healthz", s.handle(s.healthz))
	r.Get("/readyz", s.handle(s.readyz))
	r.Method(http.MethodGet, "/metrics", promhttp.HandlerFor(s.cfg.Registry, promhttp.HandlerOpts{}))
	r.Get("/api/media", s.handle(s.listMedia))
	r.Post("/api/jobs", s.handle(s.needJobs(s.submitJob)))
	r.Get("/api/jobs", s.handle(s.needJobs(s.listJobs)))
	r.Get("/api/jobs/{job}", s.handle(s.needJobs(s.getJob)))
	r.Delete("/api/jobs/{job}", s.handle(s.needJobs(s.cancelJob)))
	r.Get("/api/activity", s.handle(s.activity))
	r.Route("/videos/{id}", func(r chi.Router) {
		r.Use(s.version)
		r.Get("/info", s.handle(s.info))
		r.Get("/master.m3u8", s.handle(s.master))
		r.Get("/decision", s.handle(s.decision))
		r.Get("/download.mp4", s.handle(s.download))
		r.Get("/subtitles/{file}", s.handle(s.subtitleFile))
		r.Get("/trickplay.vtt", s.handle(s.trickplay))
		r.Get("/trickplay/{file}", s.handle(s.trickplaySheet))
		r.Get("/{kind}/{track}/{quality}/{file}", s.handle(s.variantFile))
	})
	r.Handle("/*", web.Handler())
	s.router = r
}

func (s *Server) ServeHTTP(w http.ResponseWriter, r *http.Request) { s.router.ServeHTTP(w, r) }
