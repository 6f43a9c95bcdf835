// Package jobs runs background jobs: imports of remote HLS into the media
// root, and prepares, which make a file's rungs ahead of time. Jobs share
// one pool of ffmpeg processes and are kept on disk, so a restart resumes
// them. A prepare reaches the transcoder only through Preparer, declared
// here.
//
// It imports transcoder/library, transcoder/encode (the rungs a prepare
// may name), transcoder/child, transcoder/failure and transcoder/internal.
package jobs

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"path"
	"path/filepath"
	"slices"
	"sort"
	"strings"
	"sync"
	"time"

	"github.com/hlsd/hlsd/transcoder/encode"
	"github.com/hlsd/hlsd/transcoder/failure"
	"github.com/hlsd/hlsd/transcoder/internal/atomicfile"
	"github.com/hlsd/hlsd/transcoder/library"
	"go.uber.org/zap"
)

// Job states.
const (
	JobQueued    = "queued"
	JobRunning   = "running"
	JobDone      = "done"
	JobFailed    = "failed"
	JobCancelled = "cancelled"
)

// Job types.
const (
	JobImport  = "import"
	JobPrepare = "prepare"
)

// ErrNotAllowed is a request the server's configuration refuses (import
// without --allow-import, a host not in --import-hosts).
var ErrNotAllowed = errors.New("not allowed")

// Job is a background job as the API shows it and as it is kept on disk.
// Progress is in media seconds (Done of Total) and bytes written.
type Job struct {
	ID      string    `json:"id"`
	Type    string    `json:"type"`
	State   string    `json:"state"`
	Created time.Time `json:"created"`
	Updated time.Time `json:"updated"`
	Done    float64   `json:"done"`
	Total   float64   `json:"total"`
	Bytes   int64     `json:"bytes"`
	// Speed is media seconds made per second of work, while running.
	Speed float64 `json:"speed,omitempty"`
	Error string  `json:"error,omitempty"`
	// Note says what a restart did to the job: resumed, or failed.
	Note string `json:"note,omitempty"`

	Folder    string   `json:"folder,omitempty"` // import: destination under the media root
	Mode      string   `json:"mode,omitempty"`   // import: copy or transcode
	Qualities []string `json:"qualities,omitempty"`
	Items     []*Item  `json:"items"`
}

// Item is one URL of an import, or one file of a prepare.
type Item struct {
	URL   string  `json:"url,omitempty"`
	File  string  `json:"file,omitempty"` // the library file made (import) or prepared, relative to the media root
	State string  `json:"state"`
	Done  float64 `json:"done"`
	Total float64 `json:"total"`
	Bytes int64   `json:"bytes"`
	Error string  `json:"error,omitempty"`
}

// Observer is the metrics sink of the jobs.
type Observer interface {
	JobStates(counts map[string]int) // jobs per state, after every change
	JobBytes(n int64)                // bytes written by imports
}

type nopObserver struct{}

func (nopObserver) JobStates(map[string]int) {}
func (nopObserver) JobBytes(int64)           {}

// Preparer makes a file's rungs ahead of time (the Transcoder).
type Preparer interface {
	// PrepareChunks is how many ffmpeg processes a prepare would run at
	// once: the free hardware sessions, or its software setting.
	PrepareChunks() int
	// Prepare makes every segment of qualities of the file at path that is
	// not made yet, in at most chunks processes at once, reporting media
	// seconds done of the total.
	Prepare(ctx context.Context, path string, qualities []string, chunks int, progress func(done, total float64)) error
	// Pin keeps a prepared file's segments from eviction again after a
	// restart.
	Pin(ctx context.Context, path string, qualities []string) error
}

// Config configures Runner.
type Config struct {
	FFmpeg, FFprobe string
	Library         *library.Library // the caller owns it
	StateDir        string           // one JSON file per job
	Workers         int              // ffmpeg processes at once, all jobs together
	AllowImport     bool
	ImportHosts     []string // hosts imports may read from; empty: any
	MaxBytes        int64    // per imported URL
	MaxDuration     time.Duration
	Preparer        Preparer // nil: prepare jobs are refused
	Log             *zap.Logger
	Observer        Observer
}

// Runner runs background jobs: a bounded pool of ffmpeg processes shared by
// every job, each job's state kept on disk so that a restart resumes it.
//
// Locks: mu guards jobs and every Job and Item they hold; it is a leaf,
// never held across a call out (ffmpeg, the disk, the observer).
type Runner struct {
	cfg  Config
	log  *zap.Logger
	lib  *library.Library
	pool chan struct{}

	ctx    context.Context
	cancel context.CancelFunc
	wg     sync.WaitGroup

	mu      sync.Mutex
	jobs    map[string]*Job
	running map[string]running
}

// running is a job's goroutine: how to stop it, and done, closed when it
// has ended (its ffmpeg gone, its files cleaned up).
type running struct {
	cancel context.CancelFunc
	done   chan struct{}
}

// maxKept is how many finished jobs are remembered.
const maxKept = 200

// New builds the job runner; Initialize loads and resumes saved jobs.
func New(cfg Config) *Runner {
	if cfg.Workers < 1 {
		cfg.Workers = 2
	}
	if cfg.Log == nil {
		cfg.Log = zap.NewNop()
	}
	if cfg.Observer == nil {
		cfg.Observer = nopObserver{}
	}
	if cfg.FFmpeg == "" {
		cfg.FFmpeg = "ffmpeg"
	}
	if cfg.FFprobe == "" {
		cfg.FFprobe = "ffprobe"
	}
	ctx, cancel := context.WithCancel(context.Background())
	return &Runner{cfg: cfg, log: cfg.Log, pool: make(chan struct{}, cfg.Workers), ctx: ctx, cancel: cancel,
		jobs: map[string]*Job{}, running: map[string]running{}}
}

// Initialize opens the media root and the state directory, and resumes the
// jobs a previous run left queued or running.
func (j *Runner) Initialize() error {
	if j.cfg.Library == nil {
		return errors.New("jobs: no media library")
	}
	j.lib = j.cfg.Library
	if err := os.MkdirAll(j.cfg.StateDir, 0o755); err != nil {
		return fmt.Errorf("jobs directory: %w", err)
	}
	files, _ := filepath.Glob(filepath.Join(j.cfg.StateDir, "*.json"))
	for _, f := range files {
		b, err := os.ReadFile(f)
		var job Job
		if err == nil {
			err = json.Unmarshal(b, &job)
		}
		if err != nil || job.ID == "" {
			j.log.Warn("unreadable job state, removed", zap.String("file", f), zap.Error(err))
			os.Remove(f)
			continue
		}
		j.jobs[job.ID] = &job
	}
	var done []*Job
	for _, job := range j.list() {
		switch job.State {
		case JobQueued, JobRunning:
			j.resume(job)
		case JobDone:
			if job.Type == JobPrepare && j.cfg.Preparer != nil {
				done = append(done, job)
			}
		}
	}
	if len(done) > 0 {
		// In the background: it opens each file, as a request would.
		j.wg.Add(1)
		go func() {
			defer j.wg.Done()
			for _, job := range done {
				for _, it := range job.Items {
					if err := j.cfg.Preparer.Pin(j.ctx, it.File, job.Qualities); err != nil && j.ctx.Err() == nil {
						j.log.Info("prepared file not pinned again", zap.String("file", it.File), zap.Error(err))
					}
				}
			}
		}()
	}
	j.observe()
	return nil
}

// resume restarts a job an earlier run did not finish. An import item is
// made again from the start (the earlier ffmpeg's output cannot be
// trusted); a prepare finds the segments made before and goes on.
func (j *Runner) resume(job *Job) {
	j.mu.Lock()
	resumed := 0
	for i, it := range job.Items {
		if it.State == JobQueued || it.State == JobRunning {
			if job.Type == JobImport {
				_ = j.lib.Remove(path.Join(job.Folder, tempName(job.ID, i)))
			}
			it.State, it.Done, it.Bytes, it.Error = JobQueued, 0, 0, ""
			resumed++
		}
	}
	job.State = JobQueued
	what := "started again from the beginning of each unfinished URL"
	if job.Type == JobPrepare {
		what = "continued from the segments already made"
	}
	job.Note = fmt.Sprintf("hlsd restarted during this job: %d unfinished item(s) %s", resumed, what)
	job.Updated = time.Now().UTC()
	j.mu.Unlock()
	j.log.Info("job resumed after a restart", zap.String("job", job.ID), zap.String("type", job.Type), zap.Int("items", resumed))
	j.save(job)
	j.start(job)
}

// Close cancels what runs, waits for every ffmpeg to be gone and every
// partial file removed, and keeps unfinished jobs queued for the next start.
func (j *Runner) Close() {
	j.cancel()
	j.wg.Wait()
}

// List returns every job, newest first.
func (j *Runner) List() []Job {
	jobs := j.list()
	out := make([]Job, len(jobs))
	j.mu.Lock()
	for i, job := range jobs {
		out[i] = snapshot(job)
	}
	j.mu.Unlock()
	return out
}

func (j *Runner) list() []*Job {
	j.mu.Lock()
	defer j.mu.Unlock()
	out := make([]*Job, 0, len(j.jobs))
	for _, job := range j.jobs {
		out = append(out, job)
	}
	sort.Slice(out, func(a, b int) bool {
		if !out[a].Created.Equal(out[b].Created) {
			return out[a].Created.After(out[b].Created)
		}
		return out[a].ID > out[b].ID
	})
	return out
}

// Get returns one job.
func (j *Runner) Get(id string) (Job, error) {
	j.mu.Lock()
	defer j.mu.Unlock()
	job, ok := j.jobs[id]
	if !ok {
		return Job{}, fmt.Errorf("%w: no job %q", failure.NotFound, id)
	}
	return snapshot(job), nil
}

// snapshot copies a job. Caller holds mu.
func snapshot(job *Job) Job {
	c := *job
	c.Items = make([]*Item, len(job.Items))
	for i, it := range job.Items {
		x := *it
		c.Items[i] = &x
	}
	c.Qualities = slices.Clone(job.Qualities)
	return c
}

// Cancel stops a job: its ffmpeg processes end and the partial files of
// its imports are removed before it says cancelled.
func (j *Runner) Cancel(id string) (Job, error) {
	j.mu.Lock()
	_, ok := j.jobs[id]
	r, live := j.running[id]
	j.mu.Unlock()
	if !ok {
		return Job{}, fmt.Errorf("%w: no job %q", failure.NotFound, id)
	}
	if live {
		// Its goroutine marks it cancelled once everything is cleaned up.
		r.cancel()
		<-r.done
	}
	return j.Get(id)
}

// SubmitImport queues an import of urls into folder (relative to the media
// root) with mode copy or transcode.
func (j *Runner) SubmitImport(urls []string, folder, mode string) (Job, error) {
	if !j.cfg.AllowImport {
		return Job{}, fmt.Errorf("%w: import is turned off on this server (start it with --allow-import)", ErrNotAllowed)
	}
	if len(urls) == 0 || len(urls) > 100 {
		return Job{}, fmt.Errorf("%w: an import takes 1 to 100 URLs, got %d", failure.BadRequest, len(urls))
	}
	switch mode {
	case "":
		mode = "copy"
	case "copy", "transcode":
	default:
		return Job{}, fmt.Errorf("%w: unknown mode %q: expected copy or transcode", failure.BadRequest, mode)
	}
	for _, u := range urls {
		if err := j.checkURL(u); err != nil {
			return Job{}, err
		}
	}
	if folder != "" {
		if !filepath.IsLocal(folder) {
			return Job{}, fmt.Errorf("%w: folder %q", failure.Forbidden, folder)
		}
		if err := j.lib.MkdirAll(folder); err != nil {
			return Job{}, fmt.Errorf("%w: cannot create folder %q: %v", failure.Forbidden, folder, err)
		}
	}
	job := &Job{Type: JobImport, Folder: filepath.ToSlash(filepath.Clean("/" + folder))[1:], Mode: mode}
	for _, u := range urls {
		job.Items = append(job.Items, &Item{URL: u, State: JobQueued})
	}
	return j.submit(job), nil
}

// SubmitPrepare queues the preparation of qualities of files (paths
// relative to the media root), one after the other.
func (j *Runner) SubmitPrepare(files, qualities []string) (Job, error) {
	if j.cfg.Preparer == nil {
		return Job{}, fmt.Errorf("%w: prepare needs a running server", ErrNotAllowed)
	}
	if len(files) == 0 || len(qualities) == 0 {
		return Job{}, fmt.Errorf("%w: prepare needs a file (id) or a folder with media, and qualities", failure.BadRequest)
	}
	for _, q := range qualities {
		if _, ok := encode.RungByName(q); !ok {
			return Job{}, fmt.Errorf("%w: quality %q: prepare makes re-encoded rungs, 240p to 2160p", failure.BadRequest, q)
		}
	}
	job := &Job{Type: JobPrepare, Qualities: slices.Clone(qualities)}
	for _, f := range files {
		job.Items = append(job.Items, &Item{File: f, State: JobQueued})
	}
	return j.submit(job), nil
}

func (j *Runner) submit(job *Job) Job {
	var b [6]byte
	_, _ = rand.Read(b[:])
	job.ID = hex.EncodeToString(b[:])
	job.State = JobQueued
	job.Created = time.Now().UTC()
	job.Updated = job.Created
	j.mu.Lock()
	j.jobs[job.ID] = job
	j.mu.Unlock()
	j.save(job)
	j.forget()
	j.start(job)
	j.observe()
	j.log.Info("job queued", zap.String("job", job.ID), zap.String("type", job.Type), zap.Int("items", len(job.Items)))
	j.mu.Lock()
	defer j.mu.Unlock()
	return snapshot(job)
}

// start runs job in a goroutine of its own, owned by j.
func (j *Runner) start(job *Job) {
	ctx, cancel := context.WithCancel(j.ctx)
	r := running{cancel: cancel, done: make(chan struct{})}
	j.mu.Lock()
	j.running[job.ID] = r
	j.mu.Unlock()
	j.wg.Add(1)
	go func() {
		defer j.wg.Done()
		defer close(r.done)
		defer cancel()
		j.run(ctx, job)
		j.mu.Lock()
		delete(j.running, job.ID)
		j.mu.Unlock()
	}()
}

// run works through a job's items, each as soon as the pool has room, and
// settles the job's state from theirs.
func (j *Runner) run(ctx context.Context, job *Job) {
	var wg sync.WaitGroup
	for i := range job.Items {
		j.mu.Lock()
		queued := job.Items[i].State == JobQueued
		j.mu.Unlock()
		if !queued {
			continue
		}
		acquired := false
		select {
		case j.pool <- struct{}{}:
			acquired = true
		case <-ctx.Done():
		}
		if ctx.Err() != nil {
			if acquired {
				<-j.pool
			}
			break
		}
		j.update(job, func() { job.State = JobRunning; job.Items[i].State = JobRunning })
		wg.Add(1)
		run := func() {
			defer wg.Done()
			defer func() { <-j.pool }()
			var err error
			switch job.Type {
			case JobImport:
				err = j.importItem(ctx, job, i)
			case JobPrepare:
				err = j.prepareItem(ctx, job, i)
			}
			j.finishItem(ctx, job, i, err)
		}
		if job.Type == JobPrepare {
			run() // one file at a time: a prepare spreads itself over the CPUs
		} else {
			go run()
		}
	}
	wg.Wait()
	if j.ctx.Err() != nil {
		// Shutdown: the job stays queued, to be resumed at the next start.
		j.update(job, func() {
			job.State = JobQueued
			for _, it := range job.Items {
				if it.State == JobRunning {
					it.State = JobQueued
				}
			}
		})
		return
	}
	j.update(job, func() {
		job.Speed = 0
		failed, cancelled := 0, 0
		var errs []string
		for _, it := range job.Items {
			switch it.State {
			case JobFailed:
				failed++
				errs = append(errs, it.Error)
			case JobCancelled, JobQueued:
				it.State = JobCancelled
				cancelled++
			}
		}
		switch {
		case ctx.Err() != nil || cancelled > 0:
			job.State = JobCancelled
		case failed > 0:
			job.State = JobFailed
			job.Error = fmt.Sprintf("%d of %d failed: %s", failed, len(job.Items), strings.Join(errs, "; "))
		default:
			job.State = JobDone
		}
	})
	j.mu.Lock()
	state := job.State
	j.mu.Unlock()
	j.log.Info("job ended", zap.String("job", job.ID), zap.String("state", state))
}

// finishItem records how an item ended.
func (j *Runner) finishItem(ctx context.Context, job *Job, i int, err error) {
	j.update(job, func() {
		it := job.Items[i]
		switch {
		case j.ctx.Err() != nil:
			it.State = JobQueued // shutdown: resumed at the next start
		case ctx.Err() != nil:
			it.State = JobCancelled
		case err != nil:
			it.State, it.Error = JobFailed, err.Error()
		default:
			it.State = JobDone
			it.Done = it.Total
		}
	})
	if err != nil && ctx.Err() == nil {
		j.log.Warn("job item failed", zap.String("job", job.ID), zap.Int("item", i), zap.Error(err))
	}
}

// progress records an item's progress, saving it now and then.
func (j *Runner) progress(job *Job, i int, done, total float64, bytes int64, speed float64) {
	j.mu.Lock()
	it := job.Items[i]
	// Progress only grows: a second pass or a coarse report never takes
	// the bar back.
	it.Done = max(it.Done, min(done, max(total, it.Total)))
	if total > 0 {
		it.Total = total
	}
	grew := bytes - it.Bytes
	it.Bytes = max(it.Bytes, bytes)
	job.Speed = speed
	j.sum(job)
	save := time.Since(job.Updated) > 2*time.Second
	if save {
		job.Updated = time.Now().UTC()
	}
	j.mu.Unlock()
	if grew > 0 && job.Type == JobImport {
		j.cfg.Observer.JobBytes(grew)
	}
	if save {
		j.save(job)
	}
}

// sum adds the items' progress into the job's. Caller holds mu.
func (j *Runner) sum(job *Job) {
	job.Done, job.Total, job.Bytes = 0, 0, 0
	for _, it := range job.Items {
		job.Done += it.Done
		job.Total += it.Total
		job.Bytes += it.Bytes
	}
}

// update changes a job under mu, then saves it and reports the states.
func (j *Runner) update(job *Job, change func()) {
	j.mu.Lock()
	change()
	j.sum(job)
	job.Updated = time.Now().UTC()
	j.mu.Unlock()
	j.save(job)
	j.observe()
}

// save writes a job's state, atomically.
func (j *Runner) save(job *Job) {
	j.mu.Lock()
	b, err := json.MarshalIndent(snapshot(job), "", " ")
	j.mu.Unlock()
	if err == nil {
		err = atomicfile.Write(filepath.Join(j.cfg.StateDir, job.ID+".json"), b)
	}
	if err != nil {
		j.log.Warn("cannot save job state", zap.String("job", job.ID), zap.Error(err))
	}
}

// forget drops the oldest finished jobs beyond maxKept.
func (j *Runner) forget() {
	var drop []string
	kept := 0
	for _, job := range j.list() {
		j.mu.Lock()
		finished := job.State != JobQueued && job.State != JobRunning
		j.mu.Unlock()
		if !finished {
			continue
		}
		if kept++; kept > maxKept {
			drop = append(drop, job.ID)
		}
	}
	for _, id := range drop {
		j.mu.Lock()
		delete(j.jobs, id)
		j.mu.Unlock()
		os.Remove(filepath.Join(j.cfg.StateDir, id+".json"))
	}
}

func (j *Runner) observe() {
	counts := map[string]int{JobQueued: 0, JobRunning: 0, JobDone: 0, JobFailed: 0, JobCancelled: 0}
	j.mu.Lock()
	for _, job := range j.jobs {
		counts[job.State]++
	}
	j.mu.Unlock()
	j.cfg.Observer.JobStates(counts)
}

// tryAcquire takes a slot of the pool if one is free now.
func (j *Runner) tryAcquire() bool {
	select {
	case j.pool <- struct{}{}:
		return true
	default:
		return false
	}
}

// prepareItem prepares one file with the Preparer.
func (j *Runner) prepareItem(ctx context.Context, job *Job, i int) error {
	j.mu.Lock()
	file, qualities := job.Items[i].File, slices.Clone(job.Qualities)
	j.mu.Unlock()
	// The item holds one slot of the pool; each further chunk takes one
	// more if it is free, so the pool bounds the processes of all jobs.
	chunks := 1
	for chunks < j.cfg.Preparer.PrepareChunks() && j.tryAcquire() {
		chunks++
		defer func() { <-j.pool }()
	}
	start := time.Now()
	return j.cfg.Preparer.Prepare(ctx, file, qualities, chunks, func(done, total float64) {
		j.progress(job, i, done, total, 0, done/max(time.Since(start).Seconds(), 1e-3))
	})
}
