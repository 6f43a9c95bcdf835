package probe

import (
	"bytes"
	"fmt"
	"strings"
	"testing"
)

// dump writes b as ffprobe's writer_print_data does.
func dump(b []byte) string {
	var s strings.Builder
	s.WriteString("\n")
	for off := 0; off < len(b); off += 16 {
		l := b[off:min(off+16, len(b))]
		fmt.Fprintf(&s, "%08x: ", off)
		for i, c := range l {
			fmt.Fprintf(&s, "%02x", c)
			if i&1 == 1 {
				s.WriteString(" ")
			}
		}
		s.WriteString(strings.Repeat(" ", 41-2*len(l)-len(l)/2))
		for _, c := range l {
			if c-32 < 95 {
				s.WriteByte(c)
			} else {
				s.WriteByte('.')
			}
		}
		s.WriteString("\n")
	}
	return s.String()
}

func TestParseHexDump(t *testing.T) {
	// h264.mp4's avcC as ffprobe prints it.
	const avcC = "\n00000000: 0164 001e ffe1 001a 6764 001e acd9 40a0  .d......gd....@.\n" +
		"00000010: 2ff9 7011 0000 0300 0100 0003 0030 0f16  /.p..........0..\n" +
		"00000020: 2d96 0100 0468 ef8f cbfd f8f8 00         -....h.......\n"
	b, ok := ParseHexDump(avcC)
	if !ok || len(b) != 45 || b[0] != 1 || b[1] != 0x64 || b[44] != 0 {
		t.Errorf("avcC: % x, %v", b, ok)
	}
	for _, s := range []string{
		"",
		"\n",
	} {
		if b, ok := ParseHexDump(s); !ok || len(b) != 0 {
			t.Errorf("%q: % x, %v", s, b, ok)
		}
	}
	for _, s := range []string{
		"00000010: 0164 001e                ..", // offset does not follow
		"0000000: 0164 001e                 ..", // offset too short
		"00000000: 0z64                     .?", // not hex
		"00000000: 016                      .",  // odd digit count
		"garbage",
	} {
		if _, ok := ParseHexDump(s); ok {
			t.Errorf("%q parsed", s)
		}
	}
	// The ASCII column may hold anything, hex digits and double spaces too.
	tricky := []byte("ab  cd  0123  ef  ")
	if b, ok := ParseHexDump(dump(tricky)); !ok || !bytes.Equal(b, tricky) {
		t.Errorf("tricky: %q, %v", b, ok)
	}
}

func TestParseConfigs(t *testing.T) {
	out := `{"programs": [{"streams": [{"index": 0, "extradata": "\n00000000: 0000 0167 4d40 28f4 03c0 227e f011 0000  ...gM@(...\"~....\n"}]}],
	"streams": [{"index": 0, "extradata": "\n00000000: 0000 0167 4d40 28f4 03c0 227e f011 0000  ...gM@(...\"~....\n"},
	{"index": 3, "extradata": "\n"}, {"index": 4}]}`
	m := ParseConfigs([]byte(out))
	if len(m) != 1 || len(m[0]) != 16 || m[0][4] != 0x4d {
		t.Errorf("%v", m)
	}
	if ParseConfigs([]byte("{")) != nil {
		t.Error("broken JSON parsed")
	}
}

// FuzzParseHexDump: what ffprobe dumps parses back to the same bytes, and
// anything else parses without a panic.
func FuzzParseHexDump(f *testing.F) {
	f.Fuzz(func(t *testing.T, b []byte, s string) {
		got, ok := ParseHexDump(dump(b))
		if !ok || !bytes.Equal(got, b) {
			t.Fatalf("% x came back as % x, %v", b, got, ok)
		}
		ParseHexDump(s)
	})
}
