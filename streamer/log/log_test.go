package log_test

import (
	"context"
	"testing"
	"time"

	. "github.com/onsi/ginkgo/v2"
	. "github.com/onsi/gomega"

	"github.com/herald-notify/herald/internal/testutil"
	eventlog "github.com/herald-notify/herald/streamer/log"
	"github.com/herald-notify/herald/streamer/log/logtest"
)

func TestLog(t *testing.T) {
	testutil.RunSuite(t, "event log")
}

var _ = Describe("the embedded log", func() {
	Describe("the log contract", func() {
		logtest.DescribeContract(logtest.Subject{
			New: func(maxEvents int) eventlog.Log {
				return eventlog.NewEmbedded(eventlog.Options{MaxEvents: maxEvents})
			},
			// Its history is lost when its process restarts: a new log,
			// started (by its clock) after the first.
			Reset: func(l eventlog.Log) eventlog.Log {
				_ = l.Close()
				later := func() time.Time { return time.Now().Add(time.Millisecond) }
				return eventlog.NewEmbedded(eventlog.Options{MaxEvents: 100, Now: later})
			},
		})
	})

	var (
		ctx   = context.Background()
		clock *testutil.Clock
		l     *eventlog.Embedded
	)
	BeforeEach(func() {
		clock = testutil.NewClock(time.Date(2026, 11, 28, 12, 0, 0, 0, time.UTC))
		l = eventlog.NewEmbedded(eventlog.Options{MaxEvents: 100, MaxAge: time.Minute, Now: clock.Now})
	})
	appendN := func(n int) []eventlog.Position {
		GinkgoHelper()
		out := make([]eventlog.Position, n)
		for i := range n {
			r, err := l.Append(ctx, eventlog.Event{Type: "custom", Data: []byte(`{"n":1}`)}, "")
			Expect(err).NotTo(HaveOccurred())
			out[i] = r.Position
		}
		return out
	}

	It("has the clock in microseconds as its epoch, and sequences from 1", func() {
		epoch := uint64(clock.Now().UnixMicro())
		Expect(l.Last()).To(Equal(eventlog.Position{Epoch: epoch}))
		Expect(appendN(2)).To(Equal([]eventlog.Position{{Epoch: epoch, Seq: 1}, {Epoch: epoch, Seq: 2}}))
	})

	It("stamps each event with the time it was appended", func() {
		clock.Advance(time.Second)
		r, err := l.Append(ctx, eventlog.Event{Type: "system"}, "")
		Expect(err).NotTo(HaveOccurred())
		Expect(r.Time).To(Equal(clock.Now()))
	})

	It("drops events older than MaxAge, and forgets their de-duplication keys", func() {
		start := l.Last()
		_, err := l.Append(ctx, eventlog.Event{Type: "system"}, "k")
		Expect(err).NotTo(HaveOccurred())
		appended := appendN(2)
		clock.Advance(30 * time.Second)
		later := appendN(2)
		clock.Advance(45 * time.Second) // the first three are 75s old, the others 45s

		Expect(l.Len()).To(Equal(2))
		_, recovered, err := l.ReadAfter(ctx, start, 100)
		Expect(err).NotTo(HaveOccurred())
		Expect(recovered).To(BeFalse())
		events, recovered, err := l.ReadAfter(ctx, appended[1], 100)
		Expect(err).NotTo(HaveOccurred())
		Expect(recovered).To(BeTrue())
		Expect(events).To(HaveLen(2))
		Expect(events[0].Position).To(Equal(later[0]))

		again, err := l.Append(ctx, eventlog.Event{Type: "system"}, "k")
		Expect(err).NotTo(HaveOccurred())
		Expect(again.Duplicate).To(BeFalse(), "the key left with its event")
	})

	It("tells the recipients of an event", func() {
		direct := eventlog.Event{UserIDs: []string{"u1", "u2"}}
		Expect(direct.ForUser("u2")).To(BeTrue())
		Expect(direct.ForUser("u3")).To(BeFalse())
		broadcast := eventlog.Event{}
		Expect(broadcast.ForUser("anyone")).To(BeTrue())
	})

	It("refuses ids that are not positions", func() {
		for _, id := range []string{"", "42", "a-1", "1-b", "-1", "1-2-", "1-2-0", "1-2-x", "1-2-3-4", "1-2-4294967296"} {
			_, err := eventlog.ParsePosition(id)
			Expect(err).To(HaveOccurred(), "id %q", id)
		}
	})

	It("tells apart the events stored under one sequence, in the order stored", func() {
		// A sequence holding three events, between two holding one each.
		ordered := []eventlog.Position{
			{Epoch: 7, Seq: 4},
			{Epoch: 7, Seq: 5, Following: 2},
			{Epoch: 7, Seq: 5, Following: 1},
			{Epoch: 7, Seq: 5},
			{Epoch: 7, Seq: 6},
		}
		for i, p := range ordered {
			parsed, err := eventlog.ParsePosition(p.String())
			Expect(err).NotTo(HaveOccurred())
			Expect(parsed).To(Equal(p))
			if i > 0 {
				Expect(p.After(ordered[i-1])).To(BeTrue(), "%s after %s", p, ordered[i-1])
				Expect(ordered[i-1].After(p)).To(BeFalse())
			}
		}
		Expect(ordered[1].String()).To(Equal("7-5-2"))
		Expect(ordered[3].String()).To(Equal("7-5"), "the last event of a sequence has the sequence's id")
	})
})
