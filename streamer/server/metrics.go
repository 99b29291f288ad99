package server

import (
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/herald-notify/herald/streamer/event"
	"github.com/herald-notify/herald/streamer/hub"
)

// metrics are the streamer's Prometheus collectors. They implement the
// observers of the hub and the publish API.
type metrics struct {
	connections  prometheus.Gauge
	connects     *prometheus.CounterVec
	authFailures *prometheus.CounterVec
	published    *prometheus.CounterVec
	delivered    *prometheus.CounterVec
	// deliveredOf holds delivered's counter of each type the hub delivers,
	// looked up once: a label lookup hashes the type each time
	// (docs/benchmarks.md).
	deliveredOf     map[string]prometheus.Counter
	deliveryLatency *latencyHistogram
	disconnects     *prometheus.CounterVec
	replayed        prometheus.Counter
	logReadFailures prometheus.Counter
	refreshes       *prometheus.CounterVec
}

// Values of the connects metric's "result" label.
const (
	connectOK           = "ok"
	connectUnauthorized = "unauthorized"
	connectUserLimit    = "user_limit"
	connectProcessLimit = "process_limit"
	connectShuttingDown = "shutting_down"
	// connectLogUnavailable: the log could not be read to replay what a
	// resuming client missed.
	connectLogUnavailable = "log_unavailable"
	// connectTicketsUnavailable: the ticket store could not say whether a
	// ticket is valid.
	connectTicketsUnavailable = "tickets_unavailable"
)

func newMetrics(reg prometheus.Registerer) *metrics {
	m := &metrics{
		connections: prometheus.NewGauge(prometheus.GaugeOpts{
			Name: "herald_connections", Help: "Streams currently open.",
		}),
		connects: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "herald_connects_total", Help: "Stream requests, by result.",
		}, []string{"result"}),
		authFailures: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "herald_auth_failures_total", Help: "Rejected tokens and tickets, by reason.",
		}, []string{"reason"}),
		published: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "herald_events_published_total", Help: "Events appended to the log, by type.",
		}, []string{"type"}),
		delivered: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "herald_events_delivered_total", Help: "Events written to streams as they happen, by type (replays to resuming clients are herald_replayed_events_total).",
		}, []string{"type"}),
		deliveryLatency: newLatencyHistogram("herald_delivery_latency_seconds",
			"Time from an event's append to its live write to a stream.",
			[]float64{.0005, .001, .0025, .005, .01, .025, .05, .1, .25, .5, 1, 2.5}),
		disconnects: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "herald_disconnects_total", Help: "Streams closed by the server, by reason (slow_consumer, replaced, drain).",
		}, []string{"reason"}),
		replayed: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "herald_replayed_events_total", Help: "Events written to resuming clients from the log.",
		}),
	}
	m.logReadFailures = prometheus.NewCounter(prometheus.CounterOpts{
		Name: "herald_log_read_failures_total", Help: "Failed reads of the channel's event log by the hub, each retried.",
	})
	m.refreshes = prometheus.NewCounterVec(prometheus.CounterOpts{
		Name: "herald_token_refreshes_total",
		Help: "In-place token refreshes of open streams, by result (ok, unauthorized, forbidden, unknown_stream, unavailable).",
	}, []string{"result"})
	m.deliveredOf = map[string]prometheus.Counter{}
	for _, t := range []string{event.TypeNotification, event.TypeSystem, event.TypeCustom} {
		m.deliveredOf[t] = m.delivered.WithLabelValues(t)
	}
	reg.MustRegister(m.connections, m.connects, m.authFailures, m.published, m.delivered,
		m.deliveryLatency, m.disconnects, m.replayed, m.logReadFailures, m.refreshes)
	return m
}

// Published implements publish.Observer.
func (m *metrics) Published(eventType string) { m.published.WithLabelValues(eventType).Inc() }

// Delivered implements hub.Observer: it tallies the write's frames, then
// adds the tally to the counters every writer shares, once per type and
// bucket touched. A burst writes dozens of frames at once to each of
// thousands of streams; recorded one by one, each frame took four atomic
// additions on those counters.
func (m *metrics) Delivered(w hub.Write) {
	t := writeTally{m: m}
	w.Each(t.add)
	m.deliveryLatency.add(&t.latency)
	for _, c := range t.types[:t.ntypes] {
		m.deliveredCounter(c.eventType).Add(float64(c.n))
	}
}

// deliveredCounter is delivered's counter of eventType.
func (m *metrics) deliveredCounter(eventType string) prometheus.Counter {
	if c, ok := m.deliveredOf[eventType]; ok {
		return c
	}
	return m.delivered.WithLabelValues(eventType)
}

// writeTally counts the frames of one write, per type and per latency
// bucket.
type writeTally struct {
	m       *metrics
	latency latencyTally
	types   [tallyTypes]typeCount
	ntypes  int
}

// tallyTypes is how many event types a tally holds; a write carries
// frames of the three live types at most (notification, system, custom).
const tallyTypes = 4

type typeCount struct {
	eventType string
	n         int
}

func (t *writeTally) add(eventType string, latency time.Duration) {
	t.m.deliveryLatency.tally(&t.latency, latency)
	for i := range t.types[:t.ntypes] {
		if t.types[i].eventType == eventType {
			t.types[i].n++
			return
		}
	}
	if t.ntypes == len(t.types) {
		t.m.deliveredCounter(eventType).Inc()
		return
	}
	t.types[t.ntypes] = typeCount{eventType: eventType, n: 1}
	t.ntypes++
}

// ReadFailed implements hub.Observer.
func (m *metrics) ReadFailed(error) { m.logReadFailures.Inc() }

// Disconnected implements hub.Observer.
func (m *metrics) Disconnected(reason hub.CloseReason) {
	m.disconnects.WithLabelValues(string(reason)).Inc()
}
