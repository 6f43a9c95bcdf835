package transcoder

import (
	"encoding/binary"
	"fmt"
)

// fragmentStart returns the time of the first sample of a segment: the tfdt
// of its first fragment over the init segment's media timescale. With
// negative_cts_offsets the first sample's composition offset is 0, so this
// is its presentation time too.
func fragmentStart(init, body []byte) (float64, error) {
	timescale := mediaTimescale(init)
	var tfdt uint64
	var haveTfdt bool
	walkBoxes(body, func(typ string, b []byte) {
		if typ != "tfdt" || haveTfdt || len(b) < 8 {
			return
		}
		if b[0] == 1 && len(b) >= 12 {
			tfdt = binary.BigEndian.Uint64(b[4:])
		} else {
			tfdt = uint64(binary.BigEndian.Uint32(b[4:]))
		}
		haveTfdt = true
	})
	if timescale == 0 || !haveTfdt {
		return 0, fmt.Errorf("segment has no timescale or tfdt")
	}
	return float64(tfdt) / float64(timescale), nil
}

// mediaTimescale is the timescale of the (first) track's mdhd in b, an init
// segment or a file beginning with one; 0 when there is none.
func mediaTimescale(b []byte) uint32 {
	var timescale uint32
	walkBoxes(b, func(typ string, body []byte) {
		if typ == "mdhd" && len(body) >= 24 && timescale == 0 {
			off := 12
			if body[0] == 1 {
				off = 20
			}
			if len(body) >= off+4 {
				timescale = binary.BigEndian.Uint32(body[off:])
			}
		}
	})
	return timescale
}

// walkBoxes visits the leaf boxes of b, descending into the containers that
// lead to mdhd and tfdt.
func walkBoxes(b []byte, visit func(typ string, body []byte)) {
	for off := 0; off+8 <= len(b); {
		size := int(binary.BigEndian.Uint32(b[off:]))
		hdr := 8
		if size == 1 && off+16 <= len(b) {
			size, hdr = int(binary.BigEndian.Uint64(b[off+8:])), 16
		}
		if size < hdr || off+size > len(b) {
			return
		}
		typ := string(b[off+4 : off+8])
		switch typ {
		case "moov", "trak", "mdia", "moof", "traf":
			walkBoxes(b[off+hdr:off+size], visit)
		default:
			visit(typ, b[off+hdr:off+size])
		}
		off += size
	}
}

// fragmentStride spaces the movie fragment sequence numbers (mfhd) of
// consecutive segments: fragment j of segment n is n*fragmentStride+j+1.
// Each run's muxer numbers from 1, so without this every segment would
// repeat the numbers of the one before, which ISO BMFF players (VLC) flag
// as a discontinuity; numbered by segment, they increase across the whole
// rendition whichever runs made it. A segment never holds 1000 fragments:
// a re-encode has one per half second, a copy one per source keyframe.
const fragmentStride = 1000

// numberFragment sets the sequence number of fragment j of segment n in
// moof, a whole moof box.
func numberFragment(moof []byte, n, j int) {
	for off := 8; off+16 <= len(moof); {
		size := int(binary.BigEndian.Uint32(moof[off:]))
		if size < 8 || off+size > len(moof) {
			return
		}
		if string(moof[off+4:off+8]) == "mfhd" && size >= 16 {
			binary.BigEndian.PutUint32(moof[off+12:], uint32(n*fragmentStride+j+1))
			return
		}
		off += size
	}
}

// numberFragments numbers every fragment of body, the media part of
// segment n.
func numberFragments(body []byte, n int) {
	j := 0
	for off := 0; off+8 <= len(body); {
		size := int(binary.BigEndian.Uint32(body[off:]))
		if size == 1 && off+16 <= len(body) {
			size = int(binary.BigEndian.Uint64(body[off+8:]))
		}
		if size < 8 || off+size > len(body) {
			return
		}
		if string(body[off+4:off+8]) == "moof" {
			numberFragment(body[off:off+size], n, j)
			j++
		}
		off += size
	}
}
