package server

import (
	"encoding/json"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"testing"

	"github.com/hlsd/hlsd/transcoder"
	"github.com/hlsd/hlsd/transcoder/testmedia"
)

// listedMaster is what a client reads of a master: its variants and audio
// renditions, in order.
type listedMaster struct {
	variants []map[string]string // STREAM-INF attributes, plus "uri"
	audio    []map[string]string // EXT-X-MEDIA TYPE=AUDIO attributes
	iframes  []map[string]string
}

func readMaster(b []byte) listedMaster {
	var m listedMaster
	lines := strings.Split(string(b), "\n")
	for i, l := range lines {
		switch {
		case strings.HasPrefix(l, "#EXT-X-STREAM-INF:") && i+1 < len(lines):
			a := attrs(l)
			a["uri"] = unversioned(lines[i+1])
			m.variants = append(m.variants, a)
		case strings.HasPrefix(l, "#EXT-X-MEDIA:TYPE=AUDIO"):
			m.audio = append(m.audio, attrs(l))
		case strings.HasPrefix(l, "#EXT-X-I-FRAME-STREAM-INF:"):
			m.iframes = append(m.iframes, attrs(l))
		}
	}
	return m
}

// The client profiles the issue names, and a few more.
var profiles = map[string]string{
	"none":             "",
	"browser-no-hevc":  "codecs=avc1,vp09,av01,mp4a,opus",
	"apple-tv":         "codecs=avc1,hvc1,mp4a,ac-3,ec-3",
	"old-tv":           "codecs=avc1,mp4a&container=ts&maxheight=1080&channels=2",
	"hevc-sdr-720":     "codecs=avc1,hvc1,mp4a&maxheight=720&range=sdr",
	"stereo-only":      "channels=2",
	"maxheight-only":   "maxheight=240",
	"sdr-only":         "range=sdr",
	"h264-only-sdr-ts": "codecs=avc1,mp4a&range=sdr&container=ts",
	"ts-maxheight":     "container=ts&maxheight=240",
	"ts-sdr":           "container=ts&range=sdr",
	"ts-stereo":        "container=ts&channels=2",
}

// allowedBy mirrors the rule api.md states: a codec is allowed when a
// prefix in the list names it (the whole codec, or up to a dot).
func allowedBy(list []string, codec string) bool {
	for _, p := range list {
		if codec == p || strings.HasPrefix(codec, p+".") {
			return true
		}
	}
	return false
}

// TestMasterFilters checks every filter, alone and combined with
// container=ts, on files with HEVC, PQ, 5.1 AC-3 and several tracks: each
// variant and rendition left declares only codecs the client allows, is
// no taller than maxheight, is SDR under range=sdr, and has no more
// channels than asked; what a client declares that it decodes comes first.
func TestMasterFilters(t *testing.T) {
	e := newEnv(t, transcoder.Config{}, "h264.mp4", "hevc.mkv", "hdr-pq.mkv", "twoaudio.mkv")
	for _, file := range []string{"h264.mp4", "hevc.mkv", "hdr-pq.mkv", "twoaudio.mkv"} {
		for name, q := range profiles {
			t.Run(file+"/"+name, func(t *testing.T) {
				status, b, _ := e.get(e.videoURL(file) + "/master.m3u8?" + q)
				if status != http.StatusOK {
					t.Fatalf("status %d: %s", status, b)
				}
				v, _ := url.ParseQuery(q)
				m := readMaster(b)
				if len(m.variants) == 0 {
					t.Fatalf("no variant:\n%s", b)
				}
				var list []string
				if v.Has("codecs") {
					list = strings.Split(v.Get("codecs"), ",")
				}
				maxHeight, _ := strconv.Atoi(v.Get("maxheight"))
				channels, _ := strconv.Atoi(v.Get("channels"))
				for _, x := range append(m.variants, m.iframes...) {
					for _, c := range strings.Split(x["CODECS"], ",") {
						if list != nil && !allowedBy(list, c) {
							t.Errorf("%s declares %s, not in %v", x["URI"]+x["uri"], c, list)
						}
					}
					if _, h, _ := strings.Cut(x["RESOLUTION"], "x"); maxHeight > 0 {
						if n, _ := strconv.Atoi(h); n > maxHeight {
							t.Errorf("%s is %s, taller than %d", x["uri"], x["RESOLUTION"], maxHeight)
						}
					}
					if v.Get("range") == "sdr" && x["VIDEO-RANGE"] != "SDR" {
						t.Errorf("%s is %s under range=sdr", x["uri"], x["VIDEO-RANGE"])
					}
					if ts := v.Get("container") == "ts"; ts != strings.Contains(x["uri"], "container=ts") {
						t.Errorf("%s: container=ts not carried on", x["uri"])
					}
				}
				for _, a := range m.audio {
					if n, _ := strconv.Atoi(a["CHANNELS"]); channels > 0 && n > channels {
						t.Errorf("%s has %d channels, more than %d", a["URI"], n, channels)
					}
				}
				if v.Get("container") == "ts" && (len(m.audio) > 0 || len(m.iframes) > 0) {
					t.Errorf("an MPEG-TS master lists audio renditions or I-frames")
				}
				// A client that names the original's codec gets it first.
				if list != nil && v.Get("container") != "ts" && v.Get("maxheight") == "" &&
					(file == "hevc.mkv" && allowedBy(list, "hvc1") || file == "h264.mp4") {
					if first := m.variants[0]["uri"]; !strings.HasPrefix(first, "video/0/original/") {
						t.Errorf("first variant %s, want the original", first)
					}
				}
			})
		}
	}
}

// TestCopyForClientsThatSayHEVC: the issue's own case. A player told
// codecs=avc1,mp4a,hvc1 is sent the HEVC copy first; one that says only
// avc1,mp4a never sees an hvc1 variant.
func TestCopyForClientsThatSayHEVC(t *testing.T) {
	e := newEnv(t, transcoder.Config{}, "hevc.mkv")
	m := readMaster(e.mustGet(e.videoURL("hevc.mkv") + "/master.m3u8?codecs=avc1,mp4a,hvc1"))
	if first := m.variants[0]; !strings.HasPrefix(first["uri"], "video/0/original/index.m3u8") || !strings.HasPrefix(first["CODECS"], "hvc1.") {
		t.Errorf("first variant %v, want the HEVC original", first)
	}
	m = readMaster(e.mustGet(e.videoURL("hevc.mkv") + "/master.m3u8?codecs=avc1,mp4a"))
	for _, v := range m.variants {
		if strings.Contains(v["CODECS"], "hvc1") || strings.Contains(v["uri"], "original") {
			t.Errorf("variant %s (%s) for a client without HEVC", v["uri"], v["CODECS"])
		}
	}
}

// TestFilterLeavesNothing: 406 with the JSON error naming what was asked
// and what the file has; a malformed filter is a 400.
func TestFilterLeavesNothing(t *testing.T) {
	e := newEnv(t, transcoder.Config{}, "h264.mp4", "hevc.mkv")
	for _, c := range []struct {
		file, query string
		status      int
		says        []string
	}{
		{"h264.mp4", "codecs=hvc1,mp4a", 406, []string{"codecs=hvc1,mp4a", "no video variant", "h264", "avc1"}},
		{"hevc.mkv", "codecs=avc1", 406, []string{"codecs=avc1", "no audio rendition", "ac3"}},
		{"hevc.mkv", "codecs=hvc1,mp4a&container=ts", 406, []string{"container=ts", "hevc"}},
		{"h264.mp4", "channels=1", 406, []string{"channels=1", "2 channels"}},
		{"h264.mp4", "maxheight=100", 406, []string{"maxheight=100", "taller than maxheight"}},
		{"h264.mp4", "maxheight=tall", 400, []string{"maxheight"}},
		{"h264.mp4", "range=bright", 400, []string{"range"}},
	} {
		for _, route := range []string{"/master.m3u8?", "/decision?"} {
			status, b, h := e.get(e.videoURL(c.file) + route + c.query)
			var body struct {
				Error  string `json:"error"`
				Status int    `json:"status"`
			}
			if err := json.Unmarshal(b, &body); err != nil || status != c.status || body.Status != c.status ||
				!strings.HasPrefix(h.Get("Content-Type"), "application/json") {
				t.Errorf("%s %s: status %d, body %s; want %d in the JSON error shape", c.file, route+c.query, status, b, c.status)
				continue
			}
			for _, s := range c.says {
				if !strings.Contains(body.Error, s) {
					t.Errorf("%s %s: %q does not say %q", c.file, route+c.query, body.Error, s)
				}
			}
		}
	}
}

// TestDecisionMatchesMaster asks /decision and the master the same
// question, for every test file and client profile: the video quality is
// the first variant's, "copy" exactly when that is the original; each
// audio track's quality is the rendition the first variant's group gives
// it (the muxed-in default track for MPEG-TS); the master it names is
// that master; and reasons are given for every transcode that a filter
// or the file caused.
func TestDecisionMatchesMaster(t *testing.T) {
	e := newEnv(t, transcoder.Config{}, testmedia.Names()...)
	for _, file := range testmedia.Names() {
		for name, q := range profiles {
			t.Run(file+"/"+name, func(t *testing.T) {
				// Calibration may land a speed between two requests and
				// change the rungs advertised: the decision is compared with
				// a master that was the same just before and just after it.
				var status int
				var b, before []byte
				for try := 0; try < 5; try++ {
					_, before, _ = e.get(e.videoURL(file) + "/master.m3u8?" + q)
					status, b, _ = e.get(e.videoURL(file) + "/decision?" + q)
					if _, after, _ := e.get(e.videoURL(file) + "/master.m3u8?" + q); string(after) == string(before) {
						break
					}
				}
				if status == http.StatusNotAcceptable {
					if s, _, _ := e.get(e.videoURL(file) + "/master.m3u8?" + q); s != http.StatusNotAcceptable {
						t.Fatalf("decision 406, master %d", s)
					}
					return
				}
				if status != http.StatusOK {
					t.Fatalf("decision: status %d: %s", status, b)
				}
				var d struct {
					transcoder.Decision
					Master string `json:"master"`
				}
				if err := json.Unmarshal(b, &d); err != nil {
					t.Fatal(err)
				}
				if want := strings.TrimSuffix("/videos/"+encodeID(file)+"/master.m3u8?"+q, "?"); d.Master != want {
					t.Errorf("the decision names master %s", d.Master)
				}
				m := readMaster(before)
				first := m.variants[0]
				wantQ := strings.Split(first["uri"], "/")[2]
				if d.Video.Quality != wantQ {
					t.Errorf("video: decision %s, first variant %s", d.Video.Quality, first["uri"])
				}
				if (d.Video.Action == "copy") != (wantQ == "original") || (d.Video.Action == "transcode" && len(d.Video.Reasons) == 0) {
					t.Errorf("video: action %s with reasons %q for first variant %s", d.Video.Action, d.Video.Reasons, wantQ)
				}
				if strings.Contains(q, "container=ts") {
					if len(d.Audio) > 1 {
						t.Errorf("MPEG-TS: %d audio decisions, one track is muxed in", len(d.Audio))
					}
					return
				}
				group := map[int]string{}
				for _, a := range m.audio {
					if a["GROUP-ID"] == first["AUDIO"] {
						parts := strings.Split(a["URI"], "/")
						track, _ := strconv.Atoi(parts[1])
						group[track] = parts[2]
					}
				}
				if len(d.Audio) != len(group) {
					t.Fatalf("%d audio decisions, the first variant's group has %d renditions", len(d.Audio), len(group))
				}
				for _, a := range d.Audio {
					if group[a.Track] != a.Quality {
						t.Errorf("audio %d: decision %s, master %s", a.Track, a.Quality, group[a.Track])
					}
					if a.Action == "transcode" && len(a.Reasons) == 0 {
						t.Errorf("audio %d: transcoded without a reason", a.Track)
					}
				}
			})
		}
	}
}
