package playlist

import (
	"encoding/hex"
	"strings"
	"testing"
)

func unhex(t testing.TB, s string) []byte {
	t.Helper()
	b, err := hex.DecodeString(strings.ReplaceAll(s, " ", ""))
	if err != nil {
		t.Fatal(err)
	}
	return b
}

// The records are the extradata ffprobe reports for the test clips
// (testmedia) and for clips made with ffmpeg's encoders; the strings are
// what mp4box.js reads from the sample entry of an fMP4 copy of each.
func TestConfigCodec(t *testing.T) {
	// vps, sps: NAL units with a general profile_tier_level of ptl.
	vps := func(ptl string) string { return "00000001 4001 0c01ffff" + ptl }
	sps := func(ptl string) string { return "00000001 4201 01" + ptl + "a0" }
	tests := []struct {
		name, codec, config, want string
	}{
		// avcC
		{"h264.mp4", "h264", "0164001effe1001a6764001eacd940a02ff97011000003000100000300300f162d9601000468ef8fcbfdf8f800", "avc1.64001e"},
		{"long.mp4", "h264", "0142c028ffe100196742c028da01e0089f97011000003001000000303000f1832a01000468ce3c80", "avc1.42c028"},
		{"avcC, header only", "h264", "014d4028", "avc1.4d4028"},
		// Annex B: the SPS after a 3-byte start code and an AUD.
		{"tv-1080i.ts", "h264", "000001674d4028f403c0227ef011000003000100000300321f162ea00000000168de3c80", "avc1.4d4028"},
		{"annex B, AUD first", "h264", "00000001 09f0 00000001 6764001f ac 00000001 68ee", "avc1.64001f"},
		{"annex B, no SPS", "h264", "00000001 68ee3c80", ""},
		{"avcC, profile 0", "h264", "0100001e", ""},
		{"avcC, short", "h264", "016400", ""},
		{"empty", "h264", "", ""},

		// hvcC: hevc.mkv's record, cut after its header (the arrays are
		// not read).
		{"hevc.mkv", "hevc", "0102200000009000000000003ff000fcfdfafa00000f04", "hvc1.2.4.L63.90"},
		{"hevc-1080.mkv", "hevc", "01022000000090000000000078f000fcfdfafa00000f04", "hvc1.2.4.L120.90"},
		{"Main, B0", "hevc", "01 01 60000000 b00000000000 5d f000fcfdf8f800000f03", "hvc1.1.6.L93.b0"},
		{"high tier, space 1", "hevc", "01 61 60000000 900000040000 99 f000fcfdf8f800000f03", "hvc1.A1.6.H153.90.0.0.4"},
		{"no constraint flags", "hevc", "01 04 08000000 000000000000 78 f000fcfdf8f800000f03", "hvc1.4.10.L120"},
		{"hvcC, short", "hevc", "01022000000090000000000078f000", ""},
		{"hvcC, version 0", "hevc", "0002200000009000000000003ff000fcfdfafa00000f04", ""},
		// Annex B: hevc.mkv copied into MPEG-TS; VPS and SPS carry
		// emulation prevention bytes inside the flags.
		{"hevc.ts", "hevc", "00000140010c01ffff02200000030090000003000003003f9594090000000142010102200000030090000003000003003fa005020171f2b6595952930bc05a020000030002000003003c10000000014401c073c18900", "hvc1.2.4.L63.90"},
		// ffmpeg merges VPS and SPS: highest profile and level, shared flags.
		{"VPS and SPS differ", "hevc", vps("01 60000000 900000000000 5d") + sps("02 20000000 b00000000000 78"), "hvc1.2.4.L120.90"},
		{"higher tier's level", "hevc", vps("02 20000000 900000000000 99") + sps("22 20000000 900000000000 78"), "hvc1.2.4.H120.90"},
		{"SPS only", "hevc", sps("02 20000000 900000000000 78"), "hvc1.2.4.L120.90"},
		{"annex B, SPS cut short", "hevc", "00000001 4201 01 0220000000", ""},
		{"annex B, PPS only", "hevc", "00000001 4401c073c189", ""},

		// av1C: libaom-av1 320x180 (level 2.0) and 1280x720 (3.1).
		{"av1 320x180", "av1", "81000c000a0b000000043cfeccdaf90040", "av01.0.00M.08"},
		{"av1 720p", "av1", "81050c000a0b0000002d4cffb3cdaf90", "av01.0.05M.08"},
		{"av1 10 bit", "av1", "81004c000a0b000000043cfeccdaf94040", "av01.0.00M.10"},
		{"av1 high tier 4:4:4", "av1", "812d8000", "av01.1.13H.08"},
		{"av1 professional 12 bit", "av1", "81486000", "av01.2.08M.12"},
		{"av1 professional 10 bit", "av1", "81484000", "av01.2.08M.10"},
		// A bare sequence header OBU (AV1 from IVF) is not a record.
		{"av1 OBU", "av1", "0a0b000000043cfeccdaf90040", ""},
		{"av1 profile 3", "av1", "81600000", ""},
		{"av1 short", "av1", "810000", ""},

		{"vp9 has no record here", "vp9", "01000000", ""},
	}
	for _, tt := range tests {
		got, ok := ConfigCodec(tt.codec, unhex(t, tt.config))
		if got != tt.want || ok != (tt.want != "") {
			t.Errorf("%s: ConfigCodec(%s, %s) = %q, %v; want %q", tt.name, tt.codec, tt.config, got, ok, tt.want)
		}
	}
}

func TestUnescape(t *testing.T) {
	for _, tt := range []struct{ in, want string }{
		{"0000030000", "00000000"},
		{"00000300000301", "0000000001"},
		{"000003", "0000"},
		{"0003", "0003"},
		{"00000303", "000003"},
	} {
		if got := hex.EncodeToString(unescape(unhex(t, tt.in), 100)); got != tt.want {
			t.Errorf("unescape(%s) = %s, want %s", tt.in, got, tt.want)
		}
	}
}

// FuzzConfigCodec: any bytes give a well-formed string or none, and never
// a panic.
func FuzzConfigCodec(f *testing.F) {
	f.Fuzz(func(t *testing.T, codec uint8, config []byte) {
		name := []string{"h264", "hevc", "av1"}[int(codec)%3]
		s, ok := ConfigCodec(name, config)
		if ok != (s != "") {
			t.Fatalf("%q, %v", s, ok)
		}
		if ok && (!strings.HasPrefix(s, map[string]string{"h264": "avc1.", "hevc": "hvc1.", "av1": "av01."}[name]) ||
			strings.ContainsAny(s, " ,\"")) {
			t.Fatalf("%s: %q", name, s)
		}
	})
}
