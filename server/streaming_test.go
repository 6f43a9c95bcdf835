package server

import (
	"bytes"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"slices"
	"strings"
	"testing"

	"github.com/hlsd/hlsd/transcoder"
	"github.com/hlsd/hlsd/transcoder/encode"
	"github.com/hlsd/hlsd/transcoder/probe"
)

type corpusCase struct {
	file    string
	longGOP bool // original is left out of the adaptive set
}

var corpus = []corpusCase{
	{file: "h264.mp4"},
	{file: "hevc.mkv"},
	{file: "vp9.webm"},
	{file: "longgop.mp4", longGOP: true},
	{file: "twoaudio.mkv"},
}

// TestCorpus checks, for each kind of source, that every variant shares one
// segment grid that covers the file, and that segments fetched out of order
// start with a keyframe exactly where the playlist says and join exactly
// with segments of another encoder run.
func TestCorpus(t *testing.T) {
	for _, c := range corpus {
		t.Run(c.file, func(t *testing.T) {
			e := newEnv(t, transcoder.Config{}, c.file)
			base := e.videoURL(c.file)
			var info probe.Info
			if err := json.Unmarshal(e.mustGet(base+"/info"), &info); err != nil {
				t.Fatal(err)
			}
			master := string(e.mustGet(base + "/master.m3u8?clientId=t1"))
			if got := strings.Contains(master, "video/0/original/"); got == c.longGOP {
				t.Errorf("original in master = %v, want %v:\n%s", got, !c.longGOP, master)
			}
			// One rendition per track and group: one group, or stereo and
			// surround when a track has more than two channels, and
			// original when one is AC-3 or E-AC-3.
			groups, passthrough := 1, 0
			for _, a := range info.Audio {
				if a.Channels > 2 {
					groups = 2
				}
				if a.Codec == "ac3" || a.Codec == "eac3" {
					passthrough = 1
				}
			}
			groups += passthrough
			if n := strings.Count(master, "TYPE=AUDIO"); n != groups*len(info.Audio) {
				t.Errorf("master has %d audio renditions, want %d", n, groups*len(info.Audio))
			}

			type variantRef struct {
				kind, quality string
				track         int
			}
			var adaptive []variantRef
			for _, q := range info.Qualities.Video {
				if q == encode.QualityOriginal && c.longGOP {
					continue
				}
				adaptive = append(adaptive, variantRef{"video", q, 0})
			}
			for a := range info.Audio {
				for _, q := range info.Qualities.Audio {
					if q == encode.QualityStereo && info.Audio[a].Channels <= 2 {
						continue // a stereo track has no separate downmix
					}
					if c := info.Audio[a].Codec; q == encode.QualityOriginal && c != "ac3" && c != "eac3" {
						continue // only AC-3 and E-AC-3 are passed through
					}
					adaptive = append(adaptive, variantRef{"audio", q, a})
				}
			}
			url := func(v variantRef, file string) string {
				return fmt.Sprintf("%s/%s/%d/%s/%s?clientId=t1", base, v.kind, v.track, v.quality, file)
			}
			playlists := map[variantRef]mediaPlaylist{}
			var grid []float64
			// timeline reads a media playlist on the media's timeline. The
			// playlist's starts at the first video frame, which audio
			// priming can put a few ms after 0 in Matroska and WebM (hls.js
			// maps that frame to 0): playlist times are media times minus
			// that offset, never more than a frame.
			timeline := func(v variantRef) mediaPlaylist {
				p := parseMediaPlaylist(t, e.mustGet(url(v, "index.m3u8")))
				offset := info.Duration - p.end
				if offset < -0.002 || offset >= 1/info.Video[0].FPS {
					t.Errorf("%v: EXTINF sum %.4f, source duration %.4f: the timeline starts %.4f s in", v, p.end, info.Duration, offset)
				}
				for i := range p.starts {
					p.starts[i] += offset
				}
				p.end += offset
				return p
			}
			for _, v := range adaptive {
				p := timeline(v)
				playlists[v] = p
				if grid == nil {
					grid = p.starts
				} else if fmtTimes(grid) != fmtTimes(p.starts) {
					t.Fatalf("%v has other boundaries than %v:\n%s\n%s", v, adaptive[0], fmtTimes(p.starts), fmtTimes(grid))
				}
				if !near(p.end, info.Duration, 0.002) {
					t.Errorf("%v: EXTINF sum %.4f, source duration %.4f", v, p.end, info.Duration)
				}
				for i, d := range p.durs {
					if int(d+0.5) > p.target {
						t.Errorf("%v: segment %d EXTINF %.3f rounds above TARGETDURATION %d", v, i, d, p.target)
					}
				}
			}
			// Every corpus file is mp4, mkv or webm, all with an index.
			if err := json.Unmarshal(e.mustGet(base+"/info"), &info); err != nil || info.Keyframes.Source != "index" || !info.Keyframes.Complete {
				t.Errorf("/info keyframes = %+v (%v), want complete from the index", info.Keyframes, err)
			}
			if c.longGOP {
				orig := parseMediaPlaylist(t, e.mustGet(url(variantRef{"video", encode.QualityOriginal, 0}, "index.m3u8")))
				if orig.target <= 8 {
					t.Errorf("long-GOP original has TARGETDURATION %d, want its long GOPs", orig.target)
				}
			}

			// Segments of sampled variants, out of order: last, middle, first,
			// then the one before the middle, made by another run than the middle.
			frameDur := 1 / info.Video[0].FPS
			// An open-GOP copy (x265's default) moves the leading pictures of
			// each keyframe into the segment it starts, and a run starting at
			// a keyframe loses them: they reference the GOP before it.
			leading := 0.0
			if info.Video[0].Codec == "hevc" {
				leading = 4 * frameDur
			}
			sampled := []variantRef{{"video", info.Qualities.Video[0], 0}, {"video", info.Qualities.Video[len(info.Qualities.Video)-1], 0}}
			for a := range info.Audio {
				sampled = append(sampled, variantRef{"audio", encode.QualityAAC, a})
			}
			for _, v := range sampled {
				p, ok := playlists[v]
				if !ok {
					p = timeline(v)
				}
				n := len(p.starts)
				if n < 2 {
					t.Fatalf("%v: only %d segments", v, n)
				}
				mid := n / 2
				frags := map[int]fragment{}
				for _, i := range []int{n - 1, mid, 0, mid - 1} {
					if _, done := frags[i]; done {
						continue
					}
					seg := e.mustGet(url(v, fmt.Sprintf("segment-%d.m4s", i)))
					init := e.mustGet(url(v, "init.mp4"))
					f := readFragment(t, init, seg)
					frags[i] = f
					if v.kind == "video" {
						flags, dts, pict := probeSegment(t, init, seg)
						if !strings.Contains(flags, "K") || pict != "I" {
							t.Errorf("%v segment %d: first packet flags %q, first frame type %q; want a keyframe", v, i, flags, pict)
						}
						if !near(dts, p.starts[i], frameDur) || !near(f.start(), p.starts[i], frameDur) {
							t.Errorf("%v segment %d starts at pts %.4f (dts %.4f), playlist says %.4f", v, i, f.start(), dts, p.starts[i])
						}
						if slack := frameDur + map[bool]float64{true: leading}[v.quality == encode.QualityOriginal]; !near(f.end()-f.decodeStart(), p.durs[i], slack) {
							t.Errorf("%v segment %d lasts %.4f, EXTINF %.4f", v, i, f.end()-f.decodeStart(), p.durs[i])
						}
					} else {
						// Audio cuts at the first frame at or after the
						// boundary; AAC's segment 0 starts at 0 (padded to
						// its frame grid), which may precede the first video
						// frame.
						frame := 2048.0 / float64(f.timescale)
						want := p.starts[i]
						if i == 0 {
							want = 0
						}
						if d := f.start() - want; d < -1e-6 || d > frame {
							t.Errorf("%v segment %d starts at %.5f, want %.5f", v, i, f.start(), want)
						}
					}
				}
				// Matroska timestamps are whole milliseconds.
				tol := 1e-3
				if v.quality == encode.QualityOriginal && v.kind == "video" {
					tol += leading
				}
				if got, want := frags[mid-1].end(), frags[mid].decodeStart(); !near(got, want, tol) {
					t.Errorf("%v: segment %d (one run) ends at %.6f but segment %d (another run) starts at %.6f", v, mid-1, got, mid, want)
				}
			}
			if kids := ffmpegChildren(); len(kids) > 0 {
				e.close()
				if kids := ffmpegChildren(); len(kids) > 0 {
					t.Errorf("ffmpeg processes left after Close: %v", kids)
				}
			}
		})
	}
}

// TestHeaders checks CORS and content types; errors are in hostile_test.go.
func TestHeaders(t *testing.T) {
	e := newEnv(t, transcoder.Config{}, "h264.mp4")
	good := e.videoURL("h264.mp4")
	status, _, hdr := e.get(good + "/master.m3u8")
	if status != http.StatusOK || hdr.Get("Access-Control-Allow-Origin") != "*" || hdr.Get("Timing-Allow-Origin") != "*" ||
		hdr.Get("Content-Type") != "application/vnd.apple.mpegurl" {
		t.Errorf("master: status %d, headers %v", status, hdr)
	}
}

// TestWholeOrProgressive: a re-encoded segment asked for while it is made
// comes whole, with its Content-Length, to a player that did not ask
// otherwise, and fragment by fragment (chunked) with progressive=1, which
// the master carries onto every URI it lists. Either way it is the segment
// the cache then holds, byte for byte.
func TestWholeOrProgressive(t *testing.T) {
	for _, progressive := range []bool{false, true} {
		e := newEnv(t, transcoder.Config{}, "h264-1080.mp4")
		query := "?clientId=c"
		if progressive {
			query += "&progressive=1"
		}
		master := string(e.mustGet(e.videoURL("h264-1080.mp4") + "/master.m3u8" + query))
		if progressive && !strings.Contains(master, "progressive=1") {
			t.Fatalf("the master does not carry progressive=1 onto its URIs:\n%s", master)
		}
		url := e.videoURL("h264-1080.mp4") + "/video/0/720p/segment-2.m4s" + query
		resp, err := http.Get(url)
		if err != nil {
			t.Fatal(err)
		}
		body, err := io.ReadAll(resp.Body)
		resp.Body.Close()
		if err != nil || resp.StatusCode != http.StatusOK {
			t.Fatalf("progressive=%v: %d %v", progressive, resp.StatusCode, err)
		}
		chunked := slices.Contains(resp.TransferEncoding, "chunked")
		if progressive != chunked || (!progressive && resp.ContentLength != int64(len(body))) {
			t.Errorf("progressive=%v: Transfer-Encoding %v, Content-Length %d of %d bytes", progressive, resp.TransferEncoding, resp.ContentLength, len(body))
		}
		if cached := e.mustGet(url); !bytes.Equal(body, cached) {
			t.Errorf("progressive=%v: the answer differs from the segment in the cache", progressive)
		}
	}
}
