package transcoder

import (
	"context"
	"fmt"
	"io"
	"os"
	"os/exec"
	"time"

	"github.com/hlsd/hlsd/transcoder/child"
	"github.com/hlsd/hlsd/transcoder/failure"
	"github.com/hlsd/hlsd/transcoder/internal/flight"
	"github.com/hlsd/hlsd/transcoder/library"
)

func exists(path string) bool {
	_, err := os.Stat(path)
	return err == nil
}

// runner starts the transcoder's ffmpeg children on media files: each
// reads the file it was opened for as child.Input, checked to be the
// version its plans were made from.
type runner struct {
	lib    *library.Library
	ffmpeg string
	obs    Observer
}

// startFFmpeg starts ffmpeg on m's file (as child.Input) with its stdout
// piped back and the end of its stderr kept. ffmpeg inherits its own
// descriptor, so ours is closed once it has started.
func (r *runner) startFFmpeg(ctx context.Context, m *media, args []string) (*exec.Cmd, io.ReadCloser, *child.Tail, error) {
	src, err := r.source(m)
	if err != nil {
		return nil, nil, nil, err
	}
	defer src.Close()
	cmd := child.Command(ctx, src, r.ffmpeg, args...)
	stderr := &child.Tail{Max: 4096}
	cmd.Stderr = stderr
	stdout, err := cmd.StdoutPipe()
	if err != nil {
		return nil, nil, nil, fmt.Errorf("%w: %v", failure.Encoder, err)
	}
	if err := cmd.Start(); err != nil {
		return nil, nil, nil, fmt.Errorf("%w: cannot start ffmpeg: %v", failure.Encoder, err)
	}
	return cmd, stdout, stderr, nil
}

// made opens path, a file of the cache that is made once and then served
// (an MPEG-TS segment, an I-frame, subtitles, the thumbnails' index): when
// it is not there, make runs, once for every caller that shares key
// meanwhile, on the transcoder's context, and path is opened after. mode
// says whether make goes on when every caller has left. touch counts a hit
// on a file the segment budget holds; what names the file in the error a
// request gets when it was evicted before it could be opened.
func (t *Transcoder) made(ctx context.Context, key, path, what string, mode flight.Mode, touch bool, make func(context.Context) error) (*os.File, error) {
	if f, err := os.Open(path); err == nil {
		if touch {
			t.cache.touch(path)
		}
		return f, nil
	}
	if _, err := flight.Do(t.flight, ctx, key, mode, func(ctx context.Context) (struct{}, error) {
		if exists(path) { // made by a run that ended just before this one began
			return struct{}{}, nil
		}
		return struct{}{}, make(ctx)
	}); err != nil {
		return nil, err
	}
	f, err := os.Open(path)
	if err != nil {
		return nil, fmt.Errorf("%w: %s was removed from the cache before it could be sent", failure.Unavailable, what)
	}
	return f, nil
}

// ffmpegRun is an encoding ffmpeg, a head's or a prepare's, counted in the
// metrics as a run of its class from its start to its end, with the CPU it
// used: one place for both, so that their figures compare.
type ffmpegRun struct {
	cmd    *exec.Cmd
	stdout io.ReadCloser
	stderr *child.Tail
	class  string
	obs    Observer
}

// startRun starts ffmpeg on m's file for a run of class, started for reason.
func (r *runner) startRun(ctx context.Context, m *media, args []string, class, reason string) (*ffmpegRun, error) {
	cmd, stdout, stderr, err := r.startFFmpeg(ctx, m, args)
	if err != nil {
		return nil, err
	}
	r.obs.HeadStarted(class, reason)
	return &ffmpegRun{cmd: cmd, stdout: stdout, stderr: stderr, class: class, obs: r.obs}, nil
}

// wait waits for ffmpeg to end and reports the run's end.
func (r *ffmpegRun) wait() error {
	err := r.cmd.Wait()
	var cpu time.Duration
	if ps := r.cmd.ProcessState; ps != nil {
		cpu = ps.UserTime() + ps.SystemTime()
	}
	r.obs.HeadStopped(r.class, cpu)
	return err
}

// source opens the file of m for one child process, and checks it is still
// the version m was built from: a file replaced while being streamed must
// not be cut with the old one's plan.
func (r *runner) source(m *media) (*os.File, error) {
	f, st, err := r.lib.Open(m.name)
	if err != nil {
		return nil, err
	}
	if st.Size() != m.size || !st.ModTime().Equal(m.modTime) {
		f.Close()
		return nil, fmt.Errorf("%w: %s changed while it was being streamed; reload the playlist", failure.NotFound, m.name)
	}
	return f, nil
}
