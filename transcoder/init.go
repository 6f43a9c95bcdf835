package transcoder

import (
	"bytes"
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"sync/atomic"

	"github.com/hlsd/hlsd/transcoder/encode"
	"github.com/hlsd/hlsd/transcoder/failure"
	"github.com/hlsd/hlsd/transcoder/fmp4"
	"github.com/hlsd/hlsd/transcoder/internal/atomicfile"
	"go.uber.org/zap"
)

// Init segments of re-encoded variants are made once per encoder
// configuration and kept in <cache>/inits, so that an init request is
// answered at once, with no head, for any file of a kind seen before.
// A variant's init is the ftyp and moov of its first run's output: the
// track's codec configuration (SPS/PPS, AudioSpecificConfig), picture
// size and timescale. These follow from the run's arguments and from the
// source stream's decoded format, which configKey hashes; nothing in them
// depends on where a run starts, which file it reads or when it runs. The
// tests check this byte for byte. And should a run ever differ, its
// segments still play after another run's init: every IDR carries its
// SPS and PPS (dump_extra).

// configKey names v's encoder configuration, or "" when v's init cannot be
// shared: a stream copy's carries the source's own codec configuration, and
// a file probed before formats were recorded does not say enough.
func (v *variant) configKey() string {
	if v.copies() {
		return ""
	}
	r := encode.Spec{Kind: v.kind, Track: v.track, Quality: v.quality, Bounds: []float64{0, 1},
		Profile: encode.Profile{Accel: encode.AccelNone, Preset: v.env.preset}, Container: v.m.info.Container}
	var stream string
	if v.kind == "video" {
		r.Video = v.video()
		r.Video.Index, r.Video.Bitrate, r.Video.Level = 0, 0, 0
		stream = fmt.Sprintf("%+v", r.Video)
		if r.Video.Format == "" {
			return ""
		}
	} else {
		r.Audio = v.m.info.Audio[v.track]
		r.Audio.Index, r.Audio.Bitrate = 0, 0
		r.Audio.Language, r.Audio.Title, r.Audio.Default, r.Audio.Comment, r.Audio.Start = "", "", false, false, 0
		stream = fmt.Sprintf("%+v", r.Audio)
		if r.Audio.Format == "" {
			return ""
		}
	}
	h := sha256.New()
	h.Write([]byte(strings.Join(encode.Args(r), "\x00")))
	h.Write([]byte{0})
	h.Write([]byte(stream))
	return hex.EncodeToString(h.Sum(nil)[:16])
}

// inits keeps one init segment per encoder configuration (configKey), in
// the cache directory: a player that switches between runs made the same
// way gets the init it already has.
type inits struct {
	layout layout
	log    *zap.Logger
	// mismatches counts runs whose init differed from the one kept for
	// their configuration: zero unless configKey misses something.
	mismatches atomic.Int64
}

func (i *inits) path(key string) string { return i.layout.sharedInit(key) }

// get returns the init kept for key, if any.
func (i *inits) get(key string) ([]byte, bool) {
	if key == "" {
		return nil, false
	}
	b, err := os.ReadFile(i.path(key))
	return b, err == nil && len(b) > 0
}

// keep stores init for key, unless one is kept already; a different one
// already kept is reported, as it would disprove configKey.
func (i *inits) keep(key string, init []byte) {
	if key == "" {
		return
	}
	if old, ok := i.get(key); ok {
		if !bytes.Equal(old, init) {
			i.mismatches.Add(1)
			i.log.Warn("an encoder run wrote another init segment than the one kept for its configuration; players still decode its segments, whose IDRs carry their parameter sets",
				zap.String("config", key))
		}
		return
	}
	_ = atomicfile.Write(i.path(key), init)
}

// headerOf returns the ftyp and moov at the start of a segment file being
// written, once both are complete: ffmpeg writes them before the first
// frame, so a head's init is known a few hundred milliseconds after it
// starts rather than when its first segment is complete.
func headerOf(path string) ([]byte, bool) {
	f, err := os.Open(path)
	if err != nil {
		return nil, false
	}
	defer f.Close()
	buf := make([]byte, 64<<10)
	n, _ := f.Read(buf)
	return fmp4.Header(buf[:n])
}

// headFile is where h writes segment n.
func (h *head) file(n int) string { return filepath.Join(h.dir, "s-"+strconv.Itoa(n)+".mp4") }

// setInit makes b the variant's init segment, unless it has one.
func (v *variant) setInit(b []byte) error {
	v.mu.Lock()
	have := isClosed(v.initCh)
	v.mu.Unlock()
	if have {
		return nil
	}
	if err := atomicfile.Write(v.initPath(), b); err != nil {
		return fmt.Errorf("%w: writing init segment: %v", failure.Encoder, err)
	}
	v.mu.Lock()
	if !isClosed(v.initCh) {
		close(v.initCh)
	}
	v.mu.Unlock()
	return nil
}
