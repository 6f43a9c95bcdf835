package e2e_test

import (
	"context"
	"encoding/json"
	"io"
	"net/http"
	"net/url"
	"strings"
	"testing"
	"time"

	"go.uber.org/zap"
	"go.uber.org/zap/zaptest"

	"github.com/hlsd/hlsd/web/e2e"
)

// TestWebPlayerCodecs plays 10-bit HEVC in Chromium, which has no HEVC
// decoder: the web player must name what it decodes in codecs=, leaving
// hvc1 out, and so play an H.264 rung without ever asking for a segment,
// init or playlist of the HEVC copy.
func TestWebPlayerCodecs(t *testing.T) {
	ctx, cancel := needBrowser(t)
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
	results, err := e2e.Run(ctx, e2e.Config{Base: srv.URL, Artifacts: artifactsDir(t),
		Codecs: &e2e.CodecsCheck{ID: files[0].ID, Seconds: 3}})
	if err != nil {
		t.Fatal(err)
	}
	r := results[0]
	for _, s := range r.Steps {
		t.Logf("%s (%.0f ms)", s.Step, s.Ms)
	}
	for _, p := range r.Problems() {
		t.Error(p)
	}
	if r.Failure != "" {
		return
	}
	if r.Frames < 30 || r.Played < 3 {
		t.Errorf("played %.1f s with %d frames decoded, want 3 s and more", r.Played, r.Frames)
	}
	t.Logf("codecs=%s", r.Codecs)
	for _, want := range []string{"avc1", "mp4a"} {
		if !hasPrefix(r.Codecs, want) {
			t.Errorf("the page says Chromium decodes %q, which lacks %s", r.Codecs, want)
		}
	}
	masters := 0
	for _, u := range r.URLs {
		if strings.Contains(u, "/video/0/original/") {
			t.Errorf("the page loaded the HEVC copy: %s", u)
		}
		if !strings.Contains(u, "/master.m3u8") {
			continue
		}
		masters++
		parsed, err := url.Parse(u)
		if err != nil {
			t.Fatal(err)
		}
		q := parsed.Query()
		switch codecs := q.Get("codecs"); {
		case codecs == "":
			t.Errorf("master requested without codecs=: %s", u)
		case strings.Contains(codecs, "hvc1") || strings.Contains(codecs, "hev1"):
			t.Errorf("master requested with HEVC in codecs= by a browser without HEVC: %s", u)
		case codecs != r.Codecs:
			t.Errorf("master requested with codecs=%s, the page probed %s", codecs, r.Codecs)
		}
		if q.Get("clientId") == "" || q.Get("progressive") != "1" {
			t.Errorf("master lost the player's other parameters: %s", u)
		}
		// hls.js drops levels Chromium cannot decode by itself, so what
		// it kept proves little: the master the page asked for must not
		// list the copy at all.
		master, err := getText(ctx, u)
		if err != nil {
			t.Fatal(err)
		}
		if strings.Contains(master, "hvc1") || strings.Contains(master, "/original/") {
			t.Errorf("the master the page asked for lists the HEVC copy:\n%s", master)
		}
	}
	if masters == 0 {
		t.Errorf("no master playlist among the page's %d requests", len(r.URLs))
	}
	for _, l := range r.Levels {
		if strings.Contains(l.Codecs, "hvc1") || strings.Contains(l.URL, "/original/") {
			t.Errorf("hls.js was offered the HEVC copy: %+v", l)
		}
	}
	t.Logf("decision line: %q", r.Text)
	if !strings.Contains(r.Text, "Transcoded") {
		t.Errorf("the line under the player says %q, want that this browser gets a transcode", r.Text)
	}
}

// hasPrefix reports whether a comma list holds an entry starting with p.
func hasPrefix(list, p string) bool {
	for _, c := range strings.Split(list, ",") {
		if strings.HasPrefix(c, p) {
			return true
		}
	}
	return false
}

// TestWebPlayerDownloadMenu opens the Download menu of a file with two
// audio tracks on a server with a token: it must offer the qualities and
// tracks /info lists, and its link must name download.mp4 with the picks
// and the token, and start an MP4 when followed without the page's cookie.
func TestWebPlayerDownloadMenu(t *testing.T) {
	ctx, cancel := needBrowser(t)
	defer cancel()
	media := t.TempDir()
	files, err := e2e.LibraryOf(ctx, media, "hevc.mkv")
	if err != nil {
		t.Fatal(err)
	}
	const token = "e2e-token"
	srv, err := e2e.Start(media, t.TempDir(), zaptest.NewLogger(t, zaptest.Level(zap.WarnLevel)), token)
	if err != nil {
		t.Fatal(err)
	}
	defer srv.Close()
	id := files[0].ID
	var info struct {
		Qualities struct {
			Video []string `json:"video"`
		} `json:"qualities"`
		Audio []json.RawMessage `json:"audio"`
	}
	if err := getJSON(ctx, srv.URL+"/videos/"+id+"/info?token="+token, &info); err != nil {
		t.Fatal(err)
	}
	if len(info.Qualities.Video) < 2 || len(info.Audio) < 2 {
		t.Fatalf("hevc.mkv offers %v and %d audio tracks; the test wants two of each", info.Qualities.Video, len(info.Audio))
	}
	// The last rung listed and the second track: neither is what the menu
	// starts on (the original and the default track).
	quality := info.Qualities.Video[len(info.Qualities.Video)-1]
	results, err := e2e.Run(ctx, e2e.Config{Base: srv.URL, Artifacts: artifactsDir(t),
		DownloadMenu: &e2e.DownloadMenuCheck{Base: srv.URL, Token: token, ID: id, Quality: quality, Audio: 1}})
	if err != nil {
		t.Fatal(err)
	}
	r := results[0]
	for _, s := range r.Steps {
		t.Logf("%s (%.0f ms)", s.Step, s.Ms)
	}
	for _, p := range r.Problems() {
		t.Error(p)
	}
	if r.Failure != "" {
		return
	}
	var offered []string
	for _, o := range r.Qualities {
		offered = append(offered, o.Value)
	}
	if strings.Join(offered, ",") != strings.Join(info.Qualities.Video, ",") {
		t.Errorf("the menu offers qualities %v, /info %v", offered, info.Qualities.Video)
	}
	if len(r.AudioOptions) != len(info.Audio) {
		t.Errorf("the menu offers %d audio tracks, /info %d: %+v", len(r.AudioOptions), len(info.Audio), r.AudioOptions)
	}
	link, err := url.Parse(r.Link)
	if err != nil {
		t.Fatal(err)
	}
	q := link.Query()
	if link.Path != "/videos/"+id+"/download.mp4" || q.Get("quality") != quality || q.Get("audio") != "1" || q.Get("token") != token {
		t.Fatalf("download link %s, want download.mp4 with quality=%s, audio=1 and the token", r.Link, quality)
	}

	// The first box of what it sends; closing then ends the download.
	req, _ := http.NewRequestWithContext(ctx, http.MethodGet, r.Link, nil)
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		b, _ := io.ReadAll(io.LimitReader(resp.Body, 512))
		t.Fatalf("GET the link: %d %s", resp.StatusCode, b)
	}
	if cd := resp.Header.Get("Content-Disposition"); !strings.HasPrefix(cd, "attachment") {
		t.Errorf("Content-Disposition %q, want an attachment", cd)
	}
	head := make([]byte, 8)
	if _, err := io.ReadFull(resp.Body, head); err != nil {
		t.Fatal(err)
	}
	if string(head[4:]) != "ftyp" {
		t.Errorf("the download starts with % x, want an ftyp box", head)
	}
}

// TestActivityDownloads reads a download slowly (a 360p transcode of a
// minute of 1080p HEVC, which takes this machine a while) and opens the
// Activity view meanwhile: the download's row must show and move.
func TestActivityDownloads(t *testing.T) {
	ctx, cancel := needBrowser(t)
	defer cancel()
	media := t.TempDir()
	files, err := e2e.LibraryOf(ctx, media, "hevc-1080.mkv")
	if err != nil {
		t.Fatal(err)
	}
	srv, err := e2e.Start(media, t.TempDir(), zaptest.NewLogger(t, zaptest.Level(zap.WarnLevel)), "")
	if err != nil {
		t.Fatal(err)
	}
	defer srv.Close()

	readCtx, stopReading := context.WithCancel(ctx)
	read := make(chan error, 1)
	go func() {
		read <- readSlowly(readCtx, srv.URL+"/videos/"+files[0].ID+"/download.mp4?quality=360p&audio=0")
	}()
	defer func() {
		stopReading()
		if err := <-read; err != nil {
			t.Errorf("download: %v", err)
		}
	}()

	results, err := e2e.Run(ctx, e2e.Config{Base: srv.URL, Artifacts: artifactsDir(t),
		Downloads: &e2e.DownloadsCheck{File: files[0].Name, Quality: "360p"}})
	if err != nil {
		t.Fatal(err)
	}
	r := results[0]
	for _, s := range r.Steps {
		t.Logf("%s (%.0f ms)", s.Step, s.Ms)
	}
	for _, p := range r.Problems() {
		t.Error(p)
	}
	if len(r.Steps) < 2 {
		t.Fatal("the Activity view did not show the download's progress moving")
	}
	for _, want := range []string{files[0].Name, "360p", "Track 1", "running"} {
		if !strings.Contains(r.Text, want) {
			t.Errorf("the download's row reads %q, without %q", r.Text, want)
		}
	}
}

// readSlowly reads a download 16 KB every 100 ms until ctx ends, as a
// person's slow link would, so it is still running when the page looks.
func readSlowly(ctx context.Context, u string) error {
	req, _ := http.NewRequestWithContext(ctx, http.MethodGet, u, nil)
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		if ctx.Err() != nil {
			return nil
		}
		return err
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		b, _ := io.ReadAll(io.LimitReader(resp.Body, 512))
		return &httpError{resp.StatusCode, string(b)}
	}
	buf := make([]byte, 16<<10)
	tick := time.NewTicker(100 * time.Millisecond)
	defer tick.Stop()
	for {
		select {
		case <-ctx.Done():
			return nil
		case <-tick.C:
		}
		if _, err := io.ReadFull(resp.Body, buf); err != nil {
			if ctx.Err() != nil || err == io.EOF || err == io.ErrUnexpectedEOF {
				return nil
			}
			return err
		}
	}
}

type httpError struct {
	code int
	body string
}

func (e *httpError) Error() string { return http.StatusText(e.code) + ": " + e.body }

func getText(ctx context.Context, u string) (string, error) {
	req, _ := http.NewRequestWithContext(ctx, http.MethodGet, u, nil)
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		return "", err
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	if err == nil && resp.StatusCode != http.StatusOK {
		err = &httpError{resp.StatusCode, string(b)}
	}
	return string(b), err
}

func getJSON(ctx context.Context, u string, v any) error {
	req, _ := http.NewRequestWithContext(ctx, http.MethodGet, u, nil)
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		return err
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		b, _ := io.ReadAll(io.LimitReader(resp.Body, 512))
		return &httpError{resp.StatusCode, string(b)}
	}
	return json.NewDecoder(resp.Body).Decode(v)
}
