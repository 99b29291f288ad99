package jetstreamlog

import "github.com/prometheus/client_golang/prometheus"

// newAppendsPerWrite is the histogram of events stored per message by this
// log's grouped appends: how much the group commit saves.
func newAppendsPerWrite() prometheus.Histogram {
	return prometheus.NewHistogram(prometheus.HistogramOpts{
		Name:    "herald_log_appends_per_write",
		Help:    "Events this pod's publish requests stored per JetStream write: the appends that waited for the same write share the next (NATS log only; SystemEvents are not counted, each is a write of its own).",
		Buckets: []float64{1, 2, 4, 8, 16, 32, 64, 128, 256, 512, maxGroupEvents},
	})
}

// Describe implements prometheus.Collector: a server registers the log's
// metrics with its own.
func (l *Log) Describe(ch chan<- *prometheus.Desc) { l.appendsPerWrite.Describe(ch) }

// Collect implements prometheus.Collector.
func (l *Log) Collect(ch chan<- prometheus.Metric) { l.appendsPerWrite.Collect(ch) }
