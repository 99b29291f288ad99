package memrelease

import (
	"bytes"
	"io"
	"runtime"
	"runtime/metrics"
	"runtime/pprof"

	. "github.com/onsi/ginkgo/v2"
	. "github.com/onsi/gomega"
	"github.com/prometheus/client_golang/prometheus"
	dto "github.com/prometheus/client_model/go"
)

var _ = Describe("WhenQuiet's check", func() {
	// count is a counter's value.
	count := func(c prometheus.Counter) float64 {
		GinkgoHelper()
		var m dto.Metric
		Expect(c.Write(&m)).To(Succeed())
		return m.GetCounter().GetValue()
	}
	heapFree := func() uint64 {
		s := []metrics.Sample{{Name: metricHeapFree}}
		metrics.Read(s)
		return s[0].Value.Uint64()
	}
	// burst allocates and drops 64 MiB, and collects it: the runtime then
	// holds it free, as after a burst of work.
	burst := func() {
		chunks := make([][]byte, 0, 1024)
		for range 1024 {
			chunk := make([]byte, 64<<10)
			chunk[0] = 1
			chunks = append(chunks, chunk)
		}
		runtime.KeepAlive(chunks)
		chunks = nil
		runtime.GC()
	}

	It("gives back the free heap once the process is quiet", func() {
		burst()
		Expect(heapFree()).To(BeNumerically(">", 8<<20), "the runtime holds the burst's memory")
		q := newQuiet(QuietOptions{}.withDefaults())
		q.check()
		Expect(count(q.releases.WithLabelValues("heap"))).To(Equal(1.0))
		Expect(heapFree()).To(BeNumerically("<", 2<<20))
		Expect(count(q.released)).To(BeNumerically(">", 0), "the RSS fell")

		q.check()
		Expect(count(q.releases.WithLabelValues("heap"))).To(Equal(1.0), "nothing more to give back")
	})

	It("leaves a busy process alone", func() {
		q := newQuiet(QuietOptions{}.withDefaults())
		burst() // 64 MiB allocated since the last look: busy
		q.check()
		Expect(count(q.releases.WithLabelValues("heap"))).To(BeZero())
		Expect(heapFree()).To(BeNumerically(">", 8<<20))
		q.check() // and quiet since
		Expect(count(q.releases.WithLabelValues("heap"))).To(Equal(1.0))
	})

	It("gives back the executable's pages that a profile mapped again", func() {
		Expect(Release()).To(Succeed())
		q := newQuiet(QuietOptions{QuietBytes: 1 << 30, MinBytes: 256 << 10}.withDefaults())
		before, ok := residentFile()
		Expect(ok).To(BeTrue())
		// Symbolising a profile reads the runtime's function tables.
		var profile bytes.Buffer
		Expect(pprof.Lookup("goroutine").WriteTo(&profile, 2)).To(Succeed())
		Expect(pprof.Lookup("heap").WriteTo(io.Discard, 1)).To(Succeed())
		mapped, _ := residentFile()
		Expect(mapped).To(BeNumerically(">=", before+256<<10), "RssFile before %d, after the profiles %d", before, mapped)
		q.check()
		Expect(count(q.releases.WithLabelValues("executable"))).To(Equal(1.0))
		after, _ := residentFile()
		Expect(after).To(BeNumerically("<", mapped))
	})
})
