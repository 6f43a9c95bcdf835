package keyframes

import (
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"math"
)

// errNoIndex means a reader declined the file quietly: another container,
// or one without an index. Any other reader error means the index was there
// but could not be trusted. Both send the file to the packet scan.
var errNoIndex = errors.New("no container index")

// index is what a container index yields for the first video track.
type index struct {
	// times are presentation timestamps in seconds on the file's own
	// timeline, exactly as ffprobe prints pts_time (the file's start_time
	// is not subtracted), ascending and unique.
	times []float64
	// gopBytes[i] is the size of the video data from keyframe i up to
	// keyframe i+1 (to the end for the last one), as precise as the
	// container allows.
	gopBytes []int64
}

// indexReader reads one container's index from r, of size bytes.
type indexReader func(r io.ReaderAt, size int64) (*index, error)

// readIndex returns the keyframe index of the file in r, trying each
// container reader in turn. The result is validated so a corrupt index can
// never reach a playlist.
func readIndex(r io.ReaderAt, size int64) (*index, error) {
	for _, read := range []indexReader{readMP4Index, readMatroskaIndex} {
		idx, err := read(r, size)
		if errors.Is(err, errNoIndex) {
			continue
		}
		if err != nil {
			return nil, err
		}
		if err := idx.validate(); err != nil {
			return nil, err
		}
		return idx, nil
	}
	return nil, errNoIndex
}

func (x *index) validate() error {
	if len(x.times) == 0 {
		return fmt.Errorf("%w: index lists no keyframe", errNoIndex)
	}
	if len(x.gopBytes) != len(x.times) {
		return fmt.Errorf("index: %d keyframes but %d GOP sizes", len(x.times), len(x.gopBytes))
	}
	for i, t := range x.times {
		if math.IsNaN(t) || math.IsInf(t, 0) || t < 0 {
			return fmt.Errorf("index: keyframe %d at invalid time %v", i, t)
		}
		if i > 0 && t <= x.times[i-1] {
			return fmt.Errorf("index: keyframe %d at %v is not after %v", i, t, x.times[i-1])
		}
		if x.gopBytes[i] < 0 {
			return fmt.Errorf("index: GOP %d has negative size %d", i, x.gopBytes[i])
		}
	}
	return nil
}

// IndexedContainer reports whether r looks like MP4/MOV or Matroska/WebM,
// the containers whose index hlsd reads. It costs one small read.
func IndexedContainer(r io.ReaderAt, size int64) bool {
	return isMatroska(r, size) || sniffMP4(r, size) == nil
}

// isMatroska says whether r starts with an EBML header.
func isMatroska(r io.ReaderAt, size int64) bool {
	var magic [4]byte
	return size >= 4 && readAt(r, magic[:], 0) == nil && binary.BigEndian.Uint32(magic[:]) == idEBML
}
