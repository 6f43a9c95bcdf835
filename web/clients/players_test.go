package clients_test

import (
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"go.uber.org/zap"
	"go.uber.org/zap/zaptest"

	"github.com/hlsd/hlsd/web/e2e"
)

// TestVLCAndMPV plays each corpus file but the 32-minute one, and the
// minute of 1080p HEVC with 5.1 AC-3, in mpv and VLC (Debian's, with
// ffmpeg's and VLC's own HLS readers) the way people use them on a
// master's URL: mpv from the start to the end of the file (at 16x, with
// null outputs; not the minute of 1080p) and, seeking to the middle, on the
// MPEG-TS master; VLC from 4 s before the end to the end. Each must end the file without an
// error. (mpv's HLS reader, libavformat 59's, cannot seek in fMP4 HLS at
// all, ffmpeg's own HLS muxer's output included: it mixes up the init
// section; its seek is checked where it works.)
func TestVLCAndMPV(t *testing.T) {
	if testing.Short() {
		t.Skip("-short: no players")
	}
	t.Parallel()
	for _, bin := range []string{"mpv", "cvlc"} {
		if _, err := exec.LookPath(bin); err != nil {
			t.Fatalf("%s not found: `make e2e-deps` installs mpv and VLC", bin)
		}
	}
	ctx, cancel := context.WithTimeout(context.Background(), 6*time.Minute)
	defer cancel()
	media := t.TempDir()
	var names []string
	for _, n := range append(append([]string{}, e2e.Corpus...), "hevc-1080.mkv") {
		if n != "long.mp4" {
			names = append(names, n)
		}
	}
	files, err := e2e.LibraryOf(ctx, media, names...)
	if err != nil {
		t.Fatal(err)
	}
	srv, err := e2e.Start(media, t.TempDir(), zaptest.NewLogger(t, zaptest.Level(zap.WarnLevel)), "")
	if err != nil {
		t.Fatal(err)
	}
	defer srv.Close()
	run := func(t *testing.T, want string, name string, args ...string) {
		t.Helper()
		runCtx, cancel := context.WithTimeout(ctx, 90*time.Second)
		defer cancel()
		start := time.Now()
		out, err := exec.CommandContext(runCtx, name, args...).CombinedOutput()
		text := string(out)
		if err != nil || !strings.Contains(text, want) || strings.Contains(text, "Errors when loading") || vlcError(text) != "" {
			t.Fatalf("%s did not play to the end (%v; %s):\n%s", name, err, vlcError(text), tailLines(text, 15))
		}
		t.Logf("%s: to the end in %v", name, time.Since(start).Round(time.Millisecond))
	}
	for _, f := range files {
		t.Run(f.Name, func(t *testing.T) {
			master := srv.URL + "/videos/" + f.ID + "/master.m3u8"
			mpv := []string{"--no-config", "--vo=null", "--ao=null", "--untimed", "--speed=16", "--msg-level=all=info"}
			if f.Name != "hevc-1080.mkv" { // a minute of 1080p is made about as fast as it plays
				run(t, "(End of file)", "mpv", append(mpv, master+"?clientId=mpv")...)
			}
			run(t, "(End of file)", "mpv", append(mpv, "--start=50%", master+"?clientId=mpv-ts&container=ts")...)
			duration := durationOf(t, srv.URL+"/videos/"+f.ID+"/info")
			vlc := []string{"cvlc", "-I", "dummy", "--play-and-exit", "--vout=dummy", "--aout=dummy",
				fmt.Sprintf("--start-time=%.0f", duration-4), master + "?clientId=vlc"}
			name := vlc[0]
			if os.Geteuid() == 0 {
				// VLC refuses to run as root.
				name, vlc = "runuser", append([]string{"-u", "nobody", "--", "env", "HOME=" + os.TempDir()}, vlc...)
			} else {
				vlc = vlc[1:]
			}
			run(t, "end of playlist", name, vlc...)
		})
	}
}

// vlcError is the first error line of VLC's about the stream: its
// reader, demuxers and decoders; what its core says about the desktop it
// runs without (interfaces, hotkeys, D-Bus) is left out.
func vlcError(out string) string {
	for _, l := range strings.Split(out, "\n") {
		_, msg, ok := strings.Cut(l, "] ")
		if !ok || !strings.Contains(msg, " error: ") || strings.HasPrefix(msg, "main ") ||
			strings.Contains(msg, "dbus") || strings.Contains(msg, "screensaver") {
			continue
		}
		return l
	}
	return ""
}

func tailLines(s string, n int) string {
	lines := strings.Split(strings.TrimSpace(s), "\n")
	return strings.Join(lines[max(0, len(lines)-n):], "\n")
}

func durationOf(t *testing.T, url string) float64 {
	t.Helper()
	resp, err := http.Get(url)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	var info struct {
		Duration float64 `json:"duration"`
	}
	if err := json.NewDecoder(resp.Body).Decode(&info); err != nil {
		t.Fatal(err)
	}
	return info.Duration
}

// TestDownloadInPlayers: download.mp4 of an HEVC file with 5.1 AC-3, as
// the copy and as a rung, plays in mpv from the start to the end and from
// the middle, and in VLC (on its link) from 6 s before the end, without an
// error.
func TestDownloadInPlayers(t *testing.T) {
	if testing.Short() {
		t.Skip("-short: no players")
	}
	t.Parallel()
	ctx, cancel := context.WithTimeout(context.Background(), 4*time.Minute)
	defer cancel()
	media := t.TempDir()
	files, err := e2e.LibraryOf(ctx, media, "hevc.mkv")
	if err != nil {
		t.Fatal(err)
	}
	srv, err := e2e.Start(media, t.TempDir(), zaptest.NewLogger(t, zaptest.Level(zap.WarnLevel)), "")
	if err != nil {
		t.Fatal(err)
	}
	defer srv.Close()
	dir := t.TempDir()
	for _, q := range []string{"original", "360p"} {
		t.Run(q, func(t *testing.T) {
			path := filepath.Join(dir, q+".mp4")
			link := srv.URL + "/videos/" + files[0].ID + "/download.mp4?quality=" + q
			start := time.Now()
			b := mustGet(t, link)
			t.Logf("downloaded %d bytes in %v", len(b), time.Since(start).Round(time.Millisecond))
			if err := os.WriteFile(path, b, 0o644); err != nil {
				t.Fatal(err)
			}
			play := func(want, name string, args ...string) {
				t.Helper()
				runCtx, cancel := context.WithTimeout(ctx, time.Minute)
				defer cancel()
				start := time.Now()
				out, err := exec.CommandContext(runCtx, name, args...).CombinedOutput()
				if text := string(out); err != nil || !strings.Contains(text, want) || vlcError(text) != "" {
					t.Fatalf("%s did not play it to the end (%v; %s):\n%s", name, err, vlcError(text), tailLines(text, 15))
				}
				t.Logf("%s %v: to the end in %v", name, args[len(args)-2:], time.Since(start).Round(time.Millisecond))
			}
			mpv := []string{"--no-config", "--vo=null", "--ao=null", "--untimed", "--speed=16", "--msg-level=all=info"}
			play("(End of file)", "mpv", append(mpv, path)...)
			play("(End of file)", "mpv", append(mpv, "--start=50%", path)...)
			// VLC on the link, complete now: it seeks with ranges.
			vlc := []string{"cvlc", "-I", "dummy", "--play-and-exit", "--vout=dummy", "--aout=dummy", "--start-time=14", link}
			name := vlc[0]
			if os.Geteuid() == 0 {
				name, vlc = "runuser", append([]string{"-u", "nobody", "--", "env", "HOME=" + os.TempDir()}, vlc...)
			} else {
				vlc = vlc[1:]
			}
			play("end of playlist", name, vlc...)
		})
	}
}
