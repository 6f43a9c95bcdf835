package transcoder

import (
	"strings"
	"testing"

	"github.com/hlsd/hlsd/transcoder/probe"
)

func TestTileHeight(t *testing.T) {
	cases := []struct {
		v    probe.VideoStream
		want int
	}{
		{probe.VideoStream{Width: 1920, Height: 1080}, 136},
		{probe.VideoStream{Width: 1920, Height: 800}, 100},
		{probe.VideoStream{Width: 720, Height: 576, SAR: 64.0 / 45}, 136}, // anamorphic PAL 16:9
		{probe.VideoStream{Width: 1920, Height: 1080, Rotation: 90}, 426}, // a phone held upright
		{probe.VideoStream{Width: 100, Height: 10000}, 960},               // capped
		{probe.VideoStream{}, 136},
	}
	for _, c := range cases {
		if got := tileHeight(c.v); got != c.want {
			t.Errorf("%+v: tile height %d, want %d", c.v, got, c.want)
		}
	}
}

func TestTilesShowNearestKeyframe(t *testing.T) {
	info := &probe.Info{Duration: 41, Video: []probe.VideoStream{{Width: 640, Height: 360}}}
	tp := newTrickplay(info, []float64{0, 4, 25, 35.5}, 10)
	want := []float64{0, 4, 25, 25, 35.5} // 20 is nearer 25 than 4; 30 is nearer 25 than 35.5
	if len(tp.Times) != len(want) {
		t.Fatalf("tiles %v, want %v", tp.Times, want)
	}
	for i := range want {
		if tp.Times[i] != want[i] {
			t.Errorf("tile %d shows %v, want %v", i, tp.Times[i], want[i])
		}
	}
	vtt := string(tp.vtt(""))
	if !strings.HasSuffix(vtt, "00:00:40.000 --> 00:00:41.000\ntrickplay/sheet-0.jpg#xywh=960,0,240,136\n") {
		t.Errorf("last cue:\n%s", vtt)
	}
	// A remainder under a millisecond makes no cue.
	info.Duration = 40.0004
	if n := len(newTrickplay(info, []float64{0}, 10).Times); n != 4 {
		t.Errorf("%d tiles for 40.0004 s every 10 s, want 4", n)
	}
}

func TestChunksCoverSheets(t *testing.T) {
	for _, tiles := range []int{1, 7, 100, 134, 193, 721} {
		for _, parallel := range []int{1, 2, 4} {
			tp := &trickplay{Times: make([]float64, tiles)}
			chunks := tp.chunks(parallel)
			next := 0
			for _, c := range chunks {
				if c.first != next || c.end <= c.first || c.first/sheetTiles != c.sheet || (c.end-1)/sheetTiles != c.sheet {
					t.Fatalf("%d tiles, %d at once: chunk %+v after tile %d", tiles, parallel, c, next)
				}
				next = c.end
			}
			if next != tiles || len(chunks) < min(parallel, tiles) {
				t.Errorf("%d tiles, %d at once: %d chunks up to tile %d", tiles, parallel, len(chunks), next)
			}
		}
	}
}
