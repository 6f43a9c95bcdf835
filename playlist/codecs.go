package playlist

import (
	"fmt"
	"strings"
)

// h264Profiles maps ffprobe's profile names to profile_idc and the
// constraint flags byte of the avc1 string (RFC 6381 section 3.3).
// Intra profiles carry constraint_set3_flag (0x10).
var h264Profiles = map[string][2]byte{
	"Constrained Baseline":  {0x42, 0xe0},
	"Baseline":              {0x42, 0x00},
	"Main":                  {0x4d, 0x40},
	"Extended":              {0x58, 0x00},
	"High":                  {0x64, 0x00},
	"Progressive High":      {0x64, 0x08},
	"Constrained High":      {0x64, 0x0c},
	"High 10":               {0x6e, 0x00},
	"High 10 Intra":         {0x6e, 0x10},
	"High 4:2:2":            {0x7a, 0x00},
	"High 4:2:2 Intra":      {0x7a, 0x10},
	"High 4:4:4 Predictive": {0xf4, 0x00},
	"High 4:4:4 Intra":      {0xf4, 0x10},
}

// H264Codec returns "avc1.PPCCLL" for an ffprobe profile name and level_idc.
// Hex digits are lowercase, as in Apple's authoring examples ("avc1.64001f").
// Unknown profiles are reported as High, the profile hlsd encodes.
func H264Codec(profile string, level int) string {
	p, ok := h264Profiles[profile]
	if !ok {
		p = h264Profiles["High"]
	}
	return fmt.Sprintf("avc1.%02x%02x%02x", p[0], p[1], byte(level))
}

// HEVCCodec guesses "hvc1.P.C.LNN.b0" (ISO/IEC 14496-15 Annex E) from an
// ffprobe profile name and general_level_idc, for a stream whose hvcC or
// parameter sets could not be read (HEVCConfigCodec). Main sets
// compatibility flags 1 and 2 (Main streams are decodable by Main 10
// decoders), Main 10 flag 2, Rext flag 4; other profiles are reported as
// Main. Tier is Main: ffprobe does not report it. b0 is the usual
// progressive, frame-only constraint byte. An unknown level (<= 0) is
// written as 5.1 (153), enough for 2160p60.
func HEVCCodec(profile string, level int) string {
	p := hevcPTL{idc: 1, compat: 1<<30 | 1<<29, constraint: [6]byte{0xb0}, level: byte(level)}
	switch profile {
	case "Main 10":
		p.idc, p.compat = 2, 1<<29
	case "Rext":
		p.idc, p.compat = 4, 1<<27
	}
	if level <= 0 || level > 255 {
		p.level = 153
	}
	return p.String()
}

// VP9Codec returns "vp09.PP.LL.DD" (VP9 codec ISO-BMFF binding, short
// form) as ffmpeg's MP4 muxer fills the vpcC of a copied stream: WebM
// rarely carries the features, so the muxer derives them, and CODECS must
// say what the init segment says. ffprobe's level is used when known; it
// usually is not (-99), and then the level comes from the frame size alone,
// since the muxer is given no frame rate. An unknown profile follows from
// the bit depth and chroma subsampling.
func VP9Codec(profile string, level, width, height, bitDepth int, yuv420 bool) string {
	p := -1
	fmt.Sscanf(strings.TrimPrefix(profile, "Profile "), "%d", &p)
	if p < 0 || p > 3 {
		p = 0
		if !yuv420 {
			p = 1
		}
		if depth(bitDepth) > 8 {
			p += 2
		}
	}
	if level <= 0 {
		level = vp9LevelBySize(width, height)
	}
	return fmt.Sprintf("vp09.%02d.%02d.%02d", p, level, depth(bitDepth))
}

// AV1Codec returns "av01.P.LLM.DD" (AV1 ISO-BMFF binding, Main tier).
// level is seq_level_idx as ffprobe reports it. Although 0 is a real level
// (2.0), <= 0 is treated as unknown and derived from the frame size and rate:
// a genuine 2.0 stream derives back to 0, and a missing field decoded as 0
// must not under-declare a large stream.
func AV1Codec(profile string, level, width, height int, fps float64, bitDepth int) string {
	p := 0
	switch profile {
	case "High":
		p = 1
	case "Professional":
		p = 2
	}
	if level <= 0 {
		level = av1Level(width, height, fps)
	}
	return fmt.Sprintf("av01.%d.%02dM.%02d", p, level, depth(bitDepth))
}

// depth defaults to 8 bits: ffprobe leaves bits_per_raw_sample empty for
// many 8-bit streams.
func depth(bits int) int {
	if bits <= 0 {
		return 8
	}
	return bits
}

// aacObjectTypes maps ffprobe's AAC profile names to MPEG-4 Audio Object
// Types (ISO/IEC 14496-3), the last field of "mp4a.40.N".
var aacObjectTypes = map[string]int{
	"Main":     1,
	"LC":       2,
	"SSR":      3,
	"LTP":      4,
	"HE-AAC":   5,
	"LD":       23,
	"HE-AACv2": 29,
	"ELD":      39,
}

// AACCodec returns "mp4a.40.N"; unknown profiles are reported as LC, which
// every HLS client supports.
func AACCodec(profile string) string {
	aot, ok := aacObjectTypes[profile]
	if !ok {
		aot = 2
	}
	return fmt.Sprintf("mp4a.40.%d", aot)
}
