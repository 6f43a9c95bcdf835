// Package library is the media root: the one os.Root every other package
// reaches the library through. cmd/hlsd opens it once and hands it to the
// server (listings), the transcoder (media and sidecars) and the jobs
// (imports). os.Root checks every step of every path, symlinks included,
// at the moment it is used, so a symlink swapped in after a check cannot
// lead out of the root.
//
// It imports only transcoder/failure.
package library

import (
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"strings"
	"syscall"

	"github.com/hlsd/hlsd/transcoder/failure"
)

// Library is an open media root. Names are slash-separated and relative to
// it; "" is the root itself.
type Library struct {
	dir  string
	root *os.Root
}

// Open opens the media root dir.
func Open(dir string) (*Library, error) {
	root, err := os.OpenRoot(dir)
	if err != nil {
		return nil, fmt.Errorf("media directory: %w", err)
	}
	return &Library{dir: dir, root: root}, nil
}

// Close closes the root; files already open stay usable.
func (l *Library) Close() error { return l.root.Close() }

// Dir is the root's path on disk, for messages about its disk.
func (l *Library) Dir() string { return l.dir }

// local is name as os.Root takes it. An absolute name or one that climbs
// out is left as it is, for the root to refuse.
func local(name string) string {
	name = strings.TrimSuffix(name, "/") // a directory from path.Split
	if name == "" {
		return "."
	}
	return filepath.FromSlash(name)
}

// Open opens the regular file name for reading, with its FileInfo.
func (l *Library) Open(name string) (*os.File, os.FileInfo, error) {
	// O_NONBLOCK: a FIFO planted in the library must not hang the request.
	f, err := l.root.OpenFile(local(name), os.O_RDONLY|syscall.O_NONBLOCK, 0)
	if err != nil {
		return nil, nil, Error(name, err)
	}
	st, err := f.Stat()
	if err != nil {
		f.Close()
		return nil, nil, fmt.Errorf("%w: cannot stat %s: %v", failure.NotFound, name, err)
	}
	switch {
	case st.IsDir():
		f.Close()
		return nil, nil, fmt.Errorf("%w: %s is a directory, not a media file", failure.NotFound, name)
	case !st.Mode().IsRegular():
		f.Close()
		return nil, nil, fmt.Errorf("%w: %s is not a regular file", failure.NotMedia, name)
	}
	return f, st, nil
}

// Stat follows name's symlinks, refusing any that lead out of the root.
func (l *Library) Stat(name string) (os.FileInfo, error) {
	st, err := l.root.Stat(local(name))
	if err != nil {
		return nil, Error(name, err)
	}
	return st, nil
}

// ReadDir lists the directory name, in no particular order.
func (l *Library) ReadDir(name string) ([]os.DirEntry, error) {
	d, err := l.root.Open(local(name))
	if err != nil {
		return nil, Error(name, err)
	}
	defer d.Close()
	entries, err := d.ReadDir(-1)
	if err != nil {
		return nil, fmt.Errorf("%w: not a directory: %s", failure.NotFound, name)
	}
	return entries, nil
}

// Create makes (or empties) the file name for writing and reading.
func (l *Library) Create(name string) (*os.File, error) {
	return l.root.OpenFile(local(name), os.O_RDWR|os.O_CREATE|os.O_TRUNC, 0o644)
}

// MkdirAll makes the directory name and its parents.
func (l *Library) MkdirAll(name string) error { return l.root.MkdirAll(local(name), 0o755) }

// Link gives the file oldname the second name newname; it fails with
// fs.ErrExist rather than replace a file.
func (l *Library) Link(oldname, newname string) error {
	return l.root.Link(local(oldname), local(newname))
}

// Remove removes the file or empty directory name.
func (l *Library) Remove(name string) error { return l.root.Remove(local(name)) }

// Error classifies the error of an operation on name: a file that is not
// there (failure.NotFound), or one outside the root or not readable
// (failure.Forbidden).
func Error(name string, err error) error {
	switch {
	case errors.Is(err, fs.ErrNotExist):
		return fmt.Errorf("%w: no such file: %s", failure.NotFound, name)
	case errors.Is(err, fs.ErrPermission):
		return fmt.Errorf("%w: %s is not readable", failure.Forbidden, name)
	case strings.Contains(err.Error(), "escapes"):
		// os.Root's "path escapes from parent" has no exported sentinel.
		return fmt.Errorf("%w: %s leads outside the media root", failure.Forbidden, name)
	}
	return fmt.Errorf("%w: cannot open %s: %v", failure.NotFound, name, errors.Unwrap(err))
}
