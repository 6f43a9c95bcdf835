// Package child starts ffmpeg and ffprobe the way every hlsd child must be
// started: reading the media file from a descriptor it inherits, in a
// process group of its own that is killed as a whole when its context ends,
// with the end of its stderr kept for error messages. Both keyframes and
// transcoder use it, so it depends on neither.
package child

import (
	"context"
	"fmt"
	"os"
	"os/exec"
	"strings"
	"sync"
	"syscall"
	"time"
)

// Input is the path a child gives ffmpeg or ffprobe as input: the media file
// passed to Command, inherited as descriptor 3. Opening it yields the very
// file the parent opened and checked; no path is walked again, so a symlink
// swapped into the library meanwhile cannot redirect the child.
const Input = "/proc/self/fd/3"

// WaitDelay bounds how long Wait waits for the child's output pipes after
// the process group was killed.
const WaitDelay = 5 * time.Second

// Command is exec.CommandContext for a child that reads media (nil for none)
// as Input. When ctx ends the whole process group gets SIGKILL: ffmpeg may
// have spawned helpers, and a plain kill would leave them running. The
// caller may close media once the command has started.
//
// Pdeathsig has the kernel kill the child when hlsd dies, however it dies
// (SIGKILL, OOM killer, a panic): no context is canceled then, and an
// orphaned encoder would run on for the length of a film. The kernel's
// "parent" is the thread that forked, not the process (prctl(2); Go issue
// 27505): the signal fires as soon as that thread exits. The Go runtime
// keeps its threads for the life of the process and ends one only when a
// goroutine returns while locked to it with runtime.LockOSThread. Neither
// hlsd nor its dependencies do that (the runtime's own locked goroutines
// never return), so no thread of ours exits early and nothing more is
// needed. Code that returns from a locked goroutine must not come in.
// The signal reaches the child only, not what it forks; ffmpeg and ffprobe
// fork nothing.
func Command(ctx context.Context, media *os.File, bin string, args ...string) *exec.Cmd {
	cmd := exec.CommandContext(ctx, bin, args...)
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true, Pdeathsig: syscall.SIGKILL}
	cmd.Cancel = func() error {
		if cmd.Process == nil {
			return nil
		}
		return syscall.Kill(-cmd.Process.Pid, syscall.SIGKILL)
	}
	cmd.WaitDelay = WaitDelay
	if media != nil {
		cmd.ExtraFiles = []*os.File{media}
	}
	return cmd
}

// Runner is a keyframes.Runner: ffprobe (bin) reading media as Input, the
// end of its stderr kept.
func Runner(bin string) func(ctx context.Context, media *os.File, args ...string) (*exec.Cmd, fmt.Stringer) {
	return func(ctx context.Context, media *os.File, args ...string) (*exec.Cmd, fmt.Stringer) {
		cmd := Command(ctx, media, bin, append(args, Input)...)
		tail := &Tail{Max: 4096}
		cmd.Stderr = tail
		return cmd, tail
	}
}

// Tail keeps the last Max bytes written to it: a chatty child cannot grow
// memory, and its final error message, which comes last, is kept.
type Tail struct {
	Max int

	mu  sync.Mutex
	buf []byte
}

func (t *Tail) Write(p []byte) (int, error) {
	t.mu.Lock()
	defer t.mu.Unlock()
	n := len(p)
	if len(p) > t.Max {
		p = p[len(p)-t.Max:]
	}
	if over := len(t.buf) + len(p) - t.Max; over > 0 {
		t.buf = append(t.buf[:0], t.buf[over:]...)
	}
	t.buf = append(t.buf, p...)
	return n, nil
}

// String is what was kept, without surrounding white space.
func (t *Tail) String() string {
	t.mu.Lock()
	defer t.mu.Unlock()
	return strings.TrimSpace(string(t.buf))
}

// LastLines is the last n lines of s, a child's stderr, for the message of
// its failure: ffmpeg says what went wrong last.
func LastLines(s string, n int) string {
	lines := strings.Split(strings.TrimSpace(s), "\n")
	if len(lines) > n {
		lines = lines[len(lines)-n:]
	}
	return strings.Join(lines, "\n")
}
