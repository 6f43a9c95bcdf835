package main

import (
	"context"
	"encoding/base64"
	"fmt"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/hlsd/hlsd/server"
	"github.com/hlsd/hlsd/transcoder"
	"github.com/hlsd/hlsd/transcoder/jobs"
	"github.com/hlsd/hlsd/transcoder/library"
	"github.com/hlsd/hlsd/transcoder/testmedia"
)

// prepareRows compares the CPU of three rungs made by one prepare (one
// decode) with the same rungs made by three heads, and times a player's
// cold segment with and without a prepare running beside it.
func prepareRows(ctx context.Context) []row {
	dir := testmedia.CacheDir()
	heavy, err := testmedia.Make(ctx, dir, "hevc-1080.mkv")
	check(err)
	clip, err := testmedia.Make(ctx, dir, "h264-1080.mp4")
	check(err)
	var rows []row
	for _, rungs := range [][]string{{"720p", "480p", "360p"}, {"480p", "360p", "240p"}} {
		rows = append(rows, decodeOnceRows(heavy, rungs)...)
	}
	rungs := []string{"720p", "480p", "360p"}

	// A player's cold segment alone, then beside a prepare (niced, and
	// stopped while the player waits).
	cold := func(busy bool) time.Duration {
		var ds []time.Duration
		for n := 1; n <= 3; n++ {
			s := newJobServer(transcoder.Config{PrepareChunks: 1}, clip, heavy)
			if busy {
				_, err := s.jobs.SubmitPrepare([]string{s.names[1]}, rungs)
				check(err)
				time.Sleep(2 * time.Second) // the prepare's ffmpeg is at work
			}
			get(s.video[0] + "/video/0/360p/index.m3u8")
			t0 := time.Now()
			get(s.video[0] + fmt.Sprintf("/video/0/360p/segment-%d.m4s", n))
			ds = append(ds, time.Since(t0))
			s.stop()
		}
		return median(ds)
	}
	alone, beside := cold(false), cold(true)
	slower := 100 * (beside.Seconds()/alone.Seconds() - 1)

	return append(rows,
		row{"player's cold 360p segment (1080p H.264), alone", ms(alone), ""},
		row{"the same beside a running prepare of 3 rungs", fmt.Sprintf("%s (%+.0f %%)", ms(beside), slower), "<= +10 %"})
}

// decodeOnceRows: the CPU of rungs of file, and of the AAC renditions of
// its audio, made by heads, one after the other, against one prepare (which
// makes both) in one process and in two chunks.
func decodeOnceRows(file string, rungs []string) []row {
	s := newJobServer(transcoder.Config{}, file)
	variants := []string{}
	for _, q := range rungs {
		variants = append(variants, "video/0/"+q)
	}
	// hevc-1080.mkv: 5.1 AC-3 (aac and a stereo downmix) and a stereo track.
	variants = append(variants, "audio/0/aac", "audio/0/stereo", "audio/1/aac")
	for _, v := range variants {
		base := s.video[0] + "/" + v + "/"
		pl := string(get(base + "index.m3u8"))
		for n := 0; n < strings.Count(pl, "#EXTINF"); n++ {
			get(base + fmt.Sprintf("segment-%d.m4s", n))
		}
	}
	time.Sleep(time.Second) // the heads end, and their CPU is counted
	heads, headsAudio := cpuOf(s.reg, "encode"), cpuOf(s.reg, "copy")
	s.stop()

	prepared := func(chunks int) (cpu, audio, wall time.Duration) {
		s := newJobServer(transcoder.Config{PrepareChunks: chunks}, file)
		defer s.stop()
		start := time.Now()
		job, err := s.jobs.SubmitPrepare([]string{s.names[0]}, rungs)
		check(err)
		for {
			j, err := s.jobs.Get(job.ID)
			check(err)
			if j.State == jobs.JobDone {
				break
			}
			if j.State != jobs.JobQueued && j.State != jobs.JobRunning {
				check(fmt.Errorf("prepare %s: %s", j.State, j.Error))
			}
			time.Sleep(100 * time.Millisecond)
		}
		return cpuOf(s.reg, "prepare"), cpuOf(s.reg, "prepare-audio"), time.Since(start)
	}
	one, oneAudio, oneWall := prepared(1)
	two, _, twoWall := prepared(2)
	set := strings.Join(rungs, "/")
	return []row{
		{fmt.Sprintf("%s of 1 min 1080p 10-bit HEVC: CPU of 3 heads", set), fmt.Sprintf("%.1f s", heads.Seconds()), ""},
		{"the same, one prepare (one decode, one process)", fmt.Sprintf("%.1f s (%.0f s wall)", one.Seconds(), oneWall.Seconds()), ""},
		{"the same, one prepare in two chunks", fmt.Sprintf("%.1f s (%.0f s wall)", two.Seconds(), twoWall.Seconds()), ""},
		{"CPU saved by one decode, one process", fmt.Sprintf("%.0f %%", 100*(1-one.Seconds()/heads.Seconds())), ">= 25 %"},
		{"its 3 AAC renditions: 3 heads, then the prepare's audio process", fmt.Sprintf("%.1f s, %.1f s", headsAudio.Seconds(), oneAudio.Seconds()), ""},
	}
}

// jobServer is an in-process hlsd with jobs, on a fresh cache.
type jobServer struct {
	video, names []string
	reg          *prometheus.Registry
	jobs         *jobs.Runner
	stop         func()
}

func newJobServer(cfg transcoder.Config, files ...string) *jobServer {
	media, cache, cleanup := scratchDirs()
	s := &jobServer{reg: prometheus.NewRegistry()}
	lib, err := library.Open(media)
	check(err)
	srv, err := server.New(server.Config{Library: lib, Registry: s.reg})
	check(err)
	cfg.Library, cfg.CacheDir, cfg.Observer = lib, cache, srv.Observer()
	tc := transcoder.New(cfg)
	check(tc.Initialize())
	s.jobs = jobs.New(jobs.Config{Library: lib, StateDir: filepath.Join(cache, "jobs"), Preparer: tc, Observer: srv.JobObserver()})
	check(s.jobs.Initialize())
	srv.Initialize(tc, s.jobs)
	hs := httptest.NewServer(srv)
	for i, f := range files {
		name := fmt.Sprintf("f%d%s", i, filepath.Ext(f))
		check(os.Link(f, filepath.Join(media, name)))
		s.names = append(s.names, name)
		s.video = append(s.video, hs.URL+"/videos/"+base64.RawURLEncoding.EncodeToString([]byte(name)))
	}
	s.stop = func() {
		hs.Close()
		s.jobs.Close()
		tc.Close()
		lib.Close()
		cleanup()
	}
	return s
}

// cpuOf is hlsd_encoder_cpu_seconds_total of one class.
func cpuOf(reg *prometheus.Registry, class string) time.Duration {
	mfs, err := reg.Gather()
	check(err)
	var sec float64
	for _, mf := range mfs {
		if mf.GetName() != "hlsd_encoder_cpu_seconds_total" {
			continue
		}
		for _, m := range mf.GetMetric() {
			for _, l := range m.GetLabel() {
				if l.GetName() == "class" && l.GetValue() == class {
					sec += m.GetCounter().GetValue()
				}
			}
		}
	}
	return time.Duration(sec * float64(time.Second))
}
