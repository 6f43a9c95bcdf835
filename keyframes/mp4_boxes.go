package keyframes

import (
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"math"
)

// Limits that keep a corrupt or hostile file from making the MP4 reader
// allocate or loop without bound. Real files stay far below them: a
// two-hour 60 fps film has 432,000 samples and a moov of a few MB.
const (
	maxMoovSize   = 64 << 20
	maxMoofSize   = 16 << 20
	maxMP4Samples = 1 << 23
	maxTopBoxes   = 1 << 22
)

// errMP4Truncated reports a box or table that ends before its contents do.
var errMP4Truncated = errors.New("mp4 index: truncated box")

// box is one ISO BMFF box held in memory: its four-character type and its
// payload, the bytes after the header.
type box struct {
	typ  string
	data []byte
}

// boxes splits a container payload into its child boxes. Fewer than 8
// trailing bytes are ignored, as ffmpeg does for the zero terminator old
// QuickTime files put at the end of some containers; a child that claims
// to run past its parent is an error.
func boxes(b []byte) ([]box, error) {
	var out []box
	for len(b) >= 8 {
		size := uint64(binary.BigEndian.Uint32(b))
		typ := string(b[4:8])
		hdr := uint64(8)
		switch size {
		case 0:
			size = uint64(len(b))
		case 1:
			if len(b) < 16 {
				return nil, errMP4Truncated
			}
			size, hdr = binary.BigEndian.Uint64(b[8:]), 16
		}
		if size < hdr || size > uint64(len(b)) {
			return nil, fmt.Errorf("mp4 index: box %q of %d bytes does not fit its parent", typ, size)
		}
		out = append(out, box{typ, b[hdr:size]})
		b = b[size:]
	}
	return out, nil
}

// only returns the payload of the single child of type typ. A repeated
// box is an error because ffmpeg would silently use one of them and the
// reader cannot know which one the file's writer meant.
func only(bs []box, typ string) ([]byte, bool, error) {
	var found []byte
	n := 0
	for _, b := range bs {
		if b.typ == typ {
			found = b.data
			n++
		}
	}
	if n > 1 {
		return nil, false, fmt.Errorf("mp4 index: %d %q boxes", n, typ)
	}
	return found, n == 1, nil
}

// descend walks a path of single boxes down from bs, e.g. "mdia", "minf".
// ok is false if a box on the path is missing; a repeated or malformed one
// is an error.
func descend(bs []box, path ...string) (kids []box, ok bool, err error) {
	for _, typ := range path {
		data, ok, err := only(bs, typ)
		if err != nil || !ok {
			return nil, false, err
		}
		if bs, err = boxes(data); err != nil {
			return nil, false, err
		}
	}
	return bs, true, nil
}

// mustDescend is descend for boxes the reader cannot do without.
func mustDescend(bs []box, path ...string) ([]box, error) {
	kids, ok, err := descend(bs, path...)
	if err == nil && !ok {
		err = fmt.Errorf("mp4 index: no %v box", path)
	}
	return kids, err
}

// cursor reads big-endian fields from a payload. Reading past the end
// yields zeros and sets bad, so a parser checks once at the end instead of
// after every field.
type cursor struct {
	b   []byte
	bad bool
}

func (c *cursor) take(n int) []byte {
	if n < 0 || n > len(c.b) {
		c.bad, c.b = true, nil
		return nil
	}
	v := c.b[:n]
	c.b = c.b[n:]
	return v
}

func (c *cursor) u8() uint8 {
	if v := c.take(1); v != nil {
		return v[0]
	}
	return 0
}

func (c *cursor) u24() uint32 {
	if v := c.take(3); v != nil {
		return uint32(v[0])<<16 | uint32(v[1])<<8 | uint32(v[2])
	}
	return 0
}

func (c *cursor) u32() uint32 {
	if v := c.take(4); v != nil {
		return binary.BigEndian.Uint32(v)
	}
	return 0
}

func (c *cursor) u64() uint64 {
	if v := c.take(8); v != nil {
		return binary.BigEndian.Uint64(v)
	}
	return 0
}

// fullBox reads the version and flags that start a FullBox payload.
func (c *cursor) fullBox() (version uint8, flags uint32) {
	return c.u8(), c.u24()
}

// entries reads a table's entry count and checks that the table really
// holds that many entries of size bytes each, before anyone allocates for
// them.
func (c *cursor) entries(size int) (int, error) {
	n := uint64(c.u32())
	if c.bad || n > uint64(len(c.b)/size) {
		return 0, errMP4Truncated
	}
	return int(n), nil
}

// topBox is the header of a box at the top level of the file.
type topBox struct {
	typ       string
	pos       int64 // where the header starts
	hdr       int64 // header length: 8, or 16 with a 64-bit size
	size      int64 // header included
	truncated bool  // the box claims to run past the end of the file
}

// readTopBox reads the header of the box at pos with one small ReadAt.
func readTopBox(r io.ReaderAt, pos, fileSize int64) (topBox, error) {
	var h [16]byte
	n := int64(len(h))
	if fileSize-pos < n {
		n = fileSize - pos
	}
	if n < 8 {
		return topBox{}, errMP4Truncated
	}
	if err := readAt(r, h[:n], pos); err != nil {
		return topBox{}, err
	}
	b := topBox{typ: string(h[4:8]), pos: pos, hdr: 8}
	size := uint64(binary.BigEndian.Uint32(h[:]))
	switch size {
	case 0:
		size = uint64(fileSize - pos)
	case 1:
		if n < 16 {
			return topBox{}, errMP4Truncated
		}
		size, b.hdr = binary.BigEndian.Uint64(h[8:]), 16
	}
	if size < uint64(b.hdr) {
		return topBox{}, fmt.Errorf("mp4 index: box %q at %d has invalid size %d", b.typ, pos, size)
	}
	if size > uint64(fileSize-pos) {
		b.truncated = true
		size = uint64(fileSize - pos)
	}
	b.size = int64(size)
	return b, nil
}

// payload reads the whole payload of b, which the caller has bounded.
func (b topBox) payload(r io.ReaderAt) ([]byte, error) {
	if b.truncated {
		return nil, fmt.Errorf("mp4 index: %q box at %d runs past the end of the file", b.typ, b.pos)
	}
	buf := make([]byte, b.size-b.hdr)
	if err := readAt(r, buf, b.pos+b.hdr); err != nil {
		return nil, fmt.Errorf("mp4 index: reading %q box: %w", b.typ, err)
	}
	return buf, nil
}

// readAt fills p from off. io.ReaderAt may report io.EOF along with a
// complete read that ends exactly at the end of the input.
func readAt(r io.ReaderAt, p []byte, off int64) error {
	n, err := r.ReadAt(p, off)
	if n == len(p) {
		return nil
	}
	if err == nil || errors.Is(err, io.EOF) {
		err = io.ErrUnexpectedEOF
	}
	return err
}

// Codecs the reader handles, each checked against ffprobe by the tests and
// each with a sync sample check. ffprobe takes H.264, HEVC and MPEG-4 key
// flags from the container; for VP9 and AV1 a parser decides them from the
// frame headers, which agree with stss as long as the check passes.
var mp4Codecs = map[string]bool{
	"avc1": true, "avc3": true, "hvc1": true, "hev1": true, "mp4v": true, "vp09": true, "av01": true,
}

// Sample entry types ffmpeg turns into a video stream whatever the track's
// handler says. Such a track ahead of the first "vide" one could be V:0.
var mp4VideoTags = map[string]bool{
	"avc1": true, "avc3": true, "hvc1": true, "hev1": true, "mp4v": true,
	"vp08": true, "vp09": true, "av01": true, "jpeg": true, "mjpa": true,
	"mjpb": true, "png ": true, "apch": true, "apcn": true, "apcs": true,
	"apco": true, "ap4h": true, "ap4x": true, "dvh1": true, "dvhe": true,
	"s263": true, "h263": true, "SVQ3": true, "encv": true,
}

// parseMoov finds the first video track and reads its tables, tracking the
// demuxer state that earlier tracks leave behind.
func parseMoov(moov []byte, fileSize int64) (*mp4Track, error) {
	bs, err := boxes(moov)
	if err != nil {
		return nil, err
	}
	var t *mp4Track
	var movieTS int64
	advanced := true
	ids := map[uint32]bool{}
	chapters := map[uint32]bool{}
	trex := map[uint32]trexDefaults{}
	for _, b := range bs {
		switch b.typ {
		case "mvhd":
			c := cursor{b: b.data}
			v, _ := c.fullBox()
			if v == 1 {
				c.take(16)
			} else {
				c.take(8)
			}
			movieTS = int64(c.u32())
			if c.bad || movieTS == 0 || movieTS > math.MaxInt32 {
				return nil, errors.New("mp4 index: bad mvhd")
			}
		case "trak":
			info, err := inspectTrak(b.data)
			if err != nil {
				return nil, err
			}
			if ids[info.id] {
				return nil, fmt.Errorf("mp4 index: two tracks with id %d", info.id)
			}
			ids[info.id] = true
			for _, id := range info.chapters {
				chapters[id] = true
			}
			if info.empty {
				advanced = false
			}
			if t != nil {
				continue
			}
			if info.handler != "vide" {
				if info.handler != "soun" && mp4VideoTags[info.format] {
					return nil, fmt.Errorf("mp4 index: %q track with handler %q may be the first video stream", info.format, info.handler)
				}
				continue
			}
			if movieTS == 0 {
				return nil, errors.New("mp4 index: no mvhd before the video track")
			}
			t = &mp4Track{id: info.id, movieTS: movieTS, advanced: advanced}
			if err := t.parse(b.data, fileSize); err != nil {
				return nil, err
			}
		case "cmov":
			return nil, errors.New("mp4 index: compressed moov")
		case "mvex":
			kids, err := boxes(b.data)
			if err != nil {
				return nil, err
			}
			for _, k := range kids {
				if k.typ != "trex" {
					continue
				}
				c := cursor{b: k.data}
				c.fullBox()
				id := c.u32()
				d := trexDefaults{stsd: c.u32(), dur: c.u32(), size: c.u32(), flags: c.u32()}
				if _, dup := trex[id]; c.bad || dup {
					return nil, errors.New("mp4 index: bad or repeated trex")
				}
				trex[id] = d
			}
		}
	}
	if t == nil {
		return nil, fmt.Errorf("%w: mp4 has no video track", errNoIndex)
	}
	if chapters[t.id] {
		// ffmpeg turns a chapter track into cover art, which V:0 skips.
		return nil, errors.New("mp4 index: video track is a chapter track")
	}
	t.trex, t.hasTrex = trex[t.id]
	return t, nil
}

// trakInfo is what the reader needs to know about every track.
type trakInfo struct {
	id       uint32
	handler  string
	format   string
	empty    bool // no samples in the moov: ffmpeg then turns advanced edit lists off
	chapters []uint32
	stbl     []box // its sample table, nil without one
}

// inspectTrak reads a track's id, handler, first sample entry type and
// whether its sample tables are empty, tolerating missing boxes the way
// ffmpeg does.
func inspectTrak(trak []byte) (trakInfo, error) {
	var info trakInfo
	bs, err := boxes(trak)
	if err != nil {
		return info, err
	}
	tkhd, ok, err := only(bs, "tkhd")
	if err != nil || !ok {
		return info, errors.New("mp4 index: track without one tkhd")
	}
	c := cursor{b: tkhd}
	if v, _ := c.fullBox(); v == 1 {
		c.take(16)
	} else {
		c.take(8)
	}
	info.id = c.u32()
	if c.bad {
		return info, errMP4Truncated
	}
	tref, _, err := descend(bs, "tref")
	if err != nil {
		return info, err
	}
	for _, b := range tref {
		if b.typ == "chap" {
			c := cursor{b: b.data}
			for len(c.b) >= 4 {
				info.chapters = append(info.chapters, c.u32())
			}
		}
	}
	mdia, ok, err := descend(bs, "mdia")
	if err != nil {
		return info, err
	}
	hdlr, _, err := only(mdia, "hdlr")
	if err != nil {
		return info, err
	}
	if len(hdlr) >= 12 {
		info.handler = string(hdlr[8:12])
	}
	stbl, hasStbl, err := descend(mdia, "minf", "stbl")
	if err != nil {
		return info, err
	}
	if !ok || !hasStbl {
		// ffmpeg sees a track without samples.
		info.empty = true
		return info, nil
	}
	info.stbl = stbl
	stsd, _, err := only(stbl, "stsd")
	if err != nil {
		return info, err
	}
	if len(stsd) >= 16 {
		info.format = string(stsd[12:16])
	}
	// Entry counts decide emptiness, as ffmpeg's sanity check does.
	info.empty = true
	for _, f := range []struct {
		typ string
		at  int
	}{{"stts", 4}, {"stco", 4}, {"co64", 4}, {"stsz", 8}, {"stz2", 8}} {
		data, _, err := only(stbl, f.typ)
		if err != nil {
			return info, err
		}
		if len(data) >= f.at+4 && binary.BigEndian.Uint32(data[f.at:]) != 0 {
			info.empty = false
		}
	}
	return info, nil
}

// parse reads the video track's timescale, codec, edit list and samples.
func (t *mp4Track) parse(trak []byte, fileSize int64) error {
	bs, err := boxes(trak)
	if err != nil {
		return err
	}
	edts, _, err := descend(bs, "edts")
	if err != nil {
		return err
	}
	if t.edits, err = parseElst(edts); err != nil {
		return err
	}
	mdia, err := mustDescend(bs, "mdia")
	if err != nil {
		return err
	}
	mdhd, ok, err := only(mdia, "mdhd")
	if err != nil || !ok {
		return errors.New("mp4 index: video track without one mdhd")
	}
	c := cursor{b: mdhd}
	if v, _ := c.fullBox(); v == 1 {
		c.take(16)
	} else {
		c.take(8)
	}
	t.timescale = int64(c.u32())
	if c.bad || t.timescale == 0 || t.timescale > math.MaxInt32 {
		return errors.New("mp4 index: bad mdhd timescale")
	}
	minf, err := mustDescend(mdia, "minf")
	if err != nil {
		return err
	}
	if err := checkDref(minf); err != nil {
		return err
	}
	stbl, err := mustDescend(minf, "stbl")
	if err != nil {
		return err
	}
	if err := t.parseStsd(stbl); err != nil {
		return err
	}
	return t.parseSamples(stbl, fileSize)
}

// parseElst reads an edit list and declines the shapes whose effect on
// timestamps ffmpeg's demuxer does not make predictable: anything but an
// optional empty edit followed by one edit at normal speed.
func parseElst(edts []box) ([]mp4Edit, error) {
	data, ok, err := only(edts, "elst")
	if err != nil || !ok {
		return nil, err
	}
	c := cursor{b: data}
	v, _ := c.fullBox()
	size := 12
	if v == 1 {
		size = 20
	}
	n, err := c.entries(size)
	if err != nil {
		return nil, err
	}
	if len(c.b) != n*size {
		// ffmpeg recounts the entries from the box size.
		return nil, errors.New("mp4 index: elst entry count does not match its size")
	}
	var edits []mp4Edit
	for i := 0; i < n; i++ {
		var e mp4Edit
		if v == 1 {
			e.dur, e.time = int64(c.u64()), int64(c.u64())
		} else {
			e.dur, e.time = int64(c.u32()), int64(int32(c.u32()))
		}
		e.rate = c.u32()
		if e.dur < 0 || e.dur > maxMP4Time || e.time < -1 || e.time > maxMP4Time {
			return nil, fmt.Errorf("mp4 index: edit %d out of range", i)
		}
		edits = append(edits, e)
	}
	switch {
	case n == 0:
	case n == 1:
	case n == 2 && edits[0].time == -1 && edits[1].time >= 0:
	default:
		return nil, fmt.Errorf("mp4 index: unsupported edit list of %d entries", n)
	}
	for _, e := range edits {
		if e.time >= 0 && e.rate != fixedOne {
			return nil, errors.New("mp4 index: edit at a rate other than 1")
		}
	}
	return edits, nil
}

// checkDref declines tracks whose data lives in another file.
func checkDref(minf []box) error {
	dref, _, err := descend(minf, "dinf")
	if err != nil {
		return err
	}
	data, ok, err := only(dref, "dref")
	if err != nil || !ok {
		return err
	}
	if len(data) < 8 {
		return errMP4Truncated
	}
	entries, err := boxes(data[8:])
	if err != nil {
		return err
	}
	// Flag 1 means "in this file"; an entry without it but also without a
	// location says the same.
	for _, e := range entries {
		if len(e.data) < 4 || (e.data[3]&1 == 0 && len(e.data) > 4) {
			return fmt.Errorf("mp4 index: %q data reference to another file", e.typ)
		}
	}
	return nil
}

// sampleEntry is a video track's one sample description.
func sampleEntry(stbl []box) (box, error) {
	data, ok, err := only(stbl, "stsd")
	if err != nil || !ok {
		return box{}, errors.New("mp4 index: video track without one stsd")
	}
	c := cursor{b: data}
	c.fullBox()
	// More than one sample description makes ffmpeg skip samples by
	// description index.
	if c.u32() != 1 || c.bad {
		return box{}, errors.New("mp4 index: video track needs exactly one sample description")
	}
	entries, err := boxes(c.b)
	if err != nil || len(entries) != 1 {
		return box{}, errors.New("mp4 index: bad sample description")
	}
	return entries[0], nil
}

// entryBoxes are the boxes of a visual sample entry, after its fixed
// fields: the codec record (avcC, hvcC, av1C...) among them.
func entryBoxes(e box) ([]box, error) {
	const visualEntry = 78 // fixed fields of a VisualSampleEntry
	if len(e.data) < visualEntry {
		return nil, errMP4Truncated
	}
	return boxes(e.data[visualEntry:])
}

// parseStsd reads the codec and, for H.264 and HEVC, the NAL length size.
func (t *mp4Track) parseStsd(stbl []box) error {
	e, err := sampleEntry(stbl)
	if err != nil {
		return err
	}
	t.codec = e.typ
	if !mp4Codecs[t.codec] {
		return fmt.Errorf("mp4 index: codec %q not supported", t.codec)
	}
	var cfgType string
	var lenAt int
	switch t.codec {
	case "avc1", "avc3":
		cfgType, lenAt = "avcC", 4
	case "hvc1", "hev1":
		cfgType, lenAt = "hvcC", 21
	default:
		return nil
	}
	kids, err := entryBoxes(e)
	if err != nil {
		return err
	}
	cfg, ok, err := only(kids, cfgType)
	if err != nil || !ok || len(cfg) <= lenAt {
		return fmt.Errorf("mp4 index: %s without a usable %s", t.codec, cfgType)
	}
	t.nalLen = int(cfg[lenAt]&3) + 1
	return nil
}

// parseSamples expands the sample tables into one entry per sample, with
// ffmpeg's reading of each table.
func (t *mp4Track) parseSamples(stbl []box, fileSize int64) error {
	tab := map[string][]byte{}
	for _, typ := range []string{"stts", "ctts", "stss", "stsc", "stsz", "stco", "co64", "stps", "stz2"} {
		data, ok, err := only(stbl, typ)
		if err != nil {
			return err
		}
		if ok {
			tab[typ] = data
		}
	}
	for _, b := range stbl {
		if b.typ == "sbgp" && len(b.data) >= 8 && string(b.data[4:8]) == "rap " {
			return errors.New("mp4 index: rap sample groups mark extra keyframes")
		}
	}
	if tab["stps"] != nil || tab["stz2"] != nil {
		return errors.New("mp4 index: stps or stz2 not supported")
	}

	// Sample sizes set the sample count.
	c := cursor{b: tab["stsz"]}
	c.fullBox()
	fixed := c.u32()
	n := int(c.u32())
	if c.bad && tab["stsz"] != nil {
		return errMP4Truncated
	}
	var sizes []byte
	if fixed == 0 {
		if n > len(c.b)/4 {
			return errMP4Truncated
		}
		sizes = c.b
	} else if uint64(n)*uint64(fixed) > uint64(fileSize) {
		return errors.New("mp4 index: samples larger than the file")
	}
	if n > maxMP4Samples {
		return fmt.Errorf("mp4 index: %d samples is too many", n)
	}
	if n == 0 {
		return t.parseEmpty(tab)
	}
	t.samples = make([]mp4Sample, n)
	for i := range t.samples {
		s := fixed
		if fixed == 0 {
			s = uint32(sizes[4*i])<<24 | uint32(sizes[4*i+1])<<16 | uint32(sizes[4*i+2])<<8 | uint32(sizes[4*i+3])
		}
		if s > 0x3FFFFFFF {
			return errors.New("mp4 index: sample too large")
		}
		t.samples[i].size = s
	}

	if err := t.parseStts(tab["stts"]); err != nil {
		return err
	}
	if err := t.parseCtts(tab["ctts"]); err != nil {
		return err
	}
	if err := t.parseStss(tab["stss"]); err != nil {
		return err
	}
	return t.parseChunks(tab["stsc"], tab["stco"], tab["co64"])
}

// parseEmpty accepts the empty tables of a fragmented file's moov.
func (t *mp4Track) parseEmpty(tab map[string][]byte) error {
	for _, typ := range []string{"stts", "ctts", "stsc", "stco", "co64"} {
		if data := tab[typ]; len(data) >= 8 && (data[4]|data[5]|data[6]|data[7]) != 0 {
			return fmt.Errorf("mp4 index: %s lists entries for a track without samples", typ)
		}
	}
	return nil
}

func (t *mp4Track) parseStts(data []byte) error {
	c := cursor{b: data}
	c.fullBox()
	n, err := c.entries(8)
	if err != nil {
		return err
	}
	var dts int64
	i := 0
	for e := 0; e < n; e++ {
		count, delta := int64(c.u32()), int64(c.u32())
		// ffmpeg rewrites deltas it takes for negative numbers.
		if delta > math.MaxInt32 {
			return errors.New("mp4 index: stts delta out of range")
		}
		if count > int64(len(t.samples)-i) {
			return errors.New("mp4 index: stts lists more samples than stsz")
		}
		for ; count > 0; count-- {
			t.samples[i].dts = dts
			dts += delta
			i++
		}
	}
	if i != len(t.samples) {
		return errors.New("mp4 index: stts lists fewer samples than stsz")
	}
	t.duration = dts
	return nil
}

func (t *mp4Track) parseCtts(data []byte) error {
	if data == nil {
		return nil
	}
	c := cursor{b: data}
	c.fullBox()
	n, err := c.entries(8)
	if err != nil {
		return err
	}
	i := 0
	for e := 0; e < n; e++ {
		// ffmpeg reads offsets as signed whatever the box version says.
		count, off := c.u32(), int32(c.u32())
		if count == 0 {
			continue // ffmpeg skips these
		}
		if int64(count) > int64(len(t.samples)-i) || off <= -(1<<28) || off >= 1<<28 {
			return errors.New("mp4 index: ctts does not match the samples")
		}
		if e+2 < n && -int64(off) > t.moovShift {
			t.moovShift = -int64(off)
		}
		for ; count > 0; count-- {
			t.samples[i].cts = off
			i++
		}
	}
	if i != len(t.samples) {
		return errors.New("mp4 index: ctts lists fewer samples than stsz")
	}
	t.hasCtts = true
	return nil
}

// parseStss marks sync samples the way ffmpeg matches them: one pass with
// a cursor that only moves on a match, numbering from 1 unless the first
// entry is 0.
func (t *mp4Track) parseStss(data []byte) error {
	if data == nil {
		for i := range t.samples {
			t.samples[i].key = true
		}
		return nil
	}
	c := cursor{b: data}
	c.fullBox()
	n, err := c.entries(4)
	if err != nil {
		return err
	}
	if n == 0 {
		// ffmpeg then has a parser find the keyframes.
		return errors.New("mp4 index: empty stss")
	}
	list := make([]uint32, n)
	for i := range list {
		list[i] = c.u32()
	}
	off := uint32(0)
	if list[0] > 0 {
		off = 1
	}
	j := 0
	for i := range t.samples {
		if uint32(i)+off == list[j] {
			t.samples[i].key = true
			if j+1 < n {
				j++
			}
		}
	}
	return nil
}

// parseChunks places samples in chunks to find their offsets.
func (t *mp4Track) parseChunks(stsc, stco, co64 []byte) error {
	var offsets []uint64
	switch {
	case stco != nil && co64 != nil:
		return errors.New("mp4 index: both stco and co64")
	case stco != nil:
		c := cursor{b: stco}
		c.fullBox()
		n, err := c.entries(4)
		if err != nil {
			return err
		}
		offsets = make([]uint64, n)
		for i := range offsets {
			offsets[i] = uint64(c.u32())
		}
	case co64 != nil:
		c := cursor{b: co64}
		c.fullBox()
		n, err := c.entries(8)
		if err != nil {
			return err
		}
		offsets = make([]uint64, n)
		for i := range offsets {
			offsets[i] = c.u64()
		}
	}
	c := cursor{b: stsc}
	c.fullBox()
	n, err := c.entries(12)
	if err != nil || n == 0 {
		return errors.New("mp4 index: bad stsc")
	}
	type run struct{ first, count uint32 }
	runs := make([]run, n)
	for i := range runs {
		runs[i] = run{c.u32(), c.u32()}
		// ffmpeg repairs invalid entries in ways not worth copying, and
		// skips samples whose description is not the first.
		if c.u32() != 1 || runs[i].count == 0 || (i == 0 && runs[i].first != 1) ||
			(i > 0 && runs[i].first <= runs[i-1].first) {
			return errors.New("mp4 index: unsupported stsc entry")
		}
	}
	if uint64(runs[n-1].first) > uint64(len(offsets)) {
		return errors.New("mp4 index: stsc refers to missing chunks")
	}
	i, r := 0, 0
	for chunk, off := range offsets {
		if r+1 < n && uint64(chunk+1) == uint64(runs[r+1].first) {
			r++
		}
		pos := off
		for k := uint32(0); k < runs[r].count; k++ {
			if i == len(t.samples) {
				return errors.New("mp4 index: chunks hold more samples than stsz")
			}
			if pos > math.MaxInt64/2 {
				return errors.New("mp4 index: chunk offset out of range")
			}
			t.samples[i].pos = int64(pos)
			pos += uint64(t.samples[i].size)
			i++
		}
	}
	if i != len(t.samples) {
		return errors.New("mp4 index: chunks hold fewer samples than stsz")
	}
	return nil
}
