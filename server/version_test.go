package server

import (
	"bufio"
	"bytes"
	"encoding/json"
	"io"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/hlsd/hlsd/transcoder"
	"github.com/hlsd/hlsd/transcoder/probe"
)

// uriLines are the URIs a playlist lists: its URI lines and URI="..."
// attributes.
func uriLines(b []byte) []string {
	var out []string
	sc := bufio.NewScanner(bytes.NewReader(b))
	for sc.Scan() {
		line := sc.Text()
		if line != "" && !strings.HasPrefix(line, "#") {
			out = append(out, line)
		}
		if _, after, ok := strings.Cut(line, `URI="`); ok {
			out = append(out, after[:strings.IndexByte(after, '"')])
		}
	}
	return out
}

// TestVersionedURLs checks what a CDN relies on: every URI of a file
// carries its version, versioned segments are immutable with a validator,
// and once the file changes on disk its old URLs answer 404 while the
// master lists new ones.
func TestVersionedURLs(t *testing.T) {
	// A copy, not the shared clip's hard link: the test changes its mtime.
	media := t.TempDir()
	src := mediaDir(t, "h264.mp4")
	b, err := os.ReadFile(filepath.Join(src, "h264.mp4"))
	if err != nil {
		t.Fatal(err)
	}
	file := filepath.Join(media, "h264.mp4")
	if err := os.WriteFile(file, b, 0o644); err != nil {
		t.Fatal(err)
	}
	e := newEnvDirs(t, transcoder.Config{}, media, t.TempDir(), func(c *Config) { c.NodeName = "node-a" })
	base := e.videoURL("h264.mp4")
	st, _ := os.Stat(file)
	ver := probe.IdentityOf("", st).Version()

	status, master, hdr := e.get(base + "/master.m3u8?clientId=c1")
	if status != http.StatusOK || hdr.Get("Cache-Control") != cacheMaster || hdr.Get("X-Hlsd-Node") != "node-a" {
		t.Fatalf("master: %d, Cache-Control %q, X-Hlsd-Node %q", status, hdr.Get("Cache-Control"), hdr.Get("X-Hlsd-Node"))
	}
	uris := uriLines(master)
	if len(uris) == 0 {
		t.Fatalf("master lists no URI:\n%s", master)
	}
	for _, u := range uris {
		if !strings.Contains(u, "clientId=c1") || !strings.HasSuffix(u, "v="+ver) {
			t.Errorf("master URI %q: want clientId=c1 kept and v=%s", u, ver)
		}
	}
	var media0 string
	for _, u := range uris {
		if strings.HasPrefix(u, "video/") && strings.Contains(u, "/index.m3u8") {
			media0 = base + "/" + u
			break
		}
	}
	status, pl, hdr := e.get(media0)
	if status != http.StatusOK || hdr.Get("Cache-Control") != cachePlaylist {
		t.Fatalf("media playlist: %d, Cache-Control %q", status, hdr.Get("Cache-Control"))
	}
	segs := uriLines(pl)
	for _, u := range segs {
		if !strings.HasSuffix(u, "v="+ver) {
			t.Errorf("media playlist URI %q: want v=%s", u, ver)
		}
	}
	dir := media0[:strings.LastIndex(media0, "/")+1]
	seg := dir + segs[1] // segs[0] is the EXT-X-MAP init

	status, body, hdr := e.get(seg)
	etag := hdr.Get("ETag")
	if status != http.StatusOK || len(body) == 0 || hdr.Get("Cache-Control") != cacheImmutable || etag == "" {
		t.Fatalf("versioned segment: %d, %d bytes, Cache-Control %q, ETag %q", status, len(body), hdr.Get("Cache-Control"), etag)
	}
	req, _ := http.NewRequest(http.MethodGet, seg, nil)
	req.Header.Set("If-None-Match", etag)
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusNotModified {
		t.Errorf("revalidating with its ETag: %d, want 304", resp.StatusCode)
	}
	// A CDN (or a TV) may ask for the headers alone first.
	resp, err = http.Head(seg)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusOK || resp.ContentLength != int64(len(body)) || resp.Header.Get("ETag") != etag {
		t.Errorf("HEAD of the segment: %d, Content-Length %d (GET sent %d), ETag %q", resp.StatusCode, resp.ContentLength, len(body), resp.Header.Get("ETag"))
	}
	plain := strings.TrimSuffix(strings.TrimSuffix(seg, "v="+ver), "&")
	if status, b, hdr := e.get(plain); status != http.StatusOK || !bytes.Equal(b, body) || hdr.Get("Cache-Control") != cacheRevalid {
		t.Errorf("unversioned %s: %d, same bytes %v, Cache-Control %q", plain, status, bytes.Equal(b, body), hdr.Get("Cache-Control"))
	}

	var info probe.Info
	if err := json.Unmarshal(e.mustGet(base+"/info"), &info); err != nil {
		t.Fatal(err)
	}
	if info.Trickplay != "" && !strings.HasSuffix(info.Trickplay, "?v="+ver) {
		t.Errorf("info's trickplay URL %q: want ?v=%s", info.Trickplay, ver)
	}

	// The file is replaced: same path, same bytes, a new mtime.
	later := st.ModTime().Add(time.Hour)
	if err := os.Chtimes(file, later, later); err != nil {
		t.Fatal(err)
	}
	status, body, hdr = e.get(seg)
	var msg struct {
		Error  string `json:"error"`
		Status int    `json:"status"`
	}
	_ = json.Unmarshal(body, &msg)
	if status != http.StatusNotFound || msg.Status != 404 || !strings.Contains(msg.Error, "reload the master playlist") || hdr.Get("Cache-Control") != "no-store" {
		t.Errorf("old version's segment: %d %s, Cache-Control %q; want 404 saying to reload, no-store", status, body, hdr.Get("Cache-Control"))
	}
	st, _ = os.Stat(file)
	newVer := probe.IdentityOf("", st).Version()
	if newVer == ver {
		t.Fatalf("version unchanged by a new mtime: %s", ver)
	}
	for _, u := range uriLines(e.mustGet(base + "/master.m3u8")) {
		if !strings.HasSuffix(u, "v="+newVer) {
			t.Errorf("master after the change lists %q, want v=%s", u, newVer)
		}
	}
	resp, err = http.Get(dir + "segment-0.m4s?v=" + newVer)
	if err != nil {
		t.Fatal(err)
	}
	io.Copy(io.Discard, resp.Body)
	resp.Body.Close()
	if resp.StatusCode != http.StatusOK || resp.Header.Get("Cache-Control") != cacheImmutable {
		t.Errorf("new version's segment: %d, Cache-Control %q", resp.StatusCode, resp.Header.Get("Cache-Control"))
	}
}

func TestQueryValue(t *testing.T) {
	for _, c := range []struct{ raw, set, want string }{
		{"", "abc", "v=abc"},
		{"clientId=x&v=old&token=a%2Fb", "new", "clientId=x&token=a%2Fb&v=new"},
		{"v=1&v=2", "3", "v=3"},
		{"vv=1", "2", "vv=1&v=2"},
	} {
		if got := setQueryValue(c.raw, "v", c.set); got != c.want {
			t.Errorf("setQueryValue(%q, v, %q) = %q, want %q", c.raw, c.set, got, c.want)
		}
	}
	if v, ok := queryValue("a=1&v=x%20y", "v"); !ok || v != "x y" {
		t.Errorf("queryValue: %q %v", v, ok)
	}
	if _, ok := queryValue("vv=1", "v"); ok {
		t.Error("queryValue found v in vv=1")
	}
}
