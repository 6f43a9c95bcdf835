package keyframes

import (
	"bufio"
	"context"
	"fmt"
	"os"
)

// scan runs ffprobe over f and feeds every video packet into k as the
// output arrives. It reads packets without decoding, which is what makes it
// fast enough to run on demand. path only names the file in messages.
func (s *Store) scan(path string, f *os.File, startTime float64, k *Keyframes) error {
	// A private context lets a read error stop ffprobe without touching
	// the Store's context.
	ctx, cancel := context.WithCancel(s.ctx)
	defer cancel()

	if s.runner == nil {
		return fmt.Errorf("keyframes: %s needs a packet scan, and the store has no ffprobe runner", path)
	}
	// V:0 rather than v:0 skips attached pictures such as cover art.
	cmd, stderr := s.runner(ctx, f,
		"-loglevel", "error",
		"-fflags", "+genpts",
		"-select_streams", "V:0",
		"-show_entries", "packet=pts_time,size,flags",
		"-of", "csv=print_section=0")
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
