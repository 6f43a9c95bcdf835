package transcoder

import (
	"context"
	"fmt"
	"io"
	"os"
	"os/exec"

	"github.com/hlsd/hlsd/transcoder/child"
	"github.com/hlsd/hlsd/transcoder/failure"
)

func exists(path string) bool {
	_, err := os.Stat(path)
	return err == nil
}

// startFFmpeg starts ffmpeg on m's file (as child.Input) with its stdout
// piped back and the end of its stderr kept. ffmpeg inherits its own
// descriptor, so ours is closed once it has started.
func (t *Transcoder) startFFmpeg(ctx context.Context, m *media, args []string) (*exec.Cmd, io.ReadCloser, *child.Tail, error) {
	src, err := t.source(m)
	if err != nil {
		return nil, nil, nil, err
	}
	defer src.Close()
	cmd := child.Command(ctx, src, t.cfg.FFmpeg, args...)
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

// source opens the file of m for one child process, and checks it is still
// the version m was built from: a file replaced while being streamed must
// not be cut with the old one's plan.
func (t *Transcoder) source(m *media) (*os.File, error) {
	f, st, err := t.lib.Open(m.name)
	if err != nil {
		return nil, err
	}
	if st.Size() != m.size || !st.ModTime().Equal(m.modTime) {
		f.Close()
		return nil, fmt.Errorf("%w: %s changed while it was being streamed; reload the playlist", failure.NotFound, m.name)
	}
	return f, nil
}
