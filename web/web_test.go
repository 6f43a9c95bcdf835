package web

import (
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
)

func get(t *testing.T, h http.Handler, path string, hdr map[string]string) *http.Response {
	t.Helper()
	req := httptest.NewRequest("GET", path, nil)
	for k, v := range hdr {
		req.Header.Set(k, v)
	}
	rec := httptest.NewRecorder()
	h.ServeHTTP(rec, req)
	return rec.Result()
}

func TestAssets(t *testing.T) {
	h := Handler()
	cases := []struct {
		path, ctype, contains string
	}{
		{"/", "text/html; charset=utf-8", `<script src="hls.min.js">`},
		{"/app.js", "text/javascript; charset=utf-8", "/api/media?dir="},
		{"/style.css", "text/css; charset=utf-8", "video"},
		{"/hls.min.js", "text/javascript; charset=utf-8", "Hls"},
		{"/hls.js.LICENSE", "text/plain; charset=utf-8", "Apache License"},
	}
	for _, c := range cases {
		res := get(t, h, c.path, nil)
		body, _ := io.ReadAll(res.Body)
		if res.StatusCode != 200 {
			t.Errorf("%s: status %d", c.path, res.StatusCode)
			continue
		}
		if got := res.Header.Get("Content-Type"); got != c.ctype {
			t.Errorf("%s: Content-Type %q, want %q", c.path, got, c.ctype)
		}
		if !strings.Contains(string(body), c.contains) {
			t.Errorf("%s: body lacks %q", c.path, c.contains)
		}
		if res.Header.Get("ETag") == "" {
			t.Errorf("%s: no ETag", c.path)
		}
	}
}

func TestConditionalGet(t *testing.T) {
	h := Handler()
	tag := get(t, h, "/hls.min.js", nil).Header.Get("ETag")
	res := get(t, h, "/hls.min.js", map[string]string{"If-None-Match": tag})
	if res.StatusCode != http.StatusNotModified {
		t.Fatalf("status %d, want 304", res.StatusCode)
	}
}

func TestOnlyPlayerFiles(t *testing.T) {
	h := Handler()
	// Source and notes stay out of the embed; unknown paths are plain 404s.
	for _, p := range []string{"/web.go", "/VENDOR.md", "/nope", "/../go.mod"} {
		if res := get(t, h, p, nil); res.StatusCode != http.StatusNotFound {
			t.Errorf("%s: status %d, want 404", p, res.StatusCode)
		}
	}
}
