package server

import (
	"encoding/base64"
	"net/http"
	"os"
	"path"
	"path/filepath"
	"strings"
	"unicode/utf8"

	"github.com/hlsd/hlsd/transcoder"
)

// maxIDLength bounds ids: base64 of the longest path Linux allows, with room.
const maxIDLength = 8192

// mediaRoot confines the listing to the media directory. os.Root checks
// every step of every path, symlinks included, at the moment it is used, so
// a symlink swapped in after a check cannot lead out of the root. (The
// transcoder opens media files through its own os.Root the same way.)
type mediaRoot struct {
	root *os.Root
}

func newMediaRoot(dir string) (*mediaRoot, error) {
	root, err := os.OpenRoot(dir)
	if err != nil {
		return nil, err
	}
	return &mediaRoot{root: root}, nil
}

// decodeID turns an id into the relative path it names.
func decodeID(id string) (string, error) {
	if id == "" || len(id) > maxIDLength {
		return "", errorf(http.StatusBadRequest, "malformed id: expected the base64url (no padding) encoding of a path under the media root")
	}
	b, err := base64.RawURLEncoding.DecodeString(id)
	if err != nil || !utf8.Valid(b) || len(b) == 0 {
		return "", errorf(http.StatusBadRequest, "malformed id: expected the base64url (no padding) encoding of a path under the media root")
	}
	return string(b), nil
}

func encodeID(rel string) string { return base64.RawURLEncoding.EncodeToString([]byte(rel)) }

// clean checks rel lexically and returns it in canonical form ("" for the
// root). Names that could only mean leaving the root are refused here, with
// 403, before any file is touched.
func clean(rel string) (string, error) {
	if strings.ContainsAny(rel, "\x00\\") {
		return "", errorf(http.StatusForbidden, "the path escapes the media root")
	}
	rel = strings.TrimSuffix(rel, "/")
	if rel == "" || rel == "." {
		return "", nil
	}
	if !filepath.IsLocal(rel) {
		return "", errorf(http.StatusForbidden, "the path escapes the media root")
	}
	return path.Clean(rel), nil
}

// stat follows rel's symlinks, refusing any that lead out of the root.
func (m *mediaRoot) stat(rel string) (os.FileInfo, error) {
	if rel == "" {
		rel = "."
	}
	st, err := m.root.Stat(rel)
	if err != nil {
		return nil, transcoder.RootError(rel, err)
	}
	return st, nil
}

// readDir lists the directory rel.
func (m *mediaRoot) readDir(rel string) ([]os.DirEntry, error) {
	if rel == "" {
		rel = "."
	}
	f, err := m.root.Open(rel)
	if err != nil {
		return nil, transcoder.RootError(rel, err)
	}
	defer f.Close()
	entries, err := f.ReadDir(-1)
	if err != nil {
		return nil, errorf(http.StatusNotFound, "not a directory: "+rel)
	}
	return entries, nil
}

func (m *mediaRoot) Close() error { return m.root.Close() }

// mediaExtensions are the containers listed as media; others are left out.
var mediaExtensions = map[string]bool{
	".mp4": true, ".m4v": true, ".mkv": true, ".webm": true, ".mov": true, ".avi": true,
	".ts": true, ".m2ts": true, ".mts": true, ".wmv": true, ".flv": true, ".mpg": true,
	".mpeg": true, ".ogv": true, ".3gp": true,
}

func isMediaName(name string) bool {
	return mediaExtensions[strings.ToLower(filepath.Ext(name))]
}
