package main

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"net/http"
	"os"
	"os/signal"
	"path/filepath"
	"strings"
	"syscall"
	"time"

	"go.uber.org/zap"

	"github.com/hlsd/hlsd/transcoder/jobs"
	"github.com/hlsd/hlsd/transcoder/library"
)

// config is the transcoder's JobsConfig from the flags.
func (j *jobFlags) config(ffmpeg, ffprobe string, lib *library.Library, cache string, log *zap.Logger, prep jobs.Preparer, obs jobs.Observer) jobs.Config {
	return jobs.Config{
		FFmpeg: ffmpeg, FFprobe: ffprobe, Library: lib, StateDir: filepath.Join(cache, "jobs"),
		Workers: j.workers, AllowImport: j.allowImport, ImportHosts: j.hosts(),
		MaxBytes: j.maxSize, MaxDuration: j.maxDuration, Preparer: prep, Log: log, Observer: obs,
	}
}

type urlList []string

func (u *urlList) String() string     { return strings.Join(*u, ",") }
func (u *urlList) Set(v string) error { *u = append(*u, v); return nil }

// importMain is `hlsd import`: an import job, with a progress bar, either
// sent to a running server (--server) or run here on --media.
func importMain(args []string) int {
	fs := flag.NewFlagSet("hlsd import", flag.ContinueOnError)
	var urls urlList
	fs.Var(&urls, "url", "an http(s) HLS playlist to import; repeat for several")
	folder := fs.String("folder", "", "destination folder under the media root")
	mode := fs.String("mode", "copy", "copy (keep the streams) or transcode (H.264 and AAC)")
	server := fs.String("server", "", "a running hlsd, e.g. http://127.0.0.1:7666 (it needs --allow-import); empty: import here, into --media")
	token := fs.String("token", env("HLSD_AUTH_TOKEN", ""), "the server's --auth-token, if it has one (env HLSD_AUTH_TOKEN)")
	media := fs.String("media", env("HLSD_MEDIA", "./media"), "without --server: the media root (env HLSD_MEDIA)")
	cache := fs.String("cache", env("HLSD_CACHE", defaultCacheDir()), "without --server: where the job's state is kept (env HLSD_CACHE)")
	ffmpeg := fs.String("ffmpeg", env("HLSD_FFMPEG", "ffmpeg"), "without --server: ffmpeg binary (env HLSD_FFMPEG)")
	ffprobe := fs.String("ffprobe", env("HLSD_FFPROBE", "ffprobe"), "without --server: ffprobe binary (env HLSD_FFPROBE)")
	var jf jobFlags
	addJobFlags(fs, &jf)
	fs.Usage = func() {
		fmt.Fprintf(fs.Output(), "Usage: hlsd import --url URL [--url URL ...] [--folder REL] [--mode copy|transcode] [--server URL]\n\n"+
			"Saves HLS streams into the library, one file each, showing progress.\n\nFlags:\n")
		fs.PrintDefaults()
	}
	if err := fs.Parse(args); err != nil {
		if errors.Is(err, flag.ErrHelp) {
			return 0
		}
		return 2
	}
	if len(urls) == 0 {
		fmt.Fprintln(os.Stderr, "hlsd import: give at least one --url")
		return 2
	}
	if err := jf.check(); err != nil {
		fmt.Fprintln(os.Stderr, "hlsd import:", err)
		return 2
	}
	ctx, stop := signal.NotifyContext(context.Background(), syscall.SIGINT, syscall.SIGTERM)
	defer stop()
	var j jobClient
	if *server != "" {
		j = &remoteJobs{base: strings.TrimSuffix(*server, "/"), token: *token}
	} else {
		jf.allowImport = true // asked for on the command line
		lib, err := library.Open(*media)
		if err != nil {
			fmt.Fprintln(os.Stderr, "hlsd import:", err)
			return 1
		}
		defer lib.Close()
		local := jobs.New(jf.config(*ffmpeg, *ffprobe, lib, *cache, zap.NewNop(), nil, nil))
		if err := local.Initialize(); err != nil {
			fmt.Fprintln(os.Stderr, "hlsd import:", err)
			return 1
		}
		defer local.Close()
		j = localJobs{local}
	}
	job, err := j.submit(urls, *folder, *mode)
	if err != nil {
		fmt.Fprintln(os.Stderr, "hlsd import:", err)
		return 1
	}
	tick := time.NewTicker(500 * time.Millisecond)
	defer tick.Stop()
	for {
		select {
		case <-ctx.Done():
			job, _ = j.cancel(job.ID)
			fmt.Fprintf(os.Stderr, "\ncancelled: %s\n", job.State)
			return 130
		case <-tick.C:
		}
		if job, err = j.get(job.ID); err != nil {
			fmt.Fprintln(os.Stderr, "\nhlsd import:", err)
			return 1
		}
		fmt.Fprintf(os.Stderr, "\r%s", progressBar(job))
		if job.State != jobs.JobQueued && job.State != jobs.JobRunning {
			break
		}
	}
	fmt.Fprintln(os.Stderr)
	for _, it := range job.Items {
		if it.State == jobs.JobDone {
			fmt.Printf("%s\t%s\n", it.File, it.URL)
		} else {
			fmt.Fprintf(os.Stderr, "%s: %s %s\n", it.URL, it.State, it.Error)
		}
	}
	if job.State != jobs.JobDone {
		return 1
	}
	return 0
}

// progressBar is one line: a bar of the media seconds done, the bytes, the
// speed and the items' states.
func progressBar(j jobs.Job) string {
	const width = 30
	frac := 0.0
	if j.Total > 0 {
		frac = min(1, j.Done/j.Total)
	}
	n := int(frac * width)
	done := 0
	for _, it := range j.Items {
		if it.State == jobs.JobDone {
			done++
		}
	}
	return fmt.Sprintf("[%s%s] %3.0f%% %6.1f/%.1f s %7.1f MB %4.1fx %d/%d %-9s",
		strings.Repeat("#", n), strings.Repeat(".", width-n), frac*100, j.Done, j.Total,
		float64(j.Bytes)/1e6, j.Speed, done, len(j.Items), j.State)
}

// jobClient is a job runner here or on a server.
type jobClient interface {
	submit(urls []string, folder, mode string) (jobs.Job, error)
	get(id string) (jobs.Job, error)
	cancel(id string) (jobs.Job, error)
}

type localJobs struct{ j *jobs.Runner }

func (l localJobs) submit(urls []string, folder, mode string) (jobs.Job, error) {
	return l.j.SubmitImport(urls, folder, mode)
}
func (l localJobs) get(id string) (jobs.Job, error)    { return l.j.Get(id) }
func (l localJobs) cancel(id string) (jobs.Job, error) { return l.j.Cancel(id) }

type remoteJobs struct{ base, token string }

func (r *remoteJobs) do(method, path string, body any) (jobs.Job, error) {
	var job jobs.Job
	var rd io.Reader
	if body != nil {
		b, _ := json.Marshal(body)
		rd = bytes.NewReader(b)
	}
	req, err := http.NewRequest(method, r.base+path, rd)
	if err != nil {
		return job, err
	}
	if r.token != "" {
		req.Header.Set("Authorization", "Bearer "+r.token)
	}
	req.Header.Set("Content-Type", "application/json")
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		return job, err
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(io.LimitReader(resp.Body, 4<<20))
	if resp.StatusCode >= 300 {
		var e struct {
			Error string `json:"error"`
		}
		_ = json.Unmarshal(b, &e)
		return job, fmt.Errorf("%s: HTTP %d: %s", r.base, resp.StatusCode, e.Error)
	}
	return job, json.Unmarshal(b, &job)
}

func (r *remoteJobs) submit(urls []string, folder, mode string) (jobs.Job, error) {
	return r.do(http.MethodPost, "/api/jobs", map[string]any{"type": "import", "urls": urls, "folder": folder, "mode": mode})
}
func (r *remoteJobs) get(id string) (jobs.Job, error) {
	return r.do(http.MethodGet, "/api/jobs/"+id, nil)
}
func (r *remoteJobs) cancel(id string) (jobs.Job, error) {
	return r.do(http.MethodDelete, "/api/jobs/"+id, nil)
}
