package fmp4

import (
	"bytes"
	"encoding/binary"
	"errors"
	"fmt"
	"math"
)

// A Joiner makes one fragmented MP4 of two renditions, each an init and a
// run of segments with one track: the video keeps track 1, the audio
// becomes track 2. Fragments are numbered in the order they are added, and
// End writes an mfra index of each segment's first fragment, so that a
// player seeks in the whole file without reading every fragment.
type Joiner struct {
	// shift is added to the video's composition offsets, and an edit list
	// takes it off again (see Header).
	shift  uint32
	off    uint64 // bytes written so far
	seq    uint32
	points [2][][2]uint64 // per track: decode time, moof offset
}

// Header is the ftyp and moov of the joined file: the video init's ftyp,
// movie header and track, the audio init's track as track 2, and both
// tracks' fragment defaults. duration, in seconds, is the whole file's,
// known from the plan before any segment is made. audio may be nil: a file
// with no audio track.
//
// first is the video's first segment. ffmpeg writes B-frames with negative
// composition offsets, which players read two ways: ISO BMFF players
// present the first frame at its decode time, ffmpeg's demuxer (mpv's
// too) delays the whole track by the largest negative offset. And a copy's
// offsets are positive, which delays its first frame after its decode
// time. Offsets made non-negative, with an edit list that takes off the
// first frame's, read the same everywhere: the first frame where the
// source has it, in sync with the audio.
func (j *Joiner) Header(video, audio, first []byte, duration float64) ([]byte, error) {
	vparts, err := parts(video)
	if err != nil {
		return nil, fmt.Errorf("video init: %w", err)
	}
	if vparts["mvhd"] == nil || vparts["trak"] == nil || vparts["trex"] == nil {
		return nil, errors.New("the video init segment lacks mvhd, trak or trex")
	}
	mvhd := bytes.Clone(vparts["mvhd"])
	var timescale uint32
	if mvhd[8] == 1 { // version 1: 64-bit times
		timescale = binary.BigEndian.Uint32(mvhd[28:])
	} else {
		timescale = binary.BigEndian.Uint32(mvhd[20:])
	}
	binary.BigEndian.PutUint32(mvhd[len(mvhd)-4:], 3) // next_track_ID
	var atrak, atrex []byte
	if audio != nil {
		aparts, err := parts(audio)
		if err != nil {
			return nil, fmt.Errorf("audio init: %w", err)
		}
		if aparts["trak"] == nil || aparts["trex"] == nil {
			return nil, errors.New("the audio init segment lacks trak or trex")
		}
		atrak = bytes.Clone(aparts["trak"])
		if err := setTrackID(atrak, "tkhd", 2); err != nil {
			return nil, err
		}
		atrex = bytes.Clone(aparts["trex"])
		binary.BigEndian.PutUint32(atrex[12:], 2)
	}
	vtrak := vparts["trak"]
	var edit uint32
	j.shift, edit = offsets(video, first)
	if edit > 0 {
		if vtrak, err = withEditList(vtrak, uint64(duration*float64(timescale)+0.5), edit); err != nil {
			return nil, err
		}
	}
	mehd := make([]byte, 20)
	binary.BigEndian.PutUint32(mehd, 20)
	copy(mehd[4:], "mehd")
	mehd[8] = 1
	binary.BigEndian.PutUint64(mehd[12:], uint64(duration*float64(timescale)+0.5))
	mvex := container("mvex", mehd, vparts["trex"], atrex)
	moov := container("moov", mvhd, vtrak, atrak, mvex)
	out := append(bytes.Clone(vparts["ftyp"]), moov...)
	j.off = uint64(len(out))
	return out, nil
}

// Add returns segment body of track (1 video, 2 audio) as the joined file
// carries it: its fragments numbered on from the last, the audio's
// fragment headers naming track 2.
func (j *Joiner) Add(track uint32, body []byte) []byte {
	body = bytes.Clone(body)
	first := true
	for off := 0; off < len(body); {
		typ, size, _ := box(body[off:])
		if size <= 0 || off+size > len(body) {
			break
		}
		if typ == "moof" {
			moof := body[off : off+size]
			j.seq++
			var tfdt uint64
			walk(moof, func(typ string, b []byte) {
				switch {
				case typ == "mfhd" && len(b) >= 8:
					binary.BigEndian.PutUint32(b[4:], j.seq)
				case typ == "tfhd" && len(b) >= 8:
					binary.BigEndian.PutUint32(b[4:], track)
				case typ == "trun" && track == 1 && j.shift > 0:
					shiftOffsets(b, j.shift)
				case typ == "tfdt" && len(b) >= 12 && b[0] == 1:
					tfdt = binary.BigEndian.Uint64(b[4:])
				case typ == "tfdt" && len(b) >= 8:
					tfdt = uint64(binary.BigEndian.Uint32(b[4:]))
				}
			})
			if first && track >= 1 && track <= 2 {
				// A segment starts on a keyframe; its later fragments need not.
				j.points[track-1] = append(j.points[track-1], [2]uint64{tfdt, j.off + uint64(off)})
				first = false
			}
		}
		off += size
	}
	j.off += uint64(len(body))
	return body
}

// End is the mfra that ends the file: one tfra per track, then mfro.
func (j *Joiner) End() []byte {
	var tfras [][]byte
	for i, points := range j.points {
		if len(points) == 0 {
			continue // no such track
		}
		b := make([]byte, 24, 24+len(points)*19)
		copy(b[4:], "tfra")
		b[8] = 1 // version 1: 64-bit time and offset
		binary.BigEndian.PutUint32(b[12:], uint32(i+1))
		// b[16:20]: 1-byte traf, trun and sample numbers
		binary.BigEndian.PutUint32(b[20:], uint32(len(points)))
		for _, p := range points {
			b = binary.BigEndian.AppendUint64(b, p[0])
			b = binary.BigEndian.AppendUint64(b, p[1])
			b = append(b, 1, 1, 1)
		}
		binary.BigEndian.PutUint32(b, uint32(len(b)))
		tfras = append(tfras, b)
	}
	mfro := make([]byte, 16)
	binary.BigEndian.PutUint32(mfro, 16)
	copy(mfro[4:], "mfro")
	mfra := container("mfra", append(tfras, mfro)...)
	binary.BigEndian.PutUint32(mfra[len(mfra)-4:], uint32(len(mfra)))
	j.off += uint64(len(mfra))
	return mfra
}

// parts picks the boxes of an init segment a join needs: ftyp, and moov's
// mvhd and (first) trak and trex, each whole.
func parts(init []byte) (map[string][]byte, error) {
	out := map[string][]byte{}
	err := top(init, func(typ string, b []byte) {
		switch typ {
		case "ftyp":
			out[typ] = b
		case "moov":
			children(b, func(typ string, c []byte) {
				switch typ {
				case "mvhd", "trak":
					if out[typ] == nil {
						out[typ] = c
					}
				case "mvex":
					children(c, func(typ string, t []byte) {
						if typ == "trex" && out[typ] == nil && len(t) >= 16 {
							out[typ] = t
						}
					})
				}
			})
		}
	})
	if m := out["mvhd"]; m != nil && len(m) < 32 {
		return nil, errors.New("mvhd too short")
	}
	return out, err
}

// children visits the whole child boxes of the container box b.
func children(b []byte, visit func(typ string, box []byte)) {
	_, _, hdr := box(b)
	for off := hdr; off < len(b); {
		typ, size, _ := box(b[off:])
		if size <= 0 || off+size > len(b) {
			return
		}
		visit(typ, b[off:off+size])
		off += size
	}
}

// setTrackID sets the track_ID of the first box typ (tkhd) inside trak.
func setTrackID(trak []byte, typ string, id uint32) error {
	found := false
	walk(trak[8:], func(t string, b []byte) {
		if t != typ || found || len(b) < 24 {
			return
		}
		off := 12 // version, flags, creation and modification times
		if b[0] == 1 {
			off = 20
		}
		binary.BigEndian.PutUint32(b[off:], id)
		found = true
	})
	if !found {
		return fmt.Errorf("no %s in the audio track", typ)
	}
	return nil
}

func container(typ string, boxes ...[]byte) []byte {
	n := 8
	for _, b := range boxes {
		n += len(b)
	}
	out := make([]byte, 8, n)
	binary.BigEndian.PutUint32(out, uint32(n))
	copy(out[4:], typ)
	for _, b := range boxes {
		out = append(out, b...)
	}
	return out
}

// ctsFields lists where the composition offsets of a trun's samples are in
// its body, nil when it has none.
func ctsFields(b []byte) []int {
	if len(b) < 8 {
		return nil
	}
	l := layoutOf(b)
	if l.cts < 0 {
		return nil
	}
	out := make([]int, l.n)
	for i := range out {
		out[i] = l.first + i*l.per + l.cts
	}
	return out
}

// offsets reads the video's first segment: shift, what makes its
// composition offsets non-negative, and edit, the composition time of its
// first frame after that shift, from its first decode time. An edit list
// starting there presents the first frame at its decode time, as the HLS
// segments present it.
func offsets(init, first []byte) (shift, edit uint32) {
	_, samples := Samples(init, first)
	if len(samples) == 0 {
		return 0, 0
	}
	var most int64
	var longest uint32
	for _, s := range samples {
		most = min(most, s.Offset)
		longest = max(longest, s.Duration)
	}
	// The header is written before the later segments are read, and a
	// later GOP may reorder deeper than the first (a copy's often does):
	// the shift covers the deepest reordering a decoder allows, 16 frames,
	// so no offset is left negative.
	// A track without composition offsets (no B-frames) has nothing to
	// shift: its runs have no field to add to.
	reordered := false
	walk(first, func(typ string, b []byte) {
		reordered = reordered || typ == "trun" && ctsFields(b) != nil
	})
	if reordered {
		most = min(most, -16*int64(longest))
	}
	least := int64(math.MaxInt64)
	for _, s := range samples {
		least = min(least, int64(s.Decode-samples[0].Decode)+s.Offset-most)
	}
	return uint32(-most), uint32(least)
}

// shiftOffsets adds shift to the composition offsets of trun body b; a run
// left with no negative offset becomes version 0, whose are unsigned.
func shiftOffsets(b []byte, shift uint32) {
	negative := false
	for _, at := range ctsFields(b) {
		v := int32(binary.BigEndian.Uint32(b[at:])) + int32(shift)
		if b[0] == 0 { // unsigned already
			v = int32(binary.BigEndian.Uint32(b[at:]) + shift)
		}
		negative = negative || v < 0
		binary.BigEndian.PutUint32(b[at:], uint32(v))
	}
	if !negative {
		b[0] = 0
	}
}

// withEditList returns trak with an edit list of one edit: the track's
// media from time start, for duration (in the movie's timescale). Any edit
// list it had is replaced.
func withEditList(trak []byte, duration uint64, start uint32) ([]byte, error) {
	elst := make([]byte, 36)
	binary.BigEndian.PutUint32(elst, 36)
	copy(elst[4:], "elst")
	elst[8] = 1 // version 1: 64-bit duration and time
	binary.BigEndian.PutUint32(elst[12:], 1)
	binary.BigEndian.PutUint64(elst[16:], duration)
	binary.BigEndian.PutUint64(elst[24:], uint64(start))
	binary.BigEndian.PutUint16(elst[32:], 1) // rate 1.0
	edts := container("edts", elst)
	var kids [][]byte
	found := false
	children(trak, func(typ string, b []byte) {
		switch typ {
		case "edts":
			return
		case "tkhd":
			found = true
			kids = append(kids, b, edts)
			return
		}
		kids = append(kids, b)
	})
	if !found {
		return nil, errors.New("the video track has no tkhd")
	}
	return container("trak", kids...), nil
}
