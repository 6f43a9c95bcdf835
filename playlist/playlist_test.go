package playlist

import (
	"bytes"
	"encoding/binary"
	"flag"
	"fmt"
	"math"
	"os"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"testing"

	"github.com/grafov/m3u8"
)

var update = flag.Bool("update", false, "rewrite testdata/*.m3u8 golden files")

// writeCase is one playlist to write; exactly one of master and media is set.
type writeCase struct {
	name   string
	master *Master
	media  *mediaCase
}

type mediaCase struct {
	plan    Plan
	init    string
	query   string
	iframes bool // an I-frames-only playlist
}

func segURI(i int) string { return fmt.Sprintf("seg/%d.m4s", i) }

func (c writeCase) write() []byte {
	if c.master != nil {
		return WriteMaster(*c.master)
	}
	if c.media.iframes {
		return WriteIFrames(c.media.plan, c.media.init, segURI, c.media.query)
	}
	return WriteMedia(c.media.plan, c.media.init, segURI, c.media.query)
}

func (c writeCase) query() string {
	if c.master != nil {
		return c.master.Query
	}
	return c.media.query
}

var ladder = []Variant{
	{URI: "video/0/1080p/index.m3u8", Bandwidth: 8_192_000, AverageBandwidth: 6_100_000, Codecs: "avc1.640028,mp4a.40.2,ac-3", Width: 1920, Height: 1080, FrameRate: 23.976, Name: "1080p"},
	{URI: "video/0/720p/index.m3u8", Bandwidth: 3_192_000, AverageBandwidth: 2_600_000, Codecs: "avc1.64001f,mp4a.40.2,ac-3", Width: 1280, Height: 720, FrameRate: 23.976, Name: "720p"},
	{URI: "video/0/original/index.m3u8", Bandwidth: 12_000_000, Codecs: "hvc1.2.4.L120.B0,mp4a.40.2,ac-3", Width: 3840, Height: 2160, FrameRate: 30000.0 / 1001, VideoRange: "PQ", Name: "original"},
}

var cases = []writeCase{
	{name: "master_ladder", master: &Master{
		Variants:   ladder,
		NoCaptions: true,
		IFrames: []IFrames{
			{URI: "video/0/1080p/iframes.m3u8", Bandwidth: 937_500, Codecs: "avc1.640028", Width: 1920, Height: 1080, VideoRange: "SDR"},
			{URI: "video/0/720p/iframes.m3u8", Bandwidth: 525_000, Codecs: "avc1.64001f", Width: 1280, Height: 720, VideoRange: "SDR"},
		},
		Audio: []Audio{
			{URI: "audio/1/index.m3u8", Name: "English", Language: "en", Default: true, Channels: 2},
			{URI: "audio/2/index.m3u8", Name: "English", Language: "en", Channels: 6},
			{URI: "audio/3/index.m3u8", Name: "Deutsch", Language: "de", Default: true, Channels: 6},
		},
	}},
	{name: "master_query", master: &Master{
		Variants: ladder[1:2],
		Audio: []Audio{
			{URI: "audio/1/index.m3u8?lang=x", Name: "Director's \"cut\"\ncommentary", Language: "und", Default: true, Channels: 2},
		},
		Query: "clientId=a&token=b",
	}},
	{name: "master_subtitles", master: &Master{
		Variants: ladder[:2],
		Audio:    []Audio{{URI: "audio/0/aac/index.m3u8", Name: "English", Language: "eng", Default: true, Channels: 2}},
		Subtitles: []Subtitle{
			{URI: "subtitles/0.m3u8", Name: "English", Language: "eng", Default: true},
			{URI: "subtitles/1.m3u8", Name: "English", Language: "en"},
			{URI: "subtitles/2.m3u8", Name: "French", Language: "fr", Forced: true},
			{URI: "subtitles/3.m3u8", Name: "", Language: "und", Default: true},
		},
		Query: "token=b",
	}},
	{name: "master_video_only", master: &Master{
		Variants: []Variant{{URI: "video/0/480p/index.m3u8", Bandwidth: 1_200_000, AverageBandwidth: 1_000_000, Codecs: "avc1.64001e", Width: 854, Height: 480, FrameRate: 25}},
	}},
	{name: "media_keyframes", media: &mediaCase{
		plan: KeyframePlan(every(ntsc(48), 65.3), 65.3, 6),
		init: "init.mp4",
	}},
	{name: "media_long_gop_query", media: &mediaCase{
		plan:  KeyframePlan([]float64{0, 2, 4, 6, 19.019, 21.021}, 30.03, 6),
		init:  "init.mp4?v=2",
		query: "clientId=a&token=b",
	}},
	{name: "media_grid", media: &mediaCase{
		plan:  GridPlan(20.5, 24000.0/1001, 6),
		init:  "init.mp4",
		query: "token=b",
	}},
	{name: "iframes_keyframes", media: &mediaCase{
		plan:    KeyframePlan(every(ntsc(48), 65.3), 65.3, 6),
		init:    "iframes-init.mp4",
		query:   "token=b",
		iframes: true,
	}},
	{name: "media_single_segment", media: &mediaCase{
		plan: KeyframePlan(nil, 4.2, 6),
		init: "init.mp4",
	}},
}

func TestGolden(t *testing.T) {
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			got := c.write()
			path := filepath.Join("testdata", c.name+".m3u8")
			if *update {
				if err := os.WriteFile(path, got, 0o644); err != nil {
					t.Fatal(err)
				}
			}
			want, err := os.ReadFile(path)
			if err != nil {
				t.Fatalf("%v (run go test -update to create it)", err)
			}
			if !bytes.Equal(got, want) {
				t.Errorf("output differs from %s:\n%s", path, got)
			}
		})
	}
}

func TestRoundTrip(t *testing.T) {
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			if c.master != nil {
				checkMasterRoundTrip(t, *c.master, c.write())
			} else {
				pl := checkMediaRoundTrip(t, c.media.plan, c.media.init, c.media.query, c.write())
				if pl.Iframe != c.media.iframes {
					t.Errorf("EXT-X-I-FRAMES-ONLY read as %v, want %v", pl.Iframe, c.media.iframes)
				}
			}
		})
	}
}

// Decode with the typed decoders: grafov's generic m3u8.Decode re-attaches
// every EXT-X-MEDIA to every variant after each line, duplicating them.
func checkMasterRoundTrip(t *testing.T, m Master, out []byte) {
	t.Helper()
	pl := m3u8.NewMasterPlaylist()
	if err := pl.Decode(*bytes.NewBuffer(out), true); err != nil {
		t.Fatalf("decode: %v\n%s", err, out)
	}
	if !pl.IndependentSegments() {
		t.Error("missing EXT-X-INDEPENDENT-SEGMENTS")
	}
	// PROGRAM-ID was removed in version 6; the version is that of the
	// media playlists the master lists.
	if bytes.Contains(out, []byte("PROGRAM-ID")) || pl.Version() != mediaVersion {
		t.Errorf("EXT-X-VERSION %d with PROGRAM-ID %v, want %d without", pl.Version(), bytes.Contains(out, []byte("PROGRAM-ID")), mediaVersion)
	}
	// grafov hands every EXT-X-MEDIA read so far to the first I-frame
	// variant instead of the variants that name its group, so renditions
	// are checked on the playlist without its I-frame variants.
	var iframes []*m3u8.Variant
	for _, v := range pl.Variants {
		if v.Iframe {
			iframes = append(iframes, v)
		}
	}
	var kept []string
	for _, line := range strings.SplitAfter(string(out), "\n") {
		if !strings.HasPrefix(line, "#EXT-X-I-FRAME-STREAM-INF:") {
			kept = append(kept, line)
		}
	}
	pl = m3u8.NewMasterPlaylist()
	if err := pl.Decode(*bytes.NewBufferString(strings.Join(kept, "")), true); err != nil {
		t.Fatalf("decode: %v\n%s", err, out)
	}
	variants := pl.Variants
	if len(variants) != len(m.Variants) || len(iframes) != len(m.IFrames) {
		t.Fatalf("%d variants and %d I-frame variants, want %d and %d", len(variants), len(iframes), len(m.Variants), len(m.IFrames))
	}
	for i, v := range iframes {
		w := m.IFrames[i]
		if v.URI != withQuery(w.URI, m.Query) || int(v.Bandwidth) != w.Bandwidth || v.Codecs != w.Codecs ||
			v.Resolution != fmt.Sprintf("%dx%d", w.Width, w.Height) || v.VideoRange != w.VideoRange {
			t.Errorf("I-frame variant %d decoded as %+v, want %+v", i, v.VariantParams, w)
		}
	}
	for i, v := range variants {
		w := m.Variants[i]
		if v.URI != withQuery(w.URI, m.Query) || int(v.Bandwidth) != w.Bandwidth ||
			int(v.AverageBandwidth) != w.AverageBandwidth || v.Codecs != w.Codecs ||
			v.Resolution != fmt.Sprintf("%dx%d", w.Width, w.Height) || v.Name != w.Name ||
			math.Abs(v.FrameRate-w.FrameRate) > 0.0005 || v.VideoRange != w.VideoRange {
			t.Errorf("variant %d decoded as %+v, want %+v", i, v.VariantParams, w)
		}
		if wantCC := map[bool]string{true: "NONE"}[m.NoCaptions]; v.Captions != wantCC {
			t.Errorf("variant %d: CLOSED-CAPTIONS %q, want %q", i, v.Captions, wantCC)
		}
		wantGroup, wantSubs := "", ""
		if len(m.Audio) > 0 {
			wantGroup = audioGroup
		}
		if len(m.Subtitles) > 0 {
			wantSubs = subtitleGroup
		}
		if v.Audio != wantGroup || v.Subtitles != wantSubs || len(v.Alternatives) != len(m.Audio)+len(m.Subtitles) {
			t.Fatalf("variant %d: AUDIO=%q SUBTITLES=%q with %d renditions, want %q, %q with %d",
				i, v.Audio, v.Subtitles, len(v.Alternatives), wantGroup, wantSubs, len(m.Audio)+len(m.Subtitles))
		}
		defaults := map[string]int{}
		for j, a := range v.Alternatives {
			uri, name, lang, group, typ, forced := "", "", "", "", "", "NO"
			if j < len(m.Audio) {
				w := m.Audio[j]
				uri, name, lang, group, typ = w.URI, w.Name, w.Language, audioGroup, "AUDIO"
				forced = ""
			} else {
				w := m.Subtitles[j-len(m.Audio)]
				uri, name, lang, group, typ = w.URI, w.Name, w.Language, subtitleGroup, "SUBTITLES"
				forced = yesNo(w.Forced)
			}
			if lang == "" {
				lang = "und" // Apple 8.10: every rendition has a LANGUAGE
			}
			if a.Type != typ || a.GroupId != group || a.URI != withQuery(uri, m.Query) || a.Forced != forced ||
				a.Language != lang || a.Autoselect != "YES" || !strings.HasPrefix(a.Name, safe(name)) {
				t.Errorf("rendition %d decoded as %+v, want %s %q %q %q", j, *a, typ, uri, name, lang)
			}
			if a.Default {
				defaults[typ]++
			}
		}
		for typ, n := range defaults {
			if n > 1 {
				t.Errorf("%d DEFAULT=YES %s renditions in one group", n, typ)
			}
		}
	}
}

func checkMediaRoundTrip(t *testing.T, p Plan, initURI, query string, out []byte) *m3u8.MediaPlaylist {
	t.Helper()
	pl, err := m3u8.NewMediaPlaylist(0, 1)
	if err != nil {
		t.Fatal(err)
	}
	if err := pl.Decode(*bytes.NewBuffer(out), true); err != nil {
		t.Fatalf("decode: %v\n%s", err, out)
	}
	if !pl.Closed || pl.MediaType != m3u8.VOD {
		t.Errorf("not a closed VOD playlist: closed=%v type=%v", pl.Closed, pl.MediaType)
	}
	if pl.Version() < 6 {
		t.Errorf("EXT-X-VERSION %d is too low for EXT-X-MAP", pl.Version())
	}
	if pl.Map == nil || pl.Map.URI != withQuery(initURI, query) {
		t.Errorf("EXT-X-MAP = %+v, want URI %q", pl.Map, withQuery(initURI, query))
	}
	if int(pl.TargetDuration) != p.TargetDuration() {
		t.Errorf("TARGETDURATION %v, want %d", pl.TargetDuration, p.TargetDuration())
	}
	segs := pl.GetAllSegments()
	if len(segs) != p.Len() {
		t.Fatalf("%d segments, want %d", len(segs), p.Len())
	}
	for i, s := range segs {
		if s.Duration != p.Duration(i) || s.URI != withQuery(segURI(i), query) {
			t.Errorf("segment %d = %v %q, want %v %q", i, s.Duration, s.URI, p.Duration(i), withQuery(segURI(i), query))
		}
	}
	return pl
}

var extinf = regexp.MustCompile(`(?m)^#EXTINF:([0-9.]+),`)

// FuzzWriteMedia writes plans made of arbitrary segment lengths (4 bytes of
// milliseconds each, below 1 h: grafov prints EXTINF through float32, which
// loses milliseconds past ~4.5 h) and checks the output decodes, agrees with
// the plan and keeps TARGETDURATION above every rounded EXTINF.
func FuzzWriteMedia(f *testing.F) {
	for _, c := range cases {
		if c.media == nil {
			continue
		}
		var lengths []byte
		for i := range c.media.plan.Len() {
			lengths = binary.LittleEndian.AppendUint32(lengths, uint32(millis(c.media.plan.Duration(i))))
		}
		f.Add(lengths, c.media.query)
	}
	f.Fuzz(func(t *testing.T, lengths []byte, query string) {
		if strings.ContainsFunc(query, func(r rune) bool { return !strings.ContainsRune(queryChars, r) }) {
			t.Skip("not a raw query string")
		}
		bounds := []float64{0}
		end := int64(0)
		for ; len(lengths) >= 4; lengths = lengths[4:] {
			end += int64(binary.LittleEndian.Uint32(lengths)%3_600_000) + 1
			bounds = append(bounds, float64(end)/1000)
		}
		if len(bounds) < 2 {
			t.Skip("no segments")
		}
		p := Plan{Bounds: bounds}
		out := WriteMedia(p, "init.mp4", segURI, query)
		checkMediaRoundTrip(t, p, "init.mp4", query, out)
		target := p.TargetDuration()
		sumMs := int64(0)
		for _, m := range extinf.FindAllSubmatch(out, -1) {
			d, err := strconv.ParseFloat(string(m[1]), 64)
			if err != nil || math.Round(d) > float64(target) {
				t.Fatalf("EXTINF %s against TARGETDURATION %d", m[1], target)
			}
			sumMs += millis(d)
		}
		if sumMs != end {
			t.Fatalf("EXTINFs add up to %d ms, want %d", sumMs, end)
		}
		checkQuery(t, out, query)
	})
}

const queryChars = "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789=&%-._~"

var uriAttr = regexp.MustCompile(`URI="([^"]*)"`)

func TestQueryPropagation(t *testing.T) {
	for _, c := range cases {
		if c.query() != "" {
			t.Run(c.name, func(t *testing.T) { checkQuery(t, c.write(), c.query()) })
		}
	}
}

// checkQuery asserts that every URI line and every URI="..." attribute ends
// with the query, joined by exactly one "?" or "&".
func checkQuery(t *testing.T, out []byte, query string) {
	t.Helper()
	if query == "" {
		return
	}
	var uris []string
	for _, line := range strings.Split(string(out), "\n") {
		if line != "" && !strings.HasPrefix(line, "#") {
			uris = append(uris, line)
		}
	}
	for _, m := range uriAttr.FindAllStringSubmatch(string(out), -1) {
		uris = append(uris, m[1])
	}
	if len(uris) == 0 {
		t.Fatal("no URIs found")
	}
	for _, u := range uris {
		base, ok := strings.CutSuffix(u, query)
		if !ok || !(strings.HasSuffix(base, "?") || strings.HasSuffix(base, "&")) || strings.Count(u, "?") != 1 {
			t.Errorf("URI %q does not carry query %q", u, query)
		}
	}
}

func TestMasterFormatting(t *testing.T) {
	out := string(WriteMaster(Master{
		Variants: []Variant{{URI: "v.m3u8", Bandwidth: 1, Codecs: "avc1.64001f", Width: 2, Height: 2, FrameRate: 30000.0 / 1001}},
		Audio:    []Audio{{URI: "a.m3u8", Name: "x\r\ny\"", Channels: 6}},
	}))
	for _, want := range []string{
		"#EXT-X-INDEPENDENT-SEGMENTS\n",
		"FRAME-RATE=29.970",
		`NAME="x  y'"`,
		`CHANNELS="6"`,
		`AUDIO="audio"`,
	} {
		if !strings.Contains(out, want) {
			t.Errorf("master lacks %q:\n%s", want, out)
		}
	}
	if !strings.Contains(out, `LANGUAGE="und"`) {
		t.Errorf("an untagged rendition has no LANGUAGE=\"und\":\n%s", out)
	}
	for _, unwanted := range []string{"PROGRAM-ID", "CLOSED-CAPTIONS", "VIDEO-RANGE"} {
		if strings.Contains(out, unwanted) {
			t.Errorf("master has %s, which was not asked for:\n%s", unwanted, out)
		}
	}
}
