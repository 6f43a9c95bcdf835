package server

import (
	"encoding/json"
	"net/http"
	"os"
	"strings"
	"testing"
	"time"

	"github.com/hlsd/hlsd/transcoder"
)

// healthCheck fetches a health route and checks that it answered in time
// and that a 503 is the contract's JSON error with Retry-After. It returns
// the status and the body, or the error's message for a 503.
func healthCheck(e *testEnv, route string) (int, string) {
	e.t.Helper()
	begin := time.Now()
	status, body, h := e.get(e.url + route)
	if d := time.Since(begin); d > 2500*time.Millisecond {
		e.t.Errorf("%s took %v, want at most about 2 s", route, d)
	}
	if status != http.StatusServiceUnavailable {
		return status, string(body)
	}
	wantError(e.t, route, status, body, h, http.StatusServiceUnavailable)
	if h.Get("Retry-After") == "" {
		e.t.Errorf("%s: 503 without Retry-After", route)
	}
	var msg struct{ Error string }
	json.Unmarshal(body, &msg)
	return status, msg.Error
}

// /readyz says 503, with the reason, while requests would fail: the cache
// directory gone, draining, closed. /healthz stays 200 through all but the
// last: a restart would cure none of them.
func TestReadyz(t *testing.T) {
	e := newEnv(t, transcoder.Config{})
	want := func(route string, status int, text string) {
		t.Helper()
		got, msg := healthCheck(e, route)
		if got != status || !strings.Contains(msg, text) {
			t.Errorf("%s = %d %q; want %d with %q", route, got, msg, status, text)
		}
	}
	want("/readyz", http.StatusOK, "ready")
	want("/healthz", http.StatusOK, "ok")

	// Tests run as root, whom permissions do not stop: a regular file in
	// place of the cache directory stops everyone.
	if err := os.RemoveAll(e.cache); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(e.cache, []byte("not a directory"), 0o644); err != nil {
		t.Fatal(err)
	}
	want("/readyz", http.StatusServiceUnavailable, "cache directory is not writable")
	want("/healthz", http.StatusOK, "ok")
	if err := os.Remove(e.cache); err != nil {
		t.Fatal(err)
	}
	if err := os.Mkdir(e.cache, 0o755); err != nil {
		t.Fatal(err)
	}
	want("/readyz", http.StatusOK, "ready")

	e.tc.Drain()
	want("/readyz", http.StatusServiceUnavailable, "shutting down")
	want("/healthz", http.StatusOK, "ok")

	e.tc.Close() // again at cleanup, which is harmless
	want("/readyz", http.StatusServiceUnavailable, "shutting down")
	want("/healthz", http.StatusServiceUnavailable, "shutting down")
}

func TestReadyzWithoutFFmpeg(t *testing.T) {
	e := newEnv(t, transcoder.Config{FFmpeg: "/nonexistent/ffmpeg"})
	if status, msg := healthCheck(e, "/readyz"); status != http.StatusServiceUnavailable || !strings.Contains(msg, "/nonexistent/ffmpeg") {
		t.Errorf("/readyz = %d %q; want 503 naming the missing ffmpeg", status, msg)
	}
}

// Probes carry no token: both health routes answer without one, a 503
// included, while the rest of the API still wants it.
func TestHealthWithoutToken(t *testing.T) {
	e := newEnvDirs(t, transcoder.Config{}, mediaDir(t), t.TempDir(), func(c *Config) { c.AuthToken = "s3cret" })
	for route, want := range map[string]string{"/healthz": "ok", "/readyz": "ready"} {
		if status, body := healthCheck(e, route); status != http.StatusOK || body != want {
			t.Errorf("%s without a token: %d %q", route, status, body)
		}
	}
	if status, _, _ := e.get(e.url + "/api/media"); status != http.StatusUnauthorized {
		t.Errorf("/api/media without a token: %d, want 401", status)
	}
	e.tc.Drain()
	if status, msg := healthCheck(e, "/readyz"); status != http.StatusServiceUnavailable {
		t.Errorf("/readyz draining, without a token: %d %q; want 503", status, msg)
	}
}
