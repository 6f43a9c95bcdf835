package server

import (
	"crypto/sha256"
	"crypto/subtle"
	"fmt"
	"net/http"
	"path"
	"strconv"
	"strings"
	"time"

	"github.com/go-chi/chi/v5"
	"github.com/go-chi/chi/v5/middleware"
	"go.uber.org/zap"
)

// observe logs each request and counts it. Only the path is logged: query
// strings may carry tokens.
func (s *Server) observe(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		start := time.Now()
		if s.cfg.NodeName != "" {
			// Behind a load balancer, which node answered.
			w.Header().Set("X-Hlsd-Node", s.cfg.NodeName)
		}
		ww := middleware.NewWrapResponseWriter(w, r.ProtoMajor)
		next.ServeHTTP(ww, r)
		route := "unmatched"
		if rc := chi.RouteContext(r.Context()); rc != nil && rc.RoutePattern() != "" {
			route = rc.RoutePattern()
		}
		status := ww.Status()
		if status == 0 {
			status = http.StatusOK
		}
		d := time.Since(start)
		s.metrics.requests.WithLabelValues(route, strconv.Itoa(status)).Inc()
		s.metrics.duration.WithLabelValues(route).Observe(d.Seconds())
		s.log.Info("request", zap.String("method", r.Method), zap.String("path", r.URL.Path),
			zap.Int("status", status), zap.Int("bytes", ww.BytesWritten()),
			zap.Duration("duration", d), zap.String("remote", r.RemoteAddr))
	})
}

// mediaFile are the extensions of the binary files hlsd serves.
var mediaFile = map[string]bool{".m4s": true, ".mp4": true, ".ts": true, ".jpg": true}

// compressor gzips text answers (Apple's Authoring Specification 10.1
// requires it of playlists): playlists, the API's JSON, WebVTT and the web
// player's own files. Segments are left alone: compressed video gains
// nothing and a live segment is sent fragment by fragment.
var compressor = middleware.NewCompressor(5,
	"application/vnd.apple.mpegurl", "application/json", "text/vtt",
	"text/html", "text/css", "text/javascript", "application/javascript")

// compress applies compressor, except to range requests (a Content-Range
// counts bytes of what is sent, which compressing would change) and to
// media files: its writer hides the connection's ReadFrom, and with it the
// sendfile that http.ServeContent uses for every segment.
func compress(next http.Handler) http.Handler {
	zipped := compressor.Handler(next)
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.Header.Get("Range") != "" || mediaFile[path.Ext(r.URL.Path)] {
			next.ServeHTTP(w, r)
			return
		}
		zipped.ServeHTTP(w, r)
	})
}

// recoverer turns a panic into a 500 for that request only.
func (s *Server) recoverer(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		defer func() {
			if v := recover(); v != nil {
				if v == http.ErrAbortHandler {
					panic(v)
				}
				s.writeError(w, r, fmt.Errorf("panic: %v", v))
			}
		}()
		next.ServeHTTP(w, r)
	})
}

// tokenCookie carries the token for the web player's own requests (its
// scripts, the listing, hls.js), once the page was opened with ?token=.
const tokenCookie = "hlsd_token"

// auth requires the token on every route but the health checks (probes
// carry no credentials, and the answers reveal nothing): as a Bearer
// Authorization header, a token query parameter (which playlists pass on to
// every URI they list), or the web player's cookie.
func (s *Server) auth(next http.Handler) http.Handler {
	if s.cfg.AuthToken == "" {
		return next
	}
	// Comparing digests keeps the comparison constant-time whatever the
	// length of the guess.
	want := sha256.Sum256([]byte(s.cfg.AuthToken))
	ok := func(got string) bool {
		sum := sha256.Sum256([]byte(got))
		return got != "" && subtle.ConstantTimeCompare(sum[:], want[:]) == 1
	}
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Path == "/healthz" || r.URL.Path == "/readyz" {
			next.ServeHTTP(w, r)
			return
		}
		bearer, _ := strings.CutPrefix(r.Header.Get("Authorization"), "Bearer ")
		query := r.URL.Query().Get("token")
		var cookie string
		if c, err := r.Cookie(tokenCookie); err == nil {
			cookie = c.Value
		}
		// Evaluate all three: which one matched must not show in the timing.
		okBearer, okQuery, okCookie := ok(bearer), ok(query), ok(cookie)
		if !okBearer && !okQuery && !okCookie {
			w.Header().Set("WWW-Authenticate", `Bearer realm="hlsd"`)
			s.writeError(w, r, errorf(http.StatusUnauthorized, "a token is required: send Authorization: Bearer <token> or add ?token=<token>"))
			return
		}
		if okQuery && !okCookie && (r.URL.Path == "/" || r.URL.Path == "/index.html") {
			http.SetCookie(w, &http.Cookie{Name: tokenCookie, Value: query, Path: "/",
				HttpOnly: true, SameSite: http.SameSiteStrictMode})
		}
		next.ServeHTTP(w, r)
	})
}

// cors lets players on another origin read playlists and segments.
func (s *Server) cors(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if s.cfg.AllowOrigin != "" {
			h := w.Header()
			h.Set("Access-Control-Allow-Origin", s.cfg.AllowOrigin)
			h.Set("Access-Control-Allow-Headers", "Authorization, Range, X-Client-Id")
			h.Set("Access-Control-Expose-Headers", "Content-Length, Content-Range, Retry-After, X-Hlsd-Node")
			// A front end on another origin may then time its loads (Resource
			// Timing's first byte and sizes are zero without it).
			h.Set("Timing-Allow-Origin", s.cfg.AllowOrigin)
			if r.Method == http.MethodOptions {
				h.Set("Access-Control-Allow-Methods", "GET, HEAD, OPTIONS")
				w.WriteHeader(http.StatusNoContent)
				return
			}
		}
		next.ServeHTTP(w, r)
	})
}
