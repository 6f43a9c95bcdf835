package keyframes

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"sync"
	"sync/atomic"
	"syscall"
	"time"

	"go.uber.org/zap"
)

// ErrClosed is returned by Get after Close.
var ErrClosed = errors.New("keyframes: store closed")

// Observer receives scan durations; prometheus.Observer satisfies it.
type Observer interface{ Observe(float64) }

// Runner makes the ffprobe command of a packet scan reading media: it
// appends how media is named to args, and returns the end of the command's
// stderr for messages. The transcoder's child.Runner is the one hlsd uses:
// keyframes imports nothing of hlsd.
type Runner func(ctx context.Context, media *os.File, args ...string) (*exec.Cmd, fmt.Stringer)

// Options configure a Store.
type Options struct {
	// Runner starts ffprobe; required unless every file has an index.
	Runner Runner
	Log    *zap.Logger
	// ScanSeconds receives the duration of every packet scan; may be nil.
	ScanSeconds Observer
	// ScanOnly ignores container indexes: every file gets the packet scan.
	ScanOnly bool
}

// Store hands out Keyframes per file, reusing completed ones from disk. A
// file's keyframes come from its container index when it has a trustworthy
// one, else from a packet scan. Callers that may ask for one file at once
// share a call themselves (the transcoder's open does): every call that
// finds nothing on disk starts a read.
type Store struct {
	dir         string
	runner      Runner
	log         *zap.Logger
	scanSeconds Observer
	scanOnly    bool

	// ctx outlives any caller: a client leaving must not cancel a scan
	// that other clients are waiting on.
	ctx    context.Context
	cancel context.CancelFunc
	wg     sync.WaitGroup

	mu     sync.Mutex // orders starts with Close
	closed bool

	// reads counts keyframe reads started (index or scan), scans the ffprobe
	// scans among them; tests use them to prove reuse.
	reads, scans atomic.Int64
}

// fileKey is what a record was made from, checked when it is read back.
type fileKey struct {
	Path  string `json:"path"`
	Size  int64  `json:"size"`
	MTime int64  `json:"mtime_ns"`
}

// record is the on-disk form of a completed scan.
type record struct {
	fileKey
	Times    []float64 `json:"times"`
	GopBytes []int64   `json:"gop_bytes"`
	Scanned  float64   `json:"scanned"`
	Source   string    `json:"source"`
}

// NewStore returns a Store persisting completed results under dir/keyframes/.
func NewStore(dir string, o Options) *Store {
	if o.Log == nil {
		o.Log = zap.NewNop()
	}
	ctx, cancel := context.WithCancel(context.Background())
	return &Store{
		dir:         dir,
		runner:      o.Runner,
		log:         o.Log,
		scanSeconds: o.ScanSeconds,
		scanOnly:    o.ScanOnly,
		ctx:         ctx,
		cancel:      cancel,
	}
}

// Get returns the Keyframes of the file at path; id names its record (the
// caller's key for this version of the file). startTime is the file's
// format start_time, which is subtracted from every timestamp.
func (s *Store) Get(path, id string, startTime float64) (*Keyframes, error) {
	// O_NONBLOCK: opening a FIFO for reading must not wait for a writer.
	f, err := os.OpenFile(path, os.O_RDONLY|syscall.O_NONBLOCK, 0)
	if err != nil {
		return nil, fmt.Errorf("keyframes: %w", err)
	}
	return s.GetFile(path, id, f, startTime)
}

// GetFile is Get for a file the caller opened; name identifies it in
// records and logs. The Store owns f from then on. ffprobe reads f itself
// (see Runner), so a path swapped for a symlink after the caller's checks
// cannot redirect the scan.
func (s *Store) GetFile(name, id string, f *os.File, startTime float64) (*Keyframes, error) {
	fi, err := f.Stat()
	if err != nil {
		f.Close()
		return nil, fmt.Errorf("keyframes: %w", err)
	}
	key := fileKey{Path: name, Size: fi.Size(), MTime: fi.ModTime().UnixNano()}
	if k := s.load(key, id); k != nil {
		f.Close()
		return k, nil
	}

	s.mu.Lock()
	defer s.mu.Unlock()
	if s.closed {
		f.Close()
		return nil, ErrClosed
	}
	k := newKeyframes()
	s.reads.Add(1)
	s.wg.Add(1)
	go func() {
		defer s.wg.Done()
		defer f.Close()
		s.run(key, id, f, startTime, k)
	}()
	return k, nil
}

// Close cancels running scans and waits for them to end.
func (s *Store) Close() {
	s.mu.Lock()
	s.closed = true
	s.mu.Unlock()
	s.cancel()
	s.wg.Wait()
}

func (s *Store) jsonPath(id string) string {
	return filepath.Join(s.dir, "keyframes", id+".json")
}

// load returns the persisted scan for key, or nil when there is none usable.
func (s *Store) load(key fileKey, id string) *Keyframes {
	data, err := os.ReadFile(s.jsonPath(id))
	if err != nil {
		if !errors.Is(err, os.ErrNotExist) {
			s.log.Warn("keyframes: read cache file", zap.String("path", key.Path), zap.Error(err))
		}
		return nil
	}
	var r record
	if err := json.Unmarshal(data, &r); err != nil || r.fileKey != key || len(r.Times) != len(r.GopBytes) {
		// A corrupt or foreign file is cheaper to rescan than to trust.
		s.log.Warn("keyframes: ignoring invalid cache file", zap.String("path", key.Path), zap.String("file", s.jsonPath(id)))
		return nil
	}
	if r.Source == "" {
		r.Source = SourceScan // written before indexes were read
	}
	return newCompleteKeyframes(r.Times, r.GopBytes, r.Scanned, r.Source)
}

// run reads one file's keyframes, persists a successful result and
// publishes the end.
func (s *Store) run(key fileKey, id string, f *os.File, startTime float64, k *Keyframes) {
	start := time.Now()
	err := s.read(key, f, startTime, k)
	elapsed := time.Since(start)

	if err != nil {
		s.log.Warn("keyframes: scan failed", zap.String("path", key.Path), zap.Duration("duration", elapsed), zap.Error(err))
		k.finish(err)
		return
	}

	times, gopBytes, scanned, _, _ := k.Snapshot()
	source := k.Source()
	fields := []zap.Field{zap.String("path", key.Path), zap.String("source", source),
		zap.Duration("duration", elapsed), zap.Int("keyframes", len(times))}
	if source == SourceScan {
		if s.scanSeconds != nil {
			s.scanSeconds.Observe(elapsed.Seconds())
		}
		fields = append(fields, zap.Float64("mb_per_s", float64(key.Size)/1e6/elapsed.Seconds()))
	}
	s.log.Info("keyframes: done", fields...)
	// Persist before announcing completion, so Done implies the file exists.
	r := record{fileKey: key, Times: times, GopBytes: gopBytes, Scanned: scanned, Source: source}
	if err := s.save(id, &r); err != nil {
		s.log.Warn("keyframes: write cache file", zap.String("path", key.Path), zap.Error(err))
	}
	k.finish(nil)
}

// read fills k from the container index when the file has one that can be
// trusted, and from a packet scan otherwise. The index costs a few reads
// whatever the file's size; the scan reads every byte.
func (s *Store) read(key fileKey, f *os.File, startTime float64, k *Keyframes) error {
	if !s.scanOnly {
		idx, err := readIndex(f, key.Size)
		if err == nil {
			k.setIndex(idx, startTime)
			return nil
		}
		if errors.Is(err, errNoIndex) {
			s.log.Debug("keyframes: no container index, scanning", zap.String("path", key.Path), zap.Error(err))
		} else {
			s.log.Info("keyframes: container index not trusted, scanning", zap.String("path", key.Path), zap.Error(err))
		}
	}
	s.scans.Add(1)
	k.setSource(SourceScan)
	s.log.Debug("keyframes: scan start", zap.String("path", key.Path))
	return s.scan(key.Path, f, startTime, k)
}

// save writes r atomically: readers see either no file or a whole one.
func (s *Store) save(id string, r *record) error {
	dir := filepath.Join(s.dir, "keyframes")
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return err
	}
	data, err := json.Marshal(r)
	if err != nil {
		return err
	}
	f, err := os.CreateTemp(dir, id+".*.tmp")
	if err != nil {
		return err
	}
	_, err = f.Write(data)
	if cerr := f.Close(); err == nil {
		err = cerr
	}
	if err == nil {
		err = os.Rename(f.Name(), s.jsonPath(id))
	}
	if err != nil {
		os.Remove(f.Name())
	}
	return err
}
