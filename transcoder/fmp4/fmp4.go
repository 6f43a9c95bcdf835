// Package fmp4 reads and amends the fragmented MP4 that ffmpeg writes for
// hlsd: it splits a run's segment file into the init and the media part,
// reads timescales, start times and composition offsets, numbers fragments
// across a rendition, and frames a growing segment into whole fragments.
// Every box walk of ffmpeg's output is here; keyframes reads source files'
// indexes with its own, since it may import nothing of hlsd.
//
// It imports nothing of hlsd.
package fmp4

import (
	"bytes"
	"encoding/binary"
	"errors"
	"fmt"
)

// box reads the header of the box at the start of b: its type, its whole
// size and its header's size. size is 0 when b is too short to tell, and
// may exceed len(b) when the box is not all there; a size of 0 in the file
// ("to the end") is returned as len(b).
func box(b []byte) (typ string, size, hdr int) {
	if len(b) < 8 {
		return "", 0, 0
	}
	size, hdr = int(binary.BigEndian.Uint32(b)), 8
	typ = string(b[4:8])
	switch size {
	case 1:
		if len(b) < 16 {
			return typ, 0, 0
		}
		size, hdr = int(binary.BigEndian.Uint64(b[8:])), 16
	case 0:
		size = len(b)
	}
	if size < hdr {
		return typ, -1, hdr // corrupt
	}
	return typ, size, hdr
}

// IsMedia says whether a box of this type belongs to a media segment.
func IsMedia(typ string) bool {
	switch typ {
	case "styp", "sidx", "prft", "emsg", "moof", "mdat":
		return true
	}
	return false
}

// Split separates the ftyp+moov header of one segment file from its
// fragments. The trailing mfra index is dropped: it points into this file
// only.
func Split(b []byte) (init, body []byte, err error) {
	var ib, bb bytes.Buffer
	err = top(b, func(typ string, box []byte) {
		switch {
		case typ == "ftyp" || typ == "moov":
			ib.Write(box)
		case IsMedia(typ):
			bb.Write(box)
		}
	})
	if err != nil {
		return nil, nil, err
	}
	if ib.Len() == 0 || !bytes.Contains(bb.Bytes(), []byte("moof")) {
		return nil, nil, errors.New("not a fragmented MP4 segment")
	}
	return ib.Bytes(), bb.Bytes(), nil
}

// Types lists the types of b's top-level boxes, or fails when they do not
// add up to exactly b: a truncated or half-written file.
func Types(b []byte) ([]string, error) {
	var types []string
	err := top(b, func(typ string, _ []byte) { types = append(types, typ) })
	return types, err
}

// top visits b's top-level boxes, whole, and fails at the first that is
// not all there.
func top(b []byte, visit func(typ string, box []byte)) error {
	for off := 0; off < len(b); {
		typ, size, _ := box(b[off:])
		switch {
		case size == 0:
			return fmt.Errorf("%d stray bytes at offset %d", len(b)-off, off)
		case size < 0 || off+size > len(b):
			return fmt.Errorf("box %q at %d claims %d bytes, %d left", typ, off, size, len(b)-off)
		}
		visit(typ, b[off:off+size])
		off += size
	}
	return nil
}

// Header returns the ftyp and moov at the start of b, the beginning of a
// segment file being written; false until both are whole.
func Header(b []byte) ([]byte, bool) {
	var out []byte
	for off := 0; ; {
		typ, size, _ := box(b[off:])
		if size <= 0 || off+size > len(b) {
			return nil, false
		}
		switch typ {
		case "ftyp":
			out = append(out, b[off:off+size]...)
		case "moov":
			return append(out, b[off:off+size]...), len(out) > 0
		default:
			return nil, false
		}
		off += size
	}
}

// walk visits the leaf boxes of b, descending into the containers that
// lead to mdhd, trex, tfhd, tfdt and trun.
func walk(b []byte, visit func(typ string, body []byte)) {
	for off := 0; off < len(b); {
		typ, size, hdr := box(b[off:])
		if size <= 0 || off+size > len(b) {
			return
		}
		switch typ {
		case "moov", "trak", "mdia", "mvex", "moof", "traf":
			walk(b[off+hdr:off+size], visit)
		default:
			visit(typ, b[off+hdr:off+size])
		}
		off += size
	}
}

// Timescale is the timescale of the (first) track's mdhd in b, an init
// segment or a file beginning with one; 0 when there is none.
func Timescale(b []byte) uint32 {
	var timescale uint32
	walk(b, func(typ string, body []byte) {
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

// Start returns the time of the first sample of a segment: the tfdt of its
// first fragment over the init segment's media timescale. With
// negative_cts_offsets the first sample's composition offset is 0, so this
// is its presentation time too.
func Start(init, body []byte) (float64, error) {
	timescale := Timescale(init)
	var tfdt uint64
	var haveTfdt bool
	walk(body, func(typ string, b []byte) {
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
		return 0, errors.New("segment has no timescale or tfdt")
	}
	return float64(tfdt) / float64(timescale), nil
}

// Sample is one sample of a track fragment run, in the track's timescale.
type Sample struct {
	Decode   uint64 // decode time
	Duration uint32
	Offset   int64 // composition offset: presentation time minus decode time
}

// maxSamples bounds the samples one run may declare without a byte each:
// ffmpeg's longest (a copy of a 25 s GOP at 60 fps) has 1,500.
const maxSamples = 1 << 16

// Samples decodes the runs of b's fragments (trun, with the defaults of
// tfhd and trex), their decode times counted from each tfdt, and the
// timescale of its init. init and body may be the same bytes: a file that
// holds both.
func Samples(init, body []byte) (timescale uint32, samples []Sample) {
	timescale = Timescale(init)
	var trexDur, tfhdDur uint32
	walk(init, func(typ string, b []byte) {
		if typ == "trex" && len(b) >= 16 {
			trexDur = binary.BigEndian.Uint32(b[12:])
		}
	})
	var next uint64
	walk(body, func(typ string, b []byte) {
		if len(b) < 8 {
			return
		}
		flags := binary.BigEndian.Uint32(b) & 0xffffff
		switch typ {
		case "tfhd":
			off := 8 // version, flags, track ID
			if flags&1 != 0 {
				off += 8 // base data offset
			}
			if flags&2 != 0 {
				off += 4 // sample description index
			}
			tfhdDur = trexDur
			if flags&8 != 0 && off+4 <= len(b) {
				tfhdDur = binary.BigEndian.Uint32(b[off:])
			}
		case "tfdt":
			if b[0] == 1 && len(b) >= 12 {
				next = binary.BigEndian.Uint64(b[4:])
			} else {
				next = uint64(binary.BigEndian.Uint32(b[4:]))
			}
		case "trun":
			l := layoutOf(b)
			for i := range l.n {
				s := Sample{Decode: next, Duration: tfhdDur}
				at := l.first + i*l.per
				if l.dur >= 0 {
					s.Duration = binary.BigEndian.Uint32(b[at+l.dur:])
				}
				if l.cts >= 0 {
					raw := binary.BigEndian.Uint32(b[at+l.cts:])
					s.Offset = int64(raw)
					if b[0] == 1 { // version 1: signed offsets
						s.Offset = int64(int32(raw))
					}
				}
				samples = append(samples, s)
				next += uint64(s.Duration)
			}
		}
	})
	return timescale, samples
}

// trunLayout is where the samples of a trun's body are: n entries of per
// bytes from first, each with its duration at dur and its composition
// offset at cts within the entry (-1: not in the entries).
type trunLayout struct{ n, first, per, dur, cts int }

// layoutOf reads a trun body's flags and count; b holds at least the
// version, flags and count. A count the box cannot hold is corrupt: only
// the entries that are there are counted.
func layoutOf(b []byte) trunLayout {
	flags := binary.BigEndian.Uint32(b) & 0xffffff
	l := trunLayout{first: 8, dur: -1, cts: -1}
	if flags&1 != 0 { // data offset
		l.first += 4
	}
	if flags&4 != 0 { // first sample flags
		l.first += 4
	}
	for _, f := range []uint32{0x100, 0x200, 0x400, 0x800} { // duration, size, flags, offset
		if flags&f == 0 {
			continue
		}
		switch f {
		case 0x100:
			l.dur = l.per
		case 0x800:
			l.cts = l.per
		}
		l.per += 4
	}
	n := int(binary.BigEndian.Uint32(b[4:]))
	if l.per > 0 {
		n = min(n, max(0, len(b)-l.first)/l.per)
	}
	l.n = min(n, maxSamples)
	return l
}

// NegativeCTS is the largest negative composition offset of the samples of
// an fMP4 file (init then fragments), in seconds.
func NegativeCTS(b []byte) float64 {
	timescale, samples := Samples(b, b)
	if timescale == 0 {
		return 0
	}
	var most int64
	for _, s := range samples {
		most = max(most, -s.Offset)
	}
	return float64(most) / float64(timescale)
}

// FragmentStride spaces the movie fragment sequence numbers (mfhd) of
// consecutive segments: fragment j of segment n is n*FragmentStride+j+1.
// Each run's muxer numbers from 1, so without this every segment would
// repeat the numbers of the one before, which ISO BMFF players (VLC) flag
// as a discontinuity; numbered by segment, they increase across the whole
// rendition whichever runs made it. A segment never holds 1000 fragments:
// a re-encode has one per half second, a copy one per source keyframe.
const FragmentStride = 1000

// numberFragment sets the sequence number of fragment j of segment n in
// moof, a whole moof box.
func numberFragment(moof []byte, n, j int) {
	for off := 8; off < len(moof); {
		typ, size, _ := box(moof[off:])
		if size <= 0 || off+size > len(moof) {
			return
		}
		if typ == "mfhd" && size >= 16 {
			binary.BigEndian.PutUint32(moof[off+12:], uint32(n*FragmentStride+j+1))
			return
		}
		off += size
	}
}

// Number numbers every fragment of body, the media part of segment n, in
// place.
func Number(body []byte, n int) {
	j := 0
	for off := 0; off < len(body); {
		typ, size, _ := box(body[off:])
		if size <= 0 || off+size > len(body) {
			return
		}
		if typ == "moof" {
			numberFragment(body[off:off+size], n, j)
			j++
		}
		off += size
	}
}

// Numbers lists the sequence numbers of body's fragments.
func Numbers(body []byte) []uint32 {
	var out []uint32
	walk(body, func(typ string, b []byte) {
		if typ == "mfhd" && len(b) >= 8 {
			out = append(out, binary.BigEndian.Uint32(b[4:]))
		}
	})
	return out
}

// Framer cuts the media part of segment N, as it grows, into whole
// fragments (moof with its mdat), numbered as Number numbers them. Whole
// fragments, not boxes: hls.js keeps a partial fragment from a load it
// aborts (a seek) and parses the next segment's first bytes after it,
// which puts that segment at the aborted fragment's time; each fragment
// sent in one write leaves it nothing partial to keep.
type Framer struct {
	N       int
	pending []byte
	group   []byte
	frags   int
}

// Write takes the next bytes of the segment file and returns the whole
// fragments they complete, if any. Boxes that are not media (the header,
// mfra) are dropped.
func (f *Framer) Write(p []byte) []byte {
	f.pending = append(f.pending, p...)
	var out []byte
	for {
		// A box of size 0 ("to the end") is never whole while the file grows.
		if len(f.pending) >= 4 && binary.BigEndian.Uint32(f.pending) == 0 {
			return out
		}
		typ, size, _ := box(f.pending)
		if size <= 0 || size > len(f.pending) {
			return out
		}
		if typ == "moof" {
			numberFragment(f.pending[:size], f.N, f.frags)
			f.frags++
		}
		if IsMedia(typ) {
			f.group = append(f.group, f.pending[:size]...)
			if typ == "mdat" {
				out = append(out, f.group...)
				f.group = f.group[:0]
			}
		}
		f.pending = f.pending[size:]
	}
}

// End is called once the segment file is complete: it returns the media
// boxes after the last mdat, if any, or an error when the file ends inside
// a box.
func (f *Framer) End() ([]byte, error) {
	if len(f.pending) > 0 {
		return nil, fmt.Errorf("segment %d ends inside a box", f.N)
	}
	rest := f.group
	f.group = nil
	return rest, nil
}
