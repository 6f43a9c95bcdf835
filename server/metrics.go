package server

import (
	"time"

	"github.com/prometheus/client_golang/prometheus"
)

// metrics are hlsd's Prometheus collectors. Label values are bounded: route
// patterns, status codes, encoder classes and start reasons.
type metrics struct {
	requests     *prometheus.CounterVec
	duration     *prometheus.HistogramVec
	running      *prometheus.GaugeVec
	starts       *prometheus.CounterVec
	encoderCPU   *prometheus.CounterVec
	segmentWait  prometheus.Histogram
	keyframeScan prometheus.Histogram
	cacheBytes   prometheus.Gauge
	evictions    prometheus.Counter
	evictedBytes prometheus.Counter
	hwFallbacks  *prometheus.CounterVec
	hwEnabled    *prometheus.GaugeVec
	trickplay    prometheus.Histogram
	jobs         *prometheus.GaugeVec
	jobBytes     prometheus.Counter
}

func newMetrics(reg prometheus.Registerer) *metrics {
	m := &metrics{
		requests: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "hlsd_http_requests_total", Help: "HTTP requests by route and status code.",
		}, []string{"route", "code"}),
		duration: prometheus.NewHistogramVec(prometheus.HistogramOpts{
			Name: "hlsd_http_request_duration_seconds", Help: "HTTP request duration by route.",
			Buckets: []float64{.005, .01, .025, .05, .1, .25, .5, 1, 2.5, 5, 10, 30},
		}, []string{"route"}),
		running: prometheus.NewGaugeVec(prometheus.GaugeOpts{
			Name: "hlsd_encoders_running", Help: "ffmpeg processes running, by class (encode: video re-encode in software, hardware: on the GPU, copy: stream copy and audio).",
		}, []string{"class"}),
		starts: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "hlsd_encoder_starts_total", Help: "ffmpeg runs started, by class and reason (start, seek, init, prefetch, restart, retry, fallback).",
		}, []string{"class", "reason"}),
		encoderCPU: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "hlsd_encoder_cpu_seconds_total", Help: "CPU time (user and system) of finished ffmpeg runs, by class.",
		}, []string{"class"}),
		segmentWait: prometheus.NewHistogram(prometheus.HistogramOpts{
			Name: "hlsd_segment_wait_seconds", Help: "Time a segment request waited for its segment.",
			Buckets: []float64{.001, .01, .05, .1, .25, .5, 1, 2, 4, 8, 16},
		}),
		keyframeScan: prometheus.NewHistogram(prometheus.HistogramOpts{
			Name: "hlsd_keyframe_scan_seconds", Help: "Duration of packet-level keyframe scans.",
			Buckets: []float64{.05, .1, .25, .5, 1, 2.5, 5, 10, 30, 60, 120},
		}),
		cacheBytes: prometheus.NewGauge(prometheus.GaugeOpts{
			Name: "hlsd_cache_bytes", Help: "Bytes of segments in the on-disk cache.",
		}),
		evictions: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "hlsd_cache_evictions_total", Help: "Segments evicted from the on-disk cache to keep it within its budget.",
		}),
		evictedBytes: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "hlsd_cache_evicted_bytes_total", Help: "Bytes of segments evicted from the on-disk cache.",
		}),
		hwFallbacks: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "hlsd_hw_fallbacks_total", Help: "Hardware encoder runs that failed and were redone in software, by accelerator.",
		}, []string{"accel"}),
		hwEnabled: prometheus.NewGaugeVec(prometheus.GaugeOpts{
			Name: "hlsd_hw_enabled", Help: "1 while the configured accelerator is in use, 0 once repeated failures disabled it.",
		}, []string{"accel"}),
		trickplay: prometheus.NewHistogram(prometheus.HistogramOpts{
			Name: "hlsd_trickplay_seconds", Help: "Time to make the thumbnail sheets of a file.",
			Buckets: []float64{.25, .5, 1, 2.5, 5, 10, 20, 40, 80, 160},
		}),
		jobs: prometheus.NewGaugeVec(prometheus.GaugeOpts{
			Name: "hlsd_jobs", Help: "Background jobs (imports, prepares) by state: queued, running, done, failed, cancelled.",
		}, []string{"state"}),
		jobBytes: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "hlsd_job_bytes_total", Help: "Bytes written into the library by imports.",
		}),
	}
	reg.MustRegister(m.jobs, m.jobBytes)
	reg.MustRegister(m.requests, m.duration, m.running, m.starts, m.encoderCPU, m.segmentWait, m.keyframeScan, m.cacheBytes,
		m.evictions, m.evictedBytes, m.hwFallbacks, m.hwEnabled, m.trickplay)
	return m
}

// The methods below make metrics a transcoder.Observer.

func (m *metrics) HeadStarted(class, reason string) {
	m.running.WithLabelValues(class).Inc()
	m.starts.WithLabelValues(class, reason).Inc()
}

func (m *metrics) HeadStopped(class string, cpu time.Duration) {
	m.running.WithLabelValues(class).Dec()
	m.encoderCPU.WithLabelValues(class).Add(cpu.Seconds())
}
func (m *metrics) SegmentWaited(d time.Duration) { m.segmentWait.Observe(d.Seconds()) }
func (m *metrics) CacheBytes(n int64)            { m.cacheBytes.Set(float64(n)) }
func (m *metrics) CacheEvicted(segments int, bytes int64) {
	m.evictions.Add(float64(segments))
	m.evictedBytes.Add(float64(bytes))
}
func (m *metrics) Observe(scanSeconds float64)   { m.keyframeScan.Observe(scanSeconds) }
func (m *metrics) HWFallback(accel string)       { m.hwFallbacks.WithLabelValues(accel).Inc() }
func (m *metrics) TrickplayMade(d time.Duration) { m.trickplay.Observe(d.Seconds()) }

func (m *metrics) HWEnabled(accel string, on bool) {
	v := 0.0
	if on {
		v = 1
	}
	m.hwEnabled.WithLabelValues(accel).Set(v)
}

// The methods below make metrics a jobs.Observer.

func (m *metrics) JobStates(counts map[string]int) {
	for state, n := range counts {
		m.jobs.WithLabelValues(state).Set(float64(n))
	}
}
func (m *metrics) JobBytes(n int64) { m.jobBytes.Add(float64(n)) }
