package server

import (
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"path"
	"strings"

	"github.com/go-chi/chi/v5"
	"github.com/hlsd/hlsd/transcoder/jobs"
)

// Jobs is what the server needs of the background jobs.
type Jobs interface {
	SubmitImport(urls []string, folder, mode string) (jobs.Job, error)
	SubmitPrepare(files, qualities []string) (jobs.Job, error)
	List() []jobs.Job
	Get(id string) (jobs.Job, error)
	Cancel(id string) (jobs.Job, error)
}

// jobRequest is the body of POST /api/jobs.
type jobRequest struct {
	Type      string   `json:"type"`
	URLs      []string `json:"urls"`
	Folder    string   `json:"folder"`
	Mode      string   `json:"mode"`
	ID        string   `json:"id"`
	Qualities []string `json:"qualities"`
}

// needJobs answers a job route with 503 on a server built without jobs
// (the load and bench tools).
func (s *Server) needJobs(h handlerFunc) handlerFunc {
	return func(w http.ResponseWriter, r *http.Request) error {
		if s.jobs == nil {
			return errorf(http.StatusServiceUnavailable, "background jobs are not running on this server")
		}
		return h(w, r)
	}
}

func (s *Server) submitJob(w http.ResponseWriter, r *http.Request) error {
	var req jobRequest
	dec := json.NewDecoder(io.LimitReader(r.Body, 1<<20))
	dec.DisallowUnknownFields()
	if err := dec.Decode(&req); err != nil {
		return errorf(http.StatusBadRequest, "the body must be a JSON job: "+err.Error())
	}
	var job jobs.Job
	var err error
	switch req.Type {
	case jobs.JobImport:
		folder, cerr := clean(req.Folder)
		if cerr != nil {
			return cerr
		}
		job, err = s.jobs.SubmitImport(req.URLs, folder, req.Mode)
	case jobs.JobPrepare:
		files, ferr := s.prepareFiles(r, req)
		if ferr != nil {
			return ferr
		}
		job, err = s.jobs.SubmitPrepare(files, req.Qualities)
	default:
		return errorf(http.StatusBadRequest, fmt.Sprintf("unknown job type %q: expected import or prepare", req.Type))
	}
	if err != nil {
		return err
	}
	writeJSON(w, http.StatusAccepted, job)
	return nil
}

// prepareFiles are the files a prepare names: one by its id, or the media
// of a folder. Each must be playable now, so that a typo fails at once.
func (s *Server) prepareFiles(r *http.Request, req jobRequest) ([]string, error) {
	var files []string
	switch {
	case req.ID != "" && req.Folder != "":
		return nil, errorf(http.StatusBadRequest, "a prepare names a file (id) or a folder, not both")
	case req.ID != "":
		rel, err := decodeID(req.ID)
		if err == nil {
			rel, err = clean(rel)
		}
		if err != nil {
			return nil, err
		}
		files = []string{rel}
	default:
		dir, err := clean(req.Folder)
		if err != nil {
			return nil, err
		}
		entries, err := s.lib.ReadDir(dir)
		if err != nil {
			return nil, err
		}
		for _, e := range entries {
			if !strings.HasPrefix(e.Name(), ".") && e.Type().IsRegular() && isMediaName(e.Name()) {
				files = append(files, path.Join(dir, e.Name()))
			}
		}
		if len(files) == 0 {
			return nil, errorf(http.StatusNotFound, fmt.Sprintf("no media file in folder %q", dir))
		}
	}
	for _, f := range files {
		if _, err := s.tc.Info(r.Context(), f); err != nil {
			return nil, err
		}
	}
	return files, nil
}

func (s *Server) listJobs(w http.ResponseWriter, r *http.Request) error {
	writeJSON(w, http.StatusOK, map[string]any{"jobs": s.jobs.List()})
	return nil
}

func (s *Server) getJob(w http.ResponseWriter, r *http.Request) error {
	job, err := s.jobs.Get(chi.URLParam(r, "job"))
	if err != nil {
		return err
	}
	writeJSON(w, http.StatusOK, job)
	return nil
}

func (s *Server) cancelJob(w http.ResponseWriter, r *http.Request) error {
	job, err := s.jobs.Cancel(chi.URLParam(r, "job"))
	if err != nil {
		return err
	}
	writeJSON(w, http.StatusOK, job)
	return nil
}

// activity is the Activity view's data: running encoder heads, jobs and
// the downloads being made.
func (s *Server) activity(w http.ResponseWriter, r *http.Request) error {
	jobs := []jobs.Job{}
	if s.jobs != nil {
		jobs = s.jobs.List()
	}
	writeJSON(w, http.StatusOK, map[string]any{"heads": s.tc.Activity(), "jobs": jobs, "downloads": s.tc.Downloads()})
	return nil
}
