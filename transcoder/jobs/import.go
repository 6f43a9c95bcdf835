package jobs

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"net/http"
	"net/url"
	"os"
	"path"
	"regexp"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/grafov/m3u8"

	"github.com/hlsd/hlsd/transcoder/child"
	"github.com/hlsd/hlsd/transcoder/failure"
	"github.com/hlsd/hlsd/transcoder/internal/atomicfile"
)

// importProtocols are all ffmpeg may open for an import: a playlist whose
// segment or key names a local file (file:, or any other protocol) fails
// to open it instead of reading it.
const importProtocols = "http,https,tcp,tls,crypto"

// importTimeout bounds each network read of an import: a server that stops
// answering fails the URL rather than holding a worker forever.
const importTimeout = 30 * time.Second

// checkURL accepts http and https URLs of the allowed hosts.
func (j *Runner) checkURL(raw string) error {
	u, err := url.Parse(raw)
	if err != nil || u.Host == "" || (u.Scheme != "http" && u.Scheme != "https") {
		return fmt.Errorf("%w: %q: only http and https URLs can be imported", failure.BadRequest, raw)
	}
	if len(j.cfg.ImportHosts) == 0 {
		return nil
	}
	host := strings.ToLower(u.Hostname())
	for _, h := range j.cfg.ImportHosts {
		h = strings.ToLower(strings.TrimSpace(h))
		if host == h || (strings.HasPrefix(h, ".") && strings.HasSuffix(host, h)) {
			return nil
		}
	}
	return fmt.Errorf("%w: %s is not among the hosts this server imports from (--import-hosts)", ErrNotAllowed, u.Hostname())
}

// source is what an import reads: the media playlist of the video (or the
// only) rendition, and the audio rendition's when it is separate.
type importSource struct {
	video, audio string
	total        float64 // seconds, the sum of the segments' durations
	closed       bool    // the playlist has its EXT-X-ENDLIST
}

var httpClient = &http.Client{Timeout: importTimeout}

// resolvePlaylist reads the playlist at raw: a master playlist is resolved
// to its highest-bandwidth variant (and that variant's audio rendition),
// and every URI the media playlists name must be http(s) on an allowed
// host, so that a playlist cannot lead ffmpeg to a local file.
func (j *Runner) resolvePlaylist(ctx context.Context, raw string) (importSource, error) {
	var src importSource
	pl, kind, err := fetchPlaylist(ctx, raw)
	if err != nil {
		return src, err
	}
	src.video = raw
	if kind == m3u8.MASTER {
		master := pl.(*m3u8.MasterPlaylist)
		var best *m3u8.Variant
		for _, v := range master.Variants {
			if v != nil && v.URI != "" && (best == nil || v.Bandwidth > best.Bandwidth) {
				best = v
			}
		}
		if best == nil {
			return src, errors.New("the master playlist lists no variant")
		}
		if src.video, err = resolveRef(raw, best.URI); err != nil {
			return src, err
		}
		for _, a := range best.Alternatives {
			if a != nil && a.Type == "AUDIO" && a.URI != "" && (src.audio == "" || a.Default) {
				if src.audio, err = resolveRef(raw, a.URI); err != nil {
					return src, err
				}
			}
		}
	}
	for i, u := range []string{src.video, src.audio} {
		if u == "" {
			continue
		}
		if err := j.checkURL(u); err != nil {
			return src, err
		}
		pl, kind, err := fetchPlaylist(ctx, u)
		if err != nil {
			return src, err
		}
		if kind != m3u8.MEDIA {
			return src, fmt.Errorf("%s is a master playlist where a media playlist was expected", u)
		}
		media := pl.(*m3u8.MediaPlaylist)
		total, err := j.checkMedia(u, media)
		if err != nil {
			return src, err
		}
		if i == 0 {
			src.total, src.closed = total, media.Closed
		}
	}
	return src, nil
}

// checkMedia sums a media playlist's durations and refuses a URI that is
// not http(s) on an allowed host.
func (j *Runner) checkMedia(base string, media *m3u8.MediaPlaylist) (float64, error) {
	var total float64
	check := func(what, ref string) error {
		abs, err := resolveRef(base, ref)
		if err != nil {
			return err
		}
		if err := j.checkURL(abs); err != nil {
			// Said without the request's error kind: this is the playlist's fault.
			why := "only http and https URLs can be imported"
			if errors.Is(err, ErrNotAllowed) {
				why = "its host is not among the hosts this server imports from (--import-hosts)"
			}
			return fmt.Errorf("%s points at %s: %s", what, abs, why)
		}
		return nil
	}
	segs := media.GetAllSegments()
	if len(segs) == 0 {
		return 0, fmt.Errorf("the playlist %s has no segment", base)
	}
	if media.Map != nil && media.Map.URI != "" {
		if err := check("its EXT-X-MAP", media.Map.URI); err != nil {
			return 0, err
		}
	}
	for n, s := range segs {
		if err := check(fmt.Sprintf("segment %d", n), s.URI); err != nil {
			return 0, err
		}
		if s.Key != nil && s.Key.URI != "" {
			if err := check(fmt.Sprintf("the key of segment %d", n), s.Key.URI); err != nil {
				return 0, err
			}
		}
		if s.Map != nil && s.Map.URI != "" {
			if err := check(fmt.Sprintf("the EXT-X-MAP of segment %d", n), s.Map.URI); err != nil {
				return 0, err
			}
		}
		total += s.Duration
	}
	if media.Key != nil && media.Key.URI != "" {
		if err := check("its key", media.Key.URI); err != nil {
			return 0, err
		}
	}
	return total, nil
}

func resolveRef(base, ref string) (string, error) {
	b, err := url.Parse(base)
	if err != nil {
		return "", err
	}
	r, err := url.Parse(strings.TrimSpace(ref))
	if err != nil {
		return "", fmt.Errorf("unreadable URI %q in the playlist", ref)
	}
	return b.ResolveReference(r).String(), nil
}

func fetchPlaylist(ctx context.Context, raw string) (m3u8.Playlist, m3u8.ListType, error) {
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, raw, nil)
	if err != nil {
		return nil, 0, err
	}
	resp, err := httpClient.Do(req)
	if err != nil {
		return nil, 0, fmt.Errorf("cannot read the playlist %s: %v", raw, err)
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		return nil, 0, fmt.Errorf("the playlist %s answered HTTP %s", raw, resp.Status)
	}
	pl, kind, err := m3u8.DecodeFrom(io.LimitReader(resp.Body, 16<<20), false)
	if err != nil {
		return nil, 0, fmt.Errorf("%s is not an HLS playlist: %v", raw, err)
	}
	return pl, kind, nil
}

// importItem copies (or re-encodes) one URL into the library: written to a
// hidden temporary name in the destination folder, checked, then renamed,
// so that the library never lists half a file.
func (j *Runner) importItem(ctx context.Context, job *Job, i int) error {
	j.mu.Lock()
	raw, folder, mode := job.Items[i].URL, job.Folder, job.Mode
	j.mu.Unlock()
	src, err := j.resolvePlaylist(ctx, raw)
	if err != nil {
		return err
	}
	if j.cfg.MaxDuration > 0 && src.total > j.cfg.MaxDuration.Seconds() {
		return fmt.Errorf("%s lasts %.0f s, over this server's cap of %s per import", raw, src.total, j.cfg.MaxDuration)
	}
	j.progress(job, i, 0, src.total, 0, 0)

	tmpRel := path.Join(folder, tempName(job.ID, i))
	tmp, err := j.lib.Create(tmpRel)
	if err != nil {
		return fmt.Errorf("cannot write in %q: %v", folder, err)
	}
	keep := false
	defer func() {
		tmp.Close()
		if !keep {
			_ = j.lib.Remove(tmpRel)
		}
	}()

	args := []string{"-hide_banner", "-nostdin", "-loglevel", "warning", "-y",
		"-protocol_whitelist", importProtocols, "-rw_timeout", strconv.Itoa(int(importTimeout.Microseconds()))}
	if !src.closed {
		// An EVENT playlist still growing: from its first segment, not the
		// live edge, until its EXT-X-ENDLIST.
		args = append(args, "-live_start_index", "0")
	}
	args = append(args, "-i", src.video)
	maps := []string{"-map", "0:v?", "-map", "0:a?"}
	if src.audio != "" {
		args = append(args, "-protocol_whitelist", importProtocols, "-rw_timeout", strconv.Itoa(int(importTimeout.Microseconds())), "-i", src.audio)
		maps = []string{"-map", "0:v?", "-map", "1:a?"}
	}
	args = append(args, maps...)
	if mode == "transcode" {
		// H.264 and AAC, for a stream no player of the library decodes.
		// In software, niced below playback by the pool's own CPU share.
		args = append(args, "-c:v", "libx264", "-preset", "veryfast", "-crf", "21", "-pix_fmt", "yuv420p",
			"-c:a", "aac", "-b:a", "160k")
	} else {
		args = append(args, "-c", "copy")
	}
	if j.cfg.MaxBytes > 0 {
		args = append(args, "-fs", strconv.FormatInt(j.cfg.MaxBytes, 10))
	}
	if j.cfg.MaxDuration > 0 {
		args = append(args, "-t", strconv.FormatFloat(j.cfg.MaxDuration.Seconds(), 'f', 0, 64))
	}
	// faststart: the index up front, so that players and hlsd's keyframe
	// reader find it without reading the file to its end.
	args = append(args, "-map_metadata", "-1", "-movflags", "+faststart", "-progress", "pipe:1", "-nostats",
		"-f", "mp4", child.Input)

	cmd := child.Command(ctx, tmp, j.cfg.FFmpeg, args...)
	stderr := &segmentErrors{tail: child.Tail{Max: 4096}}
	cmd.Stderr = stderr
	stdout, err := cmd.StdoutPipe()
	if err != nil {
		return err
	}
	if err := cmd.Start(); err != nil {
		return fmt.Errorf("cannot start ffmpeg: %v", err)
	}
	start := time.Now()
	sc := bufio.NewScanner(stdout)
	var done float64
	var size int64
	for sc.Scan() {
		k, v, _ := strings.Cut(sc.Text(), "=")
		switch k {
		case "out_time_us":
			if us, err := strconv.ParseInt(v, 10, 64); err == nil && us > 0 {
				done = float64(us) / 1e6
			}
		case "total_size":
			size, _ = strconv.ParseInt(v, 10, 64)
		case "progress":
			j.progress(job, i, done, max(src.total, done), size, done/max(time.Since(start).Seconds(), 1e-3))
		}
	}
	_, _ = io.Copy(io.Discard, stdout)
	waitErr := cmd.Wait()
	if ctx.Err() != nil {
		return ctx.Err()
	}
	if waitErr != nil {
		return fmt.Errorf("ffmpeg failed: %s%s", child.LastLines(stderr.tail.String(), 1), atomicfile.DiskFullHint(j.lib.Dir()))
	}
	if msg := stderr.first(); msg != "" {
		return fmt.Errorf("the stream is incomplete: %s", msg)
	}
	st, err := tmp.Stat()
	if err != nil || st.Size() == 0 {
		return errors.New("ffmpeg wrote nothing: the stream has no audio or video")
	}
	if j.cfg.MaxBytes > 0 && st.Size() >= j.cfg.MaxBytes {
		return fmt.Errorf("the import reached this server's cap of %d bytes per URL (--import-max-bytes)", j.cfg.MaxBytes)
	}
	got, err := j.probeDuration(ctx, tmp)
	if err != nil {
		return err
	}
	if src.closed && got < src.total-max(2, src.total*0.02) {
		return fmt.Errorf("the stream is incomplete: %.1f s of the playlist's %.1f s were read", got, src.total)
	}
	name, err := j.place(tmpRel, folder, importName(raw))
	if err != nil {
		return err
	}
	keep = true
	j.mu.Lock()
	job.Items[i].File = name
	j.mu.Unlock()
	j.progress(job, i, got, got, st.Size(), 0)
	return nil
}

// probeDuration reads the duration of the file made.
func (j *Runner) probeDuration(ctx context.Context, f *os.File) (float64, error) {
	cmd := child.Command(ctx, f, j.cfg.FFprobe, "-v", "error", "-show_entries", "format=duration", "-of", "csv=p=0", child.Input)
	out, err := cmd.Output()
	if err != nil {
		return 0, fmt.Errorf("the file made cannot be read back: %v", err)
	}
	d, err := strconv.ParseFloat(strings.TrimSpace(string(out)), 64)
	if err != nil {
		return 0, fmt.Errorf("the file made has no duration (%q)", strings.TrimSpace(string(out)))
	}
	return d, nil
}

// place gives the finished file its name in the folder: name.mp4, or
// name (2).mp4 and so on when taken. A hard link never replaces a file,
// so two imports of one name cannot overwrite each other.
func (j *Runner) place(tmpRel, folder, name string) (string, error) {
	for k := 1; k < 1000; k++ {
		n := name + ".mp4"
		if k > 1 {
			n = fmt.Sprintf("%s (%d).mp4", name, k)
		}
		rel := path.Join(folder, n)
		err := j.lib.Link(tmpRel, rel)
		if err == nil {
			_ = j.lib.Remove(tmpRel)
			return rel, nil
		}
		if !errors.Is(err, fs.ErrExist) {
			return "", fmt.Errorf("cannot name the file %q: %v", rel, err)
		}
	}
	return "", fmt.Errorf("no free name for %q in %q", name, folder)
}

// tempName is an import's file while it is written: hidden from listings.
func tempName(job string, i int) string { return fmt.Sprintf(".hlsd-import-%s-%d.mp4", job, i) }

var unsafeName = regexp.MustCompile(`[^\p{L}\p{N} ._()-]+`)

// importName makes a file name from a playlist URL: its last path element
// without extension, or the folder's when that is a generic name.
func importName(raw string) string {
	u, _ := url.Parse(raw)
	p := strings.TrimSuffix(u.Path, "/")
	for p != "" && p != "/" {
		base := strings.TrimSuffix(path.Base(p), path.Ext(p))
		switch strings.ToLower(base) {
		case "index", "playlist", "master", "prog_index", "stream", "chunklist", "main", "video", "mono", "live":
			p = path.Dir(p)
			continue
		}
		if n := strings.Trim(unsafeName.ReplaceAllString(base, "_"), " ._"); n != "" {
			return n[:min(len(n), 100)]
		}
		break
	}
	return unsafeName.ReplaceAllString(u.Hostname(), "_")
}

// segmentErrors is ffmpeg's stderr, kept short, with the first segment
// ffmpeg could not read: its HLS reader warns and goes on without it,
// which would import a stream with a hole as if it were whole.
type segmentErrors struct {
	tail child.Tail
	mu   sync.Mutex
	line []byte
	msg  string
	http string
}

var (
	failedSegment = regexp.MustCompile(`Failed to open segment (\d+)`)
	httpFailure   = regexp.MustCompile(`HTTP error (\d+[^\r\n]*)|Server returned ([^\r\n]+)`)
)

func (s *segmentErrors) Write(p []byte) (int, error) {
	s.tail.Write(p)
	s.mu.Lock()
	defer s.mu.Unlock()
	s.line = append(s.line, p...)
	for {
		i := strings.IndexByte(string(s.line), '\n')
		if i < 0 {
			break
		}
		l := string(s.line[:i])
		s.line = s.line[i+1:]
		if m := httpFailure.FindStringSubmatch(l); m != nil && s.http == "" {
			s.http = strings.TrimSpace(m[1] + m[2])
		}
		if m := failedSegment.FindStringSubmatch(l); m != nil && s.msg == "" {
			s.msg = "segment " + m[1] + " could not be read"
		}
	}
	if len(s.line) > 4096 {
		s.line = s.line[len(s.line)-4096:]
	}
	return len(p), nil
}

func (s *segmentErrors) first() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.msg != "" && s.http != "" {
		return s.msg + " (HTTP " + s.http + ")"
	}
	return s.msg
}
