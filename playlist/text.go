package playlist

import "strings"

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
