package server

import (
	"path/filepath"
	"strings"
	"testing"
	"unicode/utf8"
)

// FuzzDecodeID: no id makes decoding or cleaning panic; an accepted id names
// valid UTF-8 that encodes back to a decodable id of the same path; a path
// that clean accepts stays inside the root (local, no NUL, no backslash).
func FuzzDecodeID(f *testing.F) {
	f.Fuzz(func(t *testing.T, id string) {
		rel, err := decodeID(id)
		if err != nil {
			return
		}
		if rel == "" || !utf8.ValidString(rel) {
			t.Fatalf("decodeID(%q) = %q", id, rel)
		}
		if again, err := decodeID(encodeID(rel)); err != nil || again != rel {
			t.Fatalf("round trip of %q: %q, %v", rel, again, err)
		}
		c, err := clean(rel)
		if err != nil {
			return
		}
		if c == "" {
			return // the root itself
		}
		if !filepath.IsLocal(c) || strings.ContainsAny(c, "\x00\\") || strings.HasPrefix(c, "/") {
			t.Fatalf("clean(%q) = %q, which leaves the root", rel, c)
		}
		for _, part := range strings.Split(c, "/") {
			if part == ".." || part == "." || part == "" {
				t.Fatalf("clean(%q) = %q is not canonical", rel, c)
			}
		}
	})
}
