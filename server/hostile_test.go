package server

import (
	"bytes"
	"crypto/rand"
	"encoding/json"
	"fmt"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/hlsd/hlsd/transcoder"
	"github.com/hlsd/hlsd/transcoder/fmp4"
)

// wantError asserts a response is the JSON error api.md describes, with status.
func wantError(t *testing.T, what string, status int, body []byte, hdr http.Header, want int) {
	t.Helper()
	var msg struct {
		Error  string `json:"error"`
		Status int    `json:"status"`
	}
	if status != want || json.Unmarshal(body, &msg) != nil || msg.Status != want || msg.Error == "" ||
		hdr.Get("Content-Type") != "application/json" {
		t.Errorf("%s: %d %q; want %d with a JSON error", what, status, body, want)
	}
}

// wholeSegment checks that b is a complete fMP4 media segment: top-level
// boxes that add up to exactly its length, with a moof and an mdat. A
// truncated or half-written segment fails this.
func wholeSegment(b []byte) error {
	types, err := fmp4.Types(b)
	if err != nil {
		return err
	}
	joined := strings.Join(types, " ")
	if !strings.Contains(joined, "moof") || !strings.Contains(joined, "mdat") {
		return fmt.Errorf("boxes %s: no moof and mdat", joined)
	}
	return nil
}

// checkStreams fetches the master, then init and segment 0 of the original,
// the lowest rung and the first audio track, and checks each segment is
// whole and starts with a decodable keyframe.
func checkStreams(t *testing.T, e *testEnv, file string) {
	t.Helper()
	base := e.videoURL(file)
	e.mustGet(base + "/master.m3u8")
	for _, v := range []string{"video/0/original", "video/0/240p", "audio/0/aac"} {
		e.mustGet(base + "/" + v + "/index.m3u8")
		init := e.mustGet(base + "/" + v + "/init.mp4")
		seg := e.mustGet(base + "/" + v + "/segment-0.m4s")
		if err := wholeSegment(seg); err != nil {
			t.Errorf("%s %s segment 0: %v", file, v, err)
			continue
		}
		if strings.HasPrefix(v, "video") {
			if flags, _, pict := probeSegment(t, init, seg); !strings.HasPrefix(flags, "K") || pict != "I" {
				t.Errorf("%s %s segment 0 starts with flags %q picture %q, want a keyframe", file, v, flags, pict)
			}
		}
	}
}

// TestBadInput sends every kind of bad request a library and its visitors
// produce, one table row each, then checks a good file still streams.
func TestBadInput(t *testing.T) {
	e := newEnv(t, transcoder.Config{}, "h264.mp4")
	clip, err := os.ReadFile(filepath.Join(e.media, "h264.mp4"))
	if err != nil {
		t.Fatal(err)
	}
	random := make([]byte, 256<<10)
	rand.Read(random)
	moov := bytes.Index(clip, []byte("moov"))
	if moov < 0 || moov > len(clip)/2 {
		t.Fatalf("h264.mp4 should carry its moov near the start (faststart), found at %d", moov)
	}
	files := map[string][]byte{
		"empty.mp4":     nil,
		"random.mkv":    random,
		"truncated.mp4": clip[moov+4096:], // the moov and everything before it cut off
		"notes.txt":     []byte("not a video\n"),
		"notes.mp4":     []byte("a text file with a video extension\n"),
	}
	for name, b := range files {
		if err := os.WriteFile(filepath.Join(e.media, name), b, 0o644); err != nil {
			t.Fatal(err)
		}
	}
	if err := os.Mkdir(filepath.Join(e.media, "Shows"), 0o755); err != nil {
		t.Fatal(err)
	}
	odd := []string{"with space.mp4", `with "quotes" and 'apostrophes'.mp4`, "ünïcødé 日本語.mp4", "new\nline.mp4", "percent%20and#hash?.mp4"}
	for _, name := range odd {
		if err := os.Link(filepath.Join(e.media, "h264.mp4"), filepath.Join(e.media, name)); err != nil {
			t.Fatal(err)
		}
	}

	id := encodeID
	good := e.videoURL("h264.mp4")
	rows := []struct {
		name   string
		path   string // after the server URL
		status int
	}{
		{"empty file", "/videos/" + id("empty.mp4") + "/master.m3u8", 415},
		{"random bytes with a video extension", "/videos/" + id("random.mkv") + "/master.m3u8", 415},
		{"mp4 without its moov", "/videos/" + id("truncated.mp4") + "/info", 415},
		{"text file", "/videos/" + id("notes.txt") + "/info", 415},
		{"text file with a video extension", "/videos/" + id("notes.mp4") + "/video/0/original/segment-0.m4s", 415},
		{"directory id", "/videos/" + id("Shows") + "/master.m3u8", 404},
		{"media root id", "/videos/" + id(".") + "/master.m3u8", 404},
		{"missing file", "/videos/" + id("missing.mp4") + "/master.m3u8", 404},
		{"non-base64 id", "/videos/not*base64!/master.m3u8", 400},
		{"padded base64 id", "/videos/YWJj=/master.m3u8", 400},
		{"id of invalid UTF-8", "/videos/" + id("\xff\xfe.mp4") + "/info", 400},
		{"id of 10 kB", "/videos/" + strings.Repeat("QUJD", 2560) + "/info", 400},
		{"unknown quality", good[len(e.url):] + "/video/0/999p/index.m3u8", 400},
		{"audio quality on video", good[len(e.url):] + "/audio/0/720p/index.m3u8", 400},
		{"rung above the source", good[len(e.url):] + "/video/0/1080p/index.m3u8", 404},
		{"negative segment", good[len(e.url):] + "/video/0/original/segment--1.m4s", 400},
		{"huge segment", good[len(e.url):] + "/video/0/original/segment-99999999999999999999.m4s", 400},
		{"segment past the end", good[len(e.url):] + "/video/0/original/segment-99999.m4s", 404},
		{"non-numeric segment", good[len(e.url):] + "/video/0/original/segment-x.m4s", 400},
		{"segment with a path", good[len(e.url):] + "/video/0/original/..%2Fsegment-0.m4s", 400},
		{"video track that does not exist", good[len(e.url):] + "/video/3/original/index.m3u8", 404},
		{"audio track that does not exist", good[len(e.url):] + "/audio/5/aac/segment-0.m4s", 404},
		{"negative track", good[len(e.url):] + "/audio/-1/aac/index.m3u8", 400},
		{"unknown track kind", good[len(e.url):] + "/subtitle/0/aac/index.m3u8", 404},
		{"thumbnails of a text file", "/videos/" + id("notes.txt") + "/trickplay.vtt", 415},
		{"thumbnail sheet of a missing file", "/videos/" + id("missing.mp4") + "/trickplay/sheet-0.jpg", 404},
		{"malformed thumbnail sheet", good[len(e.url):] + "/trickplay/sheet-x.jpg", 400},
		{"thumbnail sheet past the end", good[len(e.url):] + "/trickplay/sheet-7.jpg", 404},
		{"unknown route", "/videos/" + id("h264.mp4") + "/nope", 404},
		{"listing a missing folder", "/api/media?dir=nope", 404},
		{"listing a file", "/api/media?dir=h264.mp4", 404},
	}
	for _, r := range rows {
		status, body, hdr := e.get(e.url + r.path)
		wantError(t, r.name, status, body, hdr, r.status)
	}

	// Odd names are listed with ids that work.
	listed := e.listing()
	for _, name := range odd {
		x, ok := listed[name]
		if !ok || x.ID != id(name) {
			t.Errorf("%q: listed %v with id %q, want id %q", name, ok, x.ID, id(name))
			continue
		}
		e.mustGet(e.url + x.Master)
		seg := e.mustGet(e.url + "/videos/" + x.ID + "/video/0/original/segment-1.m4s")
		if err := wholeSegment(seg); err != nil {
			t.Errorf("%q: segment 1: %v", name, err)
		}
	}
	if _, ok := listed["notes.txt"]; ok {
		t.Error("notes.txt is listed as media")
	}

	// After all of it, a good file still streams correctly.
	checkStreams(t, e, "h264.mp4")
}

// TestConfinement tries every way out of the media root: "..", absolute
// paths, symlinks to files and folders outside, and a symlink swapped in for
// a file after it was listed and played. Nothing outside may be read, and a
// symlink that stays inside keeps working.
func TestConfinement(t *testing.T) {
	e := newEnv(t, transcoder.Config{}, "h264.mp4", "vp9.webm")
	outside := t.TempDir()
	secret := filepath.Join(outside, "secret.mp4")
	// A real, playable file: if anything reached it, the request would succeed.
	if err := os.Link(filepath.Join(e.media, "vp9.webm"), secret); err != nil {
		t.Fatal(err)
	}
	must := func(err error) {
		t.Helper()
		if err != nil {
			t.Fatal(err)
		}
	}
	must(os.Symlink(secret, filepath.Join(e.media, "link-out.mp4")))
	must(os.Symlink("../"+filepath.Base(outside)+"/secret.mp4", filepath.Join(e.media, "relative-out.mp4")))
	must(os.Symlink(outside, filepath.Join(e.media, "dir-out")))
	must(os.Symlink("h264.mp4", filepath.Join(e.media, "link-in.mp4")))
	must(os.Mkdir(filepath.Join(e.media, "sub"), 0o755))
	must(os.Symlink("../h264.mp4", filepath.Join(e.media, "sub", "up-in.mp4")))

	rel, err := filepath.Rel(e.media, secret)
	must(err)
	escapes := []string{
		rel,             // ../<tmp>/secret.mp4
		"sub/../" + rel, // .. after a real folder
		"sub/../../" + filepath.Base(outside) + "/secret.mp4",
		"./" + rel,                     // leading ./
		secret,                         // absolute
		"//" + secret,                  // absolute, doubled slash
		"..",                           // the parent itself
		"../",                          // with a slash
		"h264.mp4/../../x.mp4",         // .. after a file
		"..\\" + filepath.Base(secret), // a Windows separator
		"sub/\x00/h264.mp4",            // NUL
		"link-out.mp4",                 // symlink to a file outside
		"relative-out.mp4",             // relative symlink leading outside
		"dir-out/secret.mp4",           // through a symlinked folder outside
	}
	for _, p := range escapes {
		for _, route := range []string{"/info", "/master.m3u8", "/video/0/original/segment-0.m4s"} {
			status, body, hdr := e.get(e.url + "/videos/" + encodeID(p) + route)
			wantError(t, fmt.Sprintf("%q %s", p, route), status, body, hdr, http.StatusForbidden)
		}
	}
	for _, dir := range []string{"..", "dir-out", "sub/../..", secret} {
		status, body, hdr := e.get(e.url + "/api/media?dir=" + dir)
		wantError(t, "listing "+dir, status, body, hdr, http.StatusForbidden)
	}

	// The listing shows neither escaping link, and the inner ones work.
	listed := e.listing()
	for _, name := range []string{"link-out.mp4", "relative-out.mp4", "dir-out"} {
		if _, ok := listed[name]; ok {
			t.Errorf("%s is listed", name)
		}
	}
	for _, p := range []string{"link-in.mp4", "sub/up-in.mp4"} {
		if status, body, _ := e.get(e.videoURL(p) + "/video/0/original/segment-0.m4s"); status != http.StatusOK {
			t.Errorf("%s (a symlink inside the root): %d %s", p, status, body)
		}
	}

	// A file that was listed and played, then swapped for a symlink leading
	// out: its playlists and segments must not follow it.
	swap := filepath.Join(e.media, "swap.mp4")
	must(os.Link(filepath.Join(e.media, "h264.mp4"), swap))
	e.mustGet(e.videoURL("swap.mp4") + "/master.m3u8")
	e.mustGet(e.videoURL("swap.mp4") + "/video/0/original/index.m3u8")
	must(os.Remove(swap))
	must(os.Symlink(secret, swap))
	for _, route := range []string{"/info", "/master.m3u8", "/video/0/original/segment-2.m4s", "/video/0/240p/segment-3.m4s", "/audio/0/aac/segment-1.m4s"} {
		status, body, hdr := e.get(e.videoURL("swap.mp4") + route)
		wantError(t, "swapped "+route, status, body, hdr, http.StatusForbidden)
	}
}
