package jetstreamlog_test

import (
	"context"
	"fmt"
	"slices"
	"sync"
	"sync/atomic"
	"time"

	. "github.com/onsi/ginkgo/v2"
	. "github.com/onsi/gomega"

	eventlog "github.com/herald-notify/herald/streamer/log"
	"github.com/herald-notify/herald/streamer/log/jetstreamlog"
)

var _ = Describe("appends made at the same time", func() {
	var (
		ctx context.Context
		// l publishes; its first group waits until release is closed.
		l       *jetstreamlog.Log
		channel string
		held    atomic.Bool
		release chan struct{}
	)
	BeforeEach(func() {
		var cancel context.CancelFunc
		ctx, cancel = context.WithTimeout(context.Background(), time.Minute)
		DeferCleanup(cancel)
		channel = newChannel()
		l = open(testOptions(channel, 100))
		held.Store(false)
		release = make(chan struct{})
		jetstreamlog.SetBeforeGroupPublish(l, func() {
			if held.CompareAndSwap(false, true) {
				<-release
			}
		})
	})

	type outcome struct {
		data    string
		receipt eventlog.Receipt
		err     error
	}
	// appendAsync appends an event with data {"n":n} in the background.
	appendAsync := func(ctx context.Context, n int, wg *sync.WaitGroup, outcomes chan<- outcome) {
		wg.Go(func() {
			data := fmt.Sprintf(`{"n":%d}`, n)
			r, err := l.Append(ctx, eventlog.Event{Type: "notification", UserIDs: []string{fmt.Sprintf("u%d", n)}, Data: []byte(data)}, "")
			outcomes <- outcome{data: data, receipt: r, err: err}
		})
	}
	// gatherBehindHeld appends first and holds its write, then returns
	// once count more appends (first+1 …) gather behind it.
	gatherBehindHeld := func(first, count int, wg *sync.WaitGroup, outcomes chan<- outcome) {
		GinkgoHelper()
		appendAsync(ctx, first, wg, outcomes)
		Eventually(held.Load).Should(BeTrue(), "the first append is on its way")
		for n := first + 1; n <= first+count; n++ {
			appendAsync(ctx, n, wg, outcomes)
		}
		Eventually(func() int { return jetstreamlog.GatheringAppends(l) }).Should(Equal(count))
	}
	// behindHeldWrite is gatherBehindHeld, then lets the write go and
	// returns every append's outcome once all are done.
	behindHeldWrite := func(first, count int) []outcome {
		GinkgoHelper()
		var wg sync.WaitGroup
		outcomes := make(chan outcome, count+1)
		gatherBehindHeld(first, count, &wg, outcomes)
		close(release)
		wg.Wait()
		close(outcomes)
		var all []outcome
		for o := range outcomes {
			all = append(all, o)
		}
		return all
	}
	lastSeq := func() uint64 {
		GinkgoHelper()
		s, err := admin.Stream(ctx, l.StreamName())
		Expect(err).NotTo(HaveOccurred())
		info, err := s.Info(ctx)
		Expect(err).NotTo(HaveOccurred())
		return info.State.LastSeq
	}

	It("are stored as one message, with positions every replica shares, and read back from any of them", func() {
		start := l.Last()
		outcomes := behindHeldWrite(0, 9)

		dataAt := map[eventlog.Position]string{}
		var following []uint32
		for _, o := range outcomes {
			Expect(o.err).NotTo(HaveOccurred())
			Expect(o.receipt.Duplicate).To(BeFalse())
			dataAt[o.receipt.Position] = o.data
			if o.data != `{"n":0}` {
				Expect(o.receipt.Position.Seq).To(Equal(start.Seq+2), "the nine gathered into the second message")
				following = append(following, o.receipt.Position.Following)
			}
		}
		slices.Sort(following)
		Expect(following).To(Equal([]uint32{0, 1, 2, 3, 4, 5, 6, 7, 8}))
		Expect(lastSeq()).To(Equal(start.Seq+2), "two messages for ten events")
		Expect(l.Last()).To(Equal(eventlog.Position{Epoch: start.Epoch, Seq: start.Seq + 2}))
		perWrite := metricOf(l, "herald_log_appends_per_write").GetHistogram()
		Expect(perWrite.GetSampleCount()).To(Equal(uint64(2)), "two writes")
		Expect(perWrite.GetSampleSum()).To(Equal(10.0), "of ten events")
		writes := metricOf(l, "herald_log_write_seconds").GetHistogram()
		Expect(writes.GetSampleCount()).To(Equal(uint64(2)), "two writes acknowledged")
		Expect(writes.GetSampleSum()).To(BeNumerically(">", 0))
		Expect(metricOf(l, "herald_log_consumers_created_total").GetCounter().GetValue()).To(Equal(1.0), "the one consumer it started with")

		// Every event is read back as appended, in position order, from
		// this log, from a replica, and from a replica whose window holds
		// only the last five (so that the rest of the message is read from
		// the stream).
		replica := open(testOptions(channel, 100))
		small := open(testOptions(channel, 5))
		for _, reader := range []*jetstreamlog.Log{l, replica, small} {
			events, recovered, err := reader.ReadAfter(ctx, start, 100)
			Expect(err).NotTo(HaveOccurred())
			Expect(recovered).To(BeTrue())
			Expect(events).To(HaveLen(10))
			for i, e := range events {
				Expect(string(e.Data)).To(Equal(dataAt[e.Position]), "event %s", e.Position)
				Expect(e.UserIDs).To(HaveLen(1))
				if i > 0 {
					Expect(e.Position.After(events[i-1].Position)).To(BeTrue())
				}
			}
			// A reader that stopped in the middle of the message gets
			// the rest of it, and only that.
			middle := events[4].Position
			Expect(middle.Following).To(Equal(uint32(5)))
			rest, recovered, err := reader.ReadAfter(ctx, middle, 100)
			Expect(err).NotTo(HaveOccurred())
			Expect(recovered).To(BeTrue())
			Expect(positionsOf(rest)).To(Equal(positionsOf(events[5:])))
			// and a limit may end in the middle of a message
			some, _, err := reader.ReadAfter(ctx, events[1].Position, 3)
			Expect(err).NotTo(HaveOccurred())
			Expect(positionsOf(some)).To(Equal(positionsOf(events[2:5])))
		}
	})

	It("store nothing of an append that gave up before its group left", func() {
		start := l.Last()
		var wg sync.WaitGroup
		outcomes := make(chan outcome, 3)
		appendAsync(ctx, 0, &wg, outcomes)
		Eventually(held.Load).Should(BeTrue())
		giveUp, cancel := context.WithCancel(ctx)
		appendAsync(giveUp, 1, &wg, outcomes)
		appendAsync(ctx, 2, &wg, outcomes)
		Eventually(func() int { return jetstreamlog.GatheringAppends(l) }).Should(Equal(2))
		cancel()
		Eventually(func() int { return jetstreamlog.GatheringAppends(l) }).Should(Equal(1))
		close(release)
		wg.Wait()
		close(outcomes)

		stored := map[string]eventlog.Position{}
		for o := range outcomes {
			if o.data == `{"n":1}` {
				Expect(o.err).To(MatchError(ContainSubstring("nothing was stored")))
				Expect(o.err).To(MatchError(context.Canceled))
				continue
			}
			Expect(o.err).NotTo(HaveOccurred())
			stored[o.data] = o.receipt.Position
		}
		Expect(stored).To(Equal(map[string]eventlog.Position{
			`{"n":0}`: {Epoch: start.Epoch, Seq: start.Seq + 1},
			`{"n":2}`: {Epoch: start.Epoch, Seq: start.Seq + 2},
		}), "the one left is a message of its own")
		events, _, err := l.ReadAfter(ctx, start, 100)
		Expect(err).NotTo(HaveOccurred())
		Expect(events).To(HaveLen(2))
	})

	Describe("after a write that others shared", func() {
		// writeOfFive makes the log's last write one of five events: the
		// first append is held on its way while five more gather.
		writeOfFive := func() {
			GinkgoHelper()
			for _, o := range behindHeldWrite(100, 5) {
				Expect(o.err).NotTo(HaveOccurred())
			}
		}
		gathering := func() int { return jetstreamlog.GatheringAppends(l) }
		// firstWaiting makes the last write one of five, with no limit to
		// the wait that follows, then appends {"n":0} in the background and
		// returns the log's last position once that append waits for others.
		firstWaiting := func(wg *sync.WaitGroup, outcomes chan<- outcome) eventlog.Position {
			GinkgoHelper()
			writeOfFive()
			jetstreamlog.SetGatherLimit(l, func(time.Duration) time.Duration { return time.Minute })
			start := l.Last()
			appendAsync(ctx, 0, wg, outcomes)
			Eventually(gathering).Should(Equal(1), "the first waits for others")
			return start
		}
		perWrite := func() (writes uint64, events float64) {
			h := metricOf(l, "herald_log_appends_per_write").GetHistogram()
			return h.GetSampleCount(), h.GetSampleSum()
		}

		It("an append that finds nothing on its way waits for as many as that write carried, then they share one", func() {
			var wg sync.WaitGroup
			outcomes := make(chan outcome, 5)
			start := firstWaiting(&wg, outcomes)
			Expect(l.Last()).To(Equal(start), "and is not stored yet")
			for n := 1; n < 5; n++ {
				appendAsync(ctx, n, &wg, outcomes)
			}
			wg.Wait()
			close(outcomes)
			for o := range outcomes {
				Expect(o.err).NotTo(HaveOccurred())
				Expect(o.receipt.Position.Seq).To(Equal(start.Seq+1), "%s in the one write", o.data)
			}
			Expect(lastSeq()).To(Equal(start.Seq + 1))
			writes, events := perWrite()
			Expect(writes).To(Equal(uint64(3)))
			Expect(events).To(Equal(11.0))
		})

		It("waits no longer than its limit, and after a write of one event not at all", func() {
			limit := atomic.Int64{}
			limit.Store(int64(50 * time.Millisecond))
			jetstreamlog.SetGatherLimit(l, func(time.Duration) time.Duration { return time.Duration(limit.Load()) })
			writeOfFive()
			start := l.Last()
			appendOne := func() eventlog.Position {
				r, err := l.Append(ctx, eventlog.Event{Type: "custom", Data: []byte("{}")}, "")
				Expect(err).NotTo(HaveOccurred())
				return r.Position
			}
			Expect(appendOne()).To(Equal(eventlog.Position{Epoch: start.Epoch, Seq: start.Seq + 1}), "alone once the limit passed")

			limit.Store(int64(time.Hour))
			done := make(chan eventlog.Position)
			go func() {
				defer GinkgoRecover()
				done <- appendOne()
			}()
			Eventually(done).Should(Receive(Equal(eventlog.Position{Epoch: start.Epoch, Seq: start.Seq + 2})),
				"the write before held one event: nothing to wait for")
		})

		It("an append that gives up while its group waits is withdrawn, and the group still goes", func() {
			var wg sync.WaitGroup
			outcomes := make(chan outcome, 6)
			start := firstWaiting(&wg, outcomes)
			giveUp, cancel := context.WithCancel(ctx)
			appendAsync(giveUp, 1, &wg, outcomes)
			Eventually(gathering).Should(Equal(2))
			cancel()
			Eventually(gathering).Should(Equal(1))
			for n := 2; n < 6; n++ {
				appendAsync(ctx, n, &wg, outcomes)
			}
			wg.Wait()
			close(outcomes)
			stored := 0
			for o := range outcomes {
				if o.data == `{"n":1}` {
					Expect(o.err).To(MatchError(ContainSubstring("nothing was stored")))
					continue
				}
				Expect(o.err).NotTo(HaveOccurred())
				Expect(o.receipt.Position.Seq).To(Equal(start.Seq + 1))
				stored++
			}
			Expect(stored).To(Equal(5))
			events, _, err := l.ReadAfter(ctx, start, 100)
			Expect(err).NotTo(HaveOccurred())
			Expect(events).To(HaveLen(5))
			for _, e := range events {
				Expect(string(e.Data)).NotTo(Equal(`{"n":1}`))
			}
		})
	})

	It("a group waits for the appends still being read back too, whose publishers may append again", func() {
		jetstreamlog.SetGatherLimit(l, func(time.Duration) time.Duration { return time.Minute })
		var wg sync.WaitGroup
		outcomes := make(chan outcome, 4)
		// {"n":0} is written alone and read back only once let go;
		// {"n":1} and {"n":2} gather behind it meanwhile.
		gatherBehindHeld(0, 2, &wg, outcomes)
		readBack := make(chan struct{})
		jetstreamlog.SetBeforeDeliver(l, func() { <-readBack })
		close(release)

		Eventually(func() bool { return jetstreamlog.WaitingForMore(l) }).Should(BeTrue(),
			"the write before carried one event, but three appends are under way")
		appendAsync(ctx, 3, &wg, outcomes)
		Eventually(func() int { return jetstreamlog.GatheringAppends(l) }).Should(BeZero(), "three: the group leaves")
		close(readBack)
		wg.Wait()
		close(outcomes)
		seqs := map[string]uint64{}
		for o := range outcomes {
			Expect(o.err).NotTo(HaveOccurred())
			seqs[o.data] = o.receipt.Position.Seq
		}
		Expect(seqs[`{"n":2}`]).To(Equal(seqs[`{"n":1}`]))
		Expect(seqs[`{"n":3}`]).To(Equal(seqs[`{"n":1}`]), "in one write")
		Expect(seqs[`{"n":1}`]).To(Equal(seqs[`{"n":0}`] + 1))
	})

	It("wait at most half the last write's wait for more, and never more than a millisecond", func() {
		Expect(jetstreamlog.GatherFor(6 * time.Millisecond)).To(Equal(time.Millisecond))
		Expect(jetstreamlog.GatherFor(1200 * time.Microsecond)).To(Equal(600 * time.Microsecond))
		Expect(jetstreamlog.GatherFor(0)).To(BeZero(), "before any write")
	})

	It("fail together when the log closes before their group is published", func() {
		var wg sync.WaitGroup
		outcomes := make(chan outcome, 3)
		gatherBehindHeld(0, 2, &wg, outcomes)
		closed := make(chan error)
		go func() { closed <- l.Close() }()
		close(release)
		wg.Wait()
		close(outcomes)
		Eventually(closed).Should(Receive(BeNil()))
		for o := range outcomes {
			if o.data != `{"n":0}` {
				Expect(o.err).To(HaveOccurred(), "%s was not stored", o.data)
			}
		}
	})
})

var _ = Describe("the message body", func() {
	events := []eventlog.Event{
		{Type: "notification", UserIDs: []string{"u1", "a,b"}, Data: []byte(`{"a":1}`)},
		{Type: "custom", Data: []byte("{}")},
		{Type: "system"},
	}

	It("carries several events exactly, in order", func() {
		decoded, err := jetstreamlog.DecodeEvents(jetstreamlog.EncodeBatch(events))
		Expect(err).NotTo(HaveOccurred())
		Expect(decoded).To(Equal(events))
		one, err := jetstreamlog.DecodeEvents(jetstreamlog.EncodeEvent(events[0]))
		Expect(err).NotTo(HaveOccurred())
		Expect(one).To(Equal(events[:1]))
	})

	It("is refused when it is not one this version writes, naming why", func() {
		batch := jetstreamlog.EncodeBatch(events)
		for body, why := range map[string]string{
			"":                                 "empty",
			"\x03":                             "unknown envelope",
			string(batch[:len(batch)-3]):       "truncated",
			string(batch) + "x":                "bytes after the last event",
			"\x02\x01\x05custom":               "bad event count", // a batch of one
			"\x02\xff\xff\xff\xff\x0f\x00\x00": "bad event count",
		} {
			_, err := jetstreamlog.DecodeEvents([]byte(body))
			Expect(err).To(MatchError(ContainSubstring(why)), "body %q", body)
		}
	})
})
