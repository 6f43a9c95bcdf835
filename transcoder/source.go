package transcoder

import (
	"context"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"

	"github.com/hlsd/hlsd/transcoder/child"
)

// openFile opens name (slash-separated, relative to the media root) through
// os.Root, which refuses "..", absolute paths and symlinks that lead out of
// the root at every step of the walk, without the check-then-use gap of
// resolving a path first and opening it later.
func (t *Transcoder) openFile(name string) (*os.File, os.FileInfo, error) {
	// O_NONBLOCK: a FIFO planted in the library must not hang the request.
	f, err := t.root.OpenFile(filepath.FromSlash(name), os.O_RDONLY|syscall.O_NONBLOCK, 0)
	if err != nil {
		return nil, nil, RootError(name, err)
	}
	st, err := f.Stat()
	if err != nil {
		f.Close()
		return nil, nil, fmt.Errorf("%w: cannot stat %s: %v", ErrNotFound, name, err)
	}
	switch {
	case st.IsDir():
		f.Close()
		return nil, nil, fmt.Errorf("%w: %s is a directory, not a media file", ErrNotFound, name)
	case !st.Mode().IsRegular():
		f.Close()
		return nil, nil, fmt.Errorf("%w: %s is not a regular file", ErrNotMedia, name)
	}
	return f, st, nil
}

func exists(path string) bool {
	_, err := os.Stat(path)
	return err == nil
}

// diskFullHint explains a write failure when the disk holding dir is
// (nearly) out of space, which ffmpeg only reports as a short file.
func diskFullHint(dir string) string {
	var st syscall.Statfs_t
	if syscall.Statfs(dir, &st) != nil {
		return ""
	}
	if free := int64(st.Bavail) * st.Bsize; free < 1<<20 {
		return fmt.Sprintf(" (no space left on the cache disk: %d KiB free)", free>>10)
	}
	return ""
}

// RootError classifies the error of an os.Root operation on name: a file
// that is not there (ErrNotFound), or one that is outside the root or not
// readable (ErrForbidden).
func RootError(name string, err error) error {
	switch {
	case errors.Is(err, fs.ErrNotExist):
		return fmt.Errorf("%w: no such file: %s", ErrNotFound, name)
	case errors.Is(err, fs.ErrPermission):
		return fmt.Errorf("%w: %s is not readable", ErrForbidden, name)
	case strings.Contains(err.Error(), "escapes"):
		// os.Root's "path escapes from parent" has no exported sentinel.
		return fmt.Errorf("%w: %s leads outside the media root", ErrForbidden, name)
	}
	return fmt.Errorf("%w: cannot open %s: %v", ErrNotFound, name, errors.Unwrap(err))
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
		return nil, nil, nil, fmt.Errorf("%w: %v", ErrEncoder, err)
	}
	if err := cmd.Start(); err != nil {
		return nil, nil, nil, fmt.Errorf("%w: cannot start ffmpeg: %v", ErrEncoder, err)
	}
	return cmd, stdout, stderr, nil
}

// source opens the file of m for one child process, and checks it is still
// the version m was built from: a file replaced while being streamed must
// not be cut with the old one's plan.
func (t *Transcoder) source(m *media) (*os.File, error) {
	f, st, err := t.openFile(m.name)
	if err != nil {
		return nil, err
	}
	if st.Size() != m.size || !st.ModTime().Equal(m.modTime) {
		f.Close()
		return nil, fmt.Errorf("%w: %s changed while it was being streamed; reload the playlist", ErrNotFound, m.name)
	}
	return f, nil
}
