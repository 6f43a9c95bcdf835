package keyframes

import (
	"bufio"
	"context"
	"fmt"
	"os"

	"github.com/hlsd/hlsd/transcoder/child"
)

// scan runs ffprobe over f and feeds every video packet into k as the
// output arrives. It reads packets without decoding, which is what makes it
// fast enough to run on demand. path only names the file in messages.
func (s *Store) scan(path string, f *os.File, startTime float64, k *Keyframes) error {
	// A private context lets a read error stop ffprobe without touching
	// the Store's context.
	ctx, cancel := context.WithCancel(s.ctx)
	defer cancel()

	// V:0 rather than v:0 skips attached pictures such as cover art.
	cmd := child.Command(ctx, f, s.ffprobe,
		"-loglevel", "error",
		"-fflags", "+genpts",
		"-select_streams", "V:0",
		"-show_entries", "packet=pts_time,size,flags",
		"-of", "csv=print_section=0",
		child.Input)
	stderr := &child.Tail{Max: 4096}
	cmd.Stderr = stderr
	stdout, err := cmd.StdoutPipe()
	if err != nil {
		return fmt.Errorf("keyframes: ffprobe on %s: %w", path, err)
	}
	if err := cmd.Start(); err != nil {
		return fmt.Errorf("keyframes: start ffprobe on %s: %w", path, err)
	}

	sc := bufio.NewScanner(stdout)
	sc.Buffer(make([]byte, 64*1024), 1024*1024)
	for sc.Scan() {
		if pts, size, key, ok := ParseLine(sc.Text()); ok {
			k.add(pts-startTime, size, key)
		}
	}
	readErr := sc.Err()
	if readErr != nil {
		// ffprobe would block on a full pipe nobody reads any more.
		cancel()
	}
	waitErr := cmd.Wait()

	switch {
	case s.ctx.Err() != nil:
		return fmt.Errorf("keyframes: scan of %s canceled: %w", path, s.ctx.Err())
	case readErr != nil:
		return fmt.Errorf("keyframes: reading ffprobe output for %s: %w", path, readErr)
	case waitErr != nil:
		if tail := stderr.String(); tail != "" {
			return fmt.Errorf("keyframes: ffprobe failed on %s: %w: %s", path, waitErr, tail)
		}
		return fmt.Errorf("keyframes: ffprobe failed on %s: %w", path, waitErr)
	}
	return nil
}
