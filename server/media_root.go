package server

import (
	"encoding/base64"
	"errors"
	"io/fs"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"unicode/utf8"
)

// maxIDLength bounds ids: base64 of the longest path Linux allows, with room.
const maxIDLength = 8192

// mediaRoot confines every file access to the media directory.
type mediaRoot struct {
	dir string // absolute, symlinks resolved
}

func newMediaRoot(dir string) (*mediaRoot, error) {
	abs, err := filepath.Abs(dir)
	if err != nil {
		return nil, err
	}
	real, err := filepath.EvalSymlinks(abs)
	if err != nil {
		return nil, err
	}
	st, err := os.Stat(real)
	if err != nil {
		return nil, err
	}
	if !st.IsDir() {
		return nil, errors.New(real + " is not a directory")
	}
	return &mediaRoot{dir: real}, nil
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

// resolve returns the real path of rel, refusing anything that leaves the
// root: "..", absolute paths, and symlinks that point outside.
func (m *mediaRoot) resolve(rel string) (string, error) {
	if strings.ContainsRune(rel, 0) || filepath.IsAbs(rel) {
		return "", errorf(http.StatusForbidden, "the path escapes the media root")
	}
	for _, part := range strings.Split(filepath.ToSlash(rel), "/") {
		if part == ".." {
			return "", errorf(http.StatusForbidden, "the path escapes the media root")
		}
	}
	real, err := filepath.EvalSymlinks(filepath.Join(m.dir, rel))
	if err != nil {
		if errors.Is(err, fs.ErrNotExist) {
			return "", errorf(http.StatusNotFound, "no such file: "+rel)
		}
		return "", errorf(http.StatusNotFound, "cannot open "+rel)
	}
	if real != m.dir && !strings.HasPrefix(real, m.dir+string(filepath.Separator)) {
		return "", errorf(http.StatusForbidden, "the path escapes the media root")
	}
	return real, nil
}

// relative is the path of real under the root, for listings.
func (m *mediaRoot) relative(real string) string {
	rel, _ := filepath.Rel(m.dir, real)
	if rel == "." {
		return ""
	}
	return filepath.ToSlash(rel)
}

// mediaExtensions are the containers listed as media; others are left out.
var mediaExtensions = map[string]bool{
	".mp4": true, ".m4v": true, ".mkv": true, ".webm": true, ".mov": true, ".avi": true,
	".ts": true, ".m2ts": true, ".mts": true, ".wmv": true, ".flv": true, ".mpg": true,
	".mpeg": true, ".ogv": true, ".3gp": true,
}

func isMediaName(name string) bool {
	return mediaExtensions[strings.ToLower(filepath.Ext(name))]
}
