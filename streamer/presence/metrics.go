package presence

import "github.com/prometheus/client_golang/prometheus"

// Values of the failures metric's "op" label.
const (
	opAdmit     = "admit"
	opRelease   = "release"
	opHeartbeat = "heartbeat"
)

// metrics are what an operator watches of the channel-wide limit: how often
// it could not be consulted (streams then admitted by the local limit only),
// how long an admission takes, how many local streams other replicas
// replaced, and how many replicas this one sees alive.
type metrics struct {
	failures *prometheus.CounterVec
	admit    prometheus.Histogram
	replaced prometheus.Counter
	replicas prometheus.Gauge
}

func newMetrics(reg prometheus.Registerer) *metrics {
	m := &metrics{
		failures: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "herald_presence_failures_total",
			Help: "Failed operations on the channel-wide record of streams per user, by op (admit: the stream was admitted by this pod's limit only).",
		}, []string{"op"}),
		admit: prometheus.NewHistogram(prometheus.HistogramOpts{
			Name:    "herald_presence_admit_seconds",
			Help:    "Time to admit a stream in the channel-wide record of streams per user.",
			Buckets: []float64{.0005, .001, .0025, .005, .01, .025, .05, .1, .25, .5, 1, 2.5},
		}),
		replaced: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "herald_presence_replaced_total",
			Help: "Streams of this pod closed because their user opened a newer one on another replica.",
		}),
		replicas: prometheus.NewGauge(prometheus.GaugeOpts{
			Name: "herald_presence_replicas",
			Help: "Replicas of the channel whose heartbeat this pod sees, itself included.",
		}),
	}
	if reg != nil {
		reg.MustRegister(m.failures, m.admit, m.replaced, m.replicas)
	}
	return m
}
