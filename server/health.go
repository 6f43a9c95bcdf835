package server

import (
	"context"
	"net/http"
	"time"
)

// healthTimeout bounds a health answer: a probe that times out learns
// nothing, one that gets a 503 learns why.
const healthTimeout = 2 * time.Second

// healthz is liveness: 503 when the transcoder is wedged, so a supervisor
// restarts the process.
func (s *Server) healthz(w http.ResponseWriter, r *http.Request) error {
	ctx, cancel := context.WithTimeout(r.Context(), healthTimeout)
	defer cancel()
	if err := s.tc.Live(ctx); err != nil {
		return err
	}
	writeText(w, "ok")
	return nil
}

// readyz is readiness: 503 while requests would fail (ffmpeg missing, cache
// not writable, shutting down, or wedged), so a load balancer sends them
// elsewhere. A wedged node is not ready either: a balancer that checks one
// URL (HAProxy's httpchk) then notices both.
func (s *Server) readyz(w http.ResponseWriter, r *http.Request) error {
	ctx, cancel := context.WithTimeout(r.Context(), healthTimeout)
	defer cancel()
	if err := s.tc.Live(ctx); err != nil {
		return err
	}
	if err := s.tc.Ready(ctx); err != nil {
		return err
	}
	writeText(w, "ready")
	return nil
}

func writeText(w http.ResponseWriter, s string) {
	w.Header().Set("Content-Type", "text/plain; charset=utf-8")
	_, _ = w.Write([]byte(s))
}
