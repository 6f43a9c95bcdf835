package server

import (
	"bytes"
	"compress/gzip"
	"encoding/json"
	"fmt"
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

	"github.com/hlsd/hlsd/transcoder"
	"github.com/hlsd/hlsd/transcoder/fmp4"
	"github.com/hlsd/hlsd/transcoder/probe"
)

// rawGet fetches url with the given request headers and returns the body as
// sent, compressed or not: Go's client would otherwise ask for gzip and
// decode it out of sight.
func rawGet(t *testing.T, url string, header map[string]string) (*http.Response, []byte) {
	t.Helper()
	req, err := http.NewRequest(http.MethodGet, url, nil)
	if err != nil {
		t.Fatal(err)
	}
	for k, v := range header {
		req.Header.Set(k, v)
	}
	client := &http.Client{Transport: &http.Transport{DisableCompression: true}}
	resp, err := client.Do(req)
	if err != nil {
		t.Fatalf("GET %s: %v", url, err)
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatal(err)
	}
	return resp, b
}

// TestGzip: playlists, JSON and WebVTT are gzipped for clients that accept
// it (Apple's Authoring Specification 10.1) and decode to what other
// clients get; segments, and range requests, are sent as they are.
func TestGzip(t *testing.T) {
	media := mediaDir(t, "h264.mp4")
	if err := os.WriteFile(filepath.Join(media, "h264.en.srt"), []byte(srtCues), 0o644); err != nil {
		t.Fatal(err)
	}
	e := newEnvDirs(t, transcoder.Config{}, media, t.TempDir())
	base := e.videoURL("h264.mp4")
	gz := map[string]string{"Accept-Encoding": "gzip"}
	for _, path := range []string{"/master.m3u8?clientId=z", "/video/0/360p/index.m3u8", "/info", "/subtitles/0.vtt", "/subtitles/0.m3u8"} {
		resp, zipped := rawGet(t, base+path, gz)
		plainResp, plain := rawGet(t, base+path, nil)
		if resp.StatusCode != http.StatusOK || plainResp.StatusCode != http.StatusOK {
			t.Fatalf("%s: status %d and %d", path, resp.StatusCode, plainResp.StatusCode)
		}
		if enc := resp.Header.Get("Content-Encoding"); enc != "gzip" || !strings.Contains(resp.Header.Get("Vary"), "Accept-Encoding") {
			t.Errorf("%s: Content-Encoding %q, Vary %q, want gzip and Accept-Encoding", path, enc, resp.Header.Get("Vary"))
			continue
		}
		if plainResp.Header.Get("Content-Encoding") != "" {
			t.Errorf("%s: compressed for a client that did not ask", path)
		}
		zr, err := gzip.NewReader(bytes.NewReader(zipped))
		if err != nil {
			t.Fatalf("%s: %v", path, err)
		}
		unzipped, err := io.ReadAll(zr)
		if err != nil {
			t.Fatalf("%s: %v", path, err)
		}
		if !bytes.Equal(unzipped, plain) {
			t.Errorf("%s: gzipped answer decodes to %d bytes differing from the plain %d", path, len(unzipped), len(plain))
		}
	}
	for _, c := range []struct {
		path   string
		header map[string]string
	}{
		{"/video/0/original/init.mp4", gz},
		{"/video/0/original/segment-1.m4s", gz},
		{"/audio/0/aac/segment-0.m4s", gz},
		{"/subtitles/0.vtt", map[string]string{"Accept-Encoding": "gzip", "Range": "bytes=0-9"}},
	} {
		resp, b := rawGet(t, base+c.path, c.header)
		if resp.StatusCode/100 != 2 || len(b) == 0 {
			t.Fatalf("%s: status %d, %d bytes", c.path, resp.StatusCode, len(b))
		}
		if enc := resp.Header.Get("Content-Encoding"); enc != "" {
			t.Errorf("%s (%v): Content-Encoding %q, want none", c.path, c.header, enc)
		}
	}
}

// attrs parses the attribute list of one playlist tag line.
var attrRe = regexp.MustCompile(`([A-Z0-9-]+)=("[^"]*"|[^,]*)`)

// A URI's file version (v=, checked by TestVersionedURLs) is left out.
func attrs(line string) map[string]string {
	_, list, _ := strings.Cut(line, ":")
	out := map[string]string{}
	for _, m := range attrRe.FindAllStringSubmatch(list, -1) {
		out[m[1]] = strings.Trim(m[2], `"`)
	}
	if u, ok := out["URI"]; ok {
		out["URI"] = unversioned(u)
	}
	return out
}

// unversioned is uri without its v= parameter.
func unversioned(uri string) string {
	path, query, ok := strings.Cut(uri, "?")
	if !ok {
		return uri
	}
	var keep []string
	for _, kv := range strings.Split(query, "&") {
		if !strings.HasPrefix(kv, "v=") {
			keep = append(keep, kv)
		}
	}
	if len(keep) == 0 {
		return path
	}
	return path + "?" + strings.Join(keep, "&")
}

// masterLines returns the tag lines of a master playlist that start with
// prefix, and for EXT-X-STREAM-INF the URI line after each.
func masterLines(master, prefix string) (tags, uris []string) {
	lines := strings.Split(master, "\n")
	for i, l := range lines {
		if strings.HasPrefix(l, prefix) {
			tags = append(tags, l)
			if i+1 < len(lines) {
				uris = append(uris, lines[i+1])
			}
		}
	}
	return tags, uris
}

// TestMasterForNativePlayers checks the master against the rules of
// Apple's HLS Authoring Specification that native players enforce, on an
// HDR (PQ) HEVC file with an untagged 5.1 track, a 1080i TV recording and
// a plain H.264 file: every rendition has a LANGUAGE, every variant a
// VIDEO-RANGE (PQ for the HDR copy, SDR for the tone-mapped rungs) and
// CLOSED-CAPTIONS=NONE when the source has none, no PROGRAM-ID, an
// EXT-X-VERSION of 6, an H.264 variant first, and no interlaced original.
func TestMasterForNativePlayers(t *testing.T) {
	files := []string{"hdr-pq.mkv", "tv-1080i.ts", "h264.mp4"}
	e := newEnv(t, transcoder.Config{}, files...)
	for _, file := range files {
		t.Run(file, func(t *testing.T) {
			master := string(e.mustGet(e.videoURL(file) + "/master.m3u8"))
			if !strings.Contains(master, "#EXT-X-VERSION:6\n") || strings.Contains(master, "PROGRAM-ID") {
				t.Errorf("want EXT-X-VERSION 6 and no PROGRAM-ID:\n%s", master)
			}
			media, _ := masterLines(master, "#EXT-X-MEDIA:")
			for _, m := range media {
				if attrs(m)["LANGUAGE"] == "" {
					t.Errorf("rendition without LANGUAGE: %s", m)
				}
			}
			variants, uris := masterLines(master, "#EXT-X-STREAM-INF:")
			if len(variants) == 0 {
				t.Fatalf("no variants:\n%s", master)
			}
			if !strings.HasPrefix(attrs(variants[0])["CODECS"], "avc1.") {
				t.Errorf("first variant is not H.264: %s", variants[0])
			}
			for i, v := range variants {
				a := attrs(v)
				want := "SDR"
				if file == "hdr-pq.mkv" && strings.Contains(uris[i], "/original/") {
					want = "PQ"
				}
				if a["VIDEO-RANGE"] != want || a["CLOSED-CAPTIONS"] != "NONE" {
					t.Errorf("%s: VIDEO-RANGE %q, CLOSED-CAPTIONS %q, want %s and NONE", uris[i], a["VIDEO-RANGE"], a["CLOSED-CAPTIONS"], want)
				}
			}
			hasOriginal := strings.Contains(master, "/original/")
			if wantOriginal := file != "tv-1080i.ts"; hasOriginal != wantOriginal {
				t.Errorf("original listed: %v, want %v:\n%s", hasOriginal, wantOriginal, master)
			}
			if file == "hdr-pq.mkv" {
				checkSurroundGroups(t, e, file, media, variants, uris)
			}
		})
	}
}

// checkSurroundGroups: a file whose only track is 5.1 gets Apple's layout
// for multichannel audio (Authoring Specification 2.3): a "stereo" group
// with an AAC stereo downmix and a "surround" group with the 5.1 AAC, both
// untagged tracks LANGUAGE="und", and every variant listed once per group
// with the same attributes (so hls.js merges the two into one level).
func checkSurroundGroups(t *testing.T, e *testEnv, file string, media, variants, uris []string) {
	t.Helper()
	want := map[string]struct {
		uri      string
		channels string
	}{"stereo": {"audio/0/stereo/index.m3u8", "2"}, "surround": {"audio/0/aac/index.m3u8", "6"}}
	if len(media) != 2 {
		t.Fatalf("want two renditions, one per group: %v", media)
	}
	for _, m := range media {
		a := attrs(m)
		w, ok := want[a["GROUP-ID"]]
		if !ok || a["URI"] != w.uri || a["CHANNELS"] != w.channels || a["LANGUAGE"] != "und" || a["DEFAULT"] != "YES" {
			t.Errorf("rendition %s, want group stereo or surround with %+v, LANGUAGE und, DEFAULT", m, w)
		}
		rel := strings.TrimSuffix(w.uri, "index.m3u8")
		init := e.mustGet(e.videoURL(file) + "/" + rel + "init.mp4")
		seg := e.mustGet(e.videoURL(file) + "/" + rel + "segment-0.m4s")
		path := filepath.Join(t.TempDir(), "audio.mp4")
		if err := os.WriteFile(path, append(append([]byte{}, init...), seg...), 0o644); err != nil {
			t.Fatal(err)
		}
		out, err := exec.Command("ffprobe", "-v", "error", "-show_entries", "stream=codec_name,channels", "-of", "csv=p=0", path).Output()
		if err != nil || strings.TrimSpace(string(out)) != "aac,"+w.channels {
			t.Errorf("%s decodes as %q (%v), want aac with %s channels", w.uri, out, err, w.channels)
		}
	}
	byGroup := map[string][]string{}
	for i, v := range variants {
		a := attrs(v)
		g := a["AUDIO"]
		delete(a, "AUDIO")
		byGroup[g] = append(byGroup[g], fmt.Sprint(a, uris[i]))
	}
	if len(byGroup) != 2 || strings.Join(byGroup["stereo"], "\n") != strings.Join(byGroup["surround"], "\n") {
		t.Errorf("variants differ between the audio groups beyond AUDIO: %v", byGroup)
	}
}

// idet runs ffmpeg's interlace detector on a file and returns how many
// frames its multi-frame detection calls interlaced and progressive.
func idet(t *testing.T, path string, frames int) (interlaced, progressive int) {
	t.Helper()
	out, err := exec.Command("ffmpeg", "-hide_banner", "-nostdin", "-i", path, "-frames:v", strconv.Itoa(frames),
		"-vf", "idet", "-an", "-f", "null", "-").CombinedOutput()
	if err != nil {
		t.Fatalf("ffmpeg idet: %v\n%s", err, out)
	}
	m := regexp.MustCompile(`Multi frame detection: TFF:\s*(\d+) BFF:\s*(\d+) Progressive:\s*(\d+)`).FindSubmatch(out)
	if m == nil {
		t.Fatalf("no idet summary in:\n%s", out)
	}
	tff, _ := strconv.Atoi(string(m[1]))
	bff, _ := strconv.Atoi(string(m[2]))
	prog, _ := strconv.Atoi(string(m[3]))
	return tff + bff, prog
}

// TestDeinterlaced: the 1080p rung of a 1080i25 TV recording is progressive
// by ffmpeg's idet, at the source's 25 frames per second, where the source
// itself is detected interlaced. (Rungs of at most half the height keep one
// field; scaling hides combing from idet there, so the golden command lines
// check those.)
func TestDeinterlaced(t *testing.T) {
	e := newEnv(t, transcoder.Config{}, "tv-1080i.ts")
	src := filepath.Join(e.media, "tv-1080i.ts")
	if i, p := idet(t, src, 50); i < 40 {
		t.Fatalf("source: idet finds %d interlaced and %d progressive frames of 50: not an interlaced clip", i, p)
	}
	for _, rung := range []string{"1080p"} {
		base := e.videoURL("tv-1080i.ts") + "/video/0/" + rung + "/"
		seg := e.mustGet(base + "segment-1.m4s")
		init := e.mustGet(base + "init.mp4")
		path := filepath.Join(t.TempDir(), "seg.mp4")
		if err := os.WriteFile(path, append(init, seg...), 0o644); err != nil {
			t.Fatal(err)
		}
		f := readFragment(t, init, seg)
		if fps := float64(f.samples) / (float64(f.duration) / float64(f.timescale)); fps < 24.9 || fps > 25.1 {
			t.Errorf("%s at %.2f frames per second, want the source's 25 (one frame per frame)", rung, fps)
		}
		i, p := idet(t, path, 50)
		if i*10 > i+p {
			t.Errorf("%s: idet finds %d interlaced and %d progressive frames: not deinterlaced", rung, i, p)
		}
		t.Logf("%s: idet finds %d interlaced, %d progressive", rung, i, p)
	}
}

// TestFragmentNumbers: movie fragment sequence numbers increase across the
// segments of a rendition, made by different runs and out of order, for a
// re-encode (several fragments per segment), a copy and audio.
func TestFragmentNumbers(t *testing.T) {
	e := newEnv(t, transcoder.Config{}, "h264.mp4")
	base := e.videoURL("h264.mp4")
	for _, v := range []string{"video/0/360p", "video/0/original", "audio/0/aac"} {
		var info probe.Info
		if err := json.Unmarshal(e.mustGet(base+"/info"), &info); err != nil {
			t.Fatal(err)
		}
		p := parseMediaPlaylist(t, e.mustGet(fmt.Sprintf("%s/%s/index.m3u8", base, v)))
		n := len(p.starts)
		// The last first: a run of its own; then the start, another run.
		order := []int{n - 1, 0, 1, 2}
		nums := map[int][]uint32{}
		for _, i := range order {
			nums[i] = fmp4.Numbers(e.mustGet(fmt.Sprintf("%s/%s/segment-%d.m4s?clientId=f", base, v, i)))
			if len(nums[i]) == 0 {
				t.Fatalf("%s segment %d: no mfhd", v, i)
			}
		}
		var last uint32
		for _, i := range []int{0, 1, 2, n - 1} {
			for _, s := range nums[i] {
				if s <= last {
					t.Errorf("%s: segment %d has fragment %d after %d: %v", v, i, s, last, nums)
				}
				last = s
			}
		}
		if strings.HasPrefix(v, "video/0/360p") && len(nums[1]) < 2 {
			t.Errorf("%s: segment 1 has %d fragments, want several (half a second each)", v, len(nums[1]))
		}
	}
}

// TestIFrames: the master lists an I-frame playlist for every rung it
// lists; each playlist is I-frames only and spans the same time as the
// rung's media playlist; its entries decode, alone after the shared init,
// as one IDR at the rung's size where the playlist puts it; and ffmpeg's
// HLS demuxer reads the playlist as a sequence of key frames at those times.
func TestIFrames(t *testing.T) {
	e := newEnv(t, transcoder.Config{}, "h264.mp4")
	base := e.videoURL("h264.mp4")
	master := string(e.mustGet(base + "/master.m3u8?clientId=i"))
	iframes, _ := masterLines(master, "#EXT-X-I-FRAME-STREAM-INF:")
	_, uris := masterLines(master, "#EXT-X-STREAM-INF:")
	rungs := 0
	for _, u := range uris {
		if !strings.Contains(u, "/original/") {
			rungs++
		}
	}
	if rungs == 0 || len(iframes) != rungs {
		t.Fatalf("%d I-frame variants for %d rungs listed:\n%s", len(iframes), rungs, master)
	}
	a := attrs(iframes[0])
	if !strings.HasPrefix(a["CODECS"], "avc1.") || a["RESOLUTION"] == "" || a["VIDEO-RANGE"] != "SDR" || a["BANDWIDTH"] == "" {
		t.Errorf("I-frame variant lacks attributes: %s", iframes[0])
	}
	rel, _, _ := strings.Cut(a["URI"], "?")
	dir := base + "/" + strings.TrimSuffix(rel, "iframes.m3u8")
	pl := string(e.mustGet(base + "/" + a["URI"]))
	if !strings.Contains(pl, "#EXT-X-I-FRAMES-ONLY\n") || !strings.Contains(pl, `#EXT-X-MAP:URI="iframes-init.mp4?clientId=i&v=`) {
		t.Fatalf("not an I-frames playlist with its init:\n%s", pl)
	}
	ip := parseMediaPlaylist(t, []byte(pl))
	mp := parseMediaPlaylist(t, e.mustGet(dir+"index.m3u8"))
	if !near(ip.end, mp.end, 0.002) {
		t.Errorf("I-frames span %.3f s, the rung %.3f s", ip.end, mp.end)
	}
	var w, h int
	fmt.Sscanf(a["RESOLUTION"], "%dx%d", &w, &h)
	init := e.mustGet(dir + "iframes-init.mp4")
	var info probe.Info
	if err := json.Unmarshal(e.mustGet(base+"/info"), &info); err != nil {
		t.Fatal(err)
	}
	// The timeline starts at the first frame, as the rung's does.
	first := info.Duration - mp.end
	for _, n := range []int{0, len(ip.starts) / 2, len(ip.starts) - 1} {
		seg := e.mustGet(fmt.Sprintf("%siframe-%d.m4s", dir, n))
		f := readFragment(t, init, seg)
		if f.samples != 1 || !near(f.start(), ip.starts[n]+first, 0.002) {
			t.Errorf("entry %d: %d samples from %.3f s, want one at %.3f s", n, f.samples, f.start(), ip.starts[n]+first)
		}
		path := filepath.Join(t.TempDir(), "entry.mp4")
		if err := os.WriteFile(path, append(append([]byte{}, init...), seg...), 0o644); err != nil {
			t.Fatal(err)
		}
		frames := probeFrames(t, path)
		if len(frames) != 1 || frames[0].PictType != "I" || frames[0].KeyFrame != 1 || frames[0].Width != w || frames[0].Height != h {
			t.Errorf("entry %d decodes as %+v, want one %dx%d key I-frame", n, frames, w, h)
		}
	}
	// ffmpeg reads the playlist itself: every entry, a key frame each, in order.
	frames := probeFrames(t, base+"/"+a["URI"])
	if len(frames) != len(ip.starts) {
		t.Fatalf("ffmpeg read %d frames from %d entries: %+v", len(frames), len(ip.starts), frames)
	}
	for i, f := range frames {
		at, _ := strconv.ParseFloat(f.PTS, 64)
		if f.PictType != "I" || !near(at, ip.starts[i]+first, 0.002) {
			t.Errorf("ffmpeg frame %d: %s at %s, want I at %.3f", i, f.PictType, f.PTS, ip.starts[i]+first)
		}
	}
}

type probedFrame struct {
	PictType string `json:"pict_type"`
	KeyFrame int    `json:"key_frame"`
	Width    int    `json:"width"`
	Height   int    `json:"height"`
	PTS      string `json:"pts_time"`
}

// probeFrames decodes every video frame of a file or playlist with ffprobe.
func probeFrames(t *testing.T, input string) []probedFrame {
	t.Helper()
	out, err := exec.Command("ffprobe", "-v", "error", "-select_streams", "v:0",
		"-show_entries", "frame=pict_type,key_frame,width,height,pts_time", "-of", "json", input).Output()
	if err != nil {
		t.Fatalf("ffprobe %s: %v", input, err)
	}
	var r struct {
		Frames []probedFrame `json:"frames"`
	}
	if err := json.Unmarshal(out, &r); err != nil {
		t.Fatal(err)
	}
	return r.Frames
}

// TestTS: master.m3u8?container=ts lists the H.264 variants with MPEG-TS
// segments, the default audio muxed in. Each segment starts with a PAT and
// a PMT, then a keyframe where the playlist says (plus the 1.4 s every TS
// timestamp carries), with AAC stereo beside it; segments of different runs
// join; and ffmpeg's HLS demuxer plays the variant and seeks in it.
func TestTS(t *testing.T) {
	e := newEnv(t, transcoder.Config{}, "h264.mp4", "hevc.mkv", "longgop.mp4")
	if status, b, _ := e.get(e.videoURL("h264.mp4") + "/master.m3u8?container=mp3"); status != http.StatusBadRequest || !strings.Contains(string(b), `"status":400`) {
		t.Errorf("container=mp3: status %d %s, want a 400", status, b)
	}
	// A long-GOP original is cut on its own keyframes, not where audio is.
	if status, b, _ := e.get(e.videoURL("longgop.mp4") + "/video/0/original/segment-0.ts?container=ts"); status != http.StatusNotFound {
		t.Errorf("long-GOP original as TS: status %d %s, want a 404", status, b)
	}
	hevc := string(e.mustGet(e.videoURL("hevc.mkv") + "/master.m3u8?container=ts"))
	if strings.Contains(hevc, "/original/") || strings.Contains(hevc, "TYPE=AUDIO") || strings.Contains(hevc, "I-FRAME") {
		t.Errorf("HEVC file's TS master lists the HEVC original, audio renditions or I-frames:\n%s", hevc)
	}
	base := e.videoURL("h264.mp4")
	master := string(e.mustGet(base + "/master.m3u8?container=ts&clientId=ts"))
	variants, uris := masterLines(master, "#EXT-X-STREAM-INF:")
	if !strings.Contains(master, "#EXT-X-VERSION:3\n") || len(variants) < 2 {
		t.Fatalf("TS master:\n%s", master)
	}
	for i, v := range variants {
		if c := attrs(v)["CODECS"]; !strings.HasPrefix(c, "avc1.") || !strings.HasSuffix(c, ",mp4a.40.2") || !strings.Contains(uris[i], "container=ts") {
			t.Errorf("variant %s %s: want H.264 with AAC, and the query passed on", v, uris[i])
		}
	}
	rung := ""
	for _, u := range uris {
		if !strings.Contains(u, "/original/") {
			rung, _, _ = strings.Cut(u, "index.m3u8")
		}
	}
	pl := string(e.mustGet(base + "/" + rung + "index.m3u8?container=ts&clientId=ts"))
	if strings.Contains(pl, "EXT-X-MAP") || !strings.Contains(pl, "segment-1.ts?container=ts&clientId=ts") {
		t.Fatalf("TS media playlist:\n%s", pl)
	}
	p := parseMediaPlaylist(t, []byte(pl))
	var info probe.Info
	if err := json.Unmarshal(e.mustGet(base+"/info"), &info); err != nil {
		t.Fatal(err)
	}
	first := info.Duration - p.end // where the timeline starts on the media's
	dir := t.TempDir()
	var all []byte
	// The second segment first: its own run; then the first, another run.
	for _, n := range []int{1, 0, 2} {
		seg := e.mustGet(fmt.Sprintf("%s/%ssegment-%d.ts?container=ts&clientId=ts", base, rung, n))
		if len(seg) < 376 || seg[0] != 0x47 || seg[188] != 0x47 {
			t.Fatalf("segment %d is not MPEG-TS", n)
		}
		// The first packet is the PAT (PID 0), the second the PMT it names.
		pid := func(pkt []byte) int { return int(pkt[1]&0x1f)<<8 | int(pkt[2]) }
		// The PAT's first program_map_PID: after the header, any adaptation
		// field, the pointer field and 8 bytes of section header, and the
		// program number.
		off := 4
		if seg[3]&0x20 != 0 {
			off += 1 + int(seg[4])
		}
		off += 1 + int(seg[off]) + 8 + 2
		pmt := int(seg[off]&0x1f)<<8 | int(seg[off+1])
		if pid(seg) != 0 || pid(seg[188:]) != pmt {
			t.Errorf("segment %d starts with PIDs %d and %d, want the PAT (0) and the PMT (%d)", n, pid(seg), pid(seg[188:]), pmt)
		}
		path := filepath.Join(dir, fmt.Sprintf("s%d.ts", n))
		if err := os.WriteFile(path, seg, 0o644); err != nil {
			t.Fatal(err)
		}
		out, err := exec.Command("ffprobe", "-v", "error", "-show_entries", "stream=codec_name,channels,start_time",
			"-of", "csv=p=0", path).Output()
		if err != nil {
			t.Fatalf("segment %d: ffprobe: %v", n, err)
		}
		var streams []string // ffprobe lists them again under their program
		for _, f := range strings.Fields(strings.TrimSpace(string(out))) {
			if !slices.Contains(streams, f) {
				streams = append(streams, f)
			}
		}
		if len(streams) != 2 || !strings.HasPrefix(streams[0], "h264,") || !strings.HasPrefix(streams[1], "aac,2,") {
			t.Fatalf("segment %d streams %v, want h264 and 2-channel aac", n, streams)
		}
		frames := probeFrames(t, path)
		at, _ := strconv.ParseFloat(frames[0].PTS, 64)
		if want := p.starts[n] + first + 1.4; frames[0].KeyFrame != 1 || !near(at, want, 0.002) {
			t.Errorf("segment %d starts with %+v, want a keyframe at %.3f", n, frames[0], want)
		}
	}
	for _, n := range []int{0, 1, 2} {
		b, err := os.ReadFile(filepath.Join(dir, fmt.Sprintf("s%d.ts", n)))
		if err != nil {
			t.Fatal(err)
		}
		all = append(all, b...)
	}
	// Joined, the frames run on at the frame rate: no gap or overlap
	// where one segment (and run) ends and the next begins.
	joined := filepath.Join(dir, "joined.ts")
	if err := os.WriteFile(joined, all, 0o644); err != nil {
		t.Fatal(err)
	}
	frames := probeFrames(t, joined)
	var times []float64
	for _, f := range frames {
		x, _ := strconv.ParseFloat(f.PTS, 64)
		times = append(times, x)
	}
	slices.Sort(times)
	for i := 1; i < len(times); i++ {
		if d := times[i] - times[i-1]; d < 0.5/info.Video[0].FPS || d > 1.5/info.Video[0].FPS {
			t.Fatalf("joined segments: frame at %.3f follows %.3f", times[i], times[i-1])
		}
	}
	// ffmpeg plays the variant through its HLS demuxer, whole and from a seek.
	url := base + "/" + rung + "index.m3u8?container=ts&clientId=ts2"
	if out, err := exec.Command("ffmpeg", "-v", "error", "-xerror", "-i", url, "-f", "null", "-").CombinedOutput(); err != nil {
		t.Errorf("ffmpeg playing the TS variant: %v\n%s", err, out)
	}
	out, err := exec.Command("ffprobe", "-v", "error", "-read_intervals", "10%+#1", "-select_streams", "v:0",
		"-show_entries", "frame=pts_time,key_frame", "-of", "csv=p=0", url).Output()
	if err != nil {
		t.Fatalf("ffprobe seeking in the TS variant: %v", err)
	}
	at, _ := strconv.ParseFloat(strings.Split(strings.TrimSpace(string(out)), ",")[1], 64)
	if at < 11.4-float64(p.target)-0.1 || at > 11.4+0.1 {
		t.Errorf("ffmpeg seeking to 10 s in the TS variant lands at %.3f (%s)", at-1.4, out)
	}
}

// TestPassthrough: an AC-3 track is also offered as it is, in an "original"
// group whose variants say ac-3 in CODECS (browsers skip them; Apple's
// players decode it), beside the AAC groups; its segments are AC-3 cut
// within a frame of the boundaries its playlist lists.
func TestPassthrough(t *testing.T) {
	e := newEnv(t, transcoder.Config{}, "hevc.mkv")
	base := e.videoURL("hevc.mkv")
	master := string(e.mustGet(base + "/master.m3u8"))
	media, _ := masterLines(master, "#EXT-X-MEDIA:TYPE=AUDIO")
	var original []map[string]string
	for _, m := range media {
		if a := attrs(m); a["GROUP-ID"] == "original" {
			original = append(original, a)
		}
	}
	if len(original) != 2 || original[0]["URI"] != "audio/0/original/index.m3u8" || original[0]["CHANNELS"] != "6" ||
		original[1]["URI"] != "audio/1/aac/index.m3u8" {
		t.Fatalf("original group %v: want the AC-3 track passed through and the AAC one as AAC", original)
	}
	variants, _ := masterLines(master, "#EXT-X-STREAM-INF:")
	n := 0
	for _, v := range variants {
		a := attrs(v)
		if a["AUDIO"] == "original" {
			n++
			if !strings.Contains(a["CODECS"], "ac-3") {
				t.Errorf("variant of the original group without ac-3 in CODECS: %s", v)
			}
		} else if strings.Contains(a["CODECS"], "ac-3") {
			t.Errorf("an AAC variant says ac-3: %s", v)
		}
	}
	if n == 0 || n*3 != len(variants) {
		t.Errorf("%d of %d variants in the original group, want a third (stereo, surround, original)", n, len(variants))
	}
	p := parseMediaPlaylist(t, e.mustGet(base+"/audio/0/original/index.m3u8"))
	init := e.mustGet(base + "/audio/0/original/init.mp4")
	for _, i := range []int{2, 1} {
		seg := e.mustGet(fmt.Sprintf("%s/audio/0/original/segment-%d.m4s", base, i))
		f := readFragment(t, init, seg)
		// Audio playlists share the video's timeline, which starts at the
		// first video frame; the source's audio starts at 0.
		var info probe.Info
		if err := json.Unmarshal(e.mustGet(base+"/info"), &info); err != nil {
			t.Fatal(err)
		}
		want := p.starts[i] + (info.Duration - p.end)
		if d := f.start() - want; d < -0.001 || d >= 1536.0/48000 {
			t.Errorf("AC-3 segment %d starts at %.4f s, want within a frame after %.4f", i, f.start(), want)
		}
		path := filepath.Join(t.TempDir(), "ac3.mp4")
		if err := os.WriteFile(path, append(append([]byte{}, init...), seg...), 0o644); err != nil {
			t.Fatal(err)
		}
		out, err := exec.Command("ffprobe", "-v", "error", "-show_entries", "stream=codec_name,channels", "-of", "csv=p=0", path).Output()
		if err != nil || strings.Trim(string(out), ",\n ") != "ac3,6" {
			t.Errorf("segment %d: %q (%v), want ac3 with 6 channels", i, out, err)
		}
	}
}
