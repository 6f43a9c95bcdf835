// Package web holds the browser player: a static page, its script and style,
// and a vendored copy of hls.js (see VENDOR.md), all embedded in the binary
// so the server needs no files and no CDN.
package web

import (
	"crypto/sha256"
	"embed"
	"encoding/hex"
	"net/http"
	"path"
	"strings"
)

//go:embed index.html app.js style.css hls.min.js hls.js.LICENSE
var assets embed.FS

// Embedded files have no modification time, so http.FileServer cannot answer
// conditional requests by date; a content hash as ETag lets browsers
// revalidate the 600 KB hls.js instead of fetching it on every visit.
var etags = hashAll()

func hashAll() map[string]string {
	tags := map[string]string{}
	entries, err := assets.ReadDir(".")
	if err != nil {
		panic(err) // the embed directive guarantees the root exists
	}
	for _, e := range entries {
		b, err := assets.ReadFile(e.Name())
		if err != nil {
			panic(err)
		}
		sum := sha256.Sum256(b)
		tags[e.Name()] = `"` + hex.EncodeToString(sum[:8]) + `"`
	}
	return tags
}

// Set explicitly because the mime package also reads the host's mime.types,
// which can differ between machines (and knows nothing of ".LICENSE").
var contentTypes = map[string]string{
	".html":    "text/html; charset=utf-8",
	".js":      "text/javascript; charset=utf-8",
	".css":     "text/css; charset=utf-8",
	".LICENSE": "text/plain; charset=utf-8",
}

// Handler serves the player page at "/" and its assets under their own
// names. Mount it at the site root (or strip the prefix before calling it).
func Handler() http.Handler {
	files := http.FileServerFS(assets)
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		name := strings.TrimPrefix(path.Clean("/"+r.URL.Path), "/")
		if name == "" {
			name = "index.html"
		}
		h := w.Header()
		if tag, ok := etags[name]; ok {
			h.Set("ETag", tag)
			// Revalidate every time: a new server build must not be hidden by a stale cached script.
			h.Set("Cache-Control", "no-cache")
		}
		if ct, ok := contentTypes[path.Ext(name)]; ok {
			h.Set("Content-Type", ct)
		}
		h.Set("X-Content-Type-Options", "nosniff")
		files.ServeHTTP(w, r)
	})
}
