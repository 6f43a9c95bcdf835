package keyframes

import "io"

// CodecConfig returns the codec configuration record of the first video
// track of an MP4 or Matroska file, the bytes ffmpeg reads as the stream's
// extradata: an avcC, hvcC or av1C payload, or Matroska's CodecPrivate.
// It reads the header alone, so that the probe needs no second ffprobe for
// the containers that have one. ok is false for other files and tracks
// without a record.
func CodecConfig(r io.ReaderAt, size int64) (config []byte, ok bool) {
	if isMatroska(r, size) {
		return matroskaConfig(r, size)
	}
	if sniffMP4(r, size) != nil {
		return nil, false
	}
	return mp4Config(r, size)
}

// matroskaConfig is the CodecPrivate of the track the index reader reads;
// a track it declines (a CodecDelay...) leaves the record to ffprobe.
func matroskaConfig(r io.ReaderAt, size int64) ([]byte, bool) {
	s, err := openMKVSegment(r, size)
	if err != nil || s.locate(idTracks) != nil {
		return nil, false
	}
	track, err := s.videoTrack()
	return track.private, err == nil && len(track.private) > 0
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
		info, err := inspectTrak(b.data)
		if err != nil {
			return nil, false
		}
		if info.handler != "vide" {
			continue
		}
		if info.stbl == nil {
			return nil, false
		}
		e, err := sampleEntry(info.stbl)
		if err != nil {
			return nil, false
		}
		kids, err := entryBoxes(e)
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
	return nil, false
}
