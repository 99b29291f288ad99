package server

import (
	"fmt"
	"math"
	"sync/atomic"
	"time"

	"github.com/prometheus/client_golang/prometheus"
)

// latencyHistogram is a Prometheus histogram of latencies that takes them a
// tally at a time: each latency is counted into its bucket in a
// latencyTally of the caller's, and the tally is added with one atomic
// addition per bucket it touched and one for the sum. A prometheus.Histogram
// takes three atomic additions per value, on counters every writer shares.
// It is exposed as a histogram like any other.
type latencyHistogram struct {
	desc *prometheus.Desc
	// bounds are the buckets' upper bounds, inclusive, in seconds, and
	// limits the same as durations.
	bounds []float64
	limits []time.Duration
	// counts holds each bucket's values, not cumulated; the last is +Inf's.
	counts []atomic.Uint64
	// sumBits is the sum of the values in seconds, a float64's bits.
	sumBits atomic.Uint64
}

// maxLatencyBuckets bounds a latencyHistogram's buckets, +Inf included, so
// that a tally is an array on the stack.
const maxLatencyBuckets = 16

// latencyTally is values counted into a latencyHistogram's buckets, not
// yet added to it.
type latencyTally struct {
	counts [maxLatencyBuckets]uint32
	sum    time.Duration
}

func newLatencyHistogram(name, help string, bounds []float64) *latencyHistogram {
	if len(bounds)+1 > maxLatencyBuckets {
		panic(fmt.Sprintf("%s: %d buckets, at most %d", name, len(bounds), maxLatencyBuckets-1))
	}
	h := &latencyHistogram{
		desc:   prometheus.NewDesc(name, help, nil, nil),
		bounds: bounds,
		limits: make([]time.Duration, len(bounds)),
		counts: make([]atomic.Uint64, len(bounds)+1),
	}
	for i, b := range bounds {
		h.limits[i] = time.Duration(math.Round(b * float64(time.Second)))
	}
	return h
}

// tally counts latency into t.
func (h *latencyHistogram) tally(t *latencyTally, latency time.Duration) {
	i := 0
	for i < len(h.limits) && latency > h.limits[i] {
		i++
	}
	t.counts[i]++
	t.sum += latency
}

// add adds what t counted.
func (h *latencyHistogram) add(t *latencyTally) {
	var n uint32
	for i := range h.counts {
		if c := t.counts[i]; c > 0 {
			h.counts[i].Add(uint64(c))
			n += c
		}
	}
	if n == 0 {
		return
	}
	for {
		old := h.sumBits.Load()
		sum := math.Float64frombits(old) + t.sum.Seconds()
		if h.sumBits.CompareAndSwap(old, math.Float64bits(sum)) {
			return
		}
	}
}

// Describe implements prometheus.Collector.
func (h *latencyHistogram) Describe(ch chan<- *prometheus.Desc) { ch <- h.desc }

// Collect implements prometheus.Collector. The count is the buckets' total,
// so that the buckets never exceed it, whatever is added meanwhile.
func (h *latencyHistogram) Collect(ch chan<- prometheus.Metric) {
	buckets := make(map[float64]uint64, len(h.bounds))
	var count uint64
	for i := range h.counts {
		count += h.counts[i].Load()
		if i < len(h.bounds) {
			buckets[h.bounds[i]] = count
		}
	}
	ch <- prometheus.MustNewConstHistogram(h.desc, count, math.Float64frombits(h.sumBits.Load()), buckets)
}
