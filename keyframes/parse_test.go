package keyframes

import (
	"math"
	"testing"
)

func TestParseLine(t *testing.T) {
	tests := []struct {
		line string
		pts  float64
		size int64
		key  bool
		ok   bool
	}{
		{"12.345678,4567,K_", 12.345678, 4567, true, true},
		{"12.387345,890,__", 12.387345, 890, false, true},
		{"0.000000,5053,K_\r", 0, 5053, true, true},
		{"1.5,10,K_,", 1.5, 10, true, true},
		{"1.5,10,__,,extra,K", 1.5, 10, false, true},
		{"-0.083333,700,K_", -0.083333, 700, true, true},
		{"3.2,42,KD", 3.2, 42, true, true},
		{"3.2,42", 0, 0, false, false},
		{"3.2,42,", 3.2, 42, false, true},
		{"N/A,890,K_", 0, 0, false, false},
		{"1.0,N/A,K_", 0, 0, false, false},
		{"1.0,-5,K_", 0, 0, false, false},
		{"NaN,5,K_", 0, 0, false, false},
		{"inf,5,K_", 0, 0, false, false},
		{"", 0, 0, false, false},
		{"   ", 0, 0, false, false},
		{",,", 0, 0, false, false},
		{"garbage", 0, 0, false, false},
		{"x,y,z", 0, 0, false, false},
		{"1.0,99999999999999999999,K_", 0, 0, false, false},
	}
	for _, tt := range tests {
		pts, size, key, ok := ParseLine(tt.line)
		if pts != tt.pts || size != tt.size || key != tt.key || ok != tt.ok {
			t.Errorf("ParseLine(%q) = %v, %v, %v, %v; want %v, %v, %v, %v",
				tt.line, pts, size, key, ok, tt.pts, tt.size, tt.key, tt.ok)
		}
	}
}

func FuzzParseLine(f *testing.F) {
	for _, seed := range []string{
		"12.345678,4567,K_",
		"12.387345,890,__",
		"N/A,890,K_",
		"1.5,10,K_,,",
		"",
		",,,",
		"0x1p-2,1,K",
		"1e308,1,K",
	} {
		f.Add(seed)
	}
	f.Fuzz(func(t *testing.T, line string) {
		pts, size, _, ok := ParseLine(line)
		if !ok {
			return
		}
		if math.IsNaN(pts) || math.IsInf(pts, 0) {
			t.Errorf("ParseLine(%q) accepted pts %v", line, pts)
		}
		if size < 0 {
			t.Errorf("ParseLine(%q) accepted size %d", line, size)
		}
	})
}
