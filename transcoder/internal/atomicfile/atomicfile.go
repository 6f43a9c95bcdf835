// Package atomicfile writes files that readers see whole or not at all,
// and says when a write failed for want of disk space.
package atomicfile

import (
	"fmt"
	"os"
	"path/filepath"
	"syscall"
)

// Write writes b to path through a temporary file beside it and a rename,
// making path's directory if needed: a crash leaves the old file or the
// new one, never half of one. The temporary's name starts with ".tmp-", the
// prefix cleanups look for.
func Write(path string, b []byte) error {
	if err := os.MkdirAll(filepath.Dir(path), 0o755); err != nil {
		return err
	}
	f, err := os.CreateTemp(filepath.Dir(path), ".tmp-*")
	if err != nil {
		return err
	}
	if _, err := f.Write(b); err != nil {
		f.Close()
		os.Remove(f.Name())
		return err
	}
	if err := f.Close(); err != nil {
		os.Remove(f.Name())
		return err
	}
	if err := os.Rename(f.Name(), path); err != nil {
		os.Remove(f.Name())
		return err
	}
	return nil
}

// DiskFullHint explains a write failure when the disk holding dir is
// (nearly) out of space, which ffmpeg only reports as a short file.
func DiskFullHint(dir string) string {
	var st syscall.Statfs_t
	if syscall.Statfs(dir, &st) != nil {
		return ""
	}
	if free := int64(st.Bavail) * st.Bsize; free < 1<<20 {
		return fmt.Sprintf(" (no space left on the cache disk: %d KiB free)", free>>10)
	}
	return ""
}
