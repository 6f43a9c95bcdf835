package e2e_test

import (
	"bytes"
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"os"
	"strings"
	"testing"
	"time"

	"go.uber.org/zap"
	"go.uber.org/zap/zaptest"

	"github.com/hlsd/hlsd/transcoder/jobs"
	"github.com/hlsd/hlsd/transcoder/testmedia"
	"github.com/hlsd/hlsd/web/e2e"
)

// TestActivity opens the web player's Activity view while an import runs
// (a stream whose segments come slowly) and sees its progress bar move.
func TestActivity(t *testing.T) {
	ctx, cancel := needBrowser(t)
	defer cancel()
	src, err := testmedia.Make(ctx, testmedia.CacheDir(), "h264.mp4")
	if err != nil {
		t.Fatal(err)
	}
	hls := t.TempDir()
	if err := testmedia.HLS(ctx, src, hls, "-hls_playlist_type", "vod"); err != nil {
		t.Fatal(err)
	}
	files := http.FileServer(http.Dir(hls))
	origin := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if strings.HasSuffix(r.URL.Path, ".ts") {
			select {
			case <-time.After(700 * time.Millisecond):
			case <-r.Context().Done():
				return
			}
		}
		files.ServeHTTP(w, r)
	}))
	defer origin.Close()

	media := t.TempDir()
	srv, err := e2e.Start(media, t.TempDir(), zaptest.NewLogger(t, zaptest.Level(zap.WarnLevel)), "")
	if err != nil {
		t.Fatal(err)
	}
	defer srv.Close()
	body, _ := json.Marshal(map[string]any{"type": "import", "urls": []string{origin.URL + "/index.m3u8"}, "folder": "Lectures"})
	resp, err := http.Post(srv.URL+"/api/jobs", "application/json", bytes.NewReader(body))
	if err != nil {
		t.Fatal(err)
	}
	var job jobs.Job
	json.NewDecoder(resp.Body).Decode(&job)
	resp.Body.Close()
	if resp.StatusCode != http.StatusAccepted {
		t.Fatalf("POST /api/jobs: %d", resp.StatusCode)
	}
	results, err := e2e.Run(ctx, e2e.Config{Base: srv.URL, Artifacts: artifactsDir(t), Activity: &e2e.ActivityCheck{Job: job.ID}})
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
		t.Errorf("the Activity view did not show the import's progress moving")
	}
	if _, err := os.Stat(media); err != nil {
		t.Fatal(err)
	}
}
