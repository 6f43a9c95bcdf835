package server

import (
	"errors"
	"fmt"
	"io"
	"net/http"
	"os"
	"path"
	"path/filepath"
	"regexp"
	"sort"
	"strconv"
	"strings"
	"time"

	"github.com/go-chi/chi/v5"
	"github.com/hlsd/hlsd/transcoder"
	"github.com/hlsd/hlsd/transcoder/encode"
	"github.com/hlsd/hlsd/transcoder/failure"
)

// mediaPath is the file the route's {id} names, relative to the media
// root, as the version middleware decoded it. Whether it exists, and where
// its symlinks lead, is for the transcoder to find out when it opens the
// file.
func (s *Server) mediaPath(r *http.Request) (string, error) {
	if d, ok := r.Context().Value(pathKey{}).(decoded); ok {
		return d.path, d.err
	}
	return decodePath(chi.URLParam(r, "id"))
}

// decodePath turns a file's id into its path under the media root.
func decodePath(id string) (string, error) {
	rel, err := decodeID(id)
	if err != nil {
		return "", err
	}
	rel, err = clean(rel)
	if err != nil {
		return "", err
	}
	if rel == "" {
		return "", errorf(http.StatusNotFound, "the media root is a directory, not a media file")
	}
	return rel, nil
}

type mediaEntry struct {
	Name     string    `json:"name"`
	Path     string    `json:"path"`
	ID       string    `json:"id"`
	Type     string    `json:"type"`
	Size     int64     `json:"size"`
	Modified time.Time `json:"modified"`
	Master   string    `json:"master,omitempty"`
	// Duration in seconds, for media probed before (a listing never probes).
	Duration float64 `json:"duration,omitempty"`
}

func (s *Server) listMedia(w http.ResponseWriter, r *http.Request) error {
	rel, err := clean(r.URL.Query().Get("dir"))
	if err != nil {
		return err
	}
	files, err := s.lib.ReadDir(rel)
	if err != nil {
		return err
	}
	entries := []mediaEntry{}
	for _, f := range files {
		if strings.HasPrefix(f.Name(), ".") {
			continue
		}
		p := path.Join(rel, f.Name())
		st, err := s.lib.Stat(p)
		if err != nil {
			continue // dangling or escaping symlinks are not listed
		}
		e := mediaEntry{Name: f.Name(), Path: p, ID: encodeID(p), Size: st.Size(), Modified: st.ModTime().UTC()}
		switch {
		case st.IsDir():
			e.Type, e.Size = "dir", 0
		case st.Mode().IsRegular() && isMediaName(f.Name()):
			e.Type = "media"
			e.Master = "/videos/" + e.ID + "/master.m3u8"
			e.Duration, _ = s.tc.KnownDuration(p, st)
		default:
			continue
		}
		entries = append(entries, e)
	}
	sort.SliceStable(entries, func(i, j int) bool {
		if entries[i].Type != entries[j].Type {
			return entries[i].Type == "dir"
		}
		return strings.ToLower(entries[i].Name) < strings.ToLower(entries[j].Name)
	})
	writeJSON(w, http.StatusOK, map[string]any{"dir": rel, "entries": entries})
	return nil
}

func (s *Server) info(w http.ResponseWriter, r *http.Request) error {
	path, err := s.mediaPath(r)
	if err != nil {
		return err
	}
	info, err := s.tc.Info(r.Context(), path)
	if err != nil {
		return err
	}
	// The version middleware put the file's version in the query.
	v, _ := queryValue(r.URL.RawQuery, "v")
	for i := range info.Subtitles {
		if info.Subtitles[i].Streamable {
			info.Subtitles[i].URL = fmt.Sprintf("/videos/%s/subtitles/%d.vtt?v=%s", chi.URLParam(r, "id"), i, v)
		}
	}
	if info.TrickplayInterval > 0 {
		info.Trickplay = "/videos/" + chi.URLParam(r, "id") + "/trickplay.vtt?v=" + v
	}
	writeJSON(w, http.StatusOK, info)
	return nil
}

var subtitleRe = regexp.MustCompile(`^([0-9]{1,3})\.(vtt|m3u8)$`)

// subtitleFile serves subtitle track s whole as WebVTT ({s}.vtt), or the
// one-segment media playlist the master's SUBTITLES rendition points to
// ({s}.m3u8).
func (s *Server) subtitleFile(w http.ResponseWriter, r *http.Request) error {
	m := subtitleRe.FindStringSubmatch(chi.URLParam(r, "file"))
	if m == nil {
		return errorf(http.StatusBadRequest, "malformed subtitle name "+strconv.Quote(chi.URLParam(r, "file"))+": expected N.vtt or N.m3u8")
	}
	track, _ := strconv.Atoi(m[1])
	path, err := s.mediaPath(r)
	if err != nil {
		return err
	}
	if m[2] == "m3u8" {
		b, err := s.tc.SubtitlePlaylist(r.Context(), path, track, r.URL.RawQuery)
		if err != nil {
			return err
		}
		writePlaylist(w, r, b)
		return nil
	}
	f, err := s.tc.Subtitle(r.Context(), path, track)
	if err != nil {
		return err
	}
	return serveOpen(w, r, f, "text/vtt; charset=utf-8")
}

func (s *Server) master(w http.ResponseWriter, r *http.Request) error {
	path, err := s.mediaPath(r)
	if err != nil {
		return err
	}
	c, err := client(r)
	if err != nil {
		return err
	}
	b, err := s.tc.Master(r.Context(), path, r.URL.RawQuery, c)
	if err != nil {
		return err
	}
	w.Header().Set("Cache-Control", cacheMaster)
	writePlaylist(w, r, b)
	return nil
}

// decision says what the client the query describes would get, and why.
func (s *Server) decision(w http.ResponseWriter, r *http.Request) error {
	path, err := s.mediaPath(r)
	if err != nil {
		return err
	}
	c, err := client(r)
	if err != nil {
		return err
	}
	d, err := s.tc.Decide(r.Context(), path, c)
	if err != nil {
		return err
	}
	// The narrowed master keeps the rest of the query (a token), as the
	// playlists do; not the file's version: it is the entry point, which
	// names the file as it is when a player opens it.
	master := strings.TrimSuffix(r.URL.Path, "decision") + "master.m3u8"
	if q := withoutQueryValue(r.URL.RawQuery, "v"); q != "" {
		master += "?" + q
	}
	writeJSON(w, http.StatusOK, struct {
		transcoder.Decision
		Master string `json:"master"`
	}{d, master})
	return nil
}

// client reads what a client says it can play from the query: codecs,
// maxheight, range and channels (the master's filters), and container: fmp4
// (the default) or ts. Playlists pass their query on to every URI they
// list, so the media playlists of a master asked for with container=ts are
// asked for with it.
func client(r *http.Request) (transcoder.Client, error) {
	q := r.URL.Query()
	var c transcoder.Client
	switch v := q.Get("container"); v {
	case "", "fmp4":
	case "ts":
		c.TS = true
	default:
		return c, errorf(http.StatusBadRequest, "unknown container "+strconv.Quote(v)+": expected fmp4 or ts")
	}
	if q.Has("codecs") {
		c.Codecs = []string{}
		for _, p := range strings.Split(q.Get("codecs"), ",") {
			if p = strings.TrimSpace(p); p != "" {
				c.Codecs = append(c.Codecs, p)
			}
		}
	}
	for _, n := range []struct {
		name string
		to   *int
	}{{"maxheight", &c.MaxHeight}, {"channels", &c.Channels}} {
		if v := q.Get(n.name); v != "" {
			i, err := strconv.Atoi(v)
			if err != nil || i <= 0 || i > 100_000 {
				return c, errorf(http.StatusBadRequest, n.name+" "+strconv.Quote(v)+": expected a positive number")
			}
			*n.to = i
		}
	}
	switch v := q.Get("range"); v {
	case "", "hdr", "pq", "hlg", "any":
	case "sdr":
		c.SDR = true
	default:
		return c, errorf(http.StatusBadRequest, "unknown range "+strconv.Quote(v)+": expected sdr (drops PQ and HLG variants) or hdr")
	}
	if err := c.Validate(); err != nil {
		return c, errorf(http.StatusBadRequest, err.Error())
	}
	return c, nil
}

var (
	segmentRe = regexp.MustCompile(`^segment-([0-9]{1,9})\.m4s$`)
	iframeRe  = regexp.MustCompile(`^iframe-([0-9]{1,9})\.m4s$`)
	tsRe      = regexp.MustCompile(`^segment-([0-9]{1,9})\.ts$`)
	sheetRe   = regexp.MustCompile(`^sheet-([0-9]{1,6})\.jpg$`)
)

// variantFile serves index.m3u8, init.mp4 and segment-N.m4s of one variant,
// and iframes.m3u8, iframes-init.mp4 and iframe-N.m4s of a rung's I-frames.
func (s *Server) variantFile(w http.ResponseWriter, r *http.Request) error {
	file := chi.URLParam(r, "file")
	rend, err := encode.ParseRendition(chi.URLParam(r, "kind"), chi.URLParam(r, "track"), chi.URLParam(r, "quality"))
	if err != nil {
		return err
	}
	kind := rend.Kind
	var n int
	iframe, tsSegment := false, false
	switch {
	case file == "index.m3u8", file == "init.mp4":
	case segmentRe.MatchString(file):
		n, _ = strconv.Atoi(segmentRe.FindStringSubmatch(file)[1])
	case kind == "video" && (file == "iframes.m3u8" || file == "iframes-init.mp4"):
	case kind == "video" && tsRe.MatchString(file):
		n, _ = strconv.Atoi(tsRe.FindStringSubmatch(file)[1])
		tsSegment = true
	case kind == "video" && iframeRe.MatchString(file):
		n, _ = strconv.Atoi(iframeRe.FindStringSubmatch(file)[1])
		iframe = true
	default:
		return errorf(http.StatusBadRequest, "malformed segment name "+strconv.Quote(file)+
			": expected index.m3u8, init.mp4, segment-N.m4s, or for video segment-N.ts, iframes.m3u8, iframes-init.mp4, iframe-N.m4s")
	}
	path, err := s.mediaPath(r)
	if err != nil {
		return err
	}
	clientID := r.URL.Query().Get("clientId")
	if clientID == "" {
		clientID = r.Header.Get("X-Client-Id")
	}
	c, err := client(r)
	if err != nil {
		return err
	}
	ts := c.TS
	switch {
	case iframe:
		f, err := s.tc.IFrame(r.Context(), path, rend, n)
		if err != nil {
			return err
		}
		return serveOpen(w, r, f, "video/iso.segment")
	case tsSegment:
		f, err := s.tc.TSSegment(r.Context(), path, rend, n, clientID)
		if err != nil {
			return err
		}
		return serveOpen(w, r, f, "video/mp2t")
	case ts && kind == "video" && file == "index.m3u8":
		b, err := s.tc.TSPlaylist(r.Context(), path, rend, r.URL.RawQuery)
		if err != nil {
			return err
		}
		writePlaylist(w, r, b)
		return nil
	}
	switch file {
	case "iframes.m3u8":
		b, err := s.tc.IFramePlaylist(r.Context(), path, rend, r.URL.RawQuery)
		if err != nil {
			return err
		}
		writePlaylist(w, r, b)
		return nil
	case "iframes-init.mp4":
		f, err := s.tc.IFrameInit(r.Context(), path, rend)
		if err != nil {
			return err
		}
		return serveOpen(w, r, f, "video/mp4")
	case "index.m3u8":
		b, err := s.tc.MediaPlaylist(r.Context(), path, rend, r.URL.RawQuery)
		if err != nil {
			return err
		}
		writePlaylist(w, r, b)
		return nil
	case "init.mp4":
		f, err := s.tc.Init(r.Context(), path, rend, clientID)
		if err != nil {
			return err
		}
		return serveOpen(w, r, f, "video/mp4")
	}
	// Players that only use a segment once it is whole (hls.js by default,
	// Shaka, video.js, Apple's) gain nothing from getting it piece by piece
	// at the encoder's pace, and lose by it: they take that pace for their
	// bandwidth before the load is done, and video.js abandons such a load
	// as too slow a second after its first bytes. They get it complete,
	// with its Content-Length, and a run that dies meanwhile is retried
	// unseen. Players that read progressively ask for the pieces with
	// progressive=1, which the master carries onto every URI it lists.
	progressive := r.URL.Query().Get("progressive") == "1"
	rc, err := s.tc.Segment(r.Context(), path, rend, n, clientID, progressive)
	if err != nil {
		return err
	}
	if f, ok := rc.(*os.File); ok {
		return serveOpen(w, r, f, "video/iso.segment")
	}
	return serveLive(w, r, rc, "video/iso.segment")
}

// serveLive sends a segment as it is made, each piece as soon as it is read
// (chunked), and closes it: for a player that reads progressively (hls.js
// with progressive: true, as the web player runs it), which starts on the
// first fragment. An error before the first byte is answered as
// usual; after it, the response can only be cut short, so that the player
// sees a failed load and retries rather than a short segment.
func serveLive(w http.ResponseWriter, r *http.Request, rc io.ReadCloser, contentType string) error {
	defer rc.Close()
	// Large enough for a whole fragment per write (0.5 s of 2160p at its cap is 1.5 MB): see
	// transcoder's liveSegment for why fragments must not be split.
	buf := make([]byte, 2<<20)
	k, err := rc.Read(buf)
	if k == 0 && err != nil && err != io.EOF {
		return err
	}
	w.Header().Set("Content-Type", contentType)
	w.Header().Set("Cache-Control", mediaCacheControl(r))
	rw := http.NewResponseController(w)
	for {
		if k > 0 {
			if _, werr := w.Write(buf[:k]); werr != nil {
				return nil // the client went away
			}
			_ = rw.Flush()
		}
		if err == io.EOF {
			return nil
		}
		if err != nil {
			panic(http.ErrAbortHandler)
		}
		k, err = rc.Read(buf)
	}
}

// trickplay serves the WebVTT map of the file's thumbnails.
func (s *Server) trickplay(w http.ResponseWriter, r *http.Request) error {
	path, err := s.mediaPath(r)
	if err != nil {
		return err
	}
	b, err := s.tc.Trickplay(r.Context(), path, r.URL.RawQuery)
	if err != nil {
		return err
	}
	w.Header().Set("Content-Type", "text/vtt; charset=utf-8")
	w.Header().Set("Cache-Control", playlistCacheControl(r))
	_, _ = w.Write(b)
	return nil
}

func (s *Server) trickplaySheet(w http.ResponseWriter, r *http.Request) error {
	m := sheetRe.FindStringSubmatch(chi.URLParam(r, "file"))
	if m == nil {
		return errorf(http.StatusBadRequest, "malformed thumbnail sheet name "+strconv.Quote(chi.URLParam(r, "file"))+": expected sheet-N.jpg")
	}
	n, _ := strconv.Atoi(m[1])
	path, err := s.mediaPath(r)
	if err != nil {
		return err
	}
	p, err := s.tc.TrickplaySheet(r.Context(), path, n)
	if err != nil {
		return err
	}
	return serveFile(w, r, p, "image/jpeg")
}

// writePlaylist sends a playlist; the master sets its own Cache-Control first.
func writePlaylist(w http.ResponseWriter, r *http.Request, b []byte) {
	w.Header().Set("Content-Type", "application/vnd.apple.mpegurl")
	if w.Header().Get("Cache-Control") == "" {
		w.Header().Set("Cache-Control", playlistCacheControl(r))
	}
	_, _ = w.Write(b)
}

// serveFile sends a file the transcoder made (subtitles, thumbnails). An
// operator may have cleaned the cache between its answer and the open: the
// client is told to retry, and the next request makes it again.
func serveFile(w http.ResponseWriter, r *http.Request, path, contentType string) error {
	f, err := os.Open(path)
	if err != nil {
		if errors.Is(err, os.ErrNotExist) {
			return fmt.Errorf("%w: %s was removed from the cache before it could be sent", failure.Unavailable, filepath.Base(path))
		}
		return err
	}
	return serveOpen(w, r, f, contentType)
}

// serveOpen sends f and closes it.
func serveOpen(w http.ResponseWriter, r *http.Request, f *os.File, contentType string) error {
	defer f.Close()
	st, err := f.Stat()
	if err != nil {
		return err
	}
	w.Header().Set("Content-Type", contentType)
	w.Header().Set("Cache-Control", mediaCacheControl(r))
	// These exact bytes on this node; another node's copy of the same
	// segment decodes alike but may differ, and says so by another tag.
	w.Header().Set("ETag", fmt.Sprintf(`"%x-%x"`, st.ModTime().UnixNano(), st.Size()))
	http.ServeContent(w, r, "", st.ModTime(), f)
	return nil
}
