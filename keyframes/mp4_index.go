package keyframes

import (
	"errors"
	"fmt"
	"io"
	"math"
	"math/bits"
	"strconv"
)

// The MP4/MOV reader reproduces, from the container's own tables, the
// keyframes and GOP sizes the packet scan gets from ffprobe. The scan
// sees timestamps after ffmpeg 5.1's mov demuxer has applied edit lists
// its own way, so the timeline code below mirrors that demuxer's rules
// (mov_build_index, mov_fix_index, mov_read_trun) rather than the ISO
// spec, and declines every case those rules make hard to predict.

// mp4Sample is one video sample in decode order.
type mp4Sample struct {
	dts  int64 // decode time in track units, before any edit list shift
	pts  int64 // presentation time as ffprobe reports it
	pos  int64
	size uint32
	cts  int32 // composition offset
	key  bool
}

// mp4Edit is one edit list entry: dur in movie units, time in track units,
// -1 for an empty edit.
type mp4Edit struct {
	dur, time int64
	rate      uint32
}

// trexDefaults are a track's fragment defaults from its trex box.
type trexDefaults struct {
	stsd, dur, size, flags uint32
}

// mp4Track is the first video track: what its moov tables say, and what
// the demuxer state was when ffmpeg read it.
type mp4Track struct {
	id        uint32
	timescale int64
	movieTS   int64 // mvhd timescale when the track was read
	codec     string
	nalLen    int // NAL length field size for H.264 and HEVC
	edits     []mp4Edit
	// advanced is ffmpeg's advanced_editlist: on until a track with empty
	// sample tables (a fragmented file) switches it off for that track
	// and every later one.
	advanced bool
	hasCtts  bool
	// moovShift is ffmpeg's dts_shift from the ctts box: the largest
	// negative composition offset, except in the last two entries.
	moovShift int64
	duration  int64 // sum of stts deltas, where fragments start without tfdt
	samples   []mp4Sample
	trex      trexDefaults
	hasTrex   bool
}

const (
	maxMP4Time    = 1 << 53 // far beyond any real timestamp; keeps sums exact
	fixedOne      = 0x10000 // 1.0 as a 16.16 edit rate
	maxSyncChecks = 8
)

// readMP4Index reads the keyframe index of an MP4 or MOV file's first video
// track from its sample tables or fragment headers.
func readMP4Index(r io.ReaderAt, size int64) (*index, error) {
	idx, err := mp4Keyframes(r, size)
	if err != nil {
		return nil, err
	}
	// A stream copy cut mid-GOP keeps the keyframe before the cut, which
	// ffprobe reports at a negative time; validate turns such files away.
	if err := idx.validate(); err != nil {
		return nil, err
	}
	return idx, nil
}

// mp4Keyframes is readMP4Index without the final validation.
func mp4Keyframes(r io.ReaderAt, size int64) (*index, error) {
	if err := sniffMP4(r, size); err != nil {
		return nil, err
	}
	moov, moofs, hasSidx, err := scanMP4(r, size)
	if err != nil {
		return nil, err
	}
	t, err := parseMoov(moov, size)
	if err != nil {
		return nil, err
	}
	lo, hi, err := t.moovTimeline()
	if err != nil {
		return nil, err
	}
	all := t.samples[lo:hi:hi]
	if len(moofs) > 0 {
		frags, err := t.readFragments(r, moofs, size, hasSidx)
		if err != nil {
			return nil, err
		}
		all = append(all, frags...)
	}

	var idx index
	var keys []mp4Sample
	var total uint64
	for _, s := range all {
		if s.pos < 0 || s.pos > size-int64(s.size) {
			return nil, fmt.Errorf("mp4 index: sample at %d of %d bytes lies outside the file", s.pos, s.size)
		}
		if total += uint64(s.size); total > uint64(size) {
			return nil, errors.New("mp4 index: samples add up to more than the file")
		}
		n := len(idx.times)
		var sec float64
		if s.key {
			sec = ptsTime(s.pts, t.timescale)
		}
		switch {
		case s.key && (n == 0 || sec > idx.times[n-1]):
			idx.times = append(idx.times, sec)
			idx.gopBytes = append(idx.gopBytes, int64(s.size))
			keys = append(keys, s)
		case n > 0:
			idx.gopBytes[n-1] += int64(s.size)
		}
	}
	if len(keys) == 0 {
		return nil, fmt.Errorf("%w: mp4 video track has no keyframe", errNoIndex)
	}
	if err := t.checkSyncSamples(r, keys); err != nil {
		return nil, err
	}
	return &idx, nil
}

// ptsTime converts a timestamp to seconds the way ffprobe prints it, so
// keyframes compare and deduplicate exactly as the scan sees them.
func ptsTime(pts, timescale int64) float64 {
	v := float64(pts) * (1 / float64(timescale))
	v, _ = strconv.ParseFloat(strconv.FormatFloat(v, 'f', 6, 64), 64)
	return v
}

// sniffMP4 declines quietly unless the file starts with a box type that
// MP4 and MOV files start with. It reads 8 bytes.
func sniffMP4(r io.ReaderAt, size int64) error {
	if size < 8 {
		return fmt.Errorf("%w: too short for mp4", errNoIndex)
	}
	var h [8]byte
	if err := readAt(r, h[:], 0); err != nil {
		return err
	}
	switch string(h[4:8]) {
	case "ftyp", "moov", "mdat", "free", "skip", "wide", "pnot", "styp":
		return nil
	}
	return fmt.Errorf("%w: not mp4", errNoIndex)
}

// scanMP4 walks the top-level boxes with one small read each and returns
// the moov payload and the moof headers, in file order.
func scanMP4(r io.ReaderAt, size int64) (moov []byte, moofs []topBox, hasSidx bool, err error) {
	for pos, n := int64(0), 0; size-pos >= 8; n++ {
		if n == maxTopBoxes {
			return nil, nil, false, errors.New("mp4 index: too many top-level boxes")
		}
		b, err := readTopBox(r, pos, size)
		if err != nil {
			return nil, nil, false, err
		}
		switch b.typ {
		case "moov":
			if moov != nil {
				return nil, nil, false, errors.New("mp4 index: two moov boxes")
			}
			if b.size > maxMoovSize {
				return nil, nil, false, fmt.Errorf("mp4 index: moov of %d bytes is too large", b.size)
			}
			if moov, err = b.payload(r); err != nil {
				return nil, nil, false, err
			}
		case "moof":
			// ffmpeg takes the moof position as 8 bytes before its
			// payload, which is wrong for a 64-bit size.
			if moov == nil || b.hdr != 8 {
				return nil, nil, false, errors.New("mp4 index: moof before moov or with a 64-bit size")
			}
			if b.size > maxMoofSize {
				return nil, nil, false, fmt.Errorf("mp4 index: moof of %d bytes is too large", b.size)
			}
			moofs = append(moofs, b)
		case "sidx":
			hasSidx = true
		}
		pos += b.size
	}
	if moov == nil {
		return nil, nil, false, errors.New("mp4 index: no moov box (truncated file?)")
	}
	return moov, moofs, hasSidx, nil
}

// rescale is ffmpeg's av_rescale for non-negative values: a*b/c rounded
// to nearest, with ties away from zero.
func rescale(a, b, c int64) (int64, error) {
	hi, lo := bits.Mul64(uint64(a), uint64(b))
	lo, carry := bits.Add64(lo, uint64(c/2), 0)
	hi += carry
	if hi >= uint64(c) {
		return 0, errors.New("mp4 index: edit duration out of range")
	}
	q, _ := bits.Div64(hi, lo, uint64(c))
	if q > maxMP4Time {
		return 0, errors.New("mp4 index: edit duration out of range")
	}
	return int64(q), nil
}

// timeOffset is the shift mov_build_index derives from the edit list. It
// is all ffmpeg applies to fragments, and to moov samples once advanced
// edit lists are off: pts = dts + cts - timeOffset.
func (t *mp4Track) timeOffset() (int64, error) {
	var empty, start int64
	for _, e := range t.edits {
		if e.time == -1 {
			empty = e.dur
		} else {
			start = e.time
		}
	}
	if empty == 0 && start == 0 {
		return 0, nil
	}
	empty, err := rescale(empty, t.timescale, t.movieTS)
	return start - empty, err
}

// moovTimeline sets pts on the moov samples and returns the range of them
// ffmpeg keeps.
func (t *mp4Track) moovTimeline() (lo, hi int, err error) {
	s := t.samples
	if len(s) == 0 {
		return 0, 0, nil
	}
	if !t.advanced || len(t.edits) == 0 {
		off, err := t.timeOffset()
		if err != nil {
			return 0, 0, err
		}
		for i := range s {
			s[i].pts = s[i].dts + int64(s[i].cts) - off
		}
		return 0, len(s), nil
	}
	return t.fixIndex()
}

// fixIndex mirrors mov_fix_index for one edit, maybe after an empty one.
// ffmpeg starts at the last keyframe whose pts is at or before the edit's
// media time, drops everything after the second keyframe past the edit's
// end, renumbers decode times from the first sample whose pts is in the
// edit, and finally shifts video so its earliest pts in the edit lands on
// the empty edit's end.
func (t *mp4Track) fixIndex() (lo, hi int, err error) {
	var empty int64
	var edit mp4Edit
	for _, e := range t.edits {
		d, err := rescale(e.dur, t.timescale, t.movieTS)
		if err != nil {
			return 0, 0, err
		}
		if e.time == -1 {
			empty += d
		} else {
			edit = mp4Edit{dur: d, time: e.time}
		}
	}
	if t.edits[len(t.edits)-1].time == -1 {
		return 0, 0, errors.New("mp4 index: edit list without media")
	}
	s := t.samples
	m, end := edit.time, edit.time+edit.dur
	lo = t.editStart(m, false)
	if lo < 0 {
		if lo = t.editStart(m, true); lo < 0 {
			lo = 0
		}
	}
	first, minPts := -1, int64(math.MaxInt64)
	hi = len(s)
	seenKeyAfter := false
	for i := lo; i < len(s); i++ {
		step := edit.dur
		if i+1 < len(s) {
			step = s[i+1].dts - s[i].dts
		}
		pts := s[i].dts + int64(s[i].cts)
		if pts >= m && pts < end {
			if first < 0 {
				first = i
			}
			minPts = min(minPts, pts)
		}
		if pts+step >= end && s[i].key {
			// With ctts, ffmpeg waits for a second keyframe so that
			// B-frames after the first still belong to the edit.
			if t.hasCtts && !seenKeyAfter {
				seenKeyAfter = true
				continue
			}
			hi = i + 1
			break
		}
	}
	if first < 0 {
		return 0, 0, errors.New("mp4 index: no sample inside the edit")
	}
	shift := empty - s[first].dts - max(0, minPts-s[first].dts)
	for i := lo; i < hi; i++ {
		s[i].pts = s[i].dts + int64(s[i].cts) + shift
	}
	return lo, hi, nil
}

// editStart is find_prev_closest_index: the last keyframe (any sample if
// anySample) at or before media time m by dts, then, with ctts, walked back
// to a keyframe whose pts is at or before m. -1 if there is none.
func (t *mp4Track) editStart(m int64, anySample bool) int {
	s := t.samples
	a, b := -1, len(s)
	if s[len(s)-1].dts < m {
		a = len(s) - 1
	}
	for b-a > 1 {
		mid := (a + b) >> 1
		if s[mid].dts >= m {
			b = mid
		}
		if s[mid].dts <= m {
			a = mid
		}
	}
	i := a
	for !anySample && i >= 0 && !s[i].key {
		i--
	}
	if i < 0 {
		return -1
	}
	for j := i; j > 0 && s[j].dts == s[j-1].dts; j-- {
		if anySample || s[j-1].key {
			i = j - 1
		}
	}
	if t.hasCtts {
		for i >= 0 && !(s[i].key && s[i].dts+int64(s[i].cts) <= m) {
			i--
		}
	}
	return i
}

// checkSyncSamples reads the start of up to eight keyframes spread over
// the file and requires each to begin a picture a decoder can start from,
// so that an stss or trun listing ordinary frames is caught before it
// becomes a playlist whose segments cannot be decoded.
func (t *mp4Track) checkSyncSamples(r io.ReaderAt, keys []mp4Sample) error {
	picks := keys
	if len(keys) > maxSyncChecks {
		picks = nil
		for i := 0; i < maxSyncChecks; i++ {
			picks = append(picks, keys[i*(len(keys)-1)/(maxSyncChecks-1)])
		}
	}
	for _, s := range picks {
		var head [256]byte
		n := min(len(head), int(s.size))
		if err := readAt(r, head[:n], s.pos); err != nil {
			return err
		}
		var ok bool
		switch t.codec {
		case "avc1", "avc3", "hvc1", "hev1":
			typ, err := t.firstVCL(r, s, head[:n])
			if err != nil {
				return err
			}
			if t.codec[0] == 'a' {
				ok = typ == 5 // IDR
			} else {
				ok = typ >= 16 && typ <= 23 // IRAP
			}
		case "mp4v":
			ok = mpeg4Intra(head[:n])
		case "vp09":
			ok = vp9Key(head[:n])
		case "av01":
			ok = av1Key(head[:n])
		}
		if !ok {
			return fmt.Errorf("mp4 index: %s sync sample at %d is not a random access point", t.codec, s.pos)
		}
	}
	return nil
}

// firstVCL returns the type of the first picture NAL unit in sample s,
// whose first bytes are in head. Parameter sets and SEI can outgrow head,
// so later NAL headers are read where they are.
func (t *mp4Track) firstVCL(r io.ReaderAt, s mp4Sample, head []byte) (int, error) {
	hevc := t.codec[0] == 'h'
	var hdr [5]byte
	for off, k := int64(0), 0; k < 64; k++ {
		need := int64(t.nalLen + 1)
		if off+need > int64(s.size) {
			break
		}
		b := hdr[:need]
		if off+need <= int64(len(head)) {
			copy(b, head[off:])
		} else if err := readAt(r, b, s.pos+off); err != nil {
			return 0, err
		}
		var length int64
		for _, v := range b[:t.nalLen] {
			length = length<<8 | int64(v)
		}
		if length == 0 || length > int64(s.size)-off-int64(t.nalLen) {
			break
		}
		nal := b[t.nalLen]
		if hevc {
			if typ := int(nal>>1) & 0x3f; typ < 32 {
				return typ, nil
			}
		} else if typ := int(nal) & 0x1f; typ >= 1 && typ <= 5 {
			return typ, nil
		}
		off += int64(t.nalLen) + length
	}
	return 0, fmt.Errorf("mp4 index: no picture NAL unit at the start of the sync sample at %d", s.pos)
}

// mpeg4Intra reports whether the first VOP in b is an I-VOP. Keyframes
// carry their VOL headers first, which are small.
func mpeg4Intra(b []byte) bool {
	for i := 0; i+4 < len(b); i++ {
		if b[i] == 0 && b[i+1] == 0 && b[i+2] == 1 && b[i+3] == 0xb6 {
			return b[i+4]>>6 == 0
		}
	}
	return false
}

// vp9Key reports whether a VP9 frame (or the first frame of a superframe)
// is a key frame, from the first byte of its uncompressed header.
func vp9Key(b []byte) bool {
	if len(b) == 0 || b[0]>>6 != 2 {
		return false
	}
	profile := b[0]>>5&1 | b[0]>>3&2
	bit := 3 // show_existing_frame, then frame_type
	if profile == 3 {
		bit = 2
	}
	return b[0]>>bit&1 == 0 && b[0]>>(bit-1)&1 == 0
}

// av1Key reports whether the first frame header in a temporal unit's OBUs
// is a shown-now key frame: show_existing_frame 0, frame_type KEY_FRAME.
// A reduced still picture header has no such bits, but then every frame is
// a key frame and reading other bits can only make the check fail.
func av1Key(b []byte) bool {
	for len(b) > 0 {
		h := b[0]
		typ, hdr := h>>3&15, 1+int(h>>2&1)
		if h>>1&1 == 0 || len(b) <= hdr {
			return false // ffmpeg writes sizes; without them the OBU runs to the end
		}
		b = b[hdr:]
		var size uint64
		n := 0
		for shift := 0; n < len(b) && n < 8; shift += 7 {
			size |= uint64(b[n]&0x7f) << shift
			n++
			if b[n-1]&0x80 == 0 {
				break
			}
		}
		b = b[n:]
		switch typ {
		case 3, 6: // OBU_FRAME_HEADER, OBU_FRAME
			return len(b) > 0 && b[0]>>5 == 0
		}
		if size > uint64(len(b)) {
			return false
		}
		b = b[size:]
	}
	return false
}

// Fragment flag bits (ISO 14496-12 tfhd, trun and sample flags).
const (
	tfhdBaseOffset    = 0x000001
	tfhdStsd          = 0x000002
	tfhdDuration      = 0x000008
	tfhdSize          = 0x000010
	tfhdFlags         = 0x000020
	tfhdBaseIsMoof    = 0x020000
	trunDataOffset    = 0x000001
	trunFirstFlags    = 0x000004
	trunDuration      = 0x000100
	trunSize          = 0x000200
	trunFlags         = 0x000400
	trunCts           = 0x000800
	sampleNotKeyMask  = 0x01010000 // is_non_sync, or depends_on == 1, as ffmpeg tests them
	maxTrunCtsOffset  = 1 << 30
	maxFragSampleSize = 0x3FFFFFFF
)

// readFragments reads every moof and returns the video track's fragment
// samples in decode order, pts set. It walks the moofs rather than using an
// mfra: tfra entries give each fragment's first sync sample time but
// neither composition offsets nor sample sizes, and exact pts and GOP
// sizes need both.
func (t *mp4Track) readFragments(r io.ReaderAt, moofs []topBox, fileSize int64, hasSidx bool) ([]mp4Sample, error) {
	if !t.hasTrex {
		return nil, errors.New("mp4 index: fragments but no trex for the video track")
	}
	if len(t.samples) > 0 && t.advanced && len(t.edits) > 0 {
		// mov_fix_index packs the ctts table, and trun then appends
		// offsets at sample positions that no longer line up.
		return nil, errors.New("mp4 index: edit list on a track with samples in both moov and fragments")
	}
	f := fragReader{track: t, fileSize: fileSize, hasSidx: hasSidx, dts: t.duration, shift: t.moovShift}
	firstShift := int64(-1)
	for _, m := range moofs {
		data, err := m.payload(r)
		if err != nil {
			return nil, err
		}
		if err := f.moof(m.pos, data); err != nil {
			return nil, err
		}
		if firstShift < 0 && len(f.samples) > 0 {
			firstShift = f.shift
		}
	}
	// ffmpeg adds its dts shift, the largest negative composition offset
	// it has seen, when it reads a packet. Whether it has read the later
	// moofs by then depends on seekability and sidx boxes; only a shift
	// that is final by the first packet makes that not matter.
	if firstShift >= 0 && firstShift != f.shift || len(t.samples) > 0 && f.shift != t.moovShift {
		return nil, errors.New("mp4 index: composition offsets grow more negative in later fragments")
	}
	if len(t.samples) > 0 && !t.hasCtts && f.anyCts {
		// ffmpeg's offset table then has zero-count entries for the moov
		// samples, which stall it at the first one.
		return nil, errors.New("mp4 index: composition offsets only in fragments after moov samples")
	}
	off, err := t.timeOffset()
	if err != nil {
		return nil, err
	}
	for i := range f.samples {
		s := &f.samples[i]
		s.pts = s.dts + int64(s.cts) - off + f.shift
	}
	return f.samples, nil
}

// fragReader carries ffmpeg's fragment state from one moof to the next.
type fragReader struct {
	track    *mp4Track
	fileSize int64
	hasSidx  bool
	samples  []mp4Sample
	dts      int64 // where a fragment without tfdt starts: the previous one's end
	shift    int64 // largest negative composition offset so far
	anyCts   bool
	bytes    uint64
}

// moof reads the video track's runs from one moof. Its position doubles
// as the implicit base offset of the first track fragment.
func (f *fragReader) moof(pos int64, data []byte) error {
	bs, err := boxes(data)
	if err != nil {
		return err
	}
	otherRuns, videoTrafs := false, 0
	for _, b := range bs {
		if b.typ != "traf" {
			continue
		}
		kids, err := boxes(b.data)
		if err != nil {
			return err
		}
		tfhd, ok, err := only(kids, "tfhd")
		if err != nil || !ok {
			return errors.New("mp4 index: traf without one tfhd")
		}
		c := cursor{b: tfhd}
		_, flags := c.fullBox()
		if c.u32() != f.track.id {
			_, ok, _ := only(kids, "trun")
			otherRuns = otherRuns || ok
			continue
		}
		if videoTrafs++; videoTrafs > 1 {
			return errors.New("mp4 index: two video trafs in one moof")
		}
		d := f.track.trex
		base := uint64(pos)
		switch {
		case flags&tfhdBaseOffset != 0:
			base = c.u64()
		case flags&tfhdBaseIsMoof != 0:
		case otherRuns:
			// The implicit base follows the other track's data.
			return errors.New("mp4 index: implicit data offset after another track's run")
		}
		if flags&tfhdStsd != 0 {
			d.stsd = c.u32()
		}
		if flags&tfhdDuration != 0 {
			d.dur = c.u32()
		}
		if flags&tfhdSize != 0 {
			d.size = c.u32()
		}
		if flags&tfhdFlags != 0 {
			d.flags = c.u32()
		}
		if c.bad || d.stsd != 1 || base > math.MaxInt64/2 {
			return errors.New("mp4 index: bad tfhd")
		}
		if tfdt, ok, err := only(kids, "tfdt"); err != nil {
			return err
		} else if ok {
			c := cursor{b: tfdt}
			if v, _ := c.fullBox(); v == 1 {
				f.dts = int64(c.u64())
			} else {
				f.dts = int64(c.u32())
			}
			if c.bad || f.dts < 0 || f.dts > maxMP4Time {
				return errors.New("mp4 index: bad tfdt")
			}
		} else if f.hasSidx {
			// ffmpeg would take the start from the sidx instead.
			return errors.New("mp4 index: fragment without tfdt next to a sidx")
		}
		for _, k := range kids {
			if k.typ == "trun" {
				if err := f.trun(k.data, int64(base), d); err != nil {
					return err
				}
			}
		}
	}
	return nil
}

// trun appends one track run's samples.
func (f *fragReader) trun(data []byte, base int64, d trexDefaults) error {
	c := cursor{b: data}
	_, flags := c.fullBox()
	count := uint64(c.u32())
	pos := base
	if flags&trunDataOffset != 0 {
		pos += int64(int32(c.u32()))
	}
	first := d.flags
	if flags&trunFirstFlags != 0 {
		first = c.u32()
	}
	per := uint64(4 * bits.OnesCount32(flags&(trunDuration|trunSize|trunFlags|trunCts)))
	switch {
	case c.bad:
		return errMP4Truncated
	case per > 0 && count > uint64(len(c.b))/per:
		return errMP4Truncated
	case per == 0 && (d.size == 0 || count > uint64(f.fileSize)/uint64(d.size)):
		return errors.New("mp4 index: trun claims more data than the file holds")
	case count > uint64(maxMP4Samples-len(f.samples)):
		return errors.New("mp4 index: too many fragment samples")
	}
	for i := uint64(0); i < count; i++ {
		dur, size, sf, cts := d.dur, d.size, d.flags, int32(0)
		if i == 0 {
			sf = first
		}
		if flags&trunDuration != 0 {
			dur = c.u32()
		}
		if flags&trunSize != 0 {
			size = c.u32()
		}
		if flags&trunFlags != 0 {
			sf = c.u32()
		}
		if flags&trunCts != 0 {
			// Signed in version 1; ffmpeg reads version 0 the same way.
			cts = int32(c.u32())
		}
		// ffmpeg fails on empty samples.
		if size == 0 || size > maxFragSampleSize || cts <= -maxTrunCtsOffset || cts >= maxTrunCtsOffset {
			return errors.New("mp4 index: bad trun sample")
		}
		if f.bytes += uint64(size); f.bytes > uint64(f.fileSize) {
			return errors.New("mp4 index: fragments hold more data than the file")
		}
		f.shift = max(f.shift, -int64(cts))
		f.anyCts = f.anyCts || cts != 0
		f.samples = append(f.samples, mp4Sample{dts: f.dts, pos: pos, size: size, cts: cts, key: sf&sampleNotKeyMask == 0})
		f.dts += int64(dur)
		pos += int64(size)
		if f.dts > maxMP4Time || pos > math.MaxInt64/2 {
			return errors.New("mp4 index: fragment times out of range")
		}
	}
	return nil
}
