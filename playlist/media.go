package playlist

import (
	"math"

	"github.com/grafov/m3u8"
)

// mediaVersion is the lowest EXT-X-VERSION allowing EXT-X-MAP in a playlist
// that is not I-frames-only (RFC 8216 section 7).
const mediaVersion = 6

// WriteMedia writes the VOD media playlist of one rendition: the init
// section as EXT-X-MAP and one EXTINF per planned segment, with segURI(i)
// naming segment i. query is appended to the map URI and every segment URI.
//
// grafov prints EXTINF as a float32 with 3 decimals, which stays exact to the
// millisecond only for segments shorter than 16384 s (about 4.5 h).
func WriteMedia(p Plan, initURI string, segURI func(i int) string, query string) []byte {
	return writeMedia(p, initURI, segURI, query, false)
}

func writeMedia(p Plan, initURI string, segURI func(i int) string, query string, iframes bool) []byte {
	n := p.Len()
	// Capacity 1 at least: grafov divides by the capacity when appending.
	pl, err := m3u8.NewMediaPlaylist(0, uint(max(n, 1)))
	if err != nil {
		panic(err) // only for winsize > capacity, impossible with winsize 0
	}
	pl.MediaType = m3u8.VOD
	pl.Closed = true
	pl.Iframe = iframes
	version := uint8(mediaVersion)
	if initURI != "" {
		pl.SetDefaultMap(withQuery(initURI, query), 0, 0)
	} else {
		version = TSVersion
	}
	for i := range n {
		if err := pl.Append(withQuery(segURI(i), query), p.Duration(i), ""); err != nil {
			panic(err) // capacity is exactly n
		}
	}
	// grafov derives the target from each appended float; set ours so the
	// header agrees with Plan.TargetDuration, which other code relies on.
	pl.TargetDuration = float64(p.TargetDuration())
	pl.SetVersion(version)
	return pl.Encode().Bytes()
}

// WriteIFrames writes an I-frames-only playlist (RFC 8216 4.3.3.6): entry
// i is one I-frame at p.Start(i), shown until the next; segURI(i) names it,
// a whole resource, so no byte range is needed. EXT-X-MAP in an I-frames
// playlist needs version 5; 6 keeps every playlist of a file on one version.
func WriteIFrames(p Plan, initURI string, segURI func(i int) string, query string) []byte {
	return writeMedia(p, initURI, segURI, query, true)
}

// TSVersion is the EXT-X-VERSION of playlists of MPEG-TS segments: 3, for
// EXTINF as decimals.
const TSVersion = 3

// WriteTS writes the media playlist of a rendition with MPEG-TS segments:
// no EXT-X-MAP (each segment starts with its PAT and PMT), so version 3,
// which old players take.
func WriteTS(p Plan, segURI func(i int) string, query string) []byte {
	return writeMedia(p, "", segURI, query, false)
}

// WriteSubtitles writes the media playlist of a WebVTT track served whole:
// one segment spanning the file's duration, which hls.js and Safari accept,
// and which needs no cue splitting at segment boundaries.
func WriteSubtitles(duration float64, vttURI, query string) []byte {
	pl, err := m3u8.NewMediaPlaylist(0, 1)
	if err != nil {
		panic(err) // only for winsize > capacity
	}
	pl.MediaType = m3u8.VOD
	pl.Closed = true
	if err := pl.Append(withQuery(vttURI, query), duration, ""); err != nil {
		panic(err) // capacity is 1
	}
	pl.TargetDuration = math.Ceil(duration)
	pl.SetVersion(3)
	return pl.Encode().Bytes()
}
