package probe

import (
	"crypto/sha256"
	"encoding/binary"
	"encoding/hex"
	"fmt"
	"hash/fnv"
	"os"
)

// Identity is one version of a file of the library: its name and what
// changes when it is replaced. Everything kept about a file is filed under
// it, so a file replaced on disk gets new state rather than the old one's.
type Identity struct {
	Name    string // slash-separated, relative to the media root
	Size    int64
	ModTime int64 // nanoseconds since the epoch
}

// IdentityOf is the identity of name as st describes it now.
func IdentityOf(name string, st os.FileInfo) Identity {
	return Identity{Name: name, Size: st.Size(), ModTime: st.ModTime().UnixNano()}
}

// Key names what is cached of this version: its probe, keyframes, plans,
// segments and subtitles. It is 24 hex digits.
func (id Identity) Key() string {
	sum := sha256.Sum256(fmt.Appendf(nil, "%s\x00%d\x00%d", id.Name, id.Size, id.ModTime))
	return hex.EncodeToString(sum[:12])
}

// Version is the v= every URI of its playlists carries: 12 hex digits of
// the size and modification time only, so that every node sharing the
// media (or a copy made with rsync -a) gives the same.
func (id Identity) Version() string {
	h := fnv.New64a()
	var b [16]byte
	binary.LittleEndian.PutUint64(b[:8], uint64(id.Size))
	binary.LittleEndian.PutUint64(b[8:], uint64(id.ModTime))
	h.Write(b[:])
	return fmt.Sprintf("%012x", h.Sum64()>>16)
}
