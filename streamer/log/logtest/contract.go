// Package logtest is the contract every implementation of the channel's log
// (streamer/log.Log) passes: one Ginkgo suite, run by each implementation's
// own tests against its real storage.
package logtest

import (
	"context"
	"fmt"
	"slices"
	"sync"
	"time"

	. "github.com/onsi/ginkgo/v2" //nolint:revive // the suite reads as Ginkgo specs
	. "github.com/onsi/gomega"    //nolint:revive

	eventlog "github.com/herald-notify/herald/streamer/log"
)

// Subject is an implementation under test.
type Subject struct {
	// New returns an empty log that retains at most maxEvents events (and
	// ages them out after much longer than a test runs). It is called once
	// per spec; the spec closes the log.
	New func(maxEvents int) eventlog.Log
	// Reset loses l's history the way the implementation can lose it in
	// production (a restarted process, a broker stream deleted and
	// recreated), and returns the log to use from then on: l itself, or a
	// new one.
	Reset func(l eventlog.Log) eventlog.Log
}

// timeout bounds what a spec waits for.
const timeout = 10 * time.Second

// DescribeContract declares the contract's specs for subject.
func DescribeContract(subject Subject) {
	var (
		ctx context.Context
		l   eventlog.Log
	)
	BeforeEach(func() {
		var cancel context.CancelFunc
		ctx, cancel = context.WithTimeout(context.Background(), time.Minute)
		DeferCleanup(cancel)
		l = subject.New(100)
		DeferCleanup(func() { _ = l.Close() })
	})

	appendN := func(n int, users ...string) []eventlog.Position {
		GinkgoHelper()
		positions := make([]eventlog.Position, n)
		for i := range n {
			r, err := l.Append(ctx, eventlog.Event{Type: "custom", UserIDs: users, Data: fmt.Appendf(nil, `{"n":%d}`, i)}, "")
			Expect(err).NotTo(HaveOccurred())
			Expect(r.Duplicate).To(BeFalse())
			positions[i] = r.Position
		}
		return positions
	}
	readAfter := func(after eventlog.Position, limit int) ([]eventlog.Position, bool) {
		GinkgoHelper()
		events, recovered, err := l.ReadAfter(ctx, after, limit)
		Expect(err).NotTo(HaveOccurred())
		return positionsOf(events), recovered
	}

	It("assigns increasing positions of one epoch, and Last is the newest", func() {
		start := l.Last()
		appended := appendN(5)
		for i, p := range appended {
			Expect(p.Epoch).To(Equal(start.Epoch))
			if i > 0 {
				Expect(p.Seq).To(BeNumerically(">", appended[i-1].Seq))
			}
		}
		Expect(appended[0].After(start)).To(BeTrue())
		Expect(l.Last()).To(Equal(appended[4]))
	})

	It("writes positions as ids that parse back", func() {
		p := appendN(1)[0]
		parsed, err := eventlog.ParsePosition(p.String())
		Expect(err).NotTo(HaveOccurred())
		Expect(parsed).To(Equal(p))
	})

	It("returns exactly the events after a position, in order, as appended, up to a limit", func() {
		start := l.Last()
		r, err := l.Append(ctx, eventlog.Event{Type: "notification", UserIDs: []string{"u1", "u2"}, Data: []byte(`{"a":1}`)}, "")
		Expect(err).NotTo(HaveOccurred())
		Expect(r.Time).NotTo(BeZero())
		appended := append([]eventlog.Position{r.Position}, appendN(9)...)

		events, recovered, err := l.ReadAfter(ctx, start, 100)
		Expect(err).NotTo(HaveOccurred())
		Expect(recovered).To(BeTrue())
		Expect(positionsOf(events)).To(Equal(appended))
		first := events[0]
		Expect(first.Type).To(Equal("notification"))
		Expect(first.UserIDs).To(Equal([]string{"u1", "u2"}))
		Expect(string(first.Data)).To(Equal(`{"a":1}`))
		Expect(first.Time).To(BeTemporally("~", r.Time, time.Millisecond))

		got, recovered := readAfter(appended[3], 2)
		Expect(recovered).To(BeTrue())
		Expect(got).To(Equal(appended[4:6]))

		got, recovered = readAfter(appended[9], 100)
		Expect(recovered).To(BeTrue())
		Expect(got).To(BeEmpty())
	})

	It("says when a reader's events are no longer retained", func() {
		start := l.Last()
		appended := appendN(150)
		_, recovered := readAfter(start, 1000)
		Expect(recovered).To(BeFalse(), "the first 50 were evicted")
		_, recovered = readAfter(appended[10], 1000)
		Expect(recovered).To(BeFalse())

		got, recovered := readAfter(appended[49], 1000)
		Expect(recovered).To(BeTrue(), "the oldest retained event follows")
		Expect(got).To(Equal(appended[50:]))
	})

	It("does not recover a position from beyond its newest event, or of another epoch", func() {
		last := appendN(3)[2]
		_, recovered := readAfter(eventlog.Position{Epoch: last.Epoch, Seq: last.Seq + 1000}, 10)
		Expect(recovered).To(BeFalse(), "a position from the future")
		_, recovered = readAfter(eventlog.Position{Epoch: last.Epoch + 1, Seq: 1}, 10)
		Expect(recovered).To(BeFalse(), "another epoch")
		_, recovered = readAfter(eventlog.Position{}, 10)
		Expect(recovered).To(BeFalse(), "the zero position")
	})

	It("starts a new epoch when its history is lost, and never maps old positions onto new events", func() {
		old := appendN(3)
		l = subject.Reset(l)
		DeferCleanup(func() { _ = l.Close() })
		Eventually(l.Last).WithTimeout(timeout).ShouldNot(HaveField("Epoch", old[2].Epoch))
		fresh := appendN(3)
		Expect(fresh[0].Epoch).NotTo(Equal(old[0].Epoch))
		Expect(fresh[0].After(old[2])).To(BeTrue(), "a later epoch orders after")
		for _, p := range old {
			_, recovered := readAfter(p, 10)
			Expect(recovered).To(BeFalse(), "position %s of the lost history", p)
		}
		got, recovered := readAfter(fresh[0], 10)
		Expect(recovered).To(BeTrue())
		Expect(got).To(Equal(fresh[1:]))
	})

	It("stores an event once per de-duplication key", func() {
		start := l.Last()
		first, err := l.Append(ctx, eventlog.Event{Type: "system", Data: []byte(`{"v":1}`)}, "uid-1/3")
		Expect(err).NotTo(HaveOccurred())
		Expect(first.Duplicate).To(BeFalse())
		again, err := l.Append(ctx, eventlog.Event{Type: "system", Data: []byte(`{"v":1}`)}, "uid-1/3")
		Expect(err).NotTo(HaveOccurred())
		Expect(again.Duplicate).To(BeTrue())
		Expect(again.Position).To(Equal(first.Position))
		other, err := l.Append(ctx, eventlog.Event{Type: "system", Data: []byte(`{"v":2}`)}, "uid-1/4")
		Expect(err).NotTo(HaveOccurred())
		Expect(other.Duplicate).To(BeFalse())
		unkeyed := appendN(2)

		got, recovered := readAfter(start, 10)
		Expect(recovered).To(BeTrue())
		Expect(got).To(Equal(append([]eventlog.Position{first.Position, other.Position}, unkeyed...)))
	})

	It("wakes readers on append", func() {
		changed := l.Changed()
		Consistently(changed, 50*time.Millisecond).ShouldNot(BeClosed())
		appendN(1)
		Eventually(changed).WithTimeout(timeout).Should(BeClosed())
	})

	It("refuses appends after Close, still serves what it holds, then says it is closed", func() {
		start := l.Last()
		appended := appendN(2)
		changed := l.Changed()
		Expect(l.Close()).To(Succeed())
		Eventually(changed).WithTimeout(timeout).Should(BeClosed())
		_, err := l.Append(ctx, eventlog.Event{Type: "custom", Data: []byte(`{}`)}, "")
		Expect(err).To(MatchError(eventlog.ErrClosed))

		events, recovered, err := l.ReadAfter(ctx, start, 10)
		Expect(err).NotTo(HaveOccurred())
		Expect(recovered).To(BeTrue())
		Expect(positionsOf(events)).To(Equal(appended))
		_, _, err = l.ReadAfter(ctx, appended[1], 10)
		Expect(err).To(MatchError(eventlog.ErrClosed))
	})

	It("gives appends made at the same time positions of their own, and reads back after each", func() {
		const appenders = 24
		start := l.Last()
		receipts := make([]eventlog.Receipt, appenders)
		var wg sync.WaitGroup
		for i := range appenders {
			wg.Go(func() {
				defer GinkgoRecover()
				var err error
				receipts[i], err = l.Append(ctx, eventlog.Event{Type: "custom", Data: fmt.Appendf(nil, `{"n":%d}`, i)}, "")
				Expect(err).NotTo(HaveOccurred())
			})
		}
		wg.Wait()

		events, recovered, err := l.ReadAfter(ctx, start, 100)
		Expect(err).NotTo(HaveOccurred())
		Expect(recovered).To(BeTrue())
		Expect(events).To(HaveLen(appenders))
		for _, r := range receipts {
			Expect(positionsOf(events)).To(ContainElement(r.Position))
		}
		for i, e := range events {
			n := slices.IndexFunc(receipts, func(r eventlog.Receipt) bool { return r.Position == e.Position })
			Expect(string(e.Data)).To(Equal(fmt.Sprintf(`{"n":%d}`, n)), "the event at %s", e.Position)
			got, recovered := readAfter(e.Position, 100)
			Expect(recovered).To(BeTrue())
			Expect(got).To(Equal(positionsOf(events[i+1:])), "after %s", e.Position)
		}
		Expect(l.Last()).To(Equal(events[appenders-1].Position))
	})

	It("hands every event exactly once, in order, to concurrent readers", func() {
		const writers, perWriter, readers = 4, 20, 3
		start := l.Last()
		var wg sync.WaitGroup
		seen := make([][]eventlog.Position, readers)
		for r := range readers {
			wg.Go(func() {
				defer GinkgoRecover()
				cursor := start
				for len(seen[r]) < writers*perWriter {
					changed := l.Changed()
					events, recovered, err := l.ReadAfter(ctx, cursor, 7)
					Expect(err).NotTo(HaveOccurred())
					Expect(recovered).To(BeTrue())
					for _, e := range events {
						seen[r] = append(seen[r], e.Position)
						cursor = e.Position
					}
					if len(events) == 0 {
						select {
						case <-changed:
						case <-ctx.Done():
							Fail("timed out waiting for events")
						}
					}
				}
			})
		}
		for range writers {
			wg.Go(func() {
				defer GinkgoRecover()
				appendN(perWriter)
			})
		}
		wg.Wait()

		all, recovered := readAfter(start, writers*perWriter)
		Expect(recovered).To(BeTrue())
		Expect(all).To(HaveLen(writers * perWriter))
		for r := range readers {
			Expect(seen[r]).To(Equal(all))
		}
	})
}

func positionsOf(events []eventlog.Event) []eventlog.Position {
	out := make([]eventlog.Position, len(events))
	for i, e := range events {
		out[i] = e.Position
	}
	return out
}
