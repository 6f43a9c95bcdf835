package server

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/hlsd/hlsd/transcoder"
	"github.com/hlsd/hlsd/transcoder/jobs"
	"github.com/hlsd/hlsd/transcoder/probe"
	"github.com/hlsd/hlsd/transcoder/testmedia"
)

// hlsOrigin is a web server on loopback serving HLS that ffmpeg made from
// a test clip, in the shapes an import meets:
//
//	vod/        fMP4 segments, a VOD playlist
//	aes/        MPEG-TS encrypted with AES-128, its key served at aes/key
//	event/      an EVENT playlist, served without its EXT-X-ENDLIST the
//	            first two times, as while a recording goes on
//	broken/     MPEG-TS whose segment 3 answers 404
//	slow/       MPEG-TS, each segment sent after a delay (slowDelay)
//	local/      a playlist whose second segment is file:///etc/passwd
type hlsOrigin struct {
	*httptest.Server
	eventHits atomic.Int32
	slowDelay atomic.Int64 // nanoseconds
}

func newHLSOrigin(t *testing.T) *hlsOrigin {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	src, err := testmedia.Make(ctx, testmedia.CacheDir(), "h264.mp4")
	if err != nil {
		t.Fatal(err)
	}
	dir := t.TempDir()
	o := &hlsOrigin{}
	o.slowDelay.Store(int64(300 * time.Millisecond))
	ffmpeg := func(sub string, args ...string) {
		if err := testmedia.HLS(ctx, src, filepath.Join(dir, sub), args...); err != nil {
			t.Fatalf("making %s: %v", sub, err)
		}
	}
	ffmpeg("vod", "-hls_playlist_type", "vod", "-hls_segment_type", "fmp4")
	key := bytes.Repeat([]byte{0x42}, 16)
	if err := os.WriteFile(filepath.Join(dir, "aes.key"), key, 0o644); err != nil {
		t.Fatal(err)
	}
	// The key URI is relative to the playlist: the origin's address is not
	// known yet.
	if err := os.WriteFile(filepath.Join(dir, "keyinfo"), []byte("key\n"+filepath.Join(dir, "aes.key")+"\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	ffmpeg("aes", "-hls_playlist_type", "vod", "-hls_key_info_file", filepath.Join(dir, "keyinfo"))
	ffmpeg("event", "-hls_playlist_type", "event")
	ffmpeg("broken", "-hls_playlist_type", "vod")
	ffmpeg("slow", "-hls_playlist_type", "vod")
	if err := os.MkdirAll(filepath.Join(dir, "local"), 0o755); err != nil {
		t.Fatal(err)
	}
	local := "#EXTM3U\n#EXT-X-VERSION:3\n#EXT-X-TARGETDURATION:2\n#EXT-X-PLAYLIST-TYPE:VOD\n" +
		"#EXTINF:2.0,\n../vod/init.mp4\n#EXTINF:2.0,\nfile:///etc/passwd\n#EXT-X-ENDLIST\n"
	if err := os.WriteFile(filepath.Join(dir, "local/index.m3u8"), []byte(local), 0o644); err != nil {
		t.Fatal(err)
	}
	files := http.FileServer(http.Dir(dir))
	o.Server = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		switch {
		case r.URL.Path == "/aes/key":
			_, _ = w.Write(key)
			return
		case r.URL.Path == "/broken/index3.ts":
			http.NotFound(w, r)
			return
		case strings.HasPrefix(r.URL.Path, "/slow/") && strings.HasSuffix(r.URL.Path, ".ts"):
			select {
			case <-time.After(time.Duration(o.slowDelay.Load())):
			case <-r.Context().Done():
				return
			}
		case r.URL.Path == "/event/index.m3u8" && o.eventHits.Add(1) <= 2:
			b, _ := os.ReadFile(filepath.Join(dir, "event/index.m3u8"))
			_, _ = w.Write(bytes.Replace(b, []byte("#EXT-X-ENDLIST\n"), nil, 1))
			return
		}
		files.ServeHTTP(w, r)
	}))
	t.Cleanup(o.Close)
	return o
}

// postJob sends a job and returns the status and the job answered.
func (e *testEnv) postJob(body any) (int, jobs.Job, string) {
	e.t.Helper()
	b, _ := json.Marshal(body)
	resp, err := http.Post(e.url+"/api/jobs", "application/json", bytes.NewReader(b))
	if err != nil {
		e.t.Fatal(err)
	}
	defer resp.Body.Close()
	raw, _ := io.ReadAll(resp.Body)
	var job jobs.Job
	_ = json.Unmarshal(raw, &job)
	return resp.StatusCode, job, string(raw)
}

func (e *testEnv) job(id string) jobs.Job {
	e.t.Helper()
	var job jobs.Job
	if err := json.Unmarshal(e.mustGet(e.url+"/api/jobs/"+id), &job); err != nil {
		e.t.Fatal(err)
	}
	return job
}

func finished(j jobs.Job) bool {
	return j.State != jobs.JobQueued && j.State != jobs.JobRunning
}

// importChildren counts this process's ffmpeg children that import.
func importChildren() int {
	n := 0
	for _, pid := range ffmpegChildren() {
		b, _ := os.ReadFile(fmt.Sprintf("/proc/%d/cmdline", pid))
		if bytes.Contains(b, []byte("protocol_whitelist")) {
			n++
		}
	}
	return n
}

// TestImport imports six streams with two workers: progress only grows,
// never more than two ffmpeg run, the 404 and the local-file playlist fail
// with messages a person can act on, and the others become library files
// that play through the normal routes with keyframes from their index.
func TestImport(t *testing.T) {
	o := newHLSOrigin(t)
	e := newEnv(t, transcoder.Config{})
	names := []string{"vod", "aes", "event", "broken", "slow", "local"}
	var urls []string
	for _, n := range names {
		urls = append(urls, o.URL+"/"+n+"/index.m3u8")
	}
	status, job, raw := e.postJob(map[string]any{"type": "import", "urls": urls, "folder": "Imported/Lectures"})
	if status != http.StatusAccepted || job.ID == "" || len(job.Items) != len(urls) {
		t.Fatalf("POST /api/jobs: %d %s", status, raw)
	}
	last := map[int]float64{}
	var lastDone float64
	maxRunning, maxChildren := 0, 0
	deadline := time.Now().Add(3 * time.Minute)
	for {
		j := e.job(job.ID)
		if j.Done < lastDone-1e-9 {
			t.Errorf("job progress went back from %.2f to %.2f", lastDone, j.Done)
		}
		lastDone = j.Done
		running := 0
		for i, it := range j.Items {
			if it.Done < last[i]-1e-9 {
				t.Errorf("%s: progress went back from %.2f to %.2f", names[i], last[i], it.Done)
			}
			last[i] = it.Done
			if it.State == jobs.JobRunning {
				running++
			}
		}
		maxRunning = max(maxRunning, running)
		maxChildren = max(maxChildren, importChildren())
		if finished(j) {
			job = j
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("import not finished after 3 minutes: %+v", j)
		}
		time.Sleep(50 * time.Millisecond)
	}
	t.Logf("at most %d items running, %d ffmpeg at once; job %s: %s", maxRunning, maxChildren, job.State, job.Error)
	if maxRunning > 2 || maxChildren > 2 {
		t.Errorf("%d items and %d ffmpeg ran at once with 2 workers", maxRunning, maxChildren)
	}
	if maxChildren == 0 {
		t.Error("no import ffmpeg was ever seen running")
	}
	if job.State != jobs.JobFailed || !strings.Contains(job.Error, "2 of 6 failed") {
		t.Errorf("job %s (%q), want failed with 2 of 6", job.State, job.Error)
	}
	for i, it := range job.Items {
		t.Logf("%-6s %-6s %5.1f/%5.1f s %8d B %s %s", names[i], it.State, it.Done, it.Total, it.Bytes, it.File, it.Error)
		switch names[i] {
		case "broken":
			if it.State != jobs.JobFailed || !strings.Contains(it.Error, "segment 3") || !strings.Contains(it.Error, "404") {
				t.Errorf("broken: %s %q, want failed naming segment 3 and the 404", it.State, it.Error)
			}
		case "local":
			if it.State != jobs.JobFailed || !strings.Contains(it.Error, "file:///etc/passwd") || !strings.Contains(it.Error, "only http and https") {
				t.Errorf("local: %s %q, want failed naming the local file", it.State, it.Error)
			}
		default:
			if it.State != jobs.JobDone || !strings.HasPrefix(it.File, "Imported/Lectures/") || it.Bytes == 0 {
				t.Errorf("%s: %s %q %q", names[i], it.State, it.File, it.Error)
				continue
			}
			checkImported(t, e, it.File)
		}
	}
	entries, _ := os.ReadDir(filepath.Join(e.media, "Imported/Lectures"))
	for _, d := range entries {
		if strings.HasPrefix(d.Name(), ".") {
			t.Errorf("left behind: %s", d.Name())
		}
	}
	if n := len(entries); n != 4 {
		t.Errorf("%d files in the folder, want the 4 imported", n)
	}
	if m := metricValue(t, e, `hlsd_jobs{state="failed"}`); m != 1 {
		t.Errorf("hlsd_jobs{state=failed} = %v", m)
	}
	if m := metricValue(t, e, "hlsd_job_bytes_total"); m <= 0 {
		t.Errorf("hlsd_job_bytes_total = %v", m)
	}
}

// checkImported: the file lasts the source's 20 s, its keyframes come from
// its index, and its first segment starts with a keyframe.
func checkImported(t *testing.T, e *testEnv, rel string) {
	t.Helper()
	base := e.videoURL(rel)
	init := e.mustGet(base + "/video/0/original/init.mp4")
	seg := e.mustGet(base + "/video/0/original/segment-0.m4s")
	if flags, _, pict := probeSegment(t, init, seg); !strings.Contains(flags, "K") || pict != "I" {
		t.Errorf("%s: segment 0 starts with flags %q picture %q, want a keyframe", rel, flags, pict)
	}
	var info probe.Info
	if err := json.Unmarshal(e.mustGet(base+"/info"), &info); err != nil {
		t.Fatal(err)
	}
	if !near(info.Duration, 20, 0.5) || info.Keyframes.Source != "index" || !info.Keyframes.Complete {
		t.Errorf("%s: %.2f s, keyframes %+v; want 20 s with keyframes from the index", rel, info.Duration, info.Keyframes)
	}
}

func metricValue(t *testing.T, e *testEnv, series string) float64 {
	t.Helper()
	for _, l := range strings.Split(string(e.mustGet(e.url+"/metrics")), "\n") {
		if strings.HasPrefix(l, series+" ") {
			var v float64
			fmt.Sscan(strings.TrimPrefix(l, series+" "), &v)
			return v
		}
	}
	return -1
}

// TestImportCancel: a cancelled import leaves no ffmpeg and no file.
func TestImportCancel(t *testing.T) {
	o := newHLSOrigin(t)
	o.slowDelay.Store(int64(time.Second))
	e := newEnv(t, transcoder.Config{})
	_, job, raw := e.postJob(map[string]any{"type": "import", "urls": []string{o.URL + "/slow/index.m3u8"}, "folder": "In"})
	if job.ID == "" {
		t.Fatal(raw)
	}
	eventually(t, 30*time.Second, "the import to make progress", func() bool {
		return e.job(job.ID).Done > 0 && importChildren() > 0
	})
	req, _ := http.NewRequest(http.MethodDelete, e.url+"/api/jobs/"+job.ID, nil)
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	var j jobs.Job
	json.NewDecoder(resp.Body).Decode(&j)
	resp.Body.Close()
	if resp.StatusCode != http.StatusOK || j.State != jobs.JobCancelled || j.Items[0].State != jobs.JobCancelled {
		t.Errorf("DELETE: %d, job %s, item %s", resp.StatusCode, j.State, j.Items[0].State)
	}
	if n := importChildren(); n != 0 {
		t.Errorf("%d import ffmpeg left after the cancel", n)
	}
	if entries, _ := os.ReadDir(filepath.Join(e.media, "In")); len(entries) != 0 {
		t.Errorf("left in the folder after the cancel: %v", entries)
	}
}

// TestImportRestart: hlsd stops mid-import; the next start resumes the job,
// says so, and finishes it, leaving no partial file.
func TestImportRestart(t *testing.T) {
	o := newHLSOrigin(t)
	media, cache := t.TempDir(), t.TempDir()
	e := newEnvDirs(t, transcoder.Config{}, media, cache)
	_, job, raw := e.postJob(map[string]any{"type": "import", "urls": []string{o.URL + "/slow/index.m3u8"}, "folder": "In"})
	if job.ID == "" {
		t.Fatal(raw)
	}
	eventually(t, 30*time.Second, "the import to make progress", func() bool { return e.job(job.ID).Done > 0 })
	e.close()
	if n := importChildren(); n != 0 {
		t.Errorf("%d import ffmpeg left after shutdown", n)
	}
	if entries, _ := os.ReadDir(filepath.Join(media, "In")); len(entries) != 0 {
		t.Errorf("left in the folder by the shutdown: %v", entries)
	}
	o.slowDelay.Store(0)
	e2 := newEnvDirs(t, transcoder.Config{}, media, cache)
	var j jobs.Job
	eventually(t, time.Minute, "the resumed import to finish", func() bool {
		j = e2.job(job.ID)
		return finished(j)
	})
	t.Logf("after the restart: %s, note %q", j.State, j.Note)
	if j.State != jobs.JobDone || !strings.Contains(j.Note, "restarted") || !strings.Contains(j.Note, "started again") {
		t.Errorf("resumed job: %s, note %q, error %q", j.State, j.Note, j.Error)
	}
	entries, _ := os.ReadDir(filepath.Join(media, "In"))
	if len(entries) != 1 || entries[0].Name() != "slow.mp4" {
		t.Errorf("folder after the resumed import: %v, want slow.mp4 only", entries)
	}
}

// TestImportRefused: bad requests answer 400, a refused one 403, and
// nothing is queued.
func TestImportRefused(t *testing.T) {
	e := newEnv(t, transcoder.Config{})
	for _, c := range []struct {
		body   any
		status int
		msg    string
	}{
		{map[string]any{"type": "import", "urls": []string{"ftp://example.com/a.m3u8"}}, 400, "only http and https"},
		{map[string]any{"type": "import", "urls": []string{"file:///etc/passwd"}}, 400, "only http and https"},
		{map[string]any{"type": "import", "urls": []string{}}, 400, "1 to 100 URLs"},
		{map[string]any{"type": "import", "urls": []string{"http://a/b.m3u8"}, "folder": "../up"}, 403, "escapes the media root"},
		{map[string]any{"type": "import", "urls": []string{"http://a/b.m3u8"}, "mode": "zip"}, 400, "unknown mode"},
		{map[string]any{"type": "fetch"}, 400, "unknown job type"},
		{map[string]any{"type": "import", "url": "http://a/b.m3u8"}, 400, "unknown field"},
		{map[string]any{"type": "prepare", "id": encodeID("none.mp4"), "qualities": []string{"360p"}}, 404, "no such file"},
	} {
		status, _, raw := e.postJob(c.body)
		if status != c.status || !strings.Contains(raw, c.msg) {
			t.Errorf("%v: %d %s, want %d with %q", c.body, status, raw, c.status, c.msg)
		}
	}
	if jobs := e.jobs.List(); len(jobs) != 0 {
		t.Errorf("%d jobs queued by refused requests", len(jobs))
	}
	off := jobs.New(jobs.Config{Library: e.lib, StateDir: t.TempDir()})
	if err := off.Initialize(); err != nil {
		t.Fatal(err)
	}
	defer off.Close()
	if _, err := off.SubmitImport([]string{"http://example.com/a.m3u8"}, "", "copy"); !errors.Is(err, jobs.ErrNotAllowed) ||
		statusOf(err) != http.StatusForbidden || !strings.Contains(err.Error(), "--allow-import") {
		t.Errorf("import without --allow-import: %v (status %d)", err, statusOf(err))
	}
	hosts := jobs.New(jobs.Config{Library: e.lib, StateDir: t.TempDir(), AllowImport: true, ImportHosts: []string{".example.com"}})
	if err := hosts.Initialize(); err != nil {
		t.Fatal(err)
	}
	defer hosts.Close()
	if _, err := hosts.SubmitImport([]string{"http://127.0.0.1/a.m3u8"}, "", "copy"); statusOf(err) != http.StatusForbidden {
		t.Errorf("a host outside --import-hosts: %v", err)
	}
	if _, err := hosts.SubmitImport([]string{"https://cdn.example.com/a.m3u8"}, "", "copy"); err != nil {
		t.Errorf("a host under .example.com: %v", err)
	}
}

// TestPrepare prepares two rungs of a file one of whose segments a player
// had made on demand: the prepare skips it, makes every other segment of
// both rungs in one decode, and the prepared segments join the on-demand
// one as one stream; afterwards, playing the rungs starts no encoder.
func TestPrepare(t *testing.T) {
	e := newEnv(t, transcoder.Config{PrepareChunks: 2}, "h264.mp4")
	base := e.videoURL("h264.mp4")
	rung := base + "/video/0/360p/"
	pl := parseMediaPlaylist(t, e.mustGet(rung+"index.m3u8"))
	last := len(pl.starts) - 1
	onDemand := e.mustGet(rung + fmt.Sprintf("segment-%d.m4s", last))
	status, job, raw := e.postJob(map[string]any{"type": "prepare", "id": encodeID("h264.mp4"), "qualities": []string{"360p", "240p"}})
	if status != http.StatusAccepted {
		t.Fatalf("POST prepare: %d %s", status, raw)
	}
	var j jobs.Job
	eventually(t, 2*time.Minute, "the prepare to finish", func() bool { j = e.job(job.ID); return finished(j) })
	t.Logf("prepare: %s, %.1f of %.1f s, error %q", j.State, j.Done, j.Total, j.Error)
	if j.State != jobs.JobDone || !near(j.Done, j.Total, 0.01) || !near(j.Total, 20, 0.1) {
		t.Fatalf("prepare ended %s at %.2f of %.2f s: %s", j.State, j.Done, j.Total, j.Error)
	}
	if cpu := metricValue(t, e, `hlsd_encoder_cpu_seconds_total{class="prepare"}`); cpu <= 0 {
		t.Errorf("prepare CPU seconds: %v", cpu)
	}
	starts := totalStarts(t, e)
	var joined []byte
	for _, q := range []string{"360p", "240p"} {
		dir := base + "/video/0/" + q + "/"
		joined = append(joined[:0], e.mustGet(dir+"init.mp4")...)
		for n := 0; n <= last; n++ {
			b := e.mustGet(dir + fmt.Sprintf("segment-%d.m4s", n))
			if q == "360p" && n == last && !bytes.Equal(b, onDemand) {
				t.Errorf("the prepare replaced the segment a player had")
			}
			joined = append(joined, b...)
		}
		checkOneStream(t, q, joined, 20)
	}
	if after := totalStarts(t, e); after != starts {
		t.Errorf("playing the prepared rungs started %v encoders", after-starts)
	}
	// This file's audio is stereo AAC, which is copied, not encoded: the
	// prepare leaves it to the copy a player's request starts.
	for n := 0; n <= last; n++ {
		e.mustGet(base + fmt.Sprintf("/audio/0/aac/segment-%d.m4s", n))
	}
}

// totalStarts sums hlsd_encoder_starts_total over its labels.
func totalStarts(t *testing.T, e *testEnv) float64 {
	var sum float64
	for _, l := range strings.Split(string(e.mustGet(e.url+"/metrics")), "\n") {
		if strings.HasPrefix(l, "hlsd_encoder_starts_total{") {
			var v float64
			fmt.Sscan(l[strings.LastIndexByte(l, ' ')+1:], &v)
			sum += v
		}
	}
	return sum
}

// checkOneStream decodes an init and its segments as one stream: no
// error, frames evenly spaced from start to end, the first a keyframe.
func checkOneStream(t *testing.T, what string, data []byte, duration float64) {
	t.Helper()
	times, firstKey, err := testmedia.Frames(context.Background(), data)
	if err != nil || len(times) < 2 {
		t.Fatalf("%s: %d frames, %v", what, len(times), err)
	}
	for _, u := range testmedia.Uneven(times) {
		t.Errorf("%s: %s", what, u)
	}
	step := (times[len(times)-1] - times[0]) / float64(len(times)-1)
	if !firstKey || times[len(times)-1]+step < duration-0.1 {
		t.Errorf("%s: first frame a keyframe %v, frames from %.3f to %.3f s, want a keyframe first and %.1f s", what, firstKey, times[0], times[len(times)-1], duration)
	}
}

// TestPrepareYields: a prepare's ffmpeg runs niced, and is stopped while a
// player waits for a head.
func TestPrepareYields(t *testing.T) {
	e := newEnv(t, transcoder.Config{PrepareChunks: 1}, "hevc-1080.mkv", "h264.mp4")
	_, job, raw := e.postJob(map[string]any{"type": "prepare", "id": encodeID("hevc-1080.mkv"), "qualities": []string{"720p", "480p"}})
	if job.ID == "" {
		t.Fatal(raw)
	}
	var pid int
	eventually(t, 30*time.Second, "the prepare's ffmpeg", func() bool {
		for _, p := range ffmpegChildren() {
			b, _ := os.ReadFile(fmt.Sprintf("/proc/%d/cmdline", p))
			if bytes.Contains(b, []byte(".prepare-")) && bytes.Contains(b, []byte("libx264")) {
				pid = p
				return true
			}
		}
		return false
	})
	state := func() (string, int) {
		b, _ := os.ReadFile(fmt.Sprintf("/proc/%d/stat", pid))
		s := string(b)
		f := strings.Fields(s[strings.LastIndexByte(s, ')')+1:])
		if len(f) < 17 {
			return "", 0
		}
		var nice int
		fmt.Sscan(f[16], &nice)
		return f[0], nice
	}
	if _, nice := state(); nice != 19 {
		t.Errorf("prepare ffmpeg niceness %d, want 19", nice)
	}
	// A player asks for a segment no head makes: it waits for one to start.
	stopped := make(chan bool, 1)
	go func() {
		seen := false
		deadline := time.Now().Add(20 * time.Second)
		for !seen && time.Now().Before(deadline) {
			s, _ := state()
			seen = s == "T"
			time.Sleep(10 * time.Millisecond)
		}
		stopped <- seen
	}()
	e.mustGet(e.videoURL("h264.mp4") + "/video/0/240p/segment-2.m4s")
	if !<-stopped {
		t.Error("the prepare's ffmpeg never stopped while a player waited")
	}
	eventually(t, 5*time.Second, "the prepare to go on", func() bool { s, _ := state(); return s != "T" })
	req, _ := http.NewRequest(http.MethodDelete, e.url+"/api/jobs/"+job.ID, nil)
	if resp, err := http.DefaultClient.Do(req); err == nil {
		resp.Body.Close()
	}
	if n := len(ffmpegChildren()); n > 1 {
		t.Logf("%d ffmpeg still running after the cancel (heads)", n)
	}
}
