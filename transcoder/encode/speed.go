package encode

import (
	"encoding/json"
	"fmt"
	"os"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/hlsd/hlsd/transcoder/internal/atomicfile"
	"github.com/hlsd/hlsd/transcoder/probe"
	"go.uber.org/zap"
)

// Speeds remembers how fast this machine re-encodes: the frames per second
// one head makes when it has the encoders to itself, per source class and
// rung (SpeedKey). Heads report it from ffmpeg's -progress output, and a
// calibration run fills in a class the master knows nothing of. It is kept
// in the cache directory, so a restart does not forget it.
type Speeds struct {
	path string

	mu    sync.Mutex // a leaf
	fps   map[string]float64
	dirty bool
}

// NewSpeeds reads the estimates kept at path, if any.
func NewSpeeds(path string, log *zap.Logger) *Speeds {
	s := &Speeds{path: path, fps: map[string]float64{}}
	b, err := os.ReadFile(path)
	if err == nil {
		err = json.Unmarshal(b, &s.fps)
	}
	if err != nil && !os.IsNotExist(err) {
		log.Warn("ignoring the saved encoder speeds", zap.String("path", path), zap.Error(err))
		s.fps = map[string]float64{}
	}
	return s
}

// SpeedKey names what an encoder's speed depends on: the source's codec,
// depth and size (decoding), the rung (scaling, encoding) and the encoder.
func SpeedKey(v probe.VideoStream, rung string, p Profile) string {
	return fmt.Sprintf("%s %d-bit %dx%d to %s, %s %s", v.Codec, max(v.BitDepth, 8), v.Width, v.Height, rung, p.Accel, p.Preset)
}

// Observe folds a measurement into the estimate: recent runs weigh most,
// so a machine that got busier or faster is followed within a few heads.
func (s *Speeds) Observe(key string, fps float64) {
	if !(fps > 0) {
		return
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	if old, ok := s.fps[key]; ok {
		fps = 0.6*old + 0.4*fps
	}
	s.fps[key] = fps
	s.dirty = true
}

// Get is the estimate of key, in frames per second.
func (s *Speeds) Get(key string) (float64, bool) {
	s.mu.Lock()
	defer s.mu.Unlock()
	f, ok := s.fps[key]
	return f, ok
}

// Save writes the estimates if they changed since the last save.
func (s *Speeds) Save() error {
	s.mu.Lock()
	if !s.dirty {
		s.mu.Unlock()
		return nil
	}
	b, err := json.MarshalIndent(s.fps, "", "  ")
	s.dirty = false
	s.mu.Unlock()
	if err != nil {
		return err
	}
	return atomicfile.Write(s.path, b)
}

// RungSpeed estimates how many times real time one head alone makes rung r
// of v. A rung never measured is scaled from the nearest measured rung of
// the same source by pixel count (encoding dominates, and from a larger
// rung the guess errs towards speed, from a smaller one towards caution).
// known is false when nothing of the source's class was measured.
func (s *Speeds) RungSpeed(v probe.VideoStream, r Rung, p Profile) (speed float64, known bool) {
	if !(v.FPS > 0) {
		return 0, false
	}
	pixels := func(r Rung) float64 {
		w, h := RungSize(v, r)
		return float64(w * h)
	}
	if fps, ok := s.Get(SpeedKey(v, r.Name, p)); ok {
		return fps / v.FPS, true
	}
	best, bestDist := 0.0, 0.0
	for _, o := range RungsFor(v) {
		fps, ok := s.Get(SpeedKey(v, o.Name, p))
		if !ok {
			continue
		}
		d := pixels(o) / pixels(r)
		dist := max(d, 1/d)
		if best == 0 || dist < bestDist {
			best, bestDist = fps*d, dist
		}
	}
	if best == 0 {
		return 0, false
	}
	return best / v.FPS, true
}

// Meter turns ffmpeg's -progress reports into frames per second, counting
// only the intervals in which alone() held: a head sharing the cores with
// another re-encode measures the load, not the machine.
type Meter struct {
	alone  func() bool
	last   int // frame count of the last report; -1 before the first
	at     time.Time
	frames int
	busy   time.Duration
}

// NewMeter counts the intervals in which alone holds.
func NewMeter(alone func() bool) *Meter { return &Meter{alone: alone, last: -1} }

// Line reads one line of ffmpeg's output; all but frame counts are ignored.
func (m *Meter) Line(l string) {
	v, ok := strings.CutPrefix(l, "frame=")
	if !ok {
		return
	}
	n, err := strconv.Atoi(strings.TrimSpace(v))
	if err != nil {
		return
	}
	now := time.Now()
	// The first report covers the start (opening, seeking, the encoder's
	// lookahead), which a long run does not pay per frame.
	// A long gap between reports is a pause (SIGSTOP), not slowness.
	if m.last >= 0 && n >= m.last && now.Sub(m.at) < 3*StatsPeriod && m.alone() {
		m.frames += n - m.last
		m.busy += now.Sub(m.at)
	}
	m.last, m.at = n, now
}

// Take returns the frames per second measured over at least min, and starts over.
func (m *Meter) Take(min time.Duration) (float64, bool) {
	if m.busy < min || m.frames == 0 {
		return 0, false
	}
	fps := float64(m.frames) / m.busy.Seconds()
	m.frames, m.busy = 0, 0
	return fps, true
}

// Busy is how long the meter has counted since it last started over.
func (m *Meter) Busy() time.Duration { return m.busy }

// Set replaces the estimate of key: a measurement known better than the
// running average (the tests' machine speeds).
func (s *Speeds) Set(key string, fps float64) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.fps[key] = fps
	s.dirty = true
}
