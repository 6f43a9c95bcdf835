package probe

import (
	"bytes"
	"context"
	"encoding/hex"
	"encoding/json"
	"os"
	"os/exec"
	"strings"
	"sync"

	"github.com/hlsd/hlsd/playlist"
	"github.com/hlsd/hlsd/transcoder/child"
)

// maxConfigOutput bounds what is kept of the codec configuration probe: a
// few video streams' records are a few KB of hex; a file claiming more is
// given derived codec strings.
const maxConfigOutput = 1 << 20

// configProbe is a second ffprobe, run beside the main one for files whose
// header holds no codec record (keyframes.CodecConfig), that dumps the
// codec configuration (extradata) of the video streams. It is separate
// because -show_data dumps every stream's extradata, and a Matroska file's
// attachments (fonts, tens of MB) are streams whose extradata is the file:
// the dump of those would be larger and slower than the probe itself.
// Attached pictures are left out (stream specifier V): they are not played.
type configProbe struct {
	cmd  *exec.Cmd
	out  capWriter
	once sync.Once
	res  map[int][]byte
}

// startConfigProbe starts ffprobe with the main probe's analysis options; nil
// if it cannot start, which costs only exact codec strings.
func startConfigProbe(ctx context.Context, f *os.File, ffprobe string, analyze []string) *configProbe {
	args := append(append([]string{}, analyze...),
		"-select_streams", "V", "-show_entries", "stream=index,extradata", "-show_data",
		"-print_format", "json", child.Input)
	c := &configProbe{cmd: child.Command(ctx, f, ffprobe, args...)}
	c.out.max = maxConfigOutput
	c.cmd.Stdout = &c.out
	if c.cmd.Start() != nil {
		return nil
	}
	return c
}

// wait returns the extradata by stream index; nil when the probe failed.
// It may be called more than once.
func (c *configProbe) wait() map[int][]byte {
	if c == nil {
		return nil
	}
	c.once.Do(func() {
		if c.cmd.Wait() == nil && !c.out.over {
			c.res = ParseConfigs(c.out.buf.Bytes())
		}
	})
	return c.res
}

// ParseConfigs reads the JSON of ffprobe -show_entries stream=index,extradata
// -show_data: each stream's extradata by index, for those that have some.
func ParseConfigs(b []byte) map[int][]byte {
	var out struct {
		Streams []struct {
			Index     int    `json:"index"`
			Extradata string `json:"extradata"`
		} `json:"streams"`
	}
	if json.Unmarshal(b, &out) != nil {
		return nil
	}
	m := map[int][]byte{}
	for _, s := range out.Streams {
		if d, ok := ParseHexDump(s.Extradata); ok && len(d) > 0 {
			m[s.Index] = d
		}
	}
	return m
}

// ParseHexDump decodes ffprobe's dump of binary data: lines of
// "OOOOOOOO: " (the offset in hex), up to 16 bytes as hex in groups of two
// bytes, padded to 41 columns, then the bytes as ASCII. The ASCII column
// is ignored, since it may hold anything.
func ParseHexDump(s string) ([]byte, bool) {
	var out []byte
	for _, line := range strings.Split(s, "\n") {
		if line == "" {
			continue
		}
		if len(line) < 10 || line[8:10] != ": " {
			return nil, false
		}
		var off [4]byte
		if _, err := hex.Decode(off[:], []byte(line[:8])); err != nil {
			return nil, false
		}
		if int(off[0])<<24|int(off[1])<<16|int(off[2])<<8|int(off[3]) != len(out) {
			return nil, false
		}
		field := line[10:min(len(line), 10+41)]
		// The hex column ends at the first double space (the padding);
		// a full line's hex is followed by exactly that.
		if i := strings.Index(field, "  "); i >= 0 {
			field = field[:i]
		}
		h := strings.ReplaceAll(field, " ", "")
		b, err := hex.DecodeString(h)
		if err != nil || len(b) == 0 || len(b) > 16 {
			return nil, false
		}
		out = append(out, b...)
	}
	return out, true
}

// codecStrings sets the CodecString of every video stream whose codec
// configuration gives one.
func (info *Info) codecStrings(configs map[int][]byte) {
	for i, v := range info.Video {
		if c, ok := playlist.ConfigCodec(v.Codec, configs[v.Index]); ok {
			info.Video[i].CodecString = c
		}
	}
}

// capWriter keeps the first max bytes written to it and notes whether
// there were more; it never fails, so the child is not killed by a
// broken pipe.
type capWriter struct {
	buf  bytes.Buffer
	max  int
	over bool
}

func (w *capWriter) Write(p []byte) (int, error) {
	if w.buf.Len()+len(p) > w.max {
		w.over = true
	} else {
		w.buf.Write(p)
	}
	return len(p), nil
}
