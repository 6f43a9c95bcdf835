package server

import (
	"bufio"
	"fmt"
	"net/http"
	"strings"
	"testing"

	"go.uber.org/zap"
	"go.uber.org/zap/zapcore"
	"go.uber.org/zap/zaptest/observer"

	"github.com/hlsd/hlsd/transcoder"
)

// With --auth-token, every route but /healthz needs the token (header,
// query or the page's cookie); playlists carry it on to every URI; and it
// never reaches the log.
func TestAuthToken(t *testing.T) {
	const token = "s3cret-Token_42"
	core, logs := observer.New(zapcore.DebugLevel)
	e := newEnvDirs(t, transcoder.Config{}, mediaDir(t, "h264.mp4"), t.TempDir(), func(c *Config) {
		c.AuthToken = token
		c.Log = zap.New(core)
	})
	do := func(url string, hdr map[string]string) (int, []byte, http.Header) {
		t.Helper()
		req, _ := http.NewRequest(http.MethodGet, url, nil)
		for k, v := range hdr {
			req.Header.Set(k, v)
		}
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		var b strings.Builder
		sc := bufio.NewScanner(resp.Body)
		sc.Buffer(make([]byte, 1<<20), 1<<20)
		for sc.Scan() {
			b.WriteString(sc.Text() + "\n")
		}
		return resp.StatusCode, []byte(b.String()), resp.Header
	}
	video := e.videoURL("h264.mp4")
	protected := []string{
		e.url + "/", e.url + "/app.js", e.url + "/hls.min.js", e.url + "/metrics", e.url + "/api/media",
		video + "/info", video + "/master.m3u8", video + "/video/0/original/index.m3u8",
		video + "/video/0/original/segment-0.m4s", video + "/nope",
	}
	for _, u := range protected {
		for _, hdr := range []map[string]string{
			nil,
			{"Authorization": "Bearer wrong"},
			{"Authorization": "Bearer " + token + "x"},
			{"Authorization": "Basic " + token},
			{"Cookie": "hlsd_token=wrong"},
		} {
			status, body, h := do(u, hdr)
			wantError(t, fmt.Sprintf("%s %v", strings.TrimPrefix(u, e.url), hdr), status, body, h, http.StatusUnauthorized)
			if h.Get("WWW-Authenticate") == "" {
				t.Errorf("%s: 401 without WWW-Authenticate", u)
			}
		}
		status, body, h := do(u+"?token=wrong", nil)
		wantError(t, u+"?token=wrong", status, body, h, http.StatusUnauthorized)
	}
	if status, _, _ := do(e.url+"/healthz", nil); status != http.StatusOK {
		t.Errorf("/healthz without a token: %d", status)
	}

	bearer := map[string]string{"Authorization": "Bearer " + token}
	for _, u := range []string{e.url + "/api/media", e.url + "/metrics", video + "/info"} {
		if status, body, _ := do(u, bearer); status != http.StatusOK {
			t.Errorf("%s with the Bearer token: %d %s", u, status, body)
		}
	}

	// By query: every URI in the playlists carries the token on, so a
	// player with no way to set headers can follow them.
	status, master, _ := do(video+"/master.m3u8?token="+token, nil)
	if status != http.StatusOK {
		t.Fatalf("master with ?token: %d %s", status, master)
	}
	uris := playlistURIs(string(master))
	if len(uris) < 3 {
		t.Fatalf("master lists %d URIs: %s", len(uris), master)
	}
	for _, u := range uris {
		if !strings.Contains(u, "token="+token) {
			t.Errorf("master URI %q lacks the token", u)
		}
	}
	status, media, _ := do(video+"/"+uris[0], nil)
	if status != http.StatusOK {
		t.Fatalf("%s: %d %s", uris[0], status, media)
	}
	segs := playlistURIs(string(media))
	for _, u := range segs {
		if !strings.Contains(u, "token="+token) {
			t.Errorf("media playlist URI %q lacks the token", u)
		}
	}
	dir := video + "/" + uris[0][:strings.LastIndex(uris[0], "/")+1]
	for _, u := range segs[:2] {
		if status, body, _ := do(dir+u, nil); status != http.StatusOK {
			t.Errorf("%s: %d %s", u, status, body)
		}
	}

	// The page opened with ?token= sets a cookie that authorises its own
	// requests: scripts, the listing, playlists.
	status, _, h := do(e.url+"/?token="+token, nil)
	var cookie *http.Cookie
	for _, c := range (&http.Response{Header: h}).Cookies() {
		if c.Name == "hlsd_token" {
			cookie = c
		}
	}
	if status != http.StatusOK || cookie == nil || !cookie.HttpOnly || cookie.SameSite != http.SameSiteStrictMode {
		t.Fatalf("page with ?token: %d, cookie %+v", status, cookie)
	}
	for _, u := range []string{e.url + "/app.js", e.url + "/api/media", video + "/master.m3u8"} {
		if status, body, _ := do(u, map[string]string{"Cookie": "hlsd_token=" + cookie.Value}); status != http.StatusOK {
			t.Errorf("%s with the cookie: %d %s", u, status, body)
		}
	}

	// Nothing logged anywhere holds the token.
	if logs.Len() == 0 {
		t.Fatal("nothing was logged: the check below would prove nothing")
	}
	for _, entry := range logs.All() {
		line := entry.Message + fmt.Sprint(entry.ContextMap())
		if strings.Contains(line, token) {
			t.Errorf("the token is in the log: %s", line)
		}
	}
}

// playlistURIs lists the URIs of a playlist: its URI lines and URI="..." attributes.
func playlistURIs(p string) []string {
	var out []string
	for _, line := range strings.Split(p, "\n") {
		switch {
		case line == "":
		case !strings.HasPrefix(line, "#"):
			out = append(out, line)
		case strings.Contains(line, `URI="`):
			rest := line[strings.Index(line, `URI="`)+5:]
			out = append(out, rest[:strings.IndexByte(rest, '"')])
		}
	}
	return out
}
