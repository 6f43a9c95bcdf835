package main

import (
	"bufio"
	"context"
	"encoding/base64"
	"fmt"
	"io"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/hlsd/hlsd/transcoder/testmedia"
)

// An hlsd killed with SIGKILL runs no cleanup at all: its encoders must
// still die with it, or each crash would leave ffmpeg burning CPU for the
// length of a film.
func TestChildrenDieWithSIGKILL(t *testing.T) {
	if _, err := exec.LookPath("ffmpeg"); err != nil {
		t.Skip("ffmpeg not installed")
	}
	bin := filepath.Join(t.TempDir(), "hlsd")
	if out, err := exec.Command("go", "build", "-o", bin, ".").CombinedOutput(); err != nil {
		t.Fatalf("go build: %v\n%s", err, out)
	}
	media := t.TempDir()
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Minute)
	defer cancel()
	for _, clip := range []string{"h264.mp4", "long.mp4"} {
		src, err := testmedia.Make(ctx, testmedia.CacheDir(), clip)
		if err != nil {
			t.Fatal(err)
		}
		if err := os.Link(src, filepath.Join(media, clip)); err != nil {
			t.Fatal(err)
		}
	}

	cmd := exec.Command(bin, "--media", media, "--cache", t.TempDir(), "--listen", "127.0.0.1:0",
		"--hwaccel", "none", "--max-encoders", "3", "--log-level", "info")
	stderr, err := cmd.StderrPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	hlsd := cmd.Process.Pid
	killed := false
	t.Cleanup(func() {
		if !killed {
			cmd.Process.Kill()
			cmd.Wait()
		}
	})
	url := listenURL(t, stderr)

	// Requests on re-encoded rungs start encoders; their answers are not
	// awaited, hlsd dies before most are ready.
	client := &http.Client{Timeout: time.Minute}
	for _, p := range []string{
		"long.mp4/video/0/720p/segment-5.m4s",
		"long.mp4/video/0/360p/segment-40.m4s",
		"h264.mp4/video/0/360p/segment-0.m4s",
		"long.mp4/audio/0/aac/segment-3.m4s",
	} {
		file, rest, _ := strings.Cut(p, "/")
		u := url + "videos/" + base64.RawURLEncoding.EncodeToString([]byte(file)) + "/" + rest
		go func() {
			if resp, err := client.Get(u); err == nil {
				io.Copy(io.Discard, resp.Body)
				resp.Body.Close()
			}
		}()
	}

	// Wait until at least two ffmpeg encoders run under hlsd.
	var kids map[int]procStat
	deadline := time.Now().Add(time.Minute)
	for {
		kids = children(hlsd)
		encoders := 0
		for _, k := range kids {
			if k.comm == "ffmpeg" {
				encoders++
			}
		}
		if encoders >= 2 {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("after a minute hlsd runs %d ffmpeg children, want 2", encoders)
		}
		time.Sleep(50 * time.Millisecond)
	}
	t.Cleanup(func() {
		// Should the test fail, leave no encoder behind.
		for pid, k := range kids {
			if alive(pid, k) {
				syscall.Kill(pid, syscall.SIGKILL)
			}
		}
	})
	var running []string
	for pid, k := range kids {
		running = append(running, fmt.Sprintf("%d (%s)", pid, k.comm))
	}
	t.Logf("hlsd %d runs %s", hlsd, strings.Join(running, ", "))

	if err := cmd.Process.Signal(syscall.SIGKILL); err != nil {
		t.Fatal(err)
	}
	killed = true
	cmd.Wait()
	deadline = time.Now().Add(2 * time.Second)
	for {
		var left []string
		for pid, k := range kids {
			if alive(pid, k) {
				left = append(left, fmt.Sprintf("%d (%s)", pid, k.comm))
			}
		}
		if len(left) == 0 {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("2 s after hlsd was killed its children still run: %s", strings.Join(left, ", "))
		}
		time.Sleep(50 * time.Millisecond)
	}
}

var listeningRE = regexp.MustCompile(`hlsd listening.*"url": "(http://[^"]+)"`)

// listenURL reads hlsd's log until it says where it listens, then keeps
// draining the log so hlsd never blocks writing it.
func listenURL(t *testing.T, stderr io.Reader) string {
	t.Helper()
	found := make(chan string, 1)
	go func() {
		sc := bufio.NewScanner(stderr)
		for sc.Scan() {
			if m := listeningRE.FindStringSubmatch(sc.Text()); m != nil {
				found <- m[1]
			}
		}
		close(found)
	}()
	select {
	case u, ok := <-found:
		if !ok {
			t.Fatal("hlsd exited before it listened")
		}
		return u
	case <-time.After(30 * time.Second):
		t.Fatal("hlsd did not say where it listens within 30 s")
	}
	return ""
}

// procStat is what /proc/PID/stat says of a process. start, its start time
// in clock ticks since boot, tells the process apart from a later one
// given the same pid.
type procStat struct {
	comm  string
	state byte
	ppid  int
	start uint64
}

func readStat(pid int) (procStat, bool) {
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", pid))
	if err != nil {
		return procStat{}, false
	}
	// comm is in parentheses and may itself hold spaces and parentheses.
	s := string(b)
	open, end := strings.IndexByte(s, '('), strings.LastIndexByte(s, ')')
	if open < 0 || end < open {
		return procStat{}, false
	}
	f := strings.Fields(s[end+1:])
	if len(f) < 20 {
		return procStat{}, false
	}
	ppid, _ := strconv.Atoi(f[1])
	start, _ := strconv.ParseUint(f[19], 10, 64)
	return procStat{comm: s[open+1 : end], state: f[0][0], ppid: ppid, start: start}, true
}

// children are the processes whose parent is pid.
func children(pid int) map[int]procStat {
	kids := map[int]procStat{}
	dirs, _ := os.ReadDir("/proc")
	for _, d := range dirs {
		n, err := strconv.Atoi(d.Name())
		if err != nil {
			continue
		}
		if st, ok := readStat(n); ok && st.ppid == pid {
			kids[n] = st
		}
	}
	return kids
}

// alive says whether the process seen as was still runs: a zombie waiting
// to be reaped has ended, and a new process with its pid is another one.
func alive(pid int, was procStat) bool {
	st, ok := readStat(pid)
	return ok && st.start == was.start && st.state != 'Z' && st.state != 'X'
}
