package server

import (
	"errors"
	"io"
	"mime"
	"net/http"
	"path"
	"strconv"
	"strings"

	"github.com/hlsd/hlsd/transcoder/encode"
)

// download serves download.mp4?quality=Q&audio=A: the finished file with
// its length and ranges, or the one being made as it grows. A client that
// goes away stops its making, unless another reads it too.
func (s *Server) download(w http.ResponseWriter, r *http.Request) error {
	p, err := s.mediaPath(r)
	if err != nil {
		return err
	}
	q := r.URL.Query()
	quality := q.Get("quality")
	if _, err := encode.ParseRendition("video", "0", quality); err != nil {
		return errorf(http.StatusBadRequest, "quality "+strconv.Quote(quality)+": expected original or a rung such as 360p, 720p")
	}
	audio := -1
	if a := q.Get("audio"); a != "" {
		if audio, err = strconv.Atoi(a); err != nil || audio < 0 {
			return errorf(http.StatusBadRequest, "audio "+strconv.Quote(a)+": expected a track number from 0")
		}
	}
	d, err := s.tc.Download(r.Context(), p, quality, audio)
	if err != nil {
		return err
	}
	base := strings.TrimSuffix(d.Name, path.Ext(d.Name))
	w.Header().Set("Content-Disposition", mime.FormatMediaType("attachment",
		map[string]string{"filename": base + " (" + quality + ").mp4"}))
	if d.File != nil {
		return serveOpen(w, r, d.File, "video/mp4")
	}
	defer d.Partial.Close()
	h := w.Header()
	h.Set("Content-Type", "video/mp4")
	h.Set("Cache-Control", "no-store") // it grows: only the finished file may be kept
	w.WriteHeader(http.StatusOK)
	if r.Method == http.MethodHead {
		return nil
	}
	rc := http.NewResponseController(w)
	buf := make([]byte, 256<<10)
	for {
		n, err := d.Partial.Read(buf)
		if n > 0 {
			if _, werr := w.Write(buf[:n]); werr != nil {
				return nil // the client left; Close stops the making if it was the last
			}
			_ = rc.Flush()
		}
		if errors.Is(err, io.EOF) {
			return nil
		}
		if err != nil && r.Context().Err() != nil {
			return nil // the client left
		}
		if err != nil {
			// The status is sent: only a connection cut short tells the
			// client (a chunked body ended cleanly would look whole), and
			// the log says why.
			s.log.Info("download ended early: " + err.Error())
			panic(http.ErrAbortHandler)
		}
	}
}
