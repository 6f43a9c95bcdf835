package probe

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"time"

	gocache "github.com/patrickmn/go-cache"

	"github.com/hlsd/hlsd/keyframes"
	"github.com/hlsd/hlsd/transcoder/child"
	"github.com/hlsd/hlsd/transcoder/failure"
	"github.com/hlsd/hlsd/transcoder/internal/atomicfile"
)

// Dir is where a Prober keeps its results under the cache directory. Its
// name changes whenever Info gains a field older results lack, so those
// are probed again rather than trusted.
const Dir = "probe-v3"

// Prober runs ffprobe and keeps its results: on disk, since they depend
// only on a file's bytes, and in memory for an hour over the disk copy.
type Prober struct {
	ffprobe string
	dir     string
	mem     *gocache.Cache
}

// NewProber keeps results in dir (the cache directory's Dir).
func NewProber(ffprobe, dir string) *Prober {
	// No go-cache janitor goroutine: the owner calls Sweep from its own.
	return &Prober{ffprobe: ffprobe, dir: dir, mem: gocache.New(time.Hour, 0)}
}

// Sweep forgets the results not asked for in the last hour.
func (p *Prober) Sweep() { p.mem.DeleteExpired() }

func (p *Prober) path(id Identity) string { return filepath.Join(p.dir, id.Key()+".json") }

// Known is the result of an earlier probe of id, from memory or disk; it
// never runs ffprobe, so a directory listing never waits for one.
func (p *Prober) Known(id Identity) (*Info, bool) {
	key := id.Key()
	if v, ok := p.mem.Get(key); ok {
		return v.(*Info), true
	}
	b, err := os.ReadFile(p.path(id))
	if err != nil {
		return nil, false
	}
	var info Info
	if json.Unmarshal(b, &info) != nil || info.Duration <= 0 {
		return nil, false
	}
	info.ModTime = time.Unix(0, id.ModTime)
	p.mem.SetDefault(key, &info)
	return &info, true
}

// Probe returns what ffprobe says of f, the file of id, running it unless
// it is known. ctx bounds the wait; a probe that reads nothing for 30 s
// fails as not media.
func (p *Prober) Probe(ctx context.Context, id Identity, f *os.File) (*Info, error) {
	if info, ok := p.Known(id); ok {
		return info, nil
	}
	pctx, cancel := context.WithTimeout(ctx, 30*time.Second)
	defer cancel()
	args := []string{"-v", "error"}
	if keyframes.IndexedContainer(f, id.Size) {
		// MP4 and Matroska declare every stream in their header, so ffprobe
		// need not read its default 5 s of packets (20 MB and more at remux
		// rates, from a cold disk) to find them: this is most of a first
		// request's time once keyframes come from the index.
		args = append(args, "-analyzeduration", "500000", "-probesize", "2000000")
	}
	// The first video track's codec configuration, for exact CODECS: read
	// from an MP4 or Matroska header here, else (MPEG-TS, AVI...) by a
	// second ffprobe beside the main one, each reading through its own open
	// of Input. A second ffprobe costs a first request some 60 ms on two
	// cores, so it runs only where the header has no record.
	config, inHeader := keyframes.CodecConfig(f, id.Size)
	var configs *configProbe
	if !inHeader {
		configs = startConfigProbe(pctx, f, p.ffprobe, args)
	}
	defer func() {
		cancel()
		configs.wait()
	}()
	args = append(args, "-print_format", "json", "-show_format", "-show_streams", child.Input)
	cmd := child.Command(pctx, f, p.ffprobe, args...)
	var stdout, stderr bytes.Buffer
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	if err := cmd.Run(); err != nil {
		// Our own deadline, not the caller's leaving or a shutdown.
		if ctx.Err() == nil && errors.Is(pctx.Err(), context.DeadlineExceeded) && stdout.Len() == 0 {
			return nil, fmt.Errorf("%w: ffprobe timed out reading the file", failure.NotMedia)
		}
		if ctx.Err() != nil {
			return nil, context.Cause(ctx)
		}
		msg := strings.TrimSpace(child.LastLines(stderr.String(), 3))
		if msg == "" {
			msg = err.Error()
		}
		return nil, fmt.Errorf("%w: ffprobe cannot read it: %s", failure.NotMedia, msg)
	}
	info, err := Parse(stdout.Bytes())
	if err != nil {
		return nil, err
	}
	if inHeader && len(info.Video) > 0 {
		info.codecStrings(map[int][]byte{info.Video[0].Index: config})
	} else {
		info.codecStrings(configs.wait())
	}
	info.Size = id.Size
	info.ModTime = time.Unix(0, id.ModTime)
	if b, err := json.Marshal(info); err == nil {
		_ = atomicfile.Write(p.path(id), b)
	}
	p.mem.SetDefault(id.Key(), info)
	return info, nil
}
