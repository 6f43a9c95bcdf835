package server

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/hlsd/hlsd/transcoder"
)

// frames is what ffprobe reads of one stream of a file: its packets'
// presentation times, in decoding order.
type frames struct{ pts []float64 }

func (f frames) start() float64 { return slices.Min(f.pts) }
func (f frames) last() float64  { return slices.Max(f.pts) }

func packetSpan(t *testing.T, path, stream string) frames {
	t.Helper()
	out, err := exec.Command("ffprobe", "-v", "error", "-select_streams", stream, "-show_entries",
		"packet=pts_time", "-of", "csv=p=0", path).Output()
	if err != nil {
		t.Fatalf("ffprobe %s: %v", path, err)
	}
	var f frames
	for _, l := range strings.Fields(string(out)) {
		if pts, err := strconv.ParseFloat(strings.TrimSuffix(l, ","), 64); err == nil {
			f.pts = append(f.pts, pts)
		}
	}
	if len(f.pts) == 0 {
		t.Fatalf("%s: no packets in stream %s", path, stream)
	}
	return f
}

// frameHash decodes the first video frame at or after at, seeking first
// (with the file's index) or decoding from the start, and returns the
// hash of its picture.
func frameHash(t *testing.T, path string, at float64, seek bool) string {
	t.Helper()
	args := []string{"-v", "error"}
	filter := fmt.Sprintf("select='gte(t\\,%.3f)'", at)
	if seek {
		args = append(args, "-ss", fmt.Sprintf("%.3f", at))
		filter = "null"
	}
	args = append(args, "-i", path, "-map", "0:v:0", "-vf", filter, "-frames:v", "1", "-copyts", "-f", "framemd5", "-")
	out, err := exec.Command("ffmpeg", args...).Output()
	if err != nil {
		t.Fatalf("ffmpeg %v: %v", args, err)
	}
	for _, l := range strings.Split(string(out), "\n") {
		if strings.HasPrefix(l, "#") || strings.TrimSpace(l) == "" {
			continue
		}
		f := strings.Split(l, ",")
		return strings.TrimSpace(f[len(f)-1])
	}
	t.Fatalf("ffmpeg %v: no frame", args)
	return ""
}

// TestDownload fetches a rung and an original (HEVC with 5.1 AC-3) as one
// MP4 each, and checks what a person taking it on a plane gets: an
// attachment that ffmpeg decodes without an error, the video where the
// source has it to within one frame at both ends, the chosen audio track
// as AAC stereo, a seek that lands on the very frame a decode from the
// start shows there, and, once complete, the file again with its length
// and ranges.
func TestDownload(t *testing.T) {
	e := newEnv(t, transcoder.Config{}, "h264.mp4", "hevc.mkv")
	for _, c := range []struct {
		file, quality, audio string
		vcodec               string
		frame                float64 // one frame, seconds
	}{
		{"h264.mp4", "240p", "", "h264", 1.0 / 24},
		{"hevc.mkv", "original", "0", "hevc", 1.0 / 30}, // 5.1 AC-3 in the source
	} {
		t.Run(c.file+"/"+c.quality, func(t *testing.T) {
			u := e.videoURL(c.file) + "/download.mp4?quality=" + c.quality
			if c.audio != "" {
				u += "&audio=" + c.audio
			}
			resp, err := http.Get(u)
			if err != nil {
				t.Fatal(err)
			}
			b, err := io.ReadAll(resp.Body)
			resp.Body.Close()
			if err != nil || resp.StatusCode != http.StatusOK {
				t.Fatalf("status %d, %v: %.200s", resp.StatusCode, err, b)
			}
			base := strings.TrimSuffix(c.file, filepath.Ext(c.file))
			if cd := resp.Header.Get("Content-Disposition"); cd != fmt.Sprintf(`attachment; filename="%s (%s).mp4"`, base, c.quality) {
				t.Errorf("Content-Disposition %q", cd)
			}
			if resp.ContentLength >= 0 {
				t.Errorf("the first download, sent as it is made, has a Content-Length (%d)", resp.ContentLength)
			}
			path := filepath.Join(t.TempDir(), "d.mp4")
			if err := os.WriteFile(path, b, 0o644); err != nil {
				t.Fatal(err)
			}
			if out, err := exec.Command("ffmpeg", "-v", "error", "-xerror", "-i", path, "-f", "null", "-").CombinedOutput(); err != nil || len(out) > 0 {
				t.Fatalf("ffmpeg does not decode it cleanly (%v):\n%s", err, out)
			}
			out, err := exec.Command("ffprobe", "-v", "error", "-show_entries", "stream=codec_type,codec_name,channels",
				"-of", "csv=p=0", path).Output()
			if err != nil {
				t.Fatal(err)
			}
			want := c.vcodec + ",video\naac,audio,2"
			if got := strings.TrimSpace(strings.ReplaceAll(string(out), ",\n", "\n")); got != want {
				t.Errorf("streams:\n%s\nwant:\n%s", got, want)
			}
			src := filepath.Join(e.media, c.file)
			sv, dv := packetSpan(t, src, "v:0"), packetSpan(t, path, "v:0")
			if len(sv.pts) != len(dv.pts) {
				t.Errorf("%d video frames, the source has %d", len(dv.pts), len(sv.pts))
			}
			// Its first and last frames are where the source has them: the
			// same duration, to within one frame.
			if !near(dv.start(), sv.start(), c.frame) || !near(dv.last(), sv.last(), c.frame) {
				t.Errorf("video frames from %.3f to %.3f s, the source's from %.3f to %.3f", dv.start(), dv.last(), sv.start(), sv.last())
			}
			if da := packetSpan(t, path, "a:0"); !near(da.last(), sv.last(), 0.1) || da.start() > 0.05 {
				t.Errorf("audio from %.3f to %.3f s, the source's video from %.3f to %.3f", da.start(), da.last(), sv.start(), sv.last())
			}
			// A seek lands on the frame a decode from the start shows there.
			for _, at := range []float64{5.5, 13.3} {
				seeked, decoded := frameHash(t, path, at, true), frameHash(t, path, at, false)
				if seeked != decoded {
					t.Errorf("seek to %.1f s shows another picture than a decode from the start", at)
				}
			}

			// Complete now: the same bytes, with a length and ranges.
			status, again, h := e.get(u)
			if status != http.StatusOK || !bytes.Equal(again, b) || h.Get("Content-Length") != strconv.Itoa(len(b)) {
				t.Errorf("complete file: status %d, %d bytes (Content-Length %q), want the %d bytes made", status, len(again), h.Get("Content-Length"), len(b))
			}
			req, _ := http.NewRequest(http.MethodGet, u, nil)
			req.Header.Set("Range", "bytes=1000-1999")
			rr, err := http.DefaultClient.Do(req)
			if err != nil {
				t.Fatal(err)
			}
			part, _ := io.ReadAll(rr.Body)
			rr.Body.Close()
			if rr.StatusCode != http.StatusPartialContent || !bytes.Equal(part, b[1000:2000]) {
				t.Errorf("range: status %d, %d bytes", rr.StatusCode, len(part))
			}
		})
	}
	for _, c := range []struct {
		query  string
		status int
	}{
		{"quality=999p", 400}, {"", 400}, {"quality=240p&audio=x", 400}, {"quality=240p&audio=7", 404}, {"quality=2160p", 404},
	} {
		if status, b, _ := e.get(e.videoURL("h264.mp4") + "/download.mp4?" + c.query); status != c.status || !strings.Contains(string(b), `"error"`) {
			t.Errorf("%s: status %d (%s), want %d with a JSON error", c.query, status, b, c.status)
		}
	}
}

// encodeStarts counts the video re-encodes started so far.
func (e *testEnv) encodeStarts() float64 {
	mfs, err := e.reg.Gather()
	if err != nil {
		e.t.Fatal(err)
	}
	n := 0.0
	for _, mf := range mfs {
		if mf.GetName() != "hlsd_encoder_starts_total" {
			continue
		}
		for _, m := range mf.GetMetric() {
			for _, l := range m.GetLabel() {
				if l.GetName() == "class" && l.GetValue() == "encode" {
					n += m.GetCounter().GetValue()
				}
			}
		}
	}
	return n
}

// TestDownloadShared: downloads of the same rung asked for at once are one
// download made once, by one encoder, and read by all; /api/activity shows
// it with its readers and its progress.
func TestDownloadShared(t *testing.T) {
	e := newEnv(t, transcoder.Config{}, "h264-1080.mp4")
	u := e.videoURL("h264-1080.mp4") + "/download.mp4?quality=360p"
	var wg sync.WaitGroup
	bodies := make([][]byte, 4)
	start := make(chan struct{}) // all at once: a late one must find the download whole
	for i := range bodies {
		wg.Add(1)
		go func() {
			defer wg.Done()
			<-start
			resp, err := http.Get(u)
			if err != nil {
				t.Error(err)
				return
			}
			defer resp.Body.Close()
			if resp.StatusCode != http.StatusOK {
				t.Errorf("download %d: %s", i, resp.Status)
			}
			bodies[i], _ = io.ReadAll(resp.Body)
		}()
	}
	close(start)
	var seen struct {
		Downloads []transcoder.DownloadActivity `json:"downloads"`
	}
	eventually(t, 30*time.Second, "the download in /api/activity with its four readers and some progress", func() bool {
		if err := json.Unmarshal(e.mustGet(e.url+"/api/activity"), &seen); err != nil {
			t.Fatal(err)
		}
		return len(seen.Downloads) == 1 && seen.Downloads[0].Readers == len(bodies) && seen.Downloads[0].Done > 0 &&
			seen.Downloads[0].Total > 19 && seen.Downloads[0].Quality == "360p"
	})
	wg.Wait()
	for i := range bodies {
		if len(bodies[0]) == 0 || !bytes.Equal(bodies[0], bodies[i]) {
			t.Fatalf("downloads 0 and %d differ: %d and %d bytes", i, len(bodies[0]), len(bodies[i]))
		}
	}
	if n := e.encodeStarts(); n != 1 {
		t.Errorf("%v video encoder runs for %d downloads of one rung, want 1", n, len(bodies))
	}
}

// TestDownloadCancel: a client that leaves stops the encoder its download
// ran, and nothing of the unfinished file is left.
func TestDownloadCancel(t *testing.T) {
	e := newEnv(t, transcoder.Config{}, "long.mp4")
	ctx, cancel := context.WithCancel(context.Background())
	req, _ := http.NewRequestWithContext(ctx, http.MethodGet, e.videoURL("long.mp4")+"/download.mp4?quality=480p", nil)
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := io.ReadFull(resp.Body, make([]byte, 64<<10)); err != nil {
		t.Fatal(err)
	}
	if len(ffmpegChildren()) == 0 {
		t.Fatal("no encoder runs while the download is made")
	}
	cancel()
	resp.Body.Close()
	eventually(t, 10*time.Second, "no ffmpeg left after the client left", func() bool { return len(ffmpegChildren()) == 0 })
	eventually(t, 5*time.Second, "the download gone from /api/activity", func() bool {
		return !strings.Contains(string(e.mustGet(e.url+"/api/activity")), `"file":"long.mp4","quality"`)
	})
	left, _ := filepath.Glob(filepath.Join(e.cache, "segments", "*", "download", "*"))
	if len(left) > 0 {
		t.Errorf("left in the cache: %v", left)
	}
}
