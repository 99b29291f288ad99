package server

import (
	"context"
	"sync"
	"time"

	"github.com/prometheus/client_golang/prometheus"
)

// DefaultLogUnhealthyGrace is how long the log may report itself unhealthy
// before readiness fails: long enough to ride out a NATS leader election or
// a reconnect, short enough that load balancers soon stop sending new
// streams to a pod that cannot store events.
const DefaultLogUnhealthyGrace = 5 * time.Second

// HealthReporter is implemented by a log that depends on a broker, such as
// the JetStream log. LastError is why the log cannot store or receive events
// now, nil when it can. A log without it (the embedded log) is always
// healthy.
type HealthReporter interface {
	LastError() error
}

// logHealth samples a HealthReporter and says whether it has been unhealthy
// for longer than the grace. Sampling runs on its own ticker, so the grace
// does not depend on how often the kubelet probes.
type logHealth struct {
	reporter HealthReporter
	grace    time.Duration
	now      func() time.Time
	healthy  prometheus.Gauge

	mu sync.Mutex
	// since is when the log was first seen unhealthy in the current outage;
	// zero while it is healthy. err is the last failure seen.
	since time.Time
	err   error
}

func newLogHealth(reporter HealthReporter, grace time.Duration, now func() time.Time, reg prometheus.Registerer) *logHealth {
	h := &logHealth{reporter: reporter, grace: grace, now: now, healthy: prometheus.NewGauge(prometheus.GaugeOpts{
		Name: "herald_log_healthy",
		Help: "1 while the channel's log (its broker) can store and deliver events, 0 while it cannot.",
	})}
	reg.MustRegister(h.healthy)
	h.sample()
	return h
}

// run samples the log until ctx ends, a few times per grace period.
func (h *logHealth) run(ctx context.Context) {
	ticker := time.NewTicker(max(h.grace/5, 100*time.Millisecond))
	defer ticker.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-ticker.C:
			h.sample()
		}
	}
}

func (h *logHealth) sample() {
	err := h.reporter.LastError()
	h.mu.Lock()
	defer h.mu.Unlock()
	h.err = err
	if err == nil {
		h.since = time.Time{}
		h.healthy.Set(1)
		return
	}
	if h.since.IsZero() {
		h.since = h.now()
	}
	h.healthy.Set(0)
}

// unready is why readiness fails because of the log: its error once it has
// been unhealthy for longer than the grace, nil otherwise.
func (h *logHealth) unready() error {
	h.sample() // a probe sees the current state, not the last tick's
	h.mu.Lock()
	defer h.mu.Unlock()
	if h.err == nil || h.now().Sub(h.since) < h.grace {
		return nil
	}
	return h.err
}
