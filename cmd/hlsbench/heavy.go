package main

import (
	"context"
	"fmt"
	"strings"
	"syscall"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/hlsd/hlsd/web/e2e"
)

// heavyRows plays each heavy file, then h264.mp4, cold and alone (a fresh
// server and cache per file) in hls.js with its own ABR, and prints a
// table per file: startup, each seek, the loads the browser cancelled,
// the rung hls.js chose and the CPU time the server spent, ffmpeg included.
func heavyRows(ctx context.Context) []row {
	if err := e2e.Ready(); err != nil {
		return []row{{"heavy media figures skipped: " + err.Error(), "", ""}}
	}
	var rows []row
	for _, name := range append(append([]string{}, e2e.Heavy...), "h264.mp4") {
		media, cache, cleanup := scratchDirs()
		files, err := e2e.LibraryOf(ctx, media, name)
		check(err)
		srv, err := e2e.Start(media, cache, nil, "")
		check(err)
		cpu0, enc0 := selfCPU(), encoderCPU(srv.Registry)
		results, err := e2e.Run(ctx, e2e.Config{Base: srv.URL, Artifacts: cache, Files: files})
		check(err)
		cpu := selfCPU() - cpu0 + encoderCPU(srv.Registry) - enc0
		srv.Close()
		cleanup()
		r := results[0]
		if p := r.Problems(); len(p) > 0 {
			rows = append(rows, row{"heavy " + name + ": problems: " + strings.Join(p, "; "), "", ""})
		}
		prefix := "heavy " + name + ": "
		for _, s := range r.Steps {
			switch {
			case s.Step == "startup":
				rows = append(rows, row{prefix + "startup (aborted loads)", fmt.Sprintf("%.0f ms (%d)", s.Ms, s.Aborted), "<= 1000 ms"})
			case strings.HasPrefix(s.Step, "seek"), strings.HasPrefix(s.Step, "rewind"):
				rows = append(rows, row{prefix + s.Step + " (aborted loads)", fmt.Sprintf("%.0f ms (%d)", s.Ms, s.Aborted), "<= 1500 ms (5)"})
			}
		}
		rows = append(rows,
			row{prefix + "rung hls.js's ABR chose", fmt.Sprintf("%dp", r.ABRHeight), ""},
			row{prefix + "server CPU, ffmpeg included", fmt.Sprintf("%.1f s", cpu.Seconds()), ""})
	}
	return rows
}

// selfCPU is this process's CPU time: the in-process server's share.
func selfCPU() time.Duration {
	var ru syscall.Rusage
	_ = syscall.Getrusage(syscall.RUSAGE_SELF, &ru)
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}

// encoderCPU sums hlsd_encoder_cpu_seconds_total: the ffmpeg runs that ended.
func encoderCPU(reg *prometheus.Registry) time.Duration {
	mfs, err := reg.Gather()
	check(err)
	var s float64
	for _, mf := range mfs {
		if mf.GetName() == "hlsd_encoder_cpu_seconds_total" {
			for _, m := range mf.GetMetric() {
				s += m.GetCounter().GetValue()
			}
		}
	}
	return time.Duration(s * float64(time.Second))
}
