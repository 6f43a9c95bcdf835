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
	var timescale uint32
	var tfdt uint64
	var haveTfdt bool
	walkBoxes(init, func(typ string, b []byte) {
		if typ == "mdhd" && len(b) >= 24 {
			off := 12
			if b[0] == 1 {
				off = 20
			}
			if len(b) >= off+4 {
				timescale = binary.BigEndian.Uint32(b[off:])
			}
		}
	})
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
