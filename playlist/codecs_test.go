package playlist

import "testing"

func TestH264(t *testing.T) {
	tests := []struct {
		w, h    int
		fps     float64
		maxrate int
		profile string
		level   int
		codec   string
	}{
		{1920, 1080, 30, 7_500_000, "High", 40, "avc1.640028"},
		{1280, 720, 30, 3_000_000, "High", 31, "avc1.64001f"},
		{1920, 1080, 60, 9_000_000, "High", 42, "avc1.64002a"},
		{3840, 2160, 30, 20_000_000, "High", 51, "avc1.640033"},
		{3840, 2160, 60, 40_000_000, "High", 52, "avc1.640034"},
		{1920, 1080, 30, 30_000_000, "High", 41, "avc1.640029"}, // bitrate over 4.0's 25 Mb/s
		{1280, 720, 60, 4_000_000, "Main", 32, "avc1.4d4020"},   // 216000 MB/s
		{720, 480, 30, 1_500_000, "Constrained Baseline", 30, "avc1.42e01e"},
		{854, 480, 30, 1_500_000, "High", 31, "avc1.64001f"}, // 48600 MB/s is over 3.0
		{640, 360, 30, 800_000, "Baseline", 30, "avc1.42001e"},
		{426, 240, 30, 400_000, "High 10", 21, "avc1.6e0015"},
		{1920, 1080, 29.97, 0, "High 4:2:2", 40, "avc1.7a0028"},
		{1920, 1080, 24, 0, "High 4:4:4 Predictive", 40, "avc1.f40028"},
		{176, 144, 15, 0, "unknown", 10, "avc1.64000a"},
		{8192, 4320, 30, 0, "High", 60, "avc1.64003c"},
		{20000, 20000, 120, 0, "High", 62, "avc1.64003e"}, // nothing fits
		{4096, 128, 30, 0, "High", 40, "avc1.640028"},     // frame size alone fits 3.1; 256 MBs wide needs sqrt(8*MaxFS) >= 256
	}
	for _, tt := range tests {
		level := H264Level(tt.w, tt.h, tt.fps, tt.maxrate)
		if level != tt.level {
			t.Errorf("H264Level(%dx%d@%v, %d) = %d, want %d", tt.w, tt.h, tt.fps, tt.maxrate, level, tt.level)
		}
		if got := H264Codec(tt.profile, tt.level); got != tt.codec {
			t.Errorf("H264Codec(%q, %d) = %s, want %s", tt.profile, tt.level, got, tt.codec)
		}
	}
}

func TestHEVCCodec(t *testing.T) {
	tests := []struct {
		profile string
		level   int
		want    string
	}{
		{"Main", 93, "hvc1.1.6.L93.b0"},
		{"Main 10", 120, "hvc1.2.4.L120.b0"},
		{"Main 10", 153, "hvc1.2.4.L153.b0"},
		{"Main", 150, "hvc1.1.6.L150.b0"},
		{"Rext", 123, "hvc1.4.10.L123.b0"},
		{"Main", -99, "hvc1.1.6.L153.b0"},
	}
	for _, tt := range tests {
		if got := HEVCCodec(tt.profile, tt.level); got != tt.want {
			t.Errorf("HEVCCodec(%q, %d) = %s, want %s", tt.profile, tt.level, got, tt.want)
		}
	}
}

// TestVP9Codec: the strings ffmpeg 5.1's MP4 muxer writes into the vpcC
// of a copied WebM stream (read back with mp4box.js): the level follows the
// picture size only, so 320x180 at 120 fps is 1.1, and 1080p60 is 4.0.
func TestVP9Codec(t *testing.T) {
	tests := []struct {
		profile     string
		level, w, h int
		depth       int
		yuv420      bool
		want        string
	}{
		{"Profile 0", -99, 640, 360, 8, true, "vp09.00.21.08"},     // vp9.webm
		{"Profile 0", -99, 320, 180, 8, true, "vp09.00.11.08"},     // at 120 fps too
		{"Profile 2", -99, 320, 180, 10, true, "vp09.02.11.10"},    // yuv420p10le
		{"Profile 0", -99, 1920, 1080, 8, true, "vp09.00.40.08"},   // at 60 fps too
		{"Profile 0", -99, 1280, 720, 0, true, "vp09.00.31.08"},    // depth unknown: 8
		{"Profile 0", -99, 3840, 2160, 8, true, "vp09.00.50.08"},   //
		{"Profile 0", -99, 20000, 20000, 8, true, "vp09.00.00.08"}, // past every level: 0, as ffmpeg writes
		{"Profile 1", 0, 640, 360, 8, false, "vp09.01.21.08"},
		{"Profile 3", 0, 256, 144, 12, false, "vp09.03.10.12"},
		{"unknown", -99, 256, 144, 10, true, "vp09.02.10.10"},
		{"", -99, 256, 144, 8, false, "vp09.01.10.08"},
		{"Profile 0", 21, 1920, 1080, 8, true, "vp09.00.21.08"}, // ffprobe's level wins
	}
	for _, tt := range tests {
		if got := VP9Codec(tt.profile, tt.level, tt.w, tt.h, tt.depth, tt.yuv420); got != tt.want {
			t.Errorf("VP9Codec(%q, %d, %dx%d, %d, %v) = %s, want %s", tt.profile, tt.level, tt.w, tt.h, tt.depth, tt.yuv420, got, tt.want)
		}
	}
}

func TestAV1Codec(t *testing.T) {
	tests := []struct {
		profile     string
		level, w, h int
		fps         float64
		depth       int
		want        string
	}{
		{"Main", -99, 1920, 1080, 30, 8, "av01.0.08M.08"},
		{"Main", -99, 1920, 1080, 60, 10, "av01.0.09M.10"},
		{"Main", -99, 1280, 720, 30, 8, "av01.0.05M.08"},
		{"Main", -99, 3840, 2160, 60, 10, "av01.0.13M.10"},
		{"High", 12, 3840, 2160, 30, 8, "av01.1.12M.08"},
		{"Professional", 0, 426, 240, 30, 12, "av01.2.00M.12"},
		{"Main", 0, 7680, 4320, 30, 10, "av01.0.16M.10"},
		{"Main", -1, 20000, 20000, 30, 8, "av01.0.31M.08"},
	}
	for _, tt := range tests {
		if got := AV1Codec(tt.profile, tt.level, tt.w, tt.h, tt.fps, tt.depth); got != tt.want {
			t.Errorf("AV1Codec(%q, %d, %dx%d@%v, %d) = %s, want %s", tt.profile, tt.level, tt.w, tt.h, tt.fps, tt.depth, got, tt.want)
		}
	}
}

func TestAACCodec(t *testing.T) {
	for profile, want := range map[string]string{
		"LC":       "mp4a.40.2",
		"HE-AAC":   "mp4a.40.5",
		"HE-AACv2": "mp4a.40.29",
		"":         "mp4a.40.2",
		"unknown":  "mp4a.40.2",
	} {
		if got := AACCodec(profile); got != want {
			t.Errorf("AACCodec(%q) = %s, want %s", profile, got, want)
		}
	}
}
