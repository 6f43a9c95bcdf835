package main

import (
	"bytes"
	"context"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"syscall"
	"time"

	"github.com/hlsd/hlsd/keyframes"
	"github.com/hlsd/hlsd/transcoder"
	"github.com/hlsd/hlsd/transcoder/child"
)

// bigSize is the size the issue sets for "any file": the index must make
// the first playlists of a file this large as fast as those of a small one.
const bigSize = 10 << 30

// bigFileRows makes a ≥10 GB mp4 and its mkv remux by stream-copy looping a
// high-bitrate clip, then times a cold master + original media playlist with
// keyframes from the container index and from the packet scan. Both must
// give the same media playlist. The files are removed afterwards.
func bigFileRows(ctx context.Context, dir string, runs int) []row {
	tmp, err := os.MkdirTemp(dir, "hlsbench-big-")
	check(err)
	defer os.RemoveAll(tmp)

	// 30 Mb/s, a Blu-ray remux's rate: 10 GB is then some 45 minutes and
	// 66 000 frames, a film-sized index. Noise keeps x264 from reaching the
	// rate with far fewer bits than asked.
	clip := filepath.Join(tmp, "clip.mp4")
	ffmpeg(ctx, "-f", "lavfi", "-i", "testsrc2=size=1920x1080:rate=24,noise=alls=12:allf=t",
		"-f", "lavfi", "-i", "sine=frequency=440:sample_rate=48000",
		"-t", "30", "-c:v", "libx264", "-preset", "ultrafast", "-b:v", "30M", "-maxrate", "30M", "-bufsize", "60M",
		"-g", "48", "-c:a", "aac", clip)
	st, err := os.Stat(clip)
	check(err)
	loops := int(bigSize/st.Size()) + 1

	var rows []row
	for _, ext := range []string{".mp4", ".mkv"} {
		big := filepath.Join(tmp, "big"+ext)
		ffmpeg(ctx, "-stream_loop", fmt.Sprint(loops-1), "-i", clip, "-c", "copy", big)
		st, err := os.Stat(big)
		check(err)
		what := fmt.Sprintf("%.1f GB %s, %d min", float64(st.Size())/1e9, ext[1:], loops*30/60)

		var index, kf []time.Duration
		var indexPlaylist []byte
		for i := 0; i < runs; i++ {
			d, p := coldPlaylists(big, false)
			index, indexPlaylist = append(index, d), p
			kf = append(kf, coldKeyframes(big))
		}
		// One scan run: it reads every byte of the file from disk.
		scan, scanPlaylist := coldPlaylists(big, true)
		if !bytes.Equal(indexPlaylist, scanPlaylist) {
			check(fmt.Errorf("%s: the index and the scan give different media playlists", big))
		}
		rows = append(rows,
			row{"keyframes from the index alone, " + what + " (cold)", ms(median(kf)), ""},
			row{"master + media playlist, " + what + ", keyframes from the index (cold)", ms(median(index)), "< 100 ms"},
			row{"master + media playlist, " + what + ", keyframes by scan (cold)", ms(scan), ""})
		os.Remove(big)
	}
	return rows
}

// coldPlaylists times a master and the original media playlist of file on a
// fresh server, with the file's pages evicted from the page cache so the
// reads come from the disk, as they would for a file nobody played lately.
func coldPlaylists(file string, scanOnly bool) (time.Duration, []byte) {
	evict(file)
	video, stop := coldServer(file, transcoder.Config{KeyframeScanOnly: scanOnly})
	defer stop()
	start := time.Now()
	get(video + "/master.m3u8")
	p := get(video + "/video/0/original/index.m3u8")
	return time.Since(start), p
}

// coldKeyframes times the keyframe store alone on file, index allowed, with
// the file's pages evicted: the part of a first playlist the index replaces.
func coldKeyframes(file string) time.Duration {
	evict(file)
	tmp, err := os.MkdirTemp("", "hlsbench-kf-")
	check(err)
	defer os.RemoveAll(tmp)
	store := keyframes.NewStore(tmp, keyframes.Options{Runner: child.Runner("ffprobe")})
	defer store.Close()
	start := time.Now()
	kf, err := store.Get(file, "big", 0)
	check(err)
	<-kf.Done()
	if kf.Source() != keyframes.SourceIndex {
		check(fmt.Errorf("%s: keyframes came from %q, not the index", file, kf.Source()))
	}
	return time.Since(start)
}

// evict drops file's clean pages from the page cache (POSIX_FADV_DONTNEED).
func evict(file string) {
	f, err := os.Open(file)
	check(err)
	defer f.Close()
	// Dirty pages cannot be dropped: a file just written must reach the disk first.
	check(f.Sync())
	const dontNeed = 4
	if _, _, e := syscall.Syscall6(syscall.SYS_FADVISE64, f.Fd(), 0, 0, dontNeed, 0, 0); e != 0 {
		check(fmt.Errorf("fadvise %s: %w", file, e))
	}
}

func ffmpeg(ctx context.Context, args ...string) {
	args = append([]string{"-y", "-loglevel", "error", "-nostdin"}, args...)
	if out, err := exec.CommandContext(ctx, "ffmpeg", args...).CombinedOutput(); err != nil {
		check(fmt.Errorf("ffmpeg %v: %w: %s", args, err, out))
	}
}
