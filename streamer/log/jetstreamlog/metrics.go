package jetstreamlog

import (
	"time"

	"github.com/prometheus/client_golang/prometheus"
)

// metrics are the log's own: what the broker costs a publish, and how often
// the pod's consumer had to be created again.
type metrics struct {
	// appendsPerWrite is how much the group commit saves.
	appendsPerWrite prometheus.Histogram
	// writeSeconds is what a publish request waits for on the broker
	// before its event is stored.
	writeSeconds prometheus.Histogram
	// consumersCreated counts the pod's consumers on the stream: one at
	// Open, one more each time the last broke.
	consumersCreated prometheus.Counter
}

func newMetrics() metrics {
	return metrics{
		appendsPerWrite: prometheus.NewHistogram(prometheus.HistogramOpts{
			Name:    "herald_log_appends_per_write",
			Help:    "Events this pod's publish requests stored per JetStream write: the appends that waited for the same write share the next (NATS log only; SystemEvents are not counted, each is a write of its own).",
			Buckets: []float64{1, 2, 4, 8, 16, 32, 64, 128, 256, 512, maxGroupEvents},
		}),
		writeSeconds: prometheus.NewHistogram(prometheus.HistogramOpts{
			Name: "herald_log_write_seconds",
			Help: "Time from this pod's publish of a write to the channel's JetStream stream to its acknowledgement, for writes acknowledged: the stream's leader and a quorum of its replicas stored it, with sync_interval: always each after an fsync (NATS log only).",
			// 0.5 ms to 4 s: an fsync on a fast disk to a request
			// that waited out a leader election.
			Buckets: prometheus.ExponentialBuckets(0.0005, 2, 14),
		}),
		consumersCreated: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "herald_log_consumers_created_total",
			Help: "Consumers this pod created to read the channel's JetStream stream: one when it starts, and one more each time the last one broke (a broker outage, the node holding it lost, the stream created again, a skipped delivery) (NATS log only).",
		}),
	}
}

func (m metrics) collectors() []prometheus.Collector {
	return []prometheus.Collector{m.appendsPerWrite, m.writeSeconds, m.consumersCreated}
}

// observeWrite records an acknowledged write that waited wait.
func (m metrics) observeWrite(wait time.Duration) {
	m.writeSeconds.Observe(wait.Seconds())
}

// Describe implements prometheus.Collector: a server registers the log's
// metrics with its own.
func (l *Log) Describe(ch chan<- *prometheus.Desc) {
	for _, c := range l.metrics.collectors() {
		c.Describe(ch)
	}
}

// Collect implements prometheus.Collector.
func (l *Log) Collect(ch chan<- prometheus.Metric) {
	for _, c := range l.metrics.collectors() {
		c.Collect(ch)
	}
}
