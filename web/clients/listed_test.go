package clients_test

import (
	"context"
	"encoding/json"
	"io"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	"go.uber.org/zap"
	"go.uber.org/zap/zaptest"

	"github.com/hlsd/hlsd/transcoder"
	"github.com/hlsd/hlsd/transcoder/testmedia"
	"github.com/hlsd/hlsd/web/e2e"
)

// TestEveryListedURI walks every URI that the masters of the test media
// list (of each shape of master), fMP4 and MPEG-TS: each variant, audio rendition, I-frame playlist
// and subtitle track. Of each media playlist it asks for segment 0 and the
// last, each from a cold start of its variant (the last is far from 0, so
// it starts a run of its own: a seek's start), and decodes it after its
// init with ffmpeg -xerror: it must decode, and its first frame must be
// where the playlist says. Players start on whatever a master lists as
// default, so a rendition that fails at segment 0 fails every one of them.
func TestEveryListedURI(t *testing.T) {
	t.Parallel()
	if testing.Short() {
		t.Skip("-short: every URI of every master is minutes of encoding")
	}
	// Every clip but two whose masters have the shape of others': 1080p
	// and 720p H.264 with stereo AAC are h264.mp4's and long.mp4's masters
	// with a ladder long.mp4's covers, and would add a minute of encoding.
	var files []string
	for _, n := range testmedia.Names() {
		if n != "h264-1080.mp4" && n != "h264-720.mp4" {
			files = append(files, n)
		}
	}
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Minute)
	defer cancel()
	media := t.TempDir()
	lib, err := e2e.LibraryOf(ctx, media, files...)
	if err != nil {
		t.Fatal(err)
	}
	// ultrafast: what is checked is where segments are and that they
	// decode, and the 1080p rungs of three files are many minutes of
	// encoding at the default preset on two cores.
	srv, err := e2e.StartWith(transcoder.Config{Preset: "ultrafast"}, media, t.TempDir(), zaptest.NewLogger(t, zaptest.Level(zap.WarnLevel)), "")
	if err != nil {
		t.Fatal(err)
	}
	defer srv.Close()
	for _, f := range lib {
		t.Run(f.Name, func(t *testing.T) {
			base := srv.URL + "/videos/" + f.ID
			seen := map[string]bool{}
			for _, query := range []string{"", "?container=ts"} {
				master := string(mustGet(t, base+"/master.m3u8"+query))
				for _, uri := range listedURIs(master) {
					if seen[uri] {
						continue
					}
					seen[uri] = true
					name, _, _ := strings.Cut(uri, "?")
					if query != "" {
						name += " (ts)"
					}
					t.Run(name, func(t *testing.T) {
						checkListed(t, base, uri)
					})
				}
			}
		})
	}
}

// get fetches a URL; the body is returned whatever the status.
func get(t *testing.T, url string) (int, []byte) {
	t.Helper()
	resp, err := http.Get(url)
	if err != nil {
		t.Fatalf("GET %s: %v", url, err)
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatalf("GET %s: reading body: %v", url, err)
	}
	return resp.StatusCode, b
}

func mustGet(t *testing.T, url string) []byte {
	t.Helper()
	status, b := get(t, url)
	if status != http.StatusOK {
		t.Fatalf("GET %s: status %d: %s", url, status, b)
	}
	return b
}

// listedURIs is every playlist URI of a master: the variants' lines and
// the URI attributes of its EXT-X-MEDIA and EXT-X-I-FRAME-STREAM-INF tags.
func listedURIs(master string) []string {
	var out []string
	lines := strings.Split(master, "\n")
	for i, l := range lines {
		switch {
		case strings.HasPrefix(l, "#EXT-X-STREAM-INF:") && i+1 < len(lines):
			out = append(out, lines[i+1])
		case strings.HasPrefix(l, "#EXT-X-MEDIA:"), strings.HasPrefix(l, "#EXT-X-I-FRAME-STREAM-INF:"):
			if u := attrsRaw(l)["URI"]; u != "" {
				out = append(out, u)
			}
		}
	}
	return out
}

// attrRe is one attribute of a playlist tag's attribute list.
var attrRe = regexp.MustCompile(`([A-Z0-9-]+)=("[^"]*"|[^,]*)`)

// attrsRaw parses the attribute list of one playlist tag line.
func attrsRaw(line string) map[string]string {
	_, list, _ := strings.Cut(line, ":")
	out := map[string]string{}
	for _, m := range attrRe.FindAllStringSubmatch(list, -1) {
		out[m[1]] = strings.Trim(m[2], `"`)
	}
	return out
}

// listedPlaylist is a media playlist's init and segments, URIs as written.
type listedPlaylist struct {
	init   string
	uris   []string
	starts []float64
	end    float64
}

func readListed(t *testing.T, b []byte) listedPlaylist {
	t.Helper()
	var p listedPlaylist
	pos, next := 0.0, -1.0
	for _, l := range strings.Split(string(b), "\n") {
		switch {
		case strings.HasPrefix(l, "#EXT-X-MAP:"):
			p.init = attrsRaw(l)["URI"]
		case strings.HasPrefix(l, "#EXTINF:"):
			d, err := strconv.ParseFloat(strings.TrimSuffix(strings.TrimPrefix(l, "#EXTINF:"), ","), 64)
			if err != nil {
				t.Fatalf("bad EXTINF %q", l)
			}
			next = d
		case l != "" && !strings.HasPrefix(l, "#") && next >= 0:
			p.uris = append(p.uris, l)
			p.starts = append(p.starts, pos)
			pos += next
			next = -1
		}
	}
	p.end = pos
	if len(p.uris) == 0 {
		t.Fatalf("media playlist lists no segment:\n%s", b)
	}
	return p
}

func checkListed(t *testing.T, base, uri string) {
	dir := base + "/" + filepath.Dir(strings.SplitN(uri, "?", 2)[0])
	body := mustGet(t, base+"/"+uri)
	if strings.HasPrefix(uri, "subtitles/") {
		p := readListed(t, body)
		for _, u := range p.uris {
			if vtt := mustGet(t, dir+"/"+u); !strings.HasPrefix(string(vtt), "WEBVTT") {
				t.Errorf("%s: not WebVTT: %.60q", u, vtt)
			}
		}
		return
	}
	p := readListed(t, body)
	var init []byte
	if p.init != "" {
		init = mustGet(t, dir+"/"+p.init)
	}
	// The playlists' timeline starts at the file's first video frame (see
	// TestPassthrough), and MPEG-TS segments keep the muxer's offset: the
	// first segment says where the timeline is, the others must follow it.
	offset := 0.0
	for k, i := range slices.Compact([]int{0, len(p.uris) - 1}) {
		status, seg := get(t, dir+"/"+p.uris[i])
		if status != http.StatusOK {
			t.Fatalf("segment %d (%s): status %d: %s", i, p.uris[i], status, seg)
		}
		path := filepath.Join(t.TempDir(), "seg"+filepath.Ext(strings.SplitN(p.uris[i], "?", 2)[0]))
		if err := os.WriteFile(path, append(slices.Clone(init), seg...), 0o644); err != nil {
			t.Fatal(err)
		}
		if out, err := exec.Command("ffmpeg", "-v", "error", "-xerror", "-i", path, "-f", "null", "-").CombinedOutput(); err != nil {
			t.Errorf("segment %d does not decode: %v: %s", i, err, out)
			continue
		}
		first, tol := firstFrame(t, path)
		if strings.HasPrefix(uri, "video/0/original/") && !strings.Contains(uri, "container=ts") {
			// x265's open GOPs: a copied segment starts on a CRA whose
			// leading pictures need the GOP before, so its first decodable
			// frame comes a few frames after the boundary.
			tol = 0.25
		}
		if k == 0 {
			offset = first - p.starts[i]
			// The sources' first video frames are within 0.1 s of 0.
			if !strings.Contains(uri, "container=ts") && (offset < -tol || offset > 0.1+tol) {
				t.Errorf("segment 0 starts at %.3f s, want the timeline's start, within 0.1 s of 0", first)
			}
			continue
		}
		if d := first - p.starts[i] - offset; d < -tol || d > tol {
			t.Errorf("segment %d starts at %.3f s, want %.3f s (its playlist time, %.3f s, from where segment 0 is)",
				i, first, p.starts[i]+offset, p.starts[i])
		}
	}
}

// firstFrame is the presentation time of the first frame decoded from
// path, and how far from a boundary a first frame may lie: a video frame,
// or an audio one (1024 samples of AAC, 1536 of AC-3, 1152 of MP2).
func firstFrame(t *testing.T, path string) (float64, float64) {
	t.Helper()
	out, err := exec.Command("ffprobe", "-v", "error", "-show_entries", "frame=media_type,best_effort_timestamp_time,sample_rate,nb_samples",
		"-read_intervals", "%+#2", "-of", "json", path).Output()
	if err != nil {
		t.Fatalf("ffprobe %s: %v", path, err)
	}
	var r struct {
		Frames []struct {
			Type       string `json:"media_type"`
			Time       string `json:"best_effort_timestamp_time"`
			SampleRate string `json:"sample_rate"`
			Samples    int    `json:"nb_samples"`
		} `json:"frames"`
	}
	if err := json.Unmarshal(out, &r); err != nil || len(r.Frames) == 0 {
		t.Fatalf("no frame in %s (%v)", path, err)
	}
	// A TS segment holds video and audio: the video says where it is.
	f := r.Frames[0]
	for _, x := range r.Frames {
		if x.Type == "video" {
			f = x
			break
		}
	}
	at, _ := strconv.ParseFloat(f.Time, 64)
	if f.Type == "audio" {
		sr, _ := strconv.ParseFloat(f.SampleRate, 64)
		return at, float64(max(f.Samples, 1536))/max(sr, 8000) + 0.002
	}
	return at, 0.05
}
