package main

import (
	"bytes"
	"context"
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/hlsd/hlsd/transcoder/jobs"
	"github.com/hlsd/hlsd/transcoder/testmedia"
)

// hlsOrigin serves a test clip as MPEG-TS HLS at /vod/ and, with each
// segment sent after delay, at /slow/.
func hlsOrigin(t *testing.T, delay time.Duration) string {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	src, err := testmedia.Make(ctx, testmedia.CacheDir(), "h264.mp4")
	if err != nil {
		t.Fatal(err)
	}
	dir := t.TempDir()
	for _, sub := range []string{"vod", "slow"} {
		if err := testmedia.HLS(ctx, src, filepath.Join(dir, sub), "-hls_playlist_type", "vod"); err != nil {
			t.Fatal(err)
		}
	}
	files := http.FileServer(http.Dir(dir))
	hs := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if strings.HasPrefix(r.URL.Path, "/slow/") && strings.HasSuffix(r.URL.Path, ".ts") {
			select {
			case <-time.After(delay):
			case <-r.Context().Done():
				return
			}
		}
		files.ServeHTTP(w, r)
	}))
	t.Cleanup(hs.Close)
	return hs.URL
}

func buildHLSD(t *testing.T) string {
	t.Helper()
	bin := filepath.Join(t.TempDir(), "hlsd")
	if out, err := exec.Command("go", "build", "-o", bin, ".").CombinedOutput(); err != nil {
		t.Fatalf("go build: %v\n%s", err, out)
	}
	return bin
}

// TestImportCommand runs `hlsd import` standalone: a progress bar on
// stderr, the file made on stdout, and the file in the library.
func TestImportCommand(t *testing.T) {
	if _, err := exec.LookPath("ffmpeg"); err != nil {
		t.Skip("ffmpeg not installed")
	}
	origin := hlsOrigin(t, 0)
	bin := buildHLSD(t)
	media := t.TempDir()
	cmd := exec.Command(bin, "import", "--media", media, "--cache", t.TempDir(), "--url", origin+"/vod/index.m3u8", "--folder", "Rec")
	var stdout, stderr bytes.Buffer
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	if err := cmd.Run(); err != nil {
		t.Fatalf("hlsd import: %v\n%s", err, stderr.String())
	}
	if !strings.Contains(stderr.String(), "100%") || !strings.Contains(stdout.String(), "Rec/vod.mp4\t"+origin) {
		t.Errorf("stdout %q, stderr %q", stdout.String(), stderr.String())
	}
	if st, err := os.Stat(filepath.Join(media, "Rec/vod.mp4")); err != nil || st.Size() == 0 {
		t.Errorf("Rec/vod.mp4: %v", err)
	}
	out, err := exec.Command(bin, "import", "--media", media, "--url", "file:///etc/passwd").CombinedOutput()
	if code := exitCode(err); code != 1 || !strings.Contains(string(out), "only http and https") {
		t.Errorf("importing a local file: exit %d, %s", code, out)
	}
}

func exitCode(err error) int {
	if ee, ok := err.(*exec.ExitError); ok {
		return ee.ExitCode()
	}
	if err != nil {
		return -1
	}
	return 0
}

// TestImportSurvivesSIGKILL: hlsd is killed mid-import. Its ffmpeg dies with
// it; the next start resumes the job, says so, finishes it and removes the
// partial file. Then `hlsd import --server` imports through the server.
func TestImportSurvivesSIGKILL(t *testing.T) {
	if _, err := exec.LookPath("ffmpeg"); err != nil {
		t.Skip("ffmpeg not installed")
	}
	origin := hlsOrigin(t, 500*time.Millisecond)
	bin := buildHLSD(t)
	media, cache := t.TempDir(), t.TempDir()
	start := func() (*exec.Cmd, string) {
		cmd := exec.Command(bin, "--media", media, "--cache", cache, "--listen", "127.0.0.1:0", "--hwaccel", "none", "--allow-import")
		stderr, err := cmd.StderrPipe()
		if err != nil {
			t.Fatal(err)
		}
		if err := cmd.Start(); err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { cmd.Process.Kill(); cmd.Wait() })
		return cmd, listenURL(t, stderr)
	}
	getJob := func(url, id string) jobs.Job {
		var j jobs.Job
		resp, err := http.Get(url + "api/jobs/" + id)
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		json.NewDecoder(resp.Body).Decode(&j)
		return j
	}
	cmd, url := start()
	body, _ := json.Marshal(map[string]any{"type": "import", "urls": []string{origin + "/slow/index.m3u8"}, "folder": "Rec"})
	resp, err := http.Post(url+"api/jobs", "application/json", bytes.NewReader(body))
	if err != nil {
		t.Fatal(err)
	}
	var job jobs.Job
	json.NewDecoder(resp.Body).Decode(&job)
	resp.Body.Close()
	deadline := time.Now().Add(time.Minute)
	for getJob(url, job.ID).Done <= 0 {
		if time.Now().After(deadline) {
			t.Fatal("the import made no progress in a minute")
		}
		time.Sleep(50 * time.Millisecond)
	}
	kids := children(cmd.Process.Pid)
	cmd.Process.Signal(syscall.SIGKILL)
	cmd.Wait()
	time.Sleep(500 * time.Millisecond)
	for pid, k := range kids {
		if alive(pid, k) {
			t.Errorf("%d (%s) outlived the SIGKILLed hlsd", pid, k.comm)
		}
	}

	_, url = start()
	var j jobs.Job
	deadline = time.Now().Add(time.Minute)
	for {
		j = getJob(url, job.ID)
		if j.State != jobs.JobQueued && j.State != jobs.JobRunning {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("the resumed import did not finish in a minute: %+v", j)
		}
		time.Sleep(100 * time.Millisecond)
	}
	t.Logf("after the restart: %s, note %q", j.State, j.Note)
	if j.State != jobs.JobDone || !strings.Contains(j.Note, "restarted") {
		t.Errorf("resumed job %s, note %q, error %q", j.State, j.Note, j.Error)
	}
	entries, _ := os.ReadDir(filepath.Join(media, "Rec"))
	if len(entries) != 1 || entries[0].Name() != "slow.mp4" {
		t.Errorf("Rec after the resumed import: %v, want slow.mp4 alone", entries)
	}

	out, err := exec.Command(bin, "import", "--server", url, "--url", origin+"/vod/index.m3u8", "--folder", "Rec").Output()
	if err != nil || !strings.Contains(string(out), "Rec/vod.mp4") {
		t.Errorf("hlsd import --server: %v, %q", err, out)
	}
}
