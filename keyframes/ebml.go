package keyframes

import (
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"math"
)

// EBML is the binary layout under Matroska and WebM: every element is an
// ID, a data size and the data. IDs and sizes are variable-length integers
// (VINTs) whose first byte tells their length by its leading zero bits.

// ebmlUnknownSize marks an element whose size field is all ones: a live writer
// did not know it, and the element runs until something that cannot be its
// child appears.
const ebmlUnknownSize = -1

// ebmlElement is one element header as found in the file.
type ebmlElement struct {
	id   uint32
	pos  int64 // start of the header
	data int64 // start of the data
	size int64 // length of the data, or ebmlUnknownSize
}

func (e ebmlElement) end() int64 { return e.data + e.size }

var errEBML = errors.New("matroska: malformed EBML")

// ebmlVint decodes the VINT at the start of b. IDs keep their length marker bit
// (keepMarker), sizes drop it. n is 0 when b is too short or the first byte
// announces more than 8 bytes; allOnes reports the reserved "unknown" value.
func ebmlVint(b []byte, keepMarker bool) (v uint64, n int, allOnes bool) {
	if len(b) == 0 || b[0] == 0 {
		return 0, 0, false
	}
	n = 1
	for mask := byte(0x80); b[0]&mask == 0; mask >>= 1 {
		n++
	}
	if len(b) < n {
		return 0, 0, false
	}
	v = uint64(b[0])
	if !keepMarker {
		v &= uint64(0xff >> n)
	}
	for _, c := range b[1:n] {
		v = v<<8 | uint64(c)
	}
	return v, n, !keepMarker && v == 1<<(7*n)-1
}

// readEBMLHeader reads the header of the element at pos, which must lie,
// data included, before limit (at most the file size).
func readEBMLHeader(r io.ReaderAt, pos, limit int64) (ebmlElement, error) {
	var buf [12]byte // a 4-byte ID and an 8-byte size at most
	n := int64(len(buf))
	if limit-pos < n {
		n = limit - pos
	}
	if pos < 0 || n < 2 {
		return ebmlElement{}, fmt.Errorf("%w: no element at %d", errEBML, pos)
	}
	b := buf[:n]
	if err := ebmlReadFull(r, b, pos); err != nil {
		return ebmlElement{}, err
	}
	id, idLen, _ := ebmlVint(b, true)
	if idLen == 0 || idLen > 4 {
		return ebmlElement{}, fmt.Errorf("%w: bad element ID at %d", errEBML, pos)
	}
	size, sizeLen, unknown := ebmlVint(b[idLen:], false)
	if sizeLen == 0 {
		return ebmlElement{}, fmt.Errorf("%w: bad element size at %d", errEBML, pos)
	}
	e := ebmlElement{id: uint32(id), pos: pos, data: pos + int64(idLen+sizeLen), size: ebmlUnknownSize}
	if !unknown {
		if size > uint64(limit-e.data) {
			return ebmlElement{}, fmt.Errorf("%w: element %#x at %d overruns %d (truncated file?)", errEBML, e.id, pos, limit)
		}
		e.size = int64(size)
	}
	return e, nil
}

// ebmlReadBody reads the data of e, refusing sizes beyond max. The caller has
// checked through readEBMLHeader that the bytes are there, so the
// allocation is bounded by the file.
func ebmlReadBody(r io.ReaderAt, e ebmlElement, max int64) ([]byte, error) {
	if e.size == ebmlUnknownSize || e.size > max {
		return nil, fmt.Errorf("matroska: element %#x at %d has size %d, want at most %d", e.id, e.pos, e.size, max)
	}
	b := make([]byte, e.size)
	if err := ebmlReadFull(r, b, e.data); err != nil {
		return nil, err
	}
	return b, nil
}

// ebmlReadFull is ReadAt that tolerates io.EOF alongside a full read, which
// ReaderAt allows at the end of the input.
func ebmlReadFull(r io.ReaderAt, b []byte, pos int64) error {
	n, err := r.ReadAt(b, pos)
	if n == len(b) {
		return nil
	}
	if err == nil || err == io.EOF {
		err = io.ErrUnexpectedEOF
	}
	return fmt.Errorf("matroska: read %d bytes at %d: %w", len(b), pos, err)
}

// ebmlChildren calls fn for every child of a master element whose data is b.
// Children must have known sizes inside b.
func ebmlChildren(b []byte, fn func(id uint32, data []byte) error) error {
	for len(b) > 0 {
		id, idLen, _ := ebmlVint(b, true)
		if idLen == 0 || idLen > 4 {
			return fmt.Errorf("%w: bad child ID", errEBML)
		}
		size, sizeLen, unknown := ebmlVint(b[idLen:], false)
		if sizeLen == 0 || unknown || size > uint64(len(b)-idLen-sizeLen) {
			return fmt.Errorf("%w: bad size of child %#x", errEBML, id)
		}
		b = b[idLen+sizeLen:]
		if err := fn(uint32(id), b[:size]); err != nil {
			return err
		}
		b = b[size:]
	}
	return nil
}

// ebmlUint decodes an unsigned integer element (0 to 8 bytes, big-endian).
func ebmlUint(b []byte) (uint64, error) {
	if len(b) > 8 {
		return 0, fmt.Errorf("%w: %d-byte integer", errEBML, len(b))
	}
	var v uint64
	for _, c := range b {
		v = v<<8 | uint64(c)
	}
	return v, nil
}

// ebmlFloat decodes a float element (0, 4 or 8 bytes).
func ebmlFloat(b []byte) (float64, error) {
	switch len(b) {
	case 0:
		return 0, nil
	case 4:
		return float64(math.Float32frombits(binary.BigEndian.Uint32(b))), nil
	case 8:
		return math.Float64frombits(binary.BigEndian.Uint64(b)), nil
	}
	return 0, fmt.Errorf("%w: %d-byte float", errEBML, len(b))
}
