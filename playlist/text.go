package playlist

import (
	"bytes"
	"strings"
)

// withQuery appends a raw query string to uri, using "&" when uri already
// has one. grafov's own Args option is not used: its media writer always
// adds "?" and it skips the EXT-X-MAP and EXT-X-MEDIA URIs.
func withQuery(uri, query string) string {
	uri = safe(uri)
	query = safe(query)
	if query == "" {
		return uri
	}
	if strings.Contains(uri, "?") {
		return uri + "&" + query
	}
	return uri + "?" + query
}

// safe makes s usable inside an HLS quoted-string or as a URI line: those
// cannot contain a double quote, CR or LF (RFC 8216 section 4.2), and a line
// break would let a track title inject tags into the playlist.
var safe = strings.NewReplacer(`"`, "'", "\r", " ", "\n", " ").Replace

// WithTimestampMap adds X-TIMESTAMP-MAP to the WebVTT header. Segment
// timestamps are the playlist's times (0 at the file's start), so cue time 0
// is media time 0; HLS players need the mapping said to align cues with
// fMP4 video, and other WebVTT readers ignore the line.
func WithTimestampMap(vtt []byte) []byte {
	first, rest, _ := bytes.Cut(vtt, []byte("\n"))
	if !bytes.HasPrefix(first, []byte("WEBVTT")) {
		first, rest = []byte("WEBVTT"), vtt
	}
	var b bytes.Buffer
	b.Write(bytes.TrimRight(first, "\r"))
	b.WriteString("\nX-TIMESTAMP-MAP=MPEGTS:0,LOCAL:00:00:00.000\n")
	b.Write(rest)
	return b.Bytes()
}
