package server_test

import (
	"fmt"
	"math"
	"time"

	. "github.com/onsi/ginkgo/v2"
	. "github.com/onsi/gomega"
	"github.com/prometheus/client_golang/prometheus"
	dto "github.com/prometheus/client_model/go"

	eventlog "github.com/herald-notify/herald/streamer/log"

	"github.com/herald-notify/herald/streamer/hub"
	"github.com/herald-notify/herald/streamer/server"
)

var _ = Describe("the delivery metrics", func() {
	// gathered is the metric family name of reg.
	gathered := func(reg *prometheus.Registry, name string) *dto.MetricFamily {
		GinkgoHelper()
		families, err := reg.Gather()
		Expect(err).NotTo(HaveOccurred())
		for _, f := range families {
			if f.GetName() == name {
				return f
			}
		}
		Fail("no metric " + name)
		return nil
	}

	It("expose a write's latencies as a Prometheus histogram of the same buckets would", func() {
		bounds := []float64{.0005, .001, .0025, .005, .01, .025, .05, .1, .25, .5, 1, 2.5}
		// On the bounds (inclusive), between them, below the first and
		// beyond the last, in writes of several.
		writes := [][]time.Duration{
			{0, 500 * time.Microsecond, 501 * time.Microsecond, time.Millisecond},
			{7 * time.Millisecond, 7 * time.Millisecond, 2500 * time.Millisecond, 3 * time.Second, time.Minute},
			{}, // a write of nothing adds nothing
			{250 * time.Millisecond},
		}
		tallied := prometheus.NewRegistry()
		add := server.LatencyHistogram(tallied, "latency_seconds", bounds)
		reference := prometheus.NewRegistry()
		each := prometheus.NewHistogram(prometheus.HistogramOpts{Name: "latency_seconds", Help: "latencies", Buckets: bounds})
		reference.MustRegister(each)
		for _, w := range writes {
			add(w...)
			for _, l := range w {
				each.Observe(l.Seconds())
			}
		}

		got, want := gathered(tallied, "latency_seconds"), gathered(reference, "latency_seconds")
		Expect(got.GetType()).To(Equal(dto.MetricType_HISTOGRAM))
		g, w := got.GetMetric()[0].GetHistogram(), want.GetMetric()[0].GetHistogram()
		Expect(g.GetSampleCount()).To(BeEquivalentTo(10))
		Expect(g.GetSampleCount()).To(Equal(w.GetSampleCount()))
		Expect(g.GetSampleSum()).To(BeNumerically("~", w.GetSampleSum(), 1e-9))
		Expect(g.GetBucket()).To(HaveLen(len(bounds)))
		for i, b := range g.GetBucket() {
			Expect(b.GetUpperBound()).To(Equal(w.GetBucket()[i].GetUpperBound()))
			Expect(b.GetCumulativeCount()).To(Equal(w.GetBucket()[i].GetCumulativeCount()), "bucket le=%g", b.GetUpperBound())
		}
		Expect(g.GetBucket()[0].GetCumulativeCount()).To(BeEquivalentTo(2), "0 and 500 µs, the bound itself")
	})

	It("count each type a write carried, and only the frames after the stream's opening", func() {
		reg := prometheus.NewRegistry()
		delivered := server.DeliveryMetrics(reg)
		now := time.Now()
		frame := func(seq uint64, eventType string, age time.Duration) hub.Frame {
			return hub.Frame{Position: eventlog.Position{Seq: seq}, Type: eventType, Appended: now.Add(-age)}
		}
		runs := [][]hub.Frame{
			{frame(1, "notification", time.Second), frame(2, "notification", 3*time.Millisecond)},
			{frame(3, "system", 30*time.Millisecond), frame(4, "notification", 2*time.Millisecond)},
			{frame(5, "custom", time.Millisecond)},
		}
		// Frame 1 was written by the stream's opening already.
		delivered(hub.NewWrite(runs, eventlog.Position{Seq: 1}, now))
		// A write of more types than a tally holds counts every one.
		var many []hub.Frame
		for i := range 6 {
			many = append(many, frame(uint64(10+i), fmt.Sprintf("type-%d", i), time.Millisecond))
		}
		delivered(hub.NewWrite([][]hub.Frame{many}, eventlog.Position{}, now))

		counts := map[string]float64{}
		for _, m := range gathered(reg, "herald_events_delivered_total").GetMetric() {
			counts[m.GetLabel()[0].GetValue()] = m.GetCounter().GetValue()
		}
		Expect(counts).To(Equal(map[string]float64{
			"notification": 2, "system": 1, "custom": 1,
			"type-0": 1, "type-1": 1, "type-2": 1, "type-3": 1, "type-4": 1, "type-5": 1,
		}))
		h := gathered(reg, "herald_delivery_latency_seconds").GetMetric()[0].GetHistogram()
		Expect(h.GetSampleCount()).To(BeEquivalentTo(4 + 6))
		wantSum := (3*time.Millisecond + 30*time.Millisecond + 2*time.Millisecond + time.Millisecond + 6*time.Millisecond).Seconds()
		Expect(h.GetSampleSum()).To(BeNumerically("~", wantSum, 1e-9))
		Expect(math.IsNaN(h.GetSampleSum())).To(BeFalse())
	})
})
