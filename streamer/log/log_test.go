package log_test

import (
	"sync"
	"testing"
	"time"

	. "github.com/onsi/ginkgo/v2"
	. "github.com/onsi/gomega"

	"github.com/herald-notify/herald/internal/testutil"
	eventlog "github.com/herald-notify/herald/streamer/log"
)

func TestLog(t *testing.T) {
	testutil.RunSuite(t, "event log")
}

func appendN(l *eventlog.Embedded, n int) []uint64 {
	ids := make([]uint64, n)
	for i := range n {
		e, err := l.Append(eventlog.Event{Type: "custom", Data: []byte(`{"n":1}`)})
		Expect(err).NotTo(HaveOccurred())
		ids[i] = e.ID
	}
	return ids
}

func ids(events []eventlog.Event) []uint64 {
	out := make([]uint64, len(events))
	for i, e := range events {
		out[i] = e.ID
	}
	return out
}

var _ = Describe("the embedded log", func() {
	var (
		clock *testutil.Clock
		l     *eventlog.Embedded
	)

	BeforeEach(func() {
		clock = testutil.NewClock(time.Date(2026, 11, 28, 12, 0, 0, 0, time.UTC))
		l = eventlog.NewEmbedded(eventlog.Options{MaxEvents: 100, MaxAge: time.Minute, Now: clock.Now})
	})

	It("assigns contiguous, increasing IDs that start at the clock in microseconds", func() {
		first := uint64(clock.Now().UnixMicro())
		Expect(l.LastID()).To(Equal(first - 1))
		Expect(appendN(l, 3)).To(Equal([]uint64{first, first + 1, first + 2}))
		Expect(l.LastID()).To(Equal(first + 2))
	})

	It("stamps each event with the time it was appended", func() {
		clock.Advance(time.Second)
		e, err := l.Append(eventlog.Event{Type: "system"})
		Expect(err).NotTo(HaveOccurred())
		Expect(e.Time).To(Equal(clock.Now()))
	})

	It("returns exactly the events after an ID, oldest first, up to a limit", func() {
		appended := appendN(l, 10)
		events, recovered := l.ReadAfter(appended[3], 100)
		Expect(recovered).To(BeTrue())
		Expect(ids(events)).To(Equal(appended[4:]))

		events, recovered = l.ReadAfter(appended[3], 2)
		Expect(recovered).To(BeTrue())
		Expect(ids(events)).To(Equal(appended[4:6]))

		events, recovered = l.ReadAfter(appended[9], 100)
		Expect(recovered).To(BeTrue())
		Expect(events).To(BeEmpty())
	})

	It("recovers everything for a reader that starts before the first event", func() {
		before := l.LastID()
		appended := appendN(l, 5)
		events, recovered := l.ReadAfter(before, 100)
		Expect(recovered).To(BeTrue())
		Expect(ids(events)).To(Equal(appended))
	})

	It("keeps at most MaxEvents and says when a reader's events are gone", func() {
		appended := appendN(l, 150)
		Expect(l.Len()).To(Equal(100))

		_, recovered := l.ReadAfter(appended[10], 1000)
		Expect(recovered).To(BeFalse(), "events 12..50 were evicted")

		events, recovered := l.ReadAfter(appended[49], 1000)
		Expect(recovered).To(BeTrue())
		Expect(ids(events)).To(Equal(appended[50:]))
	})

	It("drops events older than MaxAge", func() {
		appended := appendN(l, 3)
		clock.Advance(30 * time.Second)
		later := appendN(l, 2)
		clock.Advance(45 * time.Second) // the first three are 75s old, the others 45s

		Expect(l.Len()).To(Equal(2))
		_, recovered := l.ReadAfter(appended[0], 100)
		Expect(recovered).To(BeFalse())
		events, recovered := l.ReadAfter(appended[2], 100)
		Expect(recovered).To(BeTrue())
		Expect(ids(events)).To(Equal(later))
	})

	It("does not map an ID from before a restart, or from elsewhere, onto its events", func() {
		old := appendN(l, 3)
		clock.Advance(time.Second)
		restarted := eventlog.NewEmbedded(eventlog.Options{Now: clock.Now})
		fresh := appendN(restarted, 2)
		Expect(fresh[0]).To(BeNumerically(">", old[2]))

		_, recovered := restarted.ReadAfter(old[2], 100)
		Expect(recovered).To(BeFalse(), "an ID of the previous process")
		_, recovered = restarted.ReadAfter(fresh[1]+1000, 100)
		Expect(recovered).To(BeFalse(), "an ID from the future")
	})

	It("tells the recipients of an event", func() {
		direct := eventlog.Event{UserIDs: []string{"u1", "u2"}}
		Expect(direct.ForUser("u2")).To(BeTrue())
		Expect(direct.ForUser("u3")).To(BeFalse())
		broadcast := eventlog.Event{}
		Expect(broadcast.ForUser("anyone")).To(BeTrue())
	})

	It("wakes readers on append and on close, and refuses appends after close", func() {
		changed := l.Changed()
		Consistently(changed).ShouldNot(BeClosed())
		appendN(l, 1)
		Expect(changed).To(BeClosed())

		changed = l.Changed()
		l.Close()
		Expect(changed).To(BeClosed())
		Expect(l.Closed()).To(BeTrue())
		_, err := l.Append(eventlog.Event{})
		Expect(err).To(MatchError(eventlog.ErrClosed))
	})

	It("delivers every event exactly once, in order, to concurrent readers", func() {
		const writers, perWriter, readers = 4, 200, 3
		unbounded := eventlog.NewEmbedded(eventlog.Options{MaxEvents: writers * perWriter})
		start := unbounded.LastID()

		var wg sync.WaitGroup
		seen := make([][]uint64, readers)
		for r := range readers {
			wg.Go(func() {
				defer GinkgoRecover()
				cursor := start
				for len(seen[r]) < writers*perWriter {
					changed := unbounded.Changed()
					events, recovered := unbounded.ReadAfter(cursor, 64)
					Expect(recovered).To(BeTrue())
					for _, e := range events {
						seen[r] = append(seen[r], e.ID)
						cursor = e.ID
					}
					if len(events) == 0 {
						<-changed
					}
				}
			})
		}
		for range writers {
			wg.Go(func() {
				defer GinkgoRecover()
				appendN(unbounded, perWriter)
			})
		}
		wg.Wait()

		want := make([]uint64, writers*perWriter)
		for i := range want {
			want[i] = start + 1 + uint64(i)
		}
		for r := range readers {
			Expect(seen[r]).To(Equal(want))
		}
	})
})
