package server

import (
	"runtime"
	"time"
	"weak"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/herald-notify/herald/streamer/hub"
)

// SetWriters bounds the writers that serve s's detached streams to n.
func SetWriters(s *Server, n int) {
	s.writers.mu.Lock()
	defer s.writers.mu.Unlock()
	s.writers.max = n
	s.writers.bound = n
}

// WritersPeak is the most writers that served s's detached streams at once.
func WritersPeak(s *Server) int {
	s.writers.mu.Lock()
	defer s.writers.mu.Unlock()
	return s.writers.peak
}

// WaitingWrites is how many of s's detached streams have a write waiting for
// the client, in a goroutine of its own.
func WaitingWrites(s *Server) int { return int(s.writers.waiting.Load()) }

// Holdings is what s's open streams hold between writes: how many hold a
// write buffer (or are being written), and the capacity of their hub queues, in frames.
func Holdings(s *Server) (buffers, queued int) {
	for _, c := range s.hub.Conns() {
		st := streamOfConn(c)
		// Read once the writer released the stream (its lock orders them).
		st.mu.Lock()
		busy := st.scheduled
		st.mu.Unlock()
		if dw, ok := st.out.(*detachedWriter); ok && (busy || dw.bufp != nil) {
			buffers++
		}
		queued += st.conn.QueueCap()
	}
	return buffers, queued
}

// BareStreams is how many of s's open streams hold their socket as a bare
// descriptor, without the net package's connection.
func BareStreams(s *Server) int {
	n := 0
	for _, c := range s.hub.Conns() {
		if st := streamOfConn(c); st != nil {
			st.mu.Lock()
			if dw, ok := st.out.(*detachedWriter); ok && !st.scheduled && dw.nc == nil {
				n++
			}
			st.mu.Unlock()
		}
	}
	return n
}

// Collected returns, for the open stream of user, a function that collects
// garbage and reports whether the stream's state was freed; nil when user
// has no open stream.
func Collected(s *Server, user string) func() bool {
	for _, c := range s.hub.Conns() {
		if c.User() == user {
			state := weak.Make(streamOfConn(c))
			return func() bool {
				runtime.GC()
				return state.Value() == nil
			}
		}
	}
	return nil
}

// DefaultWriters is the writers' bound for procs Ps when none is set.
func DefaultWriters(procs int) int { return defaultWriters(procs) }

// Writers is the bound on the writers of s's detached streams.
func Writers(s *Server) int {
	s.writers.mu.Lock()
	defer s.writers.mu.Unlock()
	return s.writers.writers()
}

// WritersRunning is how many writers serve s's detached streams now, and
// WritersBound their bound as the pool last read it.
func WritersRunning(s *Server) (running, bound int) {
	s.writers.mu.Lock()
	defer s.writers.mu.Unlock()
	return s.writers.running, s.writers.bound
}

// DeliveryMetrics is the streamer's delivery metrics, registered with reg,
// and the observer that records a write's frames in them.
func DeliveryMetrics(reg prometheus.Registerer) func(hub.Write) {
	return newMetrics(reg).Delivered
}

// LatencyHistogram is a latencyHistogram of bounds, registered with reg, and
// a function that adds a tally of latencies to it.
func LatencyHistogram(reg prometheus.Registerer, name string, bounds []float64) func(...time.Duration) {
	h := newLatencyHistogram(name, "latencies", bounds)
	reg.MustRegister(h)
	return func(latencies ...time.Duration) {
		var t latencyTally
		for _, l := range latencies {
			h.tally(&t, l)
		}
		h.add(&t)
	}
}
