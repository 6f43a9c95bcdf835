package keyframes

import (
	"math"
	"strconv"
	"strings"
)

// ParseLine parses one line of
// `ffprobe -show_entries packet=pts_time,size,flags -of csv=print_section=0`.
// ffprobe prints the fields in its own order (pts_time, size, flags), not in
// the order they were requested, and may append extra fields or commas.
// ok is false for lines to skip: blank, malformed, or with pts_time N/A.
func ParseLine(line string) (pts float64, size int64, key bool, ok bool) {
	line = strings.TrimSpace(line)
	ptsField, rest, found := strings.Cut(line, ",")
	if !found {
		return 0, 0, false, false
	}
	sizeField, rest, found := strings.Cut(rest, ",")
	if !found {
		return 0, 0, false, false
	}
	flags, _, _ := strings.Cut(rest, ",")

	pts, err := strconv.ParseFloat(ptsField, 64)
	// ParseFloat accepts "NaN" and "Inf"; neither is a usable timestamp.
	if err != nil || math.IsNaN(pts) || math.IsInf(pts, 0) {
		return 0, 0, false, false
	}
	size, err = strconv.ParseInt(sizeField, 10, 64)
	if err != nil || size < 0 {
		return 0, 0, false, false
	}
	return pts, size, strings.ContainsRune(flags, 'K'), true
}
