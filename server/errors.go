package server

import (
	"context"
	"encoding/json"
	"errors"
	"net/http"
	"strconv"

	"go.uber.org/zap"

	"github.com/hlsd/hlsd/transcoder"
	"github.com/hlsd/hlsd/transcoder/failure"
	"github.com/hlsd/hlsd/transcoder/jobs"
)

// httpError is a request error found by the server itself (bad id, path escape).
type httpError struct {
	status int
	msg    string
}

func (e *httpError) Error() string { return e.msg }

func errorf(status int, msg string) error { return &httpError{status: status, msg: msg} }

// handlerFunc is a handler that returns its error; handle maps it to a status
// in one place.
type handlerFunc func(w http.ResponseWriter, r *http.Request) error

func (s *Server) handle(h handlerFunc) http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) {
		if err := h(w, r); err != nil {
			s.writeError(w, r, err)
		}
	}
}

// statusOf maps domain errors to HTTP status codes.
func statusOf(err error) int {
	var he *httpError
	var ce *failure.CapacityError
	switch {
	case errors.As(err, &he):
		return he.status
	case errors.As(err, &ce), errors.Is(err, failure.ShuttingDown), errors.Is(err, failure.Unavailable),
		errors.Is(err, transcoder.ErrUnhealthy):
		return http.StatusServiceUnavailable
	case errors.Is(err, failure.BadRequest):
		return http.StatusBadRequest
	case errors.Is(err, failure.NotFound):
		return http.StatusNotFound
	case errors.Is(err, failure.Forbidden), errors.Is(err, jobs.ErrNotAllowed):
		return http.StatusForbidden
	case errors.Is(err, failure.NotMedia):
		return http.StatusUnsupportedMediaType
	case errors.Is(err, failure.NotAcceptable):
		return http.StatusNotAcceptable
	default:
		return http.StatusInternalServerError
	}
}

func (s *Server) writeError(w http.ResponseWriter, r *http.Request, err error) {
	if errors.Is(err, context.Canceled) && r.Context().Err() != nil {
		// The client left; nobody reads an answer.
		s.log.Debug("client gone", zap.String("path", r.URL.Path))
		return
	}
	status := statusOf(err)
	msg := err.Error()
	if status == http.StatusInternalServerError && !errors.Is(err, failure.Encoder) {
		msg = "internal error: " + msg
	}
	var ce *failure.CapacityError
	if errors.As(err, &ce) {
		w.Header().Set("Retry-After", strconv.Itoa(max(1, int(ce.RetryAfter.Seconds()))))
	} else if errors.Is(err, failure.Unavailable) {
		w.Header().Set("Retry-After", "1")
	} else if status == http.StatusServiceUnavailable {
		w.Header().Set("Retry-After", "5")
	}
	if status >= 500 {
		s.log.Error("request failed", zap.String("path", r.URL.Path), zap.Int("status", status), zap.Error(err))
	} else {
		s.log.Debug("request refused", zap.String("path", r.URL.Path), zap.Int("status", status), zap.Error(err))
	}
	// An error is of this moment: no cache on the way may keep it.
	w.Header().Set("Cache-Control", "no-store")
	writeJSON(w, status, map[string]any{"error": msg, "status": status})
}

func writeJSON(w http.ResponseWriter, status int, v any) {
	w.Header().Set("Content-Type", "application/json")
	w.Header().Set("X-Content-Type-Options", "nosniff")
	w.WriteHeader(status)
	e := json.NewEncoder(w)
	// Messages say "height 2160 > maxheight 1080"; nosniff and the content
	// type keep a browser from reading them as HTML, so no need for \u003e.
	e.SetEscapeHTML(false)
	_ = e.Encode(v)
}
