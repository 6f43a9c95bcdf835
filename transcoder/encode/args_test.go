package encode

import (
	"flag"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"sync"
	"testing"

	"github.com/hlsd/hlsd/transcoder/probe"
)

var update = flag.Bool("update", false, "rewrite the golden files in testdata/args")

// Sources that take different paths through the profiles: GPU-decodable
// 8-bit, HDR 10-bit (tone mapping), a codec no GPU decodes, rotated (CPU
// decode, then upload), and an interlaced TV recording (deinterlacing).
var argSources = map[string]probe.VideoStream{
	"h264-1080p":     {Codec: "h264", Profile: "High", Level: 40, Width: 1920, Height: 1080, FPS: 24, BitDepth: 8, SAR: 1},
	"hevc-hdr-2160p": {Codec: "hevc", Profile: "Main 10", Level: 153, Width: 3840, Height: 2160, FPS: 24000.0 / 1001, BitDepth: 10, HDR: true, SAR: 1},
	"mpeg4-rotated":  {Codec: "mpeg4", Profile: "Simple Profile", Level: 3, Width: 1280, Height: 720, FPS: 25, BitDepth: 8, Rotation: 90, SAR: 1},
	"mpeg2-1080i":    {Codec: "mpeg2video", Profile: "Main", Level: 4, Width: 1920, Height: 1080, FPS: 25, BitDepth: 8, SAR: 1, Interlaced: true},
}

var argProfiles = []Profile{
	{Accel: AccelNone, Preset: "veryfast"},
	{Accel: AccelNVIDIA, Preset: "veryfast"},
	{Accel: AccelVAAPI, Preset: "veryfast"},
	{Accel: AccelQSV, Preset: "veryfast", Device: "/dev/dri/renderD129"},
}

// goldenArgs is every (profile, source) command line of a 720p run that
// starts at segment 3, so it has a seek and a boundary list.
func goldenArgs() map[string][]string {
	out := map[string][]string{}
	for _, p := range argProfiles {
		for name, src := range argSources {
			r := Spec{Input: "/proc/self/fd/3", Kind: "video", Quality: "720p", First: 3,
				Bounds: []float64{12.012, 16.016, 20.02, 24.024, 25.5}, Video: src, Profile: p, OutDir: "/cache/run-1"}
			label := p.Accel
			if label == AccelNone {
				label = "software"
			}
			out[label+"-"+name] = Args(r)
		}
	}
	// A rung of at most half an interlaced source's height keeps one field.
	r := Spec{Input: "/proc/self/fd/3", Kind: "video", Quality: "360p", First: 3,
		Bounds: []float64{12.012, 16.016, 20.02, 24.024, 25.5}, Video: argSources["mpeg2-1080i"],
		Profile: argProfiles[0], OutDir: "/cache/run-1"}
	out["software-mpeg2-1080i-360p"] = Args(r)
	return out
}

// TestFFmpegArgsGolden pins the whole command line of each profile. Review
// a change of testdata/args for: IDR forcing (-forced-idr, -forced_idr, or
// VAAPI's own), the boundary list, the scale chain staying on the GPU (or
// uploading after a CPU decode), nv12/yuv420p output, tone mapping of HDR,
// and the bitrate caps.
func TestFFmpegArgsGolden(t *testing.T) {
	for name, args := range goldenArgs() {
		path := filepath.Join("testdata", "args", name+".txt")
		got := strings.Join(args, "\n") + "\n"
		if *update {
			if err := os.MkdirAll(filepath.Dir(path), 0o755); err != nil {
				t.Fatal(err)
			}
			if err := os.WriteFile(path, []byte(got), 0o644); err != nil {
				t.Fatal(err)
			}
			continue
		}
		want, err := os.ReadFile(path)
		if err != nil {
			t.Fatalf("%v (run go test ./transcoder -run Golden -update)", err)
		}
		if got != string(want) {
			t.Errorf("%s: arguments changed; got:\n%s", name, got)
		}
	}
}

// TestFFmpegAcceptsEveryOption checks each golden command line against the
// installed ffmpeg's own help: every option, encoder, decoder, filter,
// filter option and bitstream filter must exist, and values of typed or
// enumerated options must parse. A typo then fails here rather than on a
// user's GPU, which this machine does not have.
func TestFFmpegAcceptsEveryOption(t *testing.T) {
	if _, err := exec.LookPath("ffmpeg"); err != nil {
		t.Skip("no ffmpeg")
	}
	h := newFFmpegHelp(t)
	for name, args := range goldenArgs() {
		t.Run(name, func(t *testing.T) {
			in := true
			var encoder string
			for i := 0; i < len(args); i++ {
				a := args[i]
				if !strings.HasPrefix(a, "-") || a == "-" {
					continue
				}
				opt, _, _ := strings.Cut(a[1:], ":")
				val := ""
				if i+1 < len(args) {
					val = args[i+1]
				}
				switch {
				case opt == "i":
					in = false
					i++
					continue
				case opt == "c" && in:
					h.mustExist(t, "decoder", val)
				case opt == "c":
					h.mustExist(t, "encoder", val)
					encoder = val
				case opt == "vf":
					h.checkFilters(t, val)
				case opt == "bsf":
					h.checkBSF(t, val)
				}
				// Boolean tool options also take a "no" prefix: -nostdin.
				if h.tool[opt] || strings.HasPrefix(opt, "no") && h.tool[opt[2:]] {
					// A flag is followed by the next option; "-1" is a value.
					if next := val; !(len(next) > 1 && next[0] == '-' && next[1] >= 'a' && next[1] <= 'z') {
						i++
					}
					continue
				}
				// Not a tool option: an AVOption of the encoder, of every
				// codec, of the segment muxer or of every format.
				o, ok := h.option(t, encoder, opt)
				if !ok {
					t.Errorf("ffmpeg knows no option -%s (encoder %q)", opt, encoder)
					continue
				}
				if err := o.accepts(val); err != nil {
					t.Errorf("-%s %s: %v", opt, val, err)
				}
				i++
			}
		})
	}
}

// avOption is one AVOption from ffmpeg's help: its type and named constants.
type avOption struct {
	typ    string
	consts map[string]bool
}

func (o avOption) accepts(v string) error {
	if o.consts[v] {
		return nil
	}
	switch o.typ {
	case "int", "int64", "uint64":
		if _, err := strconv.ParseInt(v, 10, 64); err != nil {
			return fmt.Errorf("not an integer nor one of the named values %v", keys(o.consts))
		}
	case "float", "double":
		if _, err := strconv.ParseFloat(v, 64); err != nil {
			return fmt.Errorf("not a number")
		}
	case "boolean":
		switch v {
		case "0", "1", "true", "false":
		default:
			return fmt.Errorf("not a boolean")
		}
	}
	return nil
}

func keys(m map[string]bool) []string {
	var out []string
	for k := range m {
		out = append(out, k)
	}
	return out
}

// ffmpegHelp holds what `ffmpeg -h` says, fetched once per topic.
type ffmpegHelp struct {
	tool    map[string]bool // ffmpeg's own options
	generic map[string]avOption
	mu      sync.Mutex
	topics  map[string]string
}

var (
	toolLine   = regexp.MustCompile(`^-(\S+)`)
	optionLine = regexp.MustCompile(`^\s{2,3}-?(\S+)\s+<(\w+)>`)
	constLine  = regexp.MustCompile(`^\s{5,}(\S+)\s`)
)

func newFFmpegHelp(t *testing.T) *ffmpegHelp {
	h := &ffmpegHelp{tool: map[string]bool{}, topics: map[string]string{}}
	full := h.topic(t, "full")
	toolPart, avPart, _ := strings.Cut(full, "AVCodecContext AVOptions:")
	for _, line := range strings.Split(toolPart, "\n") {
		if m := toolLine.FindStringSubmatch(line); m != nil {
			h.tool[m[1]] = true
		}
	}
	generic := parseOptions(strings.SplitN(avPart, "AVOptions:", 2)[0])
	for _, sec := range []string{"AVFormatContext AVOptions:"} {
		_, rest, _ := strings.Cut(full, sec)
		for k, v := range parseOptions(strings.SplitN(rest, "AVOptions:", 2)[0]) {
			generic[k] = v
		}
	}
	h.generic = generic
	return h
}

func parseOptions(text string) map[string]avOption {
	out := map[string]avOption{}
	var last string
	for _, line := range strings.Split(text, "\n") {
		if m := optionLine.FindStringSubmatch(line); m != nil {
			last = m[1]
			out[last] = avOption{typ: m[2], consts: map[string]bool{}}
		} else if m := constLine.FindStringSubmatch(line); m != nil && last != "" {
			out[last].consts[m[1]] = true
		}
	}
	return out
}

func (h *ffmpegHelp) topic(t *testing.T, topic string) string {
	h.mu.Lock()
	defer h.mu.Unlock()
	if s, ok := h.topics[topic]; ok {
		return s
	}
	out, err := exec.Command("ffmpeg", "-hide_banner", "-h", topic).Output()
	if err != nil {
		t.Fatalf("ffmpeg -h %s: %v", topic, err)
	}
	h.topics[topic] = string(out)
	return string(out)
}

// mustExist fails unless ffmpeg has the named encoder, decoder, filter or bsf.
func (h *ffmpegHelp) mustExist(t *testing.T, kind, name string) string {
	t.Helper()
	s := h.topic(t, kind+"="+name)
	if strings.Contains(s, "is not recognized") || strings.Contains(s, "Unknown") || strings.TrimSpace(s) == "" {
		t.Errorf("ffmpeg has no %s %q", kind, name)
	}
	return s
}

// option finds opt among the encoder's private options, then the generic ones.
func (h *ffmpegHelp) option(t *testing.T, encoder, opt string) (avOption, bool) {
	if encoder != "" {
		if o, ok := parseOptions(h.topic(t, "encoder="+encoder))[opt]; ok {
			return o, true
		}
	}
	if o, ok := parseOptions(h.topic(t, "muxer=segment"))[opt]; ok {
		return o, true
	}
	o, ok := h.generic[opt]
	return o, ok
}

// filterCommon are the options every filter takes (AVFilterContext's),
// which `ffmpeg -h filter=X` does not list.
var filterCommon = map[string]avOption{
	"enable": {typ: "string"}, "threads": {typ: "int"}, "extra_hw_frames": {typ: "int"},
}

func (h *ffmpegHelp) checkFilters(t *testing.T, chain string) {
	for _, f := range strings.Split(chain, ",") {
		name, args, _ := strings.Cut(f, "=")
		opts := parseOptions(h.mustExist(t, "filter", name))
		for k, v := range filterCommon {
			opts[k] = v
		}
		if args == "" {
			continue
		}
		for _, kv := range strings.Split(args, ":") {
			k, v, ok := strings.Cut(kv, "=")
			if !ok {
				continue // positional
			}
			o, known := opts[k]
			if !known {
				t.Errorf("filter %s has no option %q", name, k)
				continue
			}
			if err := o.accepts(v); err != nil {
				t.Errorf("filter %s option %s=%s: %v", name, k, v, err)
			}
		}
	}
}

func (h *ffmpegHelp) checkBSF(t *testing.T, spec string) {
	name, args, _ := strings.Cut(spec, "=")
	opts := parseOptions(h.mustExist(t, "bsf", name))
	for _, kv := range strings.Split(args, ":") {
		if k, v, ok := strings.Cut(kv, "="); ok {
			if o, known := opts[k]; !known {
				t.Errorf("bsf %s has no option %q", name, k)
			} else if err := o.accepts(v); err != nil {
				t.Errorf("bsf %s option %s=%s: %v", name, k, v, err)
			}
		}
	}
}
