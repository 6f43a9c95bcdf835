package playlist

import "math"

// h264Levels is ITU-T H.264 Annex A Table A-1 in ascending order (level 1b
// left out: it is only signalled through constraint flags). maxBR is in
// units of 1000 bits/s for Baseline/Main; High scales it by 1.25
// (cpbBrVclFactor 1250, Table A-2).
var h264Levels = []struct {
	idc     int
	maxMBPS float64 // macroblocks per second
	maxFS   int     // macroblocks per frame
	maxBR   float64
}{
	{10, 1485, 99, 64},
	{11, 3000, 396, 192},
	{12, 6000, 396, 384},
	{13, 11880, 396, 768},
	{20, 11880, 396, 2000},
	{21, 19800, 792, 4000},
	{22, 20250, 1620, 4000},
	{30, 40500, 1620, 10000},
	{31, 108000, 3600, 14000},
	{32, 216000, 5120, 20000},
	{40, 245760, 8192, 20000},
	{41, 245760, 8192, 50000},
	{42, 522240, 8704, 50000},
	{50, 589824, 22080, 135000},
	{51, 983040, 36864, 240000},
	{52, 2073600, 36864, 240000},
	{60, 4177920, 139264, 240000},
	{61, 8355840, 139264, 480000},
	{62, 16711680, 139264, 800000},
}

// H264Level picks the lowest H.264 level whose MaxMBPS, MaxFS and MaxBR
// (with the High-profile 1.25 factor, since hlsd encodes High) fit width x
// height at fps and maxrate bits/s. It also applies the A.3.1 rule that
// neither dimension may exceed sqrt(8*MaxFS) macroblocks, which keeps very
// wide frames from claiming a level a decoder cannot hold. Returns level_idc
// (31 for 3.1); 62 if nothing fits. Non-positive inputs are not constraints.
func H264Level(width, height int, fps float64, maxrate int) int {
	mbW, mbH := (width+15)/16, (height+15)/16
	fs := mbW * mbH
	mbps := float64(fs) * fps
	for _, l := range h264Levels {
		side := int(math.Sqrt(float64(8 * l.maxFS)))
		if fs <= l.maxFS && mbW <= side && mbH <= side &&
			mbps <= l.maxMBPS && float64(maxrate) <= l.maxBR*1250 {
			return l.idc
		}
	}
	return h264Levels[len(h264Levels)-1].idc
}

// vp9PicSizes is the largest picture of each VP9 level
// (webmproject.org/vp9/levels). The levels that differ only in sample rate
// are left out: ffmpeg's MP4 muxer, which writes the vpcC of a copy, picks
// the level from the picture size alone.
var vp9PicSizes = []struct {
	level   int // 10*major + minor, as in the codec string
	picSize int
}{
	{10, 36864},
	{11, 73728},
	{20, 122880},
	{21, 245760},
	{30, 552960},
	{31, 983040},
	{40, 2228224},
	{50, 8912896},
	{60, 35651584},
}

// vp9LevelBySize is 0 for a picture larger than any level, as in ffmpeg.
func vp9LevelBySize(width, height int) int {
	size := width * height
	if size <= 0 {
		return 0
	}
	for _, l := range vp9PicSizes {
		if size <= l.picSize {
			return l.level
		}
	}
	return 0
}

// av1Levels is AV1 Annex A.3; idx is seq_level_idx (4*(major-2)+minor).
var av1Levels = []struct {
	idx         int
	picSize     int
	maxW, maxH  int
	displayRate float64
}{
	{0, 147456, 2048, 1152, 4423680},
	{1, 278784, 2816, 1584, 8363520},
	{4, 665856, 4352, 2448, 19975680},
	{5, 1065024, 5504, 3096, 31950720},
	{8, 2359296, 6144, 3456, 70778880},
	{9, 2359296, 6144, 3456, 141557760},
	{12, 8912896, 8192, 4352, 267386880},
	{13, 8912896, 8192, 4352, 534773760},
	{14, 8912896, 8192, 4352, 1069547520},
	{15, 8912896, 8192, 4352, 1069547520},
	{16, 35651584, 16384, 8704, 1069547520},
	{17, 35651584, 16384, 8704, 2139095040},
	{18, 35651584, 16384, 8704, 4278190080},
	{19, 35651584, 16384, 8704, 4278190080},
}

func av1Level(width, height int, fps float64) int {
	size := width * height
	for _, l := range av1Levels {
		if size <= l.picSize && width <= l.maxW && height <= l.maxH && float64(size)*fps <= l.displayRate {
			return l.idx
		}
	}
	// 31 is the spec's "maximum parameters" level: no constraints.
	return 31
}
