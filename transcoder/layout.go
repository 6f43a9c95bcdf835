package transcoder

import (
	"fmt"
	"path/filepath"
	"strconv"
)

// layout is where everything the transcoder keeps lives, under the cache
// directory. Every path of the cache is built here, so a reader finds the
// whole tree in one place:
//
//	segments/KEY/KIND-TRACK-QUALITY/   a variant: init.mp4, segment-N.m4s,
//	                                   run-ID/ (a head's work), .tmp-evicted-*
//	segments/KEY/ts-KIND-TRACK-QUALITY/segment-N.ts
//	segments/KEY/iframes-TRACK-QUALITY/
//	segments/KEY/download/QUALITY-aAUDIO.mp4  a download.mp4 (.tmp-* while made)
//	inits/CONFIG.mp4                   init segments per encoder configuration
//	probe-v3/KEY.json                  ffprobe's results (probe.Dir)
//	keyframes/KEY.json                 (written by the keyframes store)
//	subtitles/KEY-STREAM.vtt, KEY.vtt  a track of the file, a sidecar (its own KEY)
//	trickplay/KEY-INTERVALs-WIDTHw/    thumbnails; .tmp-* while being made
//	speeds.json                        encoder speeds per kind of source
//	.prepare-*/                        a prepare's work
//	.ready-*                           the readiness probe's write test
//	jobs/ID.json                       the jobs' state (cmd/hlsd gives Jobs this)
//
// KEY is a file version's probe.Identity key.
type layout string

func (l layout) root() string     { return string(l) }
func (l layout) segments() string { return filepath.Join(string(l), "segments") }

func (l layout) variant(key, kind string, track int, quality string) string {
	return filepath.Join(l.segments(), key, fmt.Sprintf("%s-%d-%s", kind, track, quality))
}

// tsSegment is segment n of a variant in MPEG-TS: not in the variant's
// directory, whose files are all fMP4; cached within the segment budget, and
// dropped at restart, as a directory without fMP4 segments is.
func (l layout) tsSegment(variantDir string, n int) string {
	return filepath.Join(filepath.Dir(variantDir), "ts-"+filepath.Base(variantDir), fmt.Sprintf("segment-%d.ts", n))
}

// download is a whole file at one quality with one audio track; its
// directory holds nothing else, and .tmp-NAME while it is being made.
func (l layout) download(key, quality string, audio int) string {
	return filepath.Join(l.segments(), key, downloadDir, fmt.Sprintf("%s-a%d.mp4", quality, audio))
}

const downloadDir = "download"

func (l layout) iframes(key string, track int, quality string) string {
	return filepath.Join(l.segments(), key, fmt.Sprintf("iframes-%d-%s", track, quality))
}

func segmentFile(variantDir string, n int) string {
	return filepath.Join(variantDir, "segment-"+strconv.Itoa(n)+".m4s")
}

func initFile(variantDir string) string { return filepath.Join(variantDir, "init.mp4") }

func runDir(variantDir string, id int) string {
	return filepath.Join(variantDir, "run-"+strconv.Itoa(id))
}

func (l layout) sharedInit(config string) string {
	return filepath.Join(string(l), "inits", config+".mp4")
}

func (l layout) subtitle(id string) string {
	return filepath.Join(string(l), "subtitles", id+".vtt")
}

func (l layout) trickplayRoot() string { return filepath.Join(string(l), "trickplay") }

func (l layout) trickplay(key string, interval float64, width int) string {
	return filepath.Join(l.trickplayRoot(),
		fmt.Sprintf("%s-%ss-%dw", key, strconv.FormatFloat(interval, 'f', -1, 64), width))
}

func (l layout) speeds() string { return filepath.Join(string(l), "speeds.json") }
