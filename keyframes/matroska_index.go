package keyframes

import (
	"bytes"
	"cmp"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"math"
	"slices"
)

// Matroska element IDs, with their length marker bits as they appear in the
// file.
const (
	idEBML                = 0x1A45DFA3
	idDocType             = 0x4282
	idSegment             = 0x18538067
	idSeekHead            = 0x114D9B74
	idSeek                = 0x4DBB
	idSeekID              = 0x53AB
	idSeekPosition        = 0x53AC
	idInfo                = 0x1549A966
	idTimestampScale      = 0x2AD7B1
	idTracks              = 0x1654AE6B
	idTrackEntry          = 0xAE
	idTrackNumber         = 0xD7
	idTrackType           = 0x83
	idCodecID             = 0x86
	idCodecPrivate        = 0x63A2
	idCodecDelay          = 0x56AA
	idTrackTimestampScale = 0x23314F
	idCues                = 0x1C53BB6B
	idCuePoint            = 0xBB
	idCueTime             = 0xB3
	idCueTrackPositions   = 0xB7
	idCueTrack            = 0xF7
	idCueClusterPosition  = 0xF1
	idCueRelativePosition = 0xF0
	idCluster             = 0x1F43B675
	idTimestamp           = 0xE7
	idSimpleBlock         = 0xA3
	idBlockGroup          = 0xA0
	idBlock               = 0xA1
	idReferenceBlock      = 0xFB
)

const (
	mkvTrackTypeVideo = 1

	mkvMaxEBMLHeader = 4 << 10
	// mkvMaxHeadElement bounds SeekHead, Info and Tracks, which are a few
	// hundred bytes in practice (Tracks carry codec private data).
	mkvMaxHeadElement = 16 << 20
	mkvMaxCues        = 64 << 20
	// mkvMaxTopLevelWalk bounds the element-by-element search for what the
	// SeekHead does not list: each step is one small read, and a file
	// written to a pipe has a cluster every second or so and no Cues at all.
	mkvMaxTopLevelWalk = 1 << 14
	// A sample check reads block headers only, but must not wander through
	// a huge or hostile cluster.
	mkvMaxClusterWalk     = 4 << 20
	mkvMaxClusterElements = 1 << 14
	mkvSampleChecks       = 8
	// Writers use one SeekHead, or two when the second is written after
	// the clusters.
	mkvMaxSeekHeads = 4
)

// mkvSegment is the Segment being read. Positions in SeekHead and Cues are
// relative to its data start.
type mkvSegment struct {
	r    io.ReaderAt
	data int64 // absolute start of the Segment's data
	end  int64 // absolute end of the Segment's data
	// first holds the segment-relative position of the first known
	// element of each top-level ID.
	first map[uint32]int64
	// others holds the positions of every non-Cluster top-level element
	// seen, to find where the clusters end.
	others []int64
	// seekHeads holds the SeekHeads read, which may point to each other.
	seekHeads map[int64]bool
}

type mkvTrack struct {
	number  uint64
	private []byte // CodecPrivate: the codec record ffmpeg reads as extradata
}

type mkvCue struct {
	time    uint64 // in TimestampScale units
	cluster int64  // segment-relative position of the Cluster
	rel     int64  // position of the block relative to the Cluster's data
	hasRel  bool
}

// readMatroskaIndex reads the Cues of a Matroska or WebM file: keyframe
// times of the first video track, and per keyframe the bytes up to the
// next one.
func readMatroskaIndex(r io.ReaderAt, size int64) (*index, error) {
	s, err := openMKVSegment(r, size)
	if err != nil {
		return nil, err
	}
	if err := s.locate(idInfo, idTracks, idCues); err != nil {
		return nil, err
	}
	scale, err := s.timestampScale()
	if err != nil {
		return nil, err
	}
	track, err := s.videoTrack()
	if err != nil {
		return nil, err
	}
	cues, err := s.readCues(track)
	if err != nil {
		return nil, err
	}

	idx := &index{times: make([]float64, len(cues)), gopBytes: make([]int64, len(cues))}
	for i, c := range cues {
		if c.time > math.MaxInt64/scale {
			return nil, fmt.Errorf("matroska: cue time %d overflows", c.time)
		}
		idx.times[i] = float64(c.time*scale) / 1e9
	}
	if err := s.gopBytes(cues, idx.gopBytes); err != nil {
		return nil, err
	}
	if err := idx.validate(); err != nil {
		return nil, err
	}
	for _, i := range mkvSampleIndices(len(cues)) {
		if err := s.checkKeyframe(cues[i], track); err != nil {
			return nil, fmt.Errorf("matroska: cue at %.3fs: %w", idx.times[i], err)
		}
	}
	return idx, nil
}

// openMKVSegment checks the EBML header and opens the Segment after it.
func openMKVSegment(r io.ReaderAt, size int64) (*mkvSegment, error) {
	var magic [4]byte
	if size < int64(len(magic)) || ebmlReadFull(r, magic[:], 0) != nil ||
		binary.BigEndian.Uint32(magic[:]) != idEBML {
		return nil, fmt.Errorf("%w: not EBML", errNoIndex)
	}
	head, err := readEBMLHeader(r, 0, size)
	if err != nil || head.size > mkvMaxEBMLHeader {
		return nil, fmt.Errorf("%w: unreadable EBML header", errNoIndex)
	}
	body, err := ebmlReadBody(r, head, mkvMaxEBMLHeader)
	if err != nil {
		return nil, fmt.Errorf("%w: %v", errNoIndex, err)
	}
	var docType string
	if err := ebmlChildren(body, func(id uint32, data []byte) error {
		if id == idDocType {
			docType = string(bytes.TrimRight(data, "\x00"))
		}
		return nil
	}); err != nil {
		return nil, fmt.Errorf("%w: %v", errNoIndex, err)
	}
	if docType != "matroska" && docType != "webm" {
		return nil, fmt.Errorf("%w: EBML DocType %q", errNoIndex, docType)
	}

	// The Segment follows, maybe after padding.
	pos := head.end()
	for range 8 {
		e, err := readEBMLHeader(r, pos, size)
		if err != nil {
			return nil, err
		}
		if e.id != idSegment {
			if e.size == ebmlUnknownSize {
				break
			}
			pos = e.end()
			continue
		}
		s := &mkvSegment{r: r, data: e.data, end: size, first: map[uint32]int64{}, seekHeads: map[int64]bool{}}
		if e.size != ebmlUnknownSize {
			s.end = e.end()
		}
		return s, nil
	}
	return nil, fmt.Errorf("%w: no Segment", errNoIndex)
}

// locate finds the top-level elements named by need. The SeekHead at the
// start normally lists them all; what it lacks is searched element by
// element, as far as sizes allow.
func (s *mkvSegment) locate(need ...uint32) error {
	missing := func() bool {
		for _, id := range need {
			if _, ok := s.first[id]; !ok {
				return true
			}
		}
		return false
	}
	pos := s.data
	for steps := 0; pos < s.end && missing(); steps++ {
		if steps == mkvMaxTopLevelWalk {
			return fmt.Errorf("%w: Info, Tracks or Cues not within %d top-level elements", errNoIndex, steps)
		}
		e, err := readEBMLHeader(s.r, pos, s.end)
		if err != nil {
			return err
		}
		s.note(e.id, pos-s.data)
		if e.id == idSeekHead {
			if err := s.readSeekHead(e); err != nil {
				return err
			}
		}
		if e.size == ebmlUnknownSize {
			// Only a live-written Cluster has no size, and nothing
			// after it can be found without parsing every block.
			break
		}
		pos = e.end()
	}
	if missing() {
		return fmt.Errorf("%w: Matroska file without Cues", errNoIndex)
	}
	return nil
}

func (s *mkvSegment) note(id uint32, rel int64) {
	if _, ok := s.first[id]; !ok {
		s.first[id] = rel
	}
	if id != idCluster && len(s.others) < mkvMaxTopLevelWalk {
		s.others = append(s.others, rel)
	}
}

// readSeekHead records the entries of a SeekHead and of the SeekHeads it
// points to.
func (s *mkvSegment) readSeekHead(e ebmlElement) error {
	rel := e.pos - s.data
	if s.seekHeads[rel] || len(s.seekHeads) == mkvMaxSeekHeads {
		return nil
	}
	s.seekHeads[rel] = true
	body, err := ebmlReadBody(s.r, e, mkvMaxHeadElement)
	if err != nil {
		return err
	}
	var next []int64
	err = ebmlChildren(body, func(id uint32, data []byte) error {
		if id != idSeek {
			return nil
		}
		var target uint64
		var pos int64 = -1
		err := ebmlChildren(data, func(id uint32, data []byte) error {
			switch id {
			case idSeekID:
				if len(data) > 4 {
					return fmt.Errorf("%w: %d-byte SeekID", errEBML, len(data))
				}
				target, _ = ebmlUint(data)
			case idSeekPosition:
				v, err := ebmlUint(data)
				if err != nil {
					return err
				}
				if v >= uint64(s.end-s.data) {
					return fmt.Errorf("matroska: SeekHead points to %d, beyond the segment", v)
				}
				pos = int64(v)
			}
			return nil
		})
		if err != nil || target == 0 || pos < 0 {
			return err
		}
		if target == idSeekHead {
			next = append(next, pos)
		}
		s.note(uint32(target), pos)
		return nil
	})
	if err != nil {
		return err
	}
	for _, pos := range next {
		if s.seekHeads[pos] {
			continue
		}
		e, err := s.element(pos, idSeekHead)
		if err != nil {
			return err
		}
		if err := s.readSeekHead(e); err != nil {
			return err
		}
	}
	return nil
}

// element reads the header of the top-level element at the segment-relative
// position rel, which must have the given ID.
func (s *mkvSegment) element(rel int64, id uint32) (ebmlElement, error) {
	if rel < 0 || rel >= s.end-s.data {
		return ebmlElement{}, fmt.Errorf("matroska: element %#x at %d is beyond the segment", id, rel)
	}
	e, err := readEBMLHeader(s.r, s.data+rel, s.end)
	if err != nil {
		return ebmlElement{}, err
	}
	if e.id != id {
		return ebmlElement{}, fmt.Errorf("matroska: found %#x at %d, want %#x", e.id, rel, id)
	}
	return e, nil
}

// readTop reads the whole first top-level element with the given ID.
func (s *mkvSegment) readTop(id uint32, max int64) ([]byte, error) {
	e, err := s.element(s.first[id], id)
	if err != nil {
		return nil, err
	}
	return ebmlReadBody(s.r, e, max)
}

// timestampScale returns the nanoseconds per tick of cluster, block and cue
// timestamps.
func (s *mkvSegment) timestampScale() (uint64, error) {
	body, err := s.readTop(idInfo, mkvMaxHeadElement)
	if err != nil {
		return 0, err
	}
	scale := uint64(1_000_000)
	err = ebmlChildren(body, func(id uint32, data []byte) error {
		var err error
		if id == idTimestampScale {
			scale, err = ebmlUint(data)
		}
		return err
	})
	if err != nil {
		return 0, err
	}
	if scale == 0 {
		return 0, errors.New("matroska: TimestampScale 0")
	}
	return scale, nil
}

// videoTrack returns the track ffprobe calls V:0: ffmpeg makes a stream of
// every track with a CodecID of the right kind, in order.
func (s *mkvSegment) videoTrack() (mkvTrack, error) {
	body, err := s.readTop(idTracks, mkvMaxHeadElement)
	if err != nil {
		return mkvTrack{}, err
	}
	var found *mkvTrack
	err = ebmlChildren(body, func(id uint32, data []byte) error {
		if id != idTrackEntry || found != nil {
			return nil
		}
		var number, kind, delay uint64
		var codec, private []byte
		trackScale := 1.0
		err := ebmlChildren(data, func(id uint32, data []byte) error {
			var err error
			switch id {
			case idTrackNumber:
				number, err = ebmlUint(data)
			case idTrackType:
				kind, err = ebmlUint(data)
			case idCodecID:
				codec = data
			case idCodecPrivate:
				private = data
			case idCodecDelay:
				delay, err = ebmlUint(data)
			case idTrackTimestampScale:
				trackScale, err = ebmlFloat(data)
			}
			return err
		})
		if err != nil {
			return err
		}
		if kind != mkvTrackTypeVideo || !bytes.HasPrefix(codec, []byte("V")) {
			return nil
		}
		// ffmpeg shifts packet timestamps by these; Cues do not, and
		// ffmpeg itself never writes them for video.
		if delay != 0 || trackScale != 1 {
			return fmt.Errorf("matroska: video track with CodecDelay %d, TrackTimestampScale %v", delay, trackScale)
		}
		if number == 0 {
			return errors.New("matroska: video track without a number")
		}
		found = &mkvTrack{number: number, private: private}
		return nil
	})
	if err != nil {
		return mkvTrack{}, err
	}
	if found == nil {
		return mkvTrack{}, fmt.Errorf("%w: no video track", errNoIndex)
	}
	return *found, nil
}

// readCues returns the video track's cues in time order, one per time.
func (s *mkvSegment) readCues(track mkvTrack) ([]mkvCue, error) {
	body, err := s.readTop(idCues, mkvMaxCues)
	if err != nil {
		return nil, err
	}
	segLen := s.end - s.data
	var cues []mkvCue
	err = ebmlChildren(body, func(id uint32, data []byte) error {
		if id != idCuePoint {
			return nil
		}
		var c mkvCue
		haveTime, havePos := false, false
		err := ebmlChildren(data, func(id uint32, data []byte) error {
			var err error
			switch id {
			case idCueTime:
				c.time, err = ebmlUint(data)
				haveTime = true
			case idCueTrackPositions:
				if !havePos {
					havePos, err = mkvTrackPosition(data, track, segLen, &c)
				}
			}
			return err
		})
		if err != nil {
			return err
		}
		if !haveTime {
			return fmt.Errorf("%w: CuePoint without CueTime", errEBML)
		}
		if havePos {
			cues = append(cues, c)
		}
		return nil
	})
	if err != nil {
		return nil, err
	}
	if len(cues) == 0 {
		return nil, fmt.Errorf("%w: Cues list no video keyframe", errNoIndex)
	}
	slices.SortStableFunc(cues, func(a, b mkvCue) int { return cmp.Compare(a.time, b.time) })
	return slices.CompactFunc(cues, func(a, b mkvCue) bool { return a.time == b.time }), nil
}

// mkvTrackPosition fills c from a CueTrackPositions if it is for track.
func mkvTrackPosition(data []byte, track mkvTrack, segLen int64, c *mkvCue) (bool, error) {
	var number, cluster, rel uint64
	haveCluster, haveRel := false, false
	err := ebmlChildren(data, func(id uint32, data []byte) error {
		var err error
		switch id {
		case idCueTrack:
			number, err = ebmlUint(data)
		case idCueClusterPosition:
			cluster, err = ebmlUint(data)
			haveCluster = true
		case idCueRelativePosition:
			rel, err = ebmlUint(data)
			haveRel = true
		}
		return err
	})
	if err != nil || number != track.number {
		return false, err
	}
	if !haveCluster {
		return false, fmt.Errorf("%w: cue without CueClusterPosition", errEBML)
	}
	if cluster >= uint64(segLen) || (haveRel && rel >= uint64(segLen)-cluster) {
		return false, fmt.Errorf("matroska: cue points to %d+%d, beyond the segment (truncated file?)", cluster, rel)
	}
	c.cluster, c.rel, c.hasRel = int64(cluster), int64(rel), haveRel
	return true, nil
}

// gopBytes estimates each GOP's size as the distance in the file from its
// keyframe to the next one. That includes interleaved audio and container
// overhead, so it over-estimates the video bitrate, which is the safe side
// for the bandwidth it feeds. Positions are block positions when every cue
// has a CueRelativePosition (then keyframes sharing a cluster still get
// their share), cluster positions otherwise.
func (s *mkvSegment) gopBytes(cues []mkvCue, out []int64) error {
	useRel := true
	for _, c := range cues {
		useRel = useRel && c.hasRel
	}
	// Block positions leave out the cluster header length (a few bytes),
	// which does not change the order of blocks.
	at := func(c mkvCue) int64 {
		if useRel {
			return c.cluster + c.rel
		}
		return c.cluster
	}
	for i := 1; i < len(cues); i++ {
		d := at(cues[i]) - at(cues[i-1])
		if d < 0 || (d == 0 && useRel) {
			return fmt.Errorf("matroska: keyframe at tick %d is stored before the one at tick %d", cues[i].time, cues[i-1].time)
		}
		out[i-1] = d
	}
	// The last GOP runs to the end of the clusters: the next non-Cluster
	// element seen (usually the Cues), else the end of the segment.
	last := at(cues[len(cues)-1])
	end := s.end - s.data
	for _, p := range s.others {
		if p > last && p < end {
			end = p
		}
	}
	out[len(cues)-1] = end - last
	return nil
}

// mkvSampleIndices spreads up to mkvSampleChecks picks over n cues, first and
// last included.
func mkvSampleIndices(n int) []int {
	if n <= mkvSampleChecks {
		out := make([]int, n)
		for i := range out {
			out[i] = i
		}
		return out
	}
	out := make([]int, mkvSampleChecks)
	for k := range out {
		out[k] = k * (n - 1) / (mkvSampleChecks - 1)
	}
	return out
}

// checkKeyframe verifies that the cue's cluster holds a keyframe of the
// track at the cue's time, since an index can be stale or wrong.
func (s *mkvSegment) checkKeyframe(c mkvCue, track mkvTrack) error {
	cl, err := s.element(c.cluster, idCluster)
	if err != nil {
		return err
	}
	end := s.end
	if cl.size != ebmlUnknownSize {
		end = cl.end()
	}
	if c.hasRel {
		if c.rel >= end-cl.data {
			return fmt.Errorf("CueRelativePosition %d is outside the cluster", c.rel)
		}
		ts, err := s.clusterTimestamp(cl, end, cl.data+c.rel)
		if err != nil {
			return err
		}
		e, err := readEBMLHeader(s.r, cl.data+c.rel, end)
		if err != nil {
			return err
		}
		b, err := s.readBlock(e)
		if err != nil {
			return err
		}
		if b.track != track.number || !b.at(ts, c.time) {
			return errors.New("no block of the track at CueRelativePosition")
		}
		if !b.key {
			return errors.New("block is not a keyframe")
		}
		return nil
	}

	ts, err := s.clusterTimestamp(cl, end, -1)
	if err != nil {
		return err
	}
	limit := min(end, cl.data+mkvMaxClusterWalk)
	pos := cl.data
	for n := 0; pos < limit && n < mkvMaxClusterElements; n++ {
		e, err := readEBMLHeader(s.r, pos, end)
		if err != nil {
			return err
		}
		if e.size == ebmlUnknownSize || e.id == idCluster {
			break
		}
		if e.id == idSimpleBlock || e.id == idBlockGroup {
			b, err := s.readBlock(e)
			if err != nil {
				return err
			}
			if b.track == track.number && b.at(ts, c.time) {
				if !b.key {
					return errors.New("block is not a keyframe")
				}
				return nil
			}
		}
		pos = e.end()
	}
	return errors.New("no block of the track at the cue time in its cluster")
}

// clusterTimestamp reads the Timestamp of a cluster, which precedes its
// blocks. stop, if not -1, is a block position it must precede.
func (s *mkvSegment) clusterTimestamp(cl ebmlElement, end, stop int64) (uint64, error) {
	pos := cl.data
	for range 16 {
		if pos >= end || pos == stop {
			break
		}
		e, err := readEBMLHeader(s.r, pos, end)
		if err != nil {
			return 0, err
		}
		switch e.id {
		case idTimestamp:
			if e.size > 8 {
				return 0, fmt.Errorf("%w: %d-byte cluster Timestamp", errEBML, e.size)
			}
			b, err := ebmlReadBody(s.r, e, 8)
			if err != nil {
				return 0, err
			}
			ts, _ := ebmlUint(b)
			return ts, nil
		case idSimpleBlock, idBlockGroup, idCluster:
			return 0, errors.New("cluster without Timestamp before its blocks")
		}
		if e.size == ebmlUnknownSize {
			break
		}
		pos = e.end()
	}
	return 0, errors.New("cluster Timestamp not found")
}

type mkvBlock struct {
	track uint64
	rel   int16 // timestamp relative to the cluster's
	key   bool
}

// at reports whether the block's timestamp is t, given its cluster's.
func (b mkvBlock) at(cluster, t uint64) bool {
	if cluster > math.MaxInt64/2 || t > math.MaxInt64/2 {
		return false
	}
	return int64(cluster)+int64(b.rel) == int64(t)
}

// readBlock reads the header of a SimpleBlock or BlockGroup. A SimpleBlock
// carries a keyframe flag; a BlockGroup is a keyframe when it references no
// other block.
func (s *mkvSegment) readBlock(e ebmlElement) (mkvBlock, error) {
	switch e.id {
	case idSimpleBlock:
		b, flags, err := s.blockHeader(e)
		b.key = flags&0x80 != 0
		return b, err
	case idBlockGroup:
		if e.size == ebmlUnknownSize {
			return mkvBlock{}, fmt.Errorf("%w: BlockGroup of unknown size", errEBML)
		}
		var b mkvBlock
		haveBlock, haveRef := false, false
		for pos, n := e.data, 0; pos < e.end(); n++ {
			if n == mkvMaxClusterElements {
				return mkvBlock{}, fmt.Errorf("%w: BlockGroup with too many children", errEBML)
			}
			child, err := readEBMLHeader(s.r, pos, e.end())
			if err != nil {
				return mkvBlock{}, err
			}
			switch child.id {
			case idBlock:
				if b, _, err = s.blockHeader(child); err != nil {
					return mkvBlock{}, err
				}
				haveBlock = true
			case idReferenceBlock:
				haveRef = true
			}
			if child.size == ebmlUnknownSize {
				return mkvBlock{}, fmt.Errorf("%w: BlockGroup child of unknown size", errEBML)
			}
			pos = child.end()
		}
		if !haveBlock {
			return mkvBlock{}, fmt.Errorf("%w: BlockGroup without Block", errEBML)
		}
		b.key = !haveRef
		return b, nil
	}
	return mkvBlock{}, fmt.Errorf("found element %#x, want a block", e.id)
}

// blockHeader reads the track number, relative timestamp and flags that
// start a (Simple)Block's data.
func (s *mkvSegment) blockHeader(e ebmlElement) (mkvBlock, byte, error) {
	var buf [11]byte // an 8-byte track number at most, int16, flags
	n := min(int64(len(buf)), e.size)
	if e.size == ebmlUnknownSize || n < 4 {
		return mkvBlock{}, 0, fmt.Errorf("%w: short block at %d", errEBML, e.pos)
	}
	b := buf[:n]
	if err := ebmlReadFull(s.r, b, e.data); err != nil {
		return mkvBlock{}, 0, err
	}
	track, l, _ := ebmlVint(b, false)
	if l == 0 || len(b) < l+3 {
		return mkvBlock{}, 0, fmt.Errorf("%w: bad block header at %d", errEBML, e.pos)
	}
	rel := int16(uint16(b[l])<<8 | uint16(b[l+1]))
	return mkvBlock{track: track, rel: rel}, b[l+2], nil
}
