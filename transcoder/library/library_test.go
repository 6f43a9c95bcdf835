package library

import (
	"errors"
	"io/fs"
	"os"
	"path/filepath"
	"syscall"
	"testing"

	"github.com/hlsd/hlsd/transcoder/failure"
)

// TestConfinement: names inside the root work, names that lead out of it
// (.., absolute, a symlink to outside) fail as Forbidden or NotFound, and
// what is not a regular file is not opened as media.
func TestConfinement(t *testing.T) {
	dir, outside := t.TempDir(), t.TempDir()
	must := func(err error) {
		t.Helper()
		if err != nil {
			t.Fatal(err)
		}
	}
	must(os.MkdirAll(filepath.Join(dir, "films"), 0o755))
	must(os.WriteFile(filepath.Join(dir, "films", "a.mp4"), []byte("a"), 0o644))
	must(os.WriteFile(filepath.Join(outside, "secret.mp4"), []byte("s"), 0o644))
	must(os.Symlink(filepath.Join(outside, "secret.mp4"), filepath.Join(dir, "films", "link.mp4")))
	must(os.Symlink("a.mp4", filepath.Join(dir, "films", "inside.mp4")))
	must(syscall.Mkfifo(filepath.Join(dir, "fifo.mp4"), 0o644))
	lib, err := Open(dir)
	must(err)
	defer lib.Close()

	for _, name := range []string{"films/a.mp4", "films/inside.mp4", "./films/../films/a.mp4"} {
		f, st, err := lib.Open(name)
		if err != nil || st.Size() != 1 {
			t.Errorf("Open(%q): %v", name, err)
			continue
		}
		f.Close()
	}
	for name, want := range map[string]error{
		"../" + filepath.Base(outside) + "/secret.mp4": failure.Forbidden,
		"films/link.mp4": failure.Forbidden,
		"films/none.mp4": failure.NotFound,
		"films":          failure.NotFound, // a directory
		"fifo.mp4":       failure.NotMedia, // opened without blocking, refused
		"/etc/hostname":  failure.Forbidden,
	} {
		if _, _, err := lib.Open(name); !errors.Is(err, want) {
			t.Errorf("Open(%q) = %v, want %v", name, err, want)
		}
	}
	if st, err := lib.Stat(""); err != nil || !st.IsDir() {
		t.Errorf("Stat of the root: %v", err)
	}
	if entries, err := lib.ReadDir("films/"); err != nil || len(entries) != 3 {
		t.Errorf("ReadDir(films): %d entries, %v", len(entries), err)
	}
	if _, err := lib.ReadDir("films/a.mp4"); !errors.Is(err, failure.NotFound) {
		t.Errorf("ReadDir of a file: %v", err)
	}

	// Writes: a temporary file linked under its final name, which never
	// replaces a file already there.
	must(lib.MkdirAll("imports/new"))
	f, err := lib.Create("imports/new/.tmp")
	must(err)
	f.Close()
	must(lib.Link("imports/new/.tmp", "imports/new/b.mp4"))
	if err := lib.Link("imports/new/.tmp", "imports/new/b.mp4"); !errors.Is(err, fs.ErrExist) {
		t.Errorf("Link over an existing file: %v", err)
	}
	must(lib.Remove("imports/new/.tmp"))
	if _, err := os.Stat(filepath.Join(dir, "imports", "new", "b.mp4")); err != nil {
		t.Error(err)
	}
	if _, err := lib.Create("../escape.mp4"); err == nil {
		t.Error("Create outside the root succeeded")
	}
}
