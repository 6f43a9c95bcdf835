package encode

import (
	"fmt"
	"strconv"

	"github.com/hlsd/hlsd/transcoder/probe"
)

// Accelerators hlsd can encode with; also --hwaccel values and metric labels.
const (
	AccelNone   = "none"
	AccelNVIDIA = "nvidia"
	AccelVAAPI  = "vaapi"
	AccelQSV    = "qsv"
)

// Accels lists the hardware accelerators in the order --hwaccel auto tries them.
var Accels = []string{AccelNVIDIA, AccelVAAPI, AccelQSV}

// DefaultRenderNode is the DRM render node VAAPI and QSV open when
// --hwaccel-device is not given: the first GPU.
const DefaultRenderNode = "/dev/dri/renderD128"

// Profile is how one encoder family turns the source into a rung: the
// flags before -i (decoder and device), the filter chain from decoded frame
// to encoder input, and the encoder flags. Every profile makes the same
// output: 8-bit 4:2:0 H.264 High at the rung's level and bitrate caps, SDR,
// with an IDR exactly at each forced keyframe and nowhere else, so segments
// of different profiles share boundaries and codec strings.
type Profile struct {
	Accel  string // AccelNone for software
	Device string // render node (VAAPI, QSV) or GPU index (NVIDIA); "" for the default
	Preset string // the --encoder-preset, in x264's vocabulary
}

// handles says whether the profile can make a browser-safe rung from v.
// HDR needs tone mapping, which this ffmpeg build offers on the CPU (zscale
// and tonemap) and on VAAPI (tonemap_vaapi), but not for CUDA or QSV
// frames: those sources go to the software profile.
func (p Profile) Handles(v probe.VideoStream) bool {
	switch p.Accel {
	case AccelNVIDIA, AccelQSV:
		return !v.HDR
	}
	return true
}

// gpuDecodes says whether the accelerator's decoder is expected to take v,
// so frames can stay in GPU memory from decoder to encoder. Otherwise the
// CPU decodes and the chain uploads. Rotated sources are decoded on the CPU
// too: ffmpeg's automatic rotation filter only works on frames in memory.
func (p Profile) GPUDecodes(v probe.VideoStream) bool {
	if v.Rotation != 0 {
		return false
	}
	switch v.Codec {
	case "h264":
		// No GPU decodes 10-bit or 4:2:2 H.264 (High 10, High 4:2:2).
		return v.BitDepth <= 8
	case "hevc", "vp9", "mpeg2video":
		return true
	case "av1":
		return p.Accel != AccelQSV || v.BitDepth <= 10
	}
	return false
}

// inputArgs come before -i: the device and, when the GPU decodes, the
// hardware decoder with its frames kept on the GPU.
func (p Profile) InputArgs(v probe.VideoStream) []string {
	gpu := p.GPUDecodes(v)
	switch p.Accel {
	case AccelNVIDIA:
		dev := "cu"
		if p.Device != "" {
			dev += ":" + p.Device
		}
		args := []string{"-init_hw_device", "cuda=" + dev, "-filter_hw_device", "cu"}
		if gpu {
			args = append(args, "-hwaccel", "cuda", "-hwaccel_device", "cu", "-hwaccel_output_format", "cuda")
		}
		return args
	case AccelVAAPI:
		args := []string{"-init_hw_device", "vaapi=va:" + p.RenderNode(), "-filter_hw_device", "va"}
		if gpu {
			args = append(args, "-hwaccel", "vaapi", "-hwaccel_device", "va", "-hwaccel_output_format", "vaapi")
		}
		return args
	case AccelQSV:
		// QSV is reached through a VAAPI device on Linux; deriving from it
		// is what works with both the old and the new Intel media drivers.
		args := []string{"-init_hw_device", "vaapi=va:" + p.RenderNode(),
			"-init_hw_device", "qsv=qs@va", "-filter_hw_device", "qs"}
		if gpu {
			args = append(args, "-hwaccel", "qsv", "-hwaccel_device", "qs", "-hwaccel_output_format", "qsv",
				"-c:v", qsvDecoders[v.Codec])
		}
		return args
	}
	return nil
}

// qsvDecoders are the QSV decoders for the codecs gpuDecodes accepts: QSV
// decodes through its own decoders rather than a generic hwaccel.
var qsvDecoders = map[string]string{
	"h264": "h264_qsv", "hevc": "hevc_qsv", "vp9": "vp9_qsv", "av1": "av1_qsv", "mpeg2video": "mpeg2_qsv",
}

func (p Profile) RenderNode() string {
	if p.Device != "" {
		return p.Device
	}
	return DefaultRenderNode
}

// filter is the -vf chain producing w×h 8-bit 4:2:0 square-pixel frames
// where the encoder takes them (memory for x264, the GPU otherwise).
//
// An interlaced source is deinterlaced first, at its own size, one frame out
// per frame in (bwdif's send_frame, and its GPU equivalents): the rung keeps
// the source's frame times, which the plan's boundaries and the forced
// keyframes are, and its frame rate. One frame per field would be smoother
// motion but twice the frames to encode, which a small box cannot afford.
func (p Profile) Filter(v probe.VideoStream, w, h int) string {
	size := fmt.Sprintf("w=%d:h=%d", w, h)
	gpu := p.GPUDecodes(v)
	deint := func(f string) string {
		if v.Interlaced {
			return f + ","
		}
		return ""
	}
	switch p.Accel {
	case AccelNVIDIA:
		chain := deint("yadif_cuda=mode=send_frame:parity=auto:deint=all")
		if gpu {
			return chain + "scale_cuda=" + size + ":interp_algo=bicubic:format=nv12,setsar=1"
		}
		return "format=nv12,hwupload," + chain + "scale_cuda=" + size + ":interp_algo=bicubic,setsar=1"
	case AccelVAAPI:
		var chain string
		if !gpu {
			chain = "format=nv12,hwupload,"
		}
		chain += deint("deinterlace_vaapi=rate=frame")
		if v.HDR {
			chain += "tonemap_vaapi=format=nv12:t=bt709:m=bt709:p=bt709,"
		}
		return chain + "scale_vaapi=" + size + ":format=nv12,setsar=1"
	case AccelQSV:
		if gpu {
			return deint("deinterlace_qsv=mode=advanced") + "vpp_qsv=" + size + ":format=nv12,setsar=1"
		}
		return "format=nv12,hwupload=extra_hw_frames=64," + deint("deinterlace_qsv=mode=advanced") +
			"vpp_qsv=" + size + ":format=nv12,setsar=1"
	}
	deinterlace := "bwdif=mode=send_frame:parity=auto:deint=all"
	if 2*min(w, h) <= v.Height {
		// A rung at most half the source's height needs no more lines than
		// one field has: keeping the first field is a third cheaper than
		// interpolating a whole frame, and as sharp once scaled.
		deinterlace = "field=type=" + map[bool]string{true: "bottom", false: "top"}[v.BottomFirst]
	}
	scale := deint(deinterlace) + fmt.Sprintf("scale=%d:%d:flags=bicubic,setsar=1", w, h)
	if v.HDR {
		// PQ or HLG to BT.709: linearize, map the highlights down with
		// Hable's curve, and re-encode the transfer. Scaling first keeps the
		// float stage at the rung's size.
		return scale + ",zscale=t=linear:npl=100,format=gbrpf32le,zscale=p=bt709," +
			"tonemap=tonemap=hable:desat=0,zscale=t=bt709:m=bt709:r=tv,format=yuv420p"
	}
	return scale + ",format=yuv420p"
}

// encoderArgs are the encoder and its rate control. Keyframes come only from
// -force_key_frames, which Args adds: no periodic or scene-cut ones,
// and each forced one must be an IDR, or the segment muxer (which cuts at
// key packets) would not cut and players could not start a segment there.
func (p Profile) EncoderArgs(r Rung, level int) []string {
	lvl := fmt.Sprintf("%d.%d", level/10, level%10)
	rate := []string{"-b:v", strconv.Itoa(r.Bitrate), "-maxrate", strconv.Itoa(r.Maxrate),
		"-bufsize", strconv.Itoa(2 * r.Maxrate)}
	gop := []string{"-g", "100000"}
	var args []string
	switch p.Accel {
	case AccelNVIDIA:
		// NVENC makes forced keyframes I-frames but not IDR unless told.
		args = []string{"-c:v", "h264_nvenc", "-preset", nvencPreset(p.Preset), "-tune", "hq",
			"-profile:v", "high", "-level:v", lvl, "-rc", "vbr"}
		args = append(args, rate...)
		args = append(args, gop...)
		return append(args, "-no-scenecut", "1", "-forced-idr", "1")
	case AccelVAAPI:
		// VAAPI turns every forced I-frame into an IDR by itself.
		args = []string{"-c:v", "h264_vaapi", "-profile:v", "high", "-level:v", lvl, "-rc_mode", "VBR"}
		args = append(args, rate...)
		return append(args, gop...)
	case AccelQSV:
		// Like NVENC, QSV needs to be told that forced means IDR. Its level
		// is the generic integer option: 41, not 4.1.
		args = []string{"-c:v", "h264_qsv", "-preset", qsvPreset(p.Preset), "-profile:v", "high",
			"-level:v", strconv.Itoa(level)}
		args = append(args, rate...)
		args = append(args, gop...)
		return append(args, "-look_ahead", "0", "-forced_idr", "1")
	}
	args = []string{"-c:v", "libx264", "-preset", p.Preset, "-profile:v", "high", "-level:v", lvl}
	args = append(args, rate...)
	return append(args, "-g", "100000", "-keyint_min", "100000", "-sc_threshold", "0",
		"-x264-params", "open_gop=0")
}

// nvencPreset maps x264's preset names onto NVENC's p1 (fastest) to p7.
func nvencPreset(x264 string) string {
	switch x264 {
	case "ultrafast", "superfast":
		return "p1"
	case "veryfast":
		return "p2"
	case "faster":
		return "p3"
	case "fast":
		return "p4"
	case "medium":
		return "p5"
	case "slow":
		return "p6"
	case "slower", "veryslow", "placebo":
		return "p7"
	}
	return "p4"
}

// qsvPreset maps x264's preset names onto QSV's, which share most of them.
func qsvPreset(x264 string) string {
	switch x264 {
	case "ultrafast", "superfast", "veryfast":
		return "veryfast"
	case "faster", "fast", "medium", "slow", "slower", "veryslow":
		return x264
	case "placebo":
		return "veryslow"
	}
	return "medium"
}
