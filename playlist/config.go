package playlist

import (
	"bytes"
	"fmt"
	"strings"
)

// ConfigCodec returns the codec string of a stream from its own codec
// configuration, as ffprobe gives it in extradata: an avcC, hvcC or av1C
// record (MP4, Matroska) or Annex B parameter sets (MPEG-TS). Clients
// filter variants on CODECS, so the string must say what the sample entry
// of the copied stream says, not what its profile name suggests. ok is
// false when config holds nothing usable; the caller then derives the
// string from ffprobe's profile and level.
func ConfigCodec(codec string, config []byte) (string, bool) {
	switch codec {
	case "h264":
		return AVCConfigCodec(config)
	case "hevc":
		return HEVCConfigCodec(config)
	case "av1":
		return AV1ConfigCodec(config)
	}
	return "", false
}

// AVCConfigCodec returns "avc1.PPCCLL" from an avcC record or from the
// first SPS of Annex B parameter sets: profile_idc, the constraint flags
// byte and level_idc, which is what ffmpeg copies into the avcC of the
// fMP4 it writes. The SPS bytes are taken as they are, emulation
// prevention included, as ffmpeg takes them.
func AVCConfigCodec(config []byte) (string, bool) {
	var ptl []byte
	if annexB(config) {
		for _, nal := range nalUnits(config) {
			if len(nal) >= 4 && nal[0]&0x1f == 7 {
				ptl = nal[1:4]
				break
			}
		}
	} else if len(config) >= 4 && config[0] == 1 {
		ptl = config[1:4]
	}
	// profile_idc 0 is no profile: what follows is not a record.
	if ptl == nil || ptl[0] == 0 {
		return "", false
	}
	return fmt.Sprintf("avc1.%02x%02x%02x", ptl[0], ptl[1], ptl[2]), true
}

// hevcPTL is the general profile, tier and level of an HEVC stream: the
// fields of the codec string, laid out as in hvcC and in the
// profile_tier_level() of a VPS or SPS.
type hevcPTL struct {
	space, tier, idc byte
	compat           uint32
	constraint       [6]byte
	level            byte
}

// readPTL reads the 12 bytes common to hvcC (from its second byte) and
// profile_tier_level().
func readPTL(b []byte) hevcPTL {
	p := hevcPTL{
		space: b[0] >> 6, tier: b[0] >> 5 & 1, idc: b[0] & 0x1f,
		compat: uint32(b[1])<<24 | uint32(b[2])<<16 | uint32(b[3])<<8 | uint32(b[4]),
		level:  b[11],
	}
	copy(p.constraint[:], b[5:11])
	return p
}

// String formats p as ISO/IEC 14496-15 Annex E does: the compatibility
// flags bit-reversed in hex without leading zeros, constraint bytes up to
// the last non-zero one. Hex is lowercase, as mp4box.js writes it.
func (p hevcPTL) String() string {
	var b strings.Builder
	b.WriteString("hvc1.")
	if p.space > 0 {
		b.WriteByte("ABC"[p.space-1])
	}
	rev := uint32(0)
	for i := range 32 {
		rev |= (p.compat >> i & 1) << (31 - i)
	}
	tier := 'L'
	if p.tier == 1 {
		tier = 'H'
	}
	fmt.Fprintf(&b, "%d.%x.%c%d", p.idc, rev, tier, p.level)
	n := len(p.constraint)
	for n > 0 && p.constraint[n-1] == 0 {
		n--
	}
	for _, c := range p.constraint[:n] {
		fmt.Fprintf(&b, ".%x", c)
	}
	return b.String()
}

// HEVCConfigCodec returns "hvc1.…" from an hvcC record, or from the VPS and
// SPS of Annex B parameter sets merged the way ffmpeg merges them into the
// hvcC it writes for a copy: highest tier, profile and level, flags that
// every parameter set declares.
func HEVCConfigCodec(config []byte) (string, bool) {
	if !annexB(config) {
		if len(config) < 23 || config[0] != 1 {
			return "", false
		}
		return readPTL(config[1:13]).String(), true
	}
	merged := hevcPTL{compat: 0xffffffff, constraint: [6]byte{0xff, 0xff, 0xff, 0xff, 0xff, 0xff}}
	found := false
	for _, nal := range nalUnits(config) {
		if len(nal) < 2 {
			continue
		}
		// The general profile_tier_level() follows 4 bytes of VPS header
		// fields or 1 byte of SPS ones, after the 2-byte NAL unit header.
		var off int
		switch nal[0] >> 1 & 0x3f {
		case 32: // VPS
			off = 2 + 4
		case 33: // SPS
			off = 2 + 1
		default:
			continue
		}
		rbsp := unescape(nal, off+12)
		if len(rbsp) < off+12 {
			continue
		}
		p := readPTL(rbsp[off : off+12])
		merged.space = p.space
		if merged.tier < p.tier {
			merged.level = p.level
		} else {
			merged.level = max(merged.level, p.level)
		}
		merged.tier = max(merged.tier, p.tier)
		merged.idc = max(merged.idc, p.idc)
		merged.compat &= p.compat
		for i := range merged.constraint {
			merged.constraint[i] &= p.constraint[i]
		}
		found = true
	}
	if !found || merged.idc == 0 {
		return "", false
	}
	return merged.String(), true
}

// AV1ConfigCodec returns "av01.P.LLT.DD" from an av1C record: the short
// form, as Apple, hls.js and mp4box.js write it. A bare sequence header OBU
// (the extradata of AV1 from IVF or MPEG-TS) is not parsed.
func AV1ConfigCodec(config []byte) (string, bool) {
	// marker 1, version 1.
	if len(config) < 4 || config[0] != 0x81 {
		return "", false
	}
	profile, level := config[1]>>5, config[1]&0x1f
	tier, high, twelve := config[2]>>7&1, config[2]>>6&1, config[2]>>5&1
	if profile > 2 {
		return "", false
	}
	depth := 8
	switch {
	case profile == 2 && high == 1 && twelve == 1:
		depth = 12
	case high == 1:
		depth = 10
	}
	t := 'M'
	if tier == 1 {
		t = 'H'
	}
	return fmt.Sprintf("av01.%d.%02d%c.%02d", profile, level, t, depth), true
}

// annexB reports whether b starts with a start code, which is how ffmpeg
// tells parameter sets from a configuration record.
func annexB(b []byte) bool {
	return bytes.HasPrefix(b, []byte{0, 0, 1}) || bytes.HasPrefix(b, []byte{0, 0, 0, 1})
}

// nalUnits splits Annex B data at its start codes.
func nalUnits(b []byte) [][]byte {
	var out [][]byte
	for {
		i := bytes.Index(b, []byte{0, 0, 1})
		if i < 0 {
			return out
		}
		b = b[i+3:]
		end := bytes.Index(b, []byte{0, 0, 1})
		if end < 0 {
			end = len(b)
		}
		// The zero before a 4-byte start code belongs to it.
		nal := bytes.TrimRight(b[:end], "\x00")
		if len(nal) > 0 {
			out = append(out, nal)
		}
		b = b[end:]
	}
}

// unescape removes the emulation prevention bytes (0x03 after two zeros)
// from a NAL unit, stopping once n bytes are out.
func unescape(nal []byte, n int) []byte {
	out := make([]byte, 0, n)
	zeros := 0
	for _, c := range nal {
		if len(out) >= n {
			break
		}
		if zeros >= 2 && c == 3 {
			zeros = 0
			continue
		}
		if c == 0 {
			zeros++
		} else {
			zeros = 0
		}
		out = append(out, c)
	}
	return out
}
