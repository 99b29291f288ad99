package hub

import (
	"context"
	"fmt"
	"sync"
	"testing"
	"time"

	. "github.com/onsi/ginkgo/v2"
	. "github.com/onsi/gomega"

	eventlog "github.com/herald-notify/herald/streamer/log"
)

// scheduling is a Notifier that does what a pool of writers does when told:
// it marks the stream scheduled, and lists it once.
type scheduling struct {
	mu        sync.Mutex
	scheduled bool
	ready     *readyList
}

type readyList struct {
	mu      sync.Mutex
	streams []*scheduling
}

func (s *scheduling) Notify() {
	s.mu.Lock()
	schedule := !s.scheduled
	s.scheduled = true
	s.mu.Unlock()
	if schedule {
		s.ready.mu.Lock()
		s.ready.streams = append(s.ready.streams, s)
		s.ready.mu.Unlock()
	}
}

// broadcastHub is a hub with n streams, each told through a scheduling
// Notifier, and a broadcast event to dispatch to them.
func broadcastHub(tb interface {
	Context() context.Context
	Fatal(args ...any)
}, n int) (*Hub, []*Conn, []*scheduling, *readyList, []eventlog.Event) {
	h := New(eventlog.NewEmbedded(eventlog.Options{}), Options{})
	ready := &readyList{}
	conns, notifiers := make([]*Conn, n), make([]*scheduling, n)
	for i := range conns {
		conns[i], notifiers[i] = new(Conn), &scheduling{ready: ready}
		if _, err := h.RegisterConn(tb.Context(), conns[i], fmt.Sprintf("user-%d", i), notifiers[i]); err != nil {
			tb.Fatal(err)
		}
	}
	event := []eventlog.Event{{Type: "system", Data: []byte(`{"message":"a broadcast","seq":1}`), Time: time.Now()}}
	return h, conns, notifiers, ready, event
}

// BenchmarkDispatchBroadcast is a broadcast's pass over 10,000 streams, twice
// before their writers take the frames (as in a burst), in ns per stream.
func BenchmarkDispatchBroadcast(b *testing.B) {
	const streams = 10000
	h, conns, notifiers, ready, event := broadcastHub(b, streams)
	buf := make([][]Frame, 0, 16)
	seq := uint64(0)
	for b.Loop() {
		for range 2 {
			seq++
			event[0].Position = eventlog.Position{Seq: seq}
			h.dispatch(event)
		}
		b.StopTimer()
		for i, c := range conns {
			buf, _, _, _ = c.Take(buf[:0])
			notifiers[i].scheduled = false
		}
		ready.streams = ready.streams[:0]
		b.StartTimer()
	}
	b.ReportMetric(float64(b.Elapsed().Nanoseconds())/float64(b.N)/streams, "ns/stream")
}

var _ = Describe("a stream's queue during a burst", func() {
	DescribeTable("takes its room for several runs from a pool and gives it back once taken, so that a burst grows no queue", func(n int) {
		_, conns, _, _, _ := broadcastHub(GinkgoT(), 1)
		c := conns[0]
		runs := make([][]Frame, n)
		for i := range runs {
			runs[i] = []Frame{{Position: eventlog.Position{Seq: uint64(i + 1)}, Bytes: []byte("data: x\n\n")}}
		}
		buf := make([][]Frame, 0, 16)
		queued := 0
		cycle := func() {
			for _, run := range runs {
				if c.enqueue(run) {
					queued++
				}
			}
			buf, _, _, _ = c.Take(buf[:0])
		}
		cycle()
		Expect(queued).To(Equal(len(runs)))
		Expect(buf).To(Equal(runs), "every run, in order")
		Expect(c.QueueCap()).To(BeZero(), "the grown room went back")
		// A queue that grew by doubling would allocate at every power of two
		// a cycle (room for 1, 2, 4, 8 … runs); from the pools, once (room
		// for the first run, which the grown room then replaces).
		Expect(testing.AllocsPerRun(100, cycle)).To(BeNumerically("<", 2))
	},
		Entry("a few runs, room for 16", 5),
		Entry("dozens of runs, as events that arrive one by one leave a stream behind its writer: room for 128", 50))
})
