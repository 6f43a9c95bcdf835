package server

import (
	"context"
	"fmt"
	"net/http"
	"net/url"
	"strings"

	"github.com/go-chi/chi/v5"
	"github.com/hlsd/hlsd/transcoder/probe"
)

// A file's version names its bytes on disk: size and modification time,
// which every node sharing the media (or a copy made with rsync -a) reads
// alike. Every URI a playlist lists carries it as v=, so a file replaced
// on disk gets new URLs, and what a versioned URL answers never changes:
// a CDN may keep it forever.
//
// A request whose v is not the file's version now is answered 404 with a
// message saying to reload the master playlist: its bytes are gone, and
// serving the new file's under the old name would poison every cache on
// the way.

type versionKey struct{}

// pathKey holds the decoded id of a request, a decoded.
type pathKey struct{}

type decoded struct {
	path string
	err  error
}

// versioned tells whether the request named the file's current version,
// so that its answer may be cached as immutable.
func versioned(r *http.Request) bool {
	v, _ := r.Context().Value(versionKey{}).(bool)
	return v
}

// version decodes the file's id, once for the request (mediaPath reads
// it back), checks the request's v against the file and puts the current
// version in the query the playlists pass on. Requests for a file that
// cannot be found go on: their handler says why.
func (s *Server) version(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		rel, err := decodePath(chi.URLParam(r, "id"))
		r = r.WithContext(context.WithValue(r.Context(), pathKey{}, decoded{rel, err}))
		if err != nil {
			next.ServeHTTP(w, r)
			return
		}
		st, err := s.lib.Stat(rel)
		if err != nil || !st.Mode().IsRegular() {
			next.ServeHTTP(w, r)
			return
		}
		cur := probe.IdentityOf(rel, st).Version()
		asked, has := queryValue(r.URL.RawQuery, "v")
		if has && asked != cur {
			s.writeError(w, r, errorf(http.StatusNotFound, fmt.Sprintf(
				"this file changed on disk since its playlist was written (version %q, now %q): reload the master playlist", asked, cur)))
			return
		}
		r2 := r.Clone(context.WithValue(r.Context(), versionKey{}, has))
		r2.URL.RawQuery = setQueryValue(r.URL.RawQuery, "v", cur)
		next.ServeHTTP(w, r2)
	})
}

// queryValue and setQueryValue work on the raw query, so that the other
// parameters a player sent are passed on byte for byte.
func queryValue(raw, key string) (string, bool) {
	for _, kv := range strings.Split(raw, "&") {
		k, v, _ := strings.Cut(kv, "=")
		if k == key {
			if u, err := url.QueryUnescape(v); err == nil {
				v = u
			}
			return v, true
		}
	}
	return "", false
}

func setQueryValue(raw, key, value string) string {
	if raw = withoutQueryValue(raw, key); raw != "" {
		raw += "&"
	}
	return raw + key + "=" + url.QueryEscape(value)
}

// withoutQueryValue is raw without key, the rest as it was.
func withoutQueryValue(raw, key string) string {
	var out []string
	for _, kv := range strings.Split(raw, "&") {
		if k, _, _ := strings.Cut(kv, "="); kv != "" && k != key {
			out = append(out, kv)
		}
	}
	return strings.Join(out, "&")
}

// Cache lifetimes. A versioned URL's bytes never change; the same without
// a version may name another file tomorrow, so it is revalidated each time
// (its ETag makes that cheap). A VOD media playlist changes only with the
// file, but it is short-lived anyway: a CDN keeps it keyed with the
// player's own query. The master lists the rungs this node can make now,
// which changes as it measures its speed.
const (
	cacheImmutable = "public, max-age=31536000, immutable"
	cacheRevalid   = "no-cache"
	cachePlaylist  = "public, max-age=60"
	cacheMaster    = "public, max-age=10"
)

// playlistCacheControl is the Cache-Control of a media playlist.
func playlistCacheControl(r *http.Request) string {
	if versioned(r) {
		return cachePlaylist
	}
	return cacheRevalid
}

// mediaCacheControl is the Cache-Control of a segment, init or other file
// of a media file.
func mediaCacheControl(r *http.Request) string {
	if versioned(r) {
		return cacheImmutable
	}
	return cacheRevalid
}
