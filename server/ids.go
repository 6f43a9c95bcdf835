package server

import (
	"encoding/base64"
	"net/http"
	"path"
	"path/filepath"
	"strings"
	"unicode/utf8"
)

// maxIDLength bounds ids: base64 of the longest path Linux allows, with room.
const maxIDLength = 8192

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

// mediaExtensions are the containers listed as media; others are left out.
var mediaExtensions = map[string]bool{
	".mp4": true, ".m4v": true, ".mkv": true, ".webm": true, ".mov": true, ".avi": true,
	".ts": true, ".m2ts": true, ".mts": true, ".wmv": true, ".flv": true, ".mpg": true,
	".mpeg": true, ".ogv": true, ".3gp": true,
}

func isMediaName(name string) bool {
	return mediaExtensions[strings.ToLower(filepath.Ext(name))]
}
