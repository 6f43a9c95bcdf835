package keyframes

import (
	"bytes"
	"encoding/binary"
	"io"
)

const idCodecPrivate = 0x63A2

// CodecConfig returns the codec configuration record of the first video
// track of an MP4 or Matroska file, the bytes ffmpeg reads as the stream's
// extradata: an avcC, hvcC or av1C payload, or Matroska's CodecPrivate.
// It reads the header alone, so that the probe needs no second ffprobe for
// the containers that have one. ok is false for other files and tracks
// without a record.
func CodecConfig(r io.ReaderAt, size int64) (config []byte, ok bool) {
	var magic [4]byte
	if size >= 4 && readAt(r, magic[:], 0) == nil && binary.BigEndian.Uint32(magic[:]) == idEBML {
		return matroskaConfig(r, size)
	}
	if sniffMP4(r, size) != nil {
		return nil, false
	}
	return mp4Config(r, size)
}

func matroskaConfig(r io.ReaderAt, size int64) ([]byte, bool) {
	s, err := openMKVSegment(r, size)
	if err != nil || s.locate(idTracks) != nil {
		return nil, false
	}
	body, err := s.readTop(idTracks, mkvMaxHeadElement)
	if err != nil {
		return nil, false
	}
	var config []byte
	done := false
	_ = ebmlChildren(body, func(id uint32, data []byte) error {
		if id != idTrackEntry || done {
			return nil
		}
		var kind uint64
		var codec, private []byte
		_ = ebmlChildren(data, func(id uint32, data []byte) error {
			switch id {
			case idTrackType:
				kind, _ = ebmlUint(data)
			case idCodecID:
				codec = data
			case idCodecPrivate:
				private = data
			}
			return nil
		})
		// The first video track is ffprobe's V:0 (see videoTrack).
		if kind == mkvTrackTypeVideo && bytes.HasPrefix(codec, []byte("V")) {
			config, done = private, true
		}
		return nil
	})
	return config, len(config) > 0
}

func mp4Config(r io.ReaderAt, size int64) ([]byte, bool) {
	moov, _, _, err := scanMP4(r, size)
	if err != nil {
		return nil, false
	}
	bs, err := boxes(moov)
	if err != nil {
		return nil, false
	}
	for _, b := range bs {
		if b.typ != "trak" {
			continue
		}
		trak, err := boxes(b.data)
		if err != nil {
			return nil, false
		}
		mdia, ok, err := descend(trak, "mdia")
		if err != nil || !ok {
			continue
		}
		hdlr, ok, err := only(mdia, "hdlr")
		if err != nil || !ok || len(hdlr) < 12 || string(hdlr[8:12]) != "vide" {
			continue
		}
		stbl, ok, err := descend(mdia, "minf", "stbl")
		if err != nil || !ok {
			return nil, false
		}
		return sampleEntryConfig(stbl)
	}
	return nil, false
}

// sampleEntryConfig is the configuration box of a video track's one
// sample description.
func sampleEntryConfig(stbl []box) ([]byte, bool) {
	data, ok, err := only(stbl, "stsd")
	if err != nil || !ok {
		return nil, false
	}
	c := cursor{b: data}
	c.fullBox()
	if c.u32() != 1 || c.bad {
		return nil, false
	}
	entries, err := boxes(c.b)
	const visualEntry = 78 // fixed fields of a VisualSampleEntry
	if err != nil || len(entries) != 1 || len(entries[0].data) < visualEntry {
		return nil, false
	}
	kids, err := boxes(entries[0].data[visualEntry:])
	if err != nil {
		return nil, false
	}
	for _, typ := range []string{"avcC", "hvcC", "av1C"} {
		if cfg, ok, err := only(kids, typ); err == nil && ok && len(cfg) > 0 {
			return cfg, true
		}
	}
	return nil, false
}
