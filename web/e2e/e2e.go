// Package e2e judges hlsd with a real player: hls.js in Debian's Chromium,
// driven by playwright-core through hlsjs.mjs. The browser test and
// `make bench` both use it; the hlsd binary does not.
//
// What it needs beside Go: node, /usr/bin/chromium and `npm ci` run in this
// directory. `make deps` installs all three.
package e2e

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"math"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"sort"
	"strconv"
	"strings"
	"syscall"
	"time"
)

// Chromium is where Debian's package puts the browser.
const Chromium = "/usr/bin/chromium"

// File is one media file to play.
type File struct {
	Name string `json:"name"`
	ID   string `json:"id"`
	// Tones are the pitches (Hz) of the audio tracks, in order: after each
	// audio switch the decoded audio must sound at the new track's pitch.
	Tones []float64 `json:"tones,omitempty"`
	// Cues are subtitle cues of the first subtitle track: selected in
	// hls.js, each must be showing in the middle of its time span and not
	// just outside it.
	Cues []Cue `json:"cues,omitempty"`
	// Container "ts" plays the server's MPEG-TS variant.
	Container string `json:"container,omitempty"`
}

// Cue is one subtitle cue, in seconds on the media timeline.
type Cue struct {
	Start float64 `json:"start"`
	End   float64 `json:"end"`
	Text  string  `json:"text"`
}

// PageCheck is the walk through the web page: open the folder, play the
// file, pick a quality, then open MissingID and expect the error banner.
type PageCheck struct {
	Folder    string `json:"folder"`
	Name      string `json:"name"`
	MissingID string `json:"missingId"`
}

// TokenCheck is the page walk against a server started with a token: the
// page without it must say a token is needed; opened with ?token= it plays.
type TokenCheck struct {
	Base   string `json:"base"`
	Token  string `json:"token"`
	Folder string `json:"folder"`
	Name   string `json:"name"`
}

// Config is what hlsjs.mjs reads.
type Config struct {
	Base      string      `json:"base"` // server URL, no trailing slash
	Chromium  string      `json:"chromium,omitempty"`
	Artifacts string      `json:"artifacts"` // screenshots go here
	Files     []File      `json:"files"`
	Page      *PageCheck  `json:"page,omitempty"`
	Token     *TokenCheck `json:"token,omitempty"`
	Debug     bool        `json:"debug,omitempty"` // hls.js debug log to stderr
	// Player, when set, plays Files in another scenario and player: "shaka"
	// (Shaka Player), "videojs" (video.js with VHS) or "hls.js" (the same
	// short scenario in hls.js, for comparison). See hlsjs.mjs.
	Player string `json:"player,omitempty"`
	// Watch, when set, plays each file of Files straight on instead (see Watch).
	Watch *Watch `json:"watch,omitempty"`
	// Activity, when set, opens the web player's Activity view and waits
	// for the progress bar of this job to move.
	Activity *ActivityCheck `json:"activity,omitempty"`
	// Codecs, when set, opens the file in the web player, lets it play and
	// records every request the page made.
	Codecs *CodecsCheck `json:"codecs,omitempty"`
	// DownloadMenu, when set, opens the file in the web player and picks a
	// quality and audio track in its Download menu.
	DownloadMenu *DownloadMenuCheck `json:"downloadMenu,omitempty"`
	// Downloads, when set, opens the Activity view and waits for the
	// progress of a download the caller has started to move.
	Downloads *DownloadsCheck `json:"downloads,omitempty"`
}

// CodecsCheck is the web player playing one file as a person would: the
// codec list it sent and what it then loaded are in the result.
type CodecsCheck struct {
	ID      string  `json:"id"`
	Seconds float64 `json:"seconds"` // of playback to see after startup
}

// DownloadMenuCheck picks Quality and Audio in the Download menu of file
// ID, on the server at Base opened with Token (both optional).
type DownloadMenuCheck struct {
	Base    string `json:"base,omitempty"`
	Token   string `json:"token,omitempty"`
	ID      string `json:"id"`
	Quality string `json:"quality"`
	Audio   int    `json:"audio"`
}

// DownloadsCheck names the download the Activity view must show moving.
type DownloadsCheck struct {
	File    string `json:"file"`
	Quality string `json:"quality"`
}

// Option is an entry of a menu of the page.
type Option struct {
	Value string `json:"value"`
	Label string `json:"label"`
}

// ActivityCheck names the job whose progress the Activity view must show.
type ActivityCheck struct {
	Job string `json:"job"`
}

// Watch is a long look at one rung in hls.js, with something done to the
// servers meanwhile: the page fetches Hook the moment the player starts
// loading fragment HookFrag, and plays on for Seconds after startup.
type Watch struct {
	Seconds  float64 `json:"seconds"`
	Height   int     `json:"height,omitempty"` // the rung to hold; 0 leaves ABR on
	HookFrag int     `json:"hookFrag,omitempty"`
	Hook     string  `json:"hook,omitempty"`
}

// Step is one action and how long the player took to play again after it.
type Step struct {
	Step   string  `json:"step"`
	Ms     float64 `json:"ms"`
	Target float64 `json:"target,omitempty"` // seeks and rewinds: where the player was sent
	Landed float64 `json:"landed,omitempty"` // seeks: where playback resumed
	// Buffered: the seek target was already in the player's buffer, so the
	// time says nothing about the server.
	Buffered bool `json:"buffered,omitempty"`
	// Aborted counts the loads the browser cancelled during the step;
	// other players' steps also name them.
	Aborted     int      `json:"aborted"`
	AbortedURLs []string `json:"abortedURLs"`
}

// Request is one load of the browser's, from its Resource Timing entry.
type Request struct {
	URL       string  `json:"url"` // below the media id, without the query
	Start     float64 `json:"start"`
	FirstByte float64 `json:"firstByte"`
	End       float64 `json:"end"`
	Bytes     int     `json:"bytes"`
}

// PlayerError is an hls.js ERROR event (or a page error).
type PlayerError struct {
	At      float64 `json:"at"`
	Fatal   bool    `json:"fatal"`
	Type    string  `json:"type"`
	Details string  `json:"details"`
	URL     string  `json:"url"`
	Code    int     `json:"code"`
	Reason  string  `json:"reason"`
}

// Jump is a move of the playback position that no action explains.
type Jump struct {
	From float64 `json:"from"`
	To   float64 `json:"to"`
}

// Level is a variant as hls.js saw it, after dropping what Chromium cannot decode.
type Level struct {
	Height  int    `json:"height"`
	Bitrate int    `json:"bitrate"`
	URL     string `json:"url"`
	Codecs  string `json:"codecs"`
}

// Result is what happened to one file (or to the page walk).
type Result struct {
	Name     string        `json:"name"`
	Steps    []Step        `json:"steps"`
	Errors   []PlayerError `json:"errors"`
	Jumps    []Jump        `json:"jumps"`
	Failure  string        `json:"failure"`
	Duration float64       `json:"duration"`
	Levels   []Level       `json:"levels"`
	Audio    []struct {
		Name    string `json:"name"`
		Lang    string `json:"lang"`
		Default bool   `json:"default"`
	} `json:"audio"`
	// ABRHeight is the height of the rung hls.js's own ABR played after
	// the seeks, before any forced switch.
	ABRHeight int `json:"abrHeight"`
	// A watch's figures: the longest time the position stood still while
	// playing (seconds), the media seconds played, and the frames decoded.
	LongestStall float64 `json:"longestStall"`
	Played       float64 `json:"played"`
	Frames       int     `json:"frames"`
	Banner       string  `json:"banner"`
	// Requests is the startup's waterfall in other players: each request
	// made until the first frame, in milliseconds from the player's start.
	Requests   []Request `json:"requests"`
	Screenshot string    `json:"screenshot"`
	// The web player's scenarios: every URL the page asked for, in order,
	// and the codec list it sent in codecs=.
	URLs   []string `json:"urls"`
	Codecs string   `json:"codecs"`
	// Text is what the page said: the decision line under the player, or
	// the Activity view's row of a download.
	Text string `json:"text"`
	// The Download menu's choices, and its link after the picks.
	Qualities    []Option `json:"qualities"`
	AudioOptions []Option `json:"audioOptions"`
	Link         string   `json:"link"`
}

// forbidden are the non-fatal hls.js errors that still mean the stream is
// wrong: a hole in the buffer, a stall, or a segment hls.js cannot parse.
var forbidden = map[string]bool{
	"bufferSeekOverHole": true,
	"bufferStalledError": true,
	"fragParsingError":   true,
}

// minAhead is the buffer ahead of a stall from which it is the player's CPU
// rather than the server: hls.js reports a stall once playback has not
// moved for a while, whatever it holds.
const minAhead = 1.0

// bufferedAhead reads the seconds buffered ahead of the position from the
// reason of an hls.js stall ("... due to low buffer ({"len":3.57,...})"),
// 0 when it says none.
func bufferedAhead(reason string) float64 {
	_, rest, ok := strings.Cut(reason, `{"len":`)
	if !ok {
		return 0
	}
	end := strings.IndexAny(rest, ",}")
	if end < 0 {
		return 0
	}
	v, err := strconv.ParseFloat(rest[:end], 64)
	if err != nil {
		return 0
	}
	return v
}

// seekSlack is how far from its target a seek may resume. Chromium resumes
// at the target itself when the segment starts at or before it; anything
// further means the player skipped over a hole or snapped elsewhere.
const seekSlack = 0.5

// Problems lists what is wrong with a result; empty means it played well.
func (r Result) Problems() []string {
	var out []string
	if r.Failure != "" {
		out = append(out, r.Failure)
	}
	for _, e := range r.Errors {
		if e.Details == "bufferStalledError" && bufferedAhead(e.Reason) >= minAhead {
			// The player held the next seconds and could not show them in
			// time: the CPU (Chromium decoding beside a -race server on two
			// cores), not a hole or a late segment of the server's.
			continue
		}
		if e.Fatal || forbidden[e.Details] {
			out = append(out, fmt.Sprintf("player error %s/%s at %.3f s (fatal %v) %s %s", e.Type, e.Details, e.At, e.Fatal, e.URL, e.Reason))
		}
	}
	for _, j := range r.Jumps {
		out = append(out, fmt.Sprintf("playback position jumped from %.3f to %.3f", j.From, j.To))
	}
	for _, s := range r.Steps {
		if s.Target > 0 && math.Abs(s.Landed-s.Target) > seekSlack {
			out = append(out, fmt.Sprintf("%s: sent to %.3f s, resumed at %.3f s", s.Step, s.Target, s.Landed))
		}
	}
	return out
}

// StepMs returns the time of the first step whose name starts with prefix.
func (r Result) StepMs(prefix string) (float64, bool) {
	for _, s := range r.Steps {
		if strings.HasPrefix(s.Step, prefix) {
			return s.Ms, true
		}
	}
	return 0, false
}

// Ready says whether the browser tests can run here, and what to install if not.
func Ready() error {
	var missing []string
	if _, err := exec.LookPath("node"); err != nil {
		missing = append(missing, "node (apt-get install nodejs)")
	}
	if _, err := os.Stat(Chromium); err != nil {
		missing = append(missing, Chromium+" (apt-get install chromium)")
	}
	for _, pkg := range []string{"playwright-core", "shaka-player", "video.js"} {
		if _, err := os.Stat(filepath.Join(Dir(), "node_modules", pkg)); err != nil {
			missing = append(missing, pkg+" (npm ci in web/e2e)")
		}
	}
	if len(missing) > 0 {
		return fmt.Errorf("browser tests need %s; `make deps` installs them", strings.Join(missing, ", "))
	}
	return nil
}

// Dir is this package's directory, where hlsjs.mjs and node_modules live.
func Dir() string {
	_, file, _, _ := runtime.Caller(0)
	return filepath.Dir(file)
}

// Run plays cfg.Files (and walks the page) in one Chromium and returns a
// result per file, the page walk last. Node and Chromium run in their own
// process group, killed as a whole when ctx ends, so a hung browser cannot
// outlive the caller.
func Run(ctx context.Context, cfg Config) ([]Result, error) {
	if err := os.MkdirAll(cfg.Artifacts, 0o755); err != nil {
		return nil, err
	}
	b, err := json.Marshal(cfg)
	if err != nil {
		return nil, err
	}
	cfgFile := filepath.Join(cfg.Artifacts, "config.json")
	if err := os.WriteFile(cfgFile, b, 0o644); err != nil {
		return nil, err
	}
	cmd := exec.CommandContext(ctx, "node", filepath.Join(Dir(), "hlsjs.mjs"), cfgFile)
	cmd.Dir = Dir()
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
	cmd.Cancel = func() error { return syscall.Kill(-cmd.Process.Pid, syscall.SIGKILL) }
	cmd.WaitDelay = 5 * time.Second
	var stdout, stderr bytes.Buffer
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	err = cmd.Run()
	// Chromium's helpers share node's group; make sure none is left even
	// when node exited on its own after an error.
	if cmd.Process != nil {
		_ = syscall.Kill(-cmd.Process.Pid, syscall.SIGKILL)
	}
	// The log (with hls.js's own when cfg.Debug) outlives the run, for CI.
	_ = os.WriteFile(filepath.Join(cfg.Artifacts, "hlsjs.log"), stderr.Bytes(), 0o644)
	if err != nil {
		return nil, fmt.Errorf("hlsjs.mjs: %w\n%s", err, tail(stderr.String(), 40))
	}
	var out []Result
	if err := json.Unmarshal(stdout.Bytes(), &out); err != nil {
		return nil, fmt.Errorf("hlsjs.mjs printed no results (%v)\n%s", err, tail(stderr.String(), 40))
	}
	if len(out) != len(cfg.Files)+btoi(cfg.Page != nil)+btoi(cfg.Token != nil)+btoi(cfg.Activity != nil)+
		btoi(cfg.Codecs != nil)+btoi(cfg.DownloadMenu != nil)+btoi(cfg.Downloads != nil) {
		return out, errors.New("hlsjs.mjs returned fewer results than files")
	}
	return out, nil
}

// Median of the step times named by prefix across results (0 if none),
// leaving out seeks the player answered from its own buffer.
func Median(results []Result, prefix string) float64 {
	var ms []float64
	for _, r := range results {
		for _, s := range r.Steps {
			if strings.HasPrefix(s.Step, prefix) && !s.Buffered {
				ms = append(ms, s.Ms)
			}
		}
	}
	if len(ms) == 0 {
		return 0
	}
	sort.Float64s(ms)
	if len(ms)%2 == 1 {
		return ms[len(ms)/2]
	}
	return (ms[len(ms)/2-1] + ms[len(ms)/2]) / 2
}

func btoi(b bool) int {
	if b {
		return 1
	}
	return 0
}

func tail(s string, n int) string {
	lines := strings.Split(strings.TrimRight(s, "\n"), "\n")
	if len(lines) > n {
		lines = lines[len(lines)-n:]
	}
	return strings.Join(lines, "\n")
}
