package farm

import (
	"context"
	"time"

	"github.com/hilfarm/hilfarm/farm/store"
	"github.com/prometheus/client_golang/prometheus"
)

// Metrics exports the farm to Prometheus. Counters and gauges of the
// controller (queue depth, board states, console bytes, infrastructure
// errors, power cycles) are read from Controller.Stats at scrape time; jobs
// by outcome and the job duration histogram are observed by JobFinished.
// Labels are bounded: outcome, board, board type and state; never job ids.
type Metrics struct {
	jobs     *prometheus.CounterVec
	duration *prometheus.HistogramVec
	stats    func(context.Context) Stats

	queueDepth, queueWait, running, boardState, consoleBytes, infraErrors, powerCycles, viewerDrops *prometheus.Desc
}

// NewMetrics registers the farm's metrics with reg. The scrape-time
// metrics appear once SetStats gave their source.
func NewMetrics(reg prometheus.Registerer) *Metrics {
	m := &Metrics{
		jobs: prometheus.NewCounterVec(prometheus.CounterOpts{
			Namespace: "hilfarm", Name: "jobs_finished_total",
			Help: "Jobs that reached a final state, by outcome (passed, failed, error, cancelled).",
		}, []string{"outcome"}),
		duration: prometheus.NewHistogramVec(prometheus.HistogramOpts{
			Namespace: "hilfarm", Name: "job_duration_seconds",
			Help:    "Wall time of finished jobs from first start to verdict, by outcome.",
			Buckets: []float64{0.1, 0.25, 0.5, 1, 2, 5, 10, 20, 30, 60, 120, 300, 600, 1200, 1800, 3600},
		}, []string{"outcome"}),
		queueDepth: prometheus.NewDesc("hilfarm_queue_depth", "Jobs waiting in the queue.", nil, nil),
		queueWait:  prometheus.NewDesc("hilfarm_queue_oldest_wait_seconds", "How long the longest-waiting queued job has waited (0 with an empty queue).", nil, nil),
		running:    prometheus.NewDesc("hilfarm_jobs_running", "Jobs running on a board.", nil, nil),
		boardState: prometheus.NewDesc("hilfarm_board_state",
			"1 for each board's current state (idle, leased, maintenance, quarantined, offline).", []string{"board", "type", "state"}, nil),
		consoleBytes: prometheus.NewDesc("hilfarm_console_bytes_total", "Console bytes recorded, by board.", []string{"board"}, nil),
		infraErrors:  prometheus.NewDesc("hilfarm_infra_errors_total", "Attempts that ended in an infrastructure error, by board.", []string{"board"}, nil),
		powerCycles:  prometheus.NewDesc("hilfarm_power_cycles_total", "Power cycles, by board.", []string{"board"}, nil),
		viewerDrops:  prometheus.NewDesc("hilfarm_console_viewers_dropped_total", "Console viewers dropped for falling behind, by board.", []string{"board"}, nil),
	}
	for _, s := range []string{store.StatePassed, store.StateFailed, store.StateError, store.StateCancelled} {
		m.jobs.WithLabelValues(s)
	}
	reg.MustRegister(m.jobs, m.duration, m)
	return m
}

// SetStats sets the source of the scrape-time metrics (Controller.Stats).
// Call it before the first scrape.
func (m *Metrics) SetStats(stats func(context.Context) Stats) { m.stats = stats }

// JobFinished counts a final job and observes its duration: an
// OnJobFinished hook.
func (m *Metrics) JobFinished(v JobView) {
	m.jobs.WithLabelValues(v.State).Inc()
	if !v.Started.IsZero() && !v.Ended.IsZero() {
		m.duration.WithLabelValues(v.State).Observe(v.Ended.Sub(v.Started).Seconds())
	}
}

// Describe implements prometheus.Collector.
func (m *Metrics) Describe(ch chan<- *prometheus.Desc) {
	for _, d := range []*prometheus.Desc{m.queueDepth, m.queueWait, m.running, m.boardState, m.consoleBytes, m.infraErrors, m.powerCycles, m.viewerDrops} {
		ch <- d
	}
}

// Collect implements prometheus.Collector.
func (m *Metrics) Collect(ch chan<- prometheus.Metric) {
	if m.stats == nil {
		return
	}
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	st := m.stats(ctx)
	ch <- prometheus.MustNewConstMetric(m.queueDepth, prometheus.GaugeValue, float64(st.QueueDepth))
	wait := 0.0
	if !st.OldestQueued.IsZero() {
		wait = max(0, time.Since(st.OldestQueued).Seconds())
	}
	ch <- prometheus.MustNewConstMetric(m.queueWait, prometheus.GaugeValue, wait)
	ch <- prometheus.MustNewConstMetric(m.running, prometheus.GaugeValue, float64(st.Running))
	for _, b := range st.Boards {
		for _, s := range []string{BoardIdle, BoardLeased, BoardMaintenance, BoardQuarantined, BoardOffline} {
			v := 0.0
			if b.State == s {
				v = 1
			}
			ch <- prometheus.MustNewConstMetric(m.boardState, prometheus.GaugeValue, v, b.Name, b.Type, s)
		}
		ch <- prometheus.MustNewConstMetric(m.consoleBytes, prometheus.CounterValue, float64(b.ConsoleBytes), b.Name)
		ch <- prometheus.MustNewConstMetric(m.infraErrors, prometheus.CounterValue, float64(b.InfraErrors), b.Name)
		ch <- prometheus.MustNewConstMetric(m.powerCycles, prometheus.CounterValue, float64(b.PowerCycles), b.Name)
		ch <- prometheus.MustNewConstMetric(m.viewerDrops, prometheus.CounterValue, float64(b.ViewersDrop), b.Name)
	}
}
