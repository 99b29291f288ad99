package jetstreamlog_test

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
	. "github.com/onsi/ginkgo/v2"
	. "github.com/onsi/gomega"

	eventlog "github.com/herald-notify/herald/streamer/log"
	"github.com/herald-notify/herald/streamer/log/jetstreamlog"
	"github.com/herald-notify/herald/streamer/log/logtest"
)

var _ = Describe("the JetStream log", func() {
	Describe("the log contract, on a stream of three replicas", func() {
		logtest.DescribeContract(logtest.Subject{
			New: func(maxEvents int) eventlog.Log {
				return open(testOptions(newChannel(), maxEvents))
			},
			// A stream deleted and created again, as an operator would:
			// the log must notice and move to the new epoch.
			Reset: func(l eventlog.Log) eventlog.Log {
				ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
				defer cancel()
				name := l.(*jetstreamlog.Log).StreamName()
				s, err := admin.Stream(ctx, name)
				Expect(err).NotTo(HaveOccurred())
				cfg := s.CachedInfo().Config
				Expect(admin.DeleteStream(ctx, name)).To(Succeed())
				_, err = admin.CreateStream(ctx, cfg)
				Expect(err).NotTo(HaveOccurred())
				return l
			},
		})
	})

	var ctx context.Context
	BeforeEach(func() {
		var cancel context.CancelFunc
		ctx, cancel = context.WithTimeout(context.Background(), time.Minute)
		DeferCleanup(cancel)
	})
	appendTo := func(l eventlog.Log, n int) []eventlog.Position {
		GinkgoHelper()
		positions := make([]eventlog.Position, n)
		for i := range n {
			r, err := l.Append(ctx, eventlog.Event{Type: "custom", Data: fmt.Appendf(nil, `{"n":%d}`, i)}, "")
			Expect(err).NotTo(HaveOccurred())
			positions[i] = r.Position
		}
		return positions
	}
	readAll := func(l eventlog.Log, after eventlog.Position) []eventlog.Event {
		GinkgoHelper()
		events, recovered, err := l.ReadAfter(ctx, after, 1000)
		Expect(err).NotTo(HaveOccurred())
		Expect(recovered).To(BeTrue())
		return events
	}

	It("carries type, users and data exactly, and stamps the time JetStream stored the event", func() {
		channel := newChannel()
		writer := open(testOptions(channel, 100))
		start := writer.Last()
		tricky := eventlog.Event{
			Type:    " custom\n",
			UserIDs: []string{"a,b", " spaced ", "line\nbreak", "ünïcødé", "", `"quoted"`},
			Data:    []byte(`{"message":"hello, world","n":[1,2]}`),
		}
		r, err := writer.Append(ctx, tricky, "")
		Expect(err).NotTo(HaveOccurred())
		_, err = writer.Append(ctx, eventlog.Event{Type: "system"}, "")
		Expect(err).NotTo(HaveOccurred())

		// A log opened afterwards has them from the stream, not from memory.
		reader := open(testOptions(channel, 100))
		events := readAll(reader, start)
		Expect(events).To(HaveLen(2))
		Expect(events[0].Position).To(Equal(r.Position))
		Expect(events[0].Type).To(Equal(tricky.Type))
		Expect(events[0].UserIDs).To(Equal(tricky.UserIDs))
		Expect(events[0].Data).To(Equal(tricky.Data))
		Expect(events[0].Time).To(Equal(r.Time))
		Expect(events[0].Time).To(BeTemporally("~", time.Now(), 5*time.Second))
		Expect(events[1].UserIDs).To(BeEmpty())
		Expect(events[1].Data).To(BeEmpty())
	})

	It("skips messages on its subject that are not Herald events, and goes on", func() {
		channel := newChannel()
		l := open(testOptions(channel, 100))
		start := l.Last()
		_, err := admin.Publish(ctx, jetstreamlog.Subject("test", channel), []byte(`{"not":"an envelope"}`))
		Expect(err).NotTo(HaveOccurred())
		after := appendTo(l, 1)
		Expect(after[0].Seq).To(Equal(start.Seq + 2))
		Expect(readAll(l, start)).To(HaveExactElements(HaveField("Position", after[0])))
	})

	It("names each channel's stream and subject apart, in characters JetStream allows", func() {
		Expect(jetstreamlog.StreamName("default", "notifications")).To(Equal("HERALD_default_notifications"))
		Expect(jetstreamlog.Subject("default", "notifications")).To(Equal("herald.default.notifications.events"))
		Expect(jetstreamlog.StreamName("a.b", "c")).To(Equal("HERALD_a~2eb_c"))
		Expect(jetstreamlog.StreamName("a", "b_c")).NotTo(Equal(jetstreamlog.StreamName("a_b", "c")))
		Expect(jetstreamlog.StreamName("a.", "2ex")).NotTo(Equal(jetstreamlog.StreamName("a", "2e.x")))
		for _, name := range []string{jetstreamlog.StreamName("ns *>", "ch/\\ \t."), jetstreamlog.StreamName("Ns", "Ch")} {
			Expect(name).To(MatchRegexp(`^HERALD_[a-z0-9~-]+_[a-z0-9~-]+$`))
		}
		Expect(jetstreamlog.Subject("a.b", "c*")).To(Equal("herald.a~2eb.c~2a.events"))
	})

	It("names each channel's key-value buckets apart, in characters bucket names allow", func() {
		Expect(jetstreamlog.BucketName("TICKETS", "default", "notifications")).To(Equal("HERALD_TICKETS_default_notifications"))
		Expect(jetstreamlog.BucketName("TICKETS", "a.b", "c")).To(Equal("HERALD_TICKETS_aX2eb_c"))
		Expect(jetstreamlog.BucketName("TICKETS", "a", "b_c")).NotTo(Equal(jetstreamlog.BucketName("TICKETS", "a_b", "c")))
		Expect(jetstreamlog.BucketName("TICKETS", "aX", "c")).NotTo(Equal(jetstreamlog.BucketName("TICKETS", "a.", "c")))
		for _, name := range []string{jetstreamlog.BucketName("TICKETS", "ns *>~", "ch/\\ \t."), jetstreamlog.BucketName("TICKETS", "Ns", "Ch")} {
			Expect(name).To(MatchRegexp(`^HERALD_TICKETS_[a-zX0-9-]+_[a-zX0-9-]+$`))
		}
	})

	Describe("two logs on one stream, as two replicas of a channel", func() {
		var first, second *jetstreamlog.Log
		BeforeEach(func() {
			channel := newChannel()
			first = open(testOptions(channel, 100))
			second = open(testOptions(channel, 100))
		})

		It("see the same positions and each other's events, woken by them", func() {
			Expect(second.Last()).To(Equal(first.Last()))
			start := first.Last()
			changed := second.Changed()
			mine := appendTo(first, 2)
			Eventually(changed).Should(BeClosed())
			theirs := appendTo(second, 2)
			Eventually(first.Last).Should(Equal(theirs[1]))
			Eventually(second.Last).Should(Equal(theirs[1]))

			want := append(mine, theirs...)
			Expect(positionsOf(readAll(first, start))).To(Equal(want))
			Expect(positionsOf(readAll(second, start))).To(Equal(want))
		})

		It("store an event announced by both under one key once", func() {
			start := first.Last()
			event := eventlog.Event{Type: "system", Data: []byte(`{"eventType":"maintenance"}`)}
			a, err := first.Append(ctx, event, "sev-uid/1")
			Expect(err).NotTo(HaveOccurred())
			b, err := second.Append(ctx, event, "sev-uid/1")
			Expect(err).NotTo(HaveOccurred())
			Expect(a.Duplicate).To(BeFalse())
			Expect(b.Duplicate).To(BeTrue())
			Expect(b.Position).To(Equal(a.Position))
			Expect(b.Time).To(Equal(a.Time))
			for _, l := range []*jetstreamlog.Log{first, second} {
				Expect(metricOf(l, "herald_log_write_seconds").GetHistogram().GetSampleCount()).To(Equal(uint64(1)),
					"a keyed write, acknowledged (the repeat as a duplicate)")
			}

			later := appendTo(second, 1)
			Eventually(first.Last).Should(Equal(later[0]))
			Expect(positionsOf(readAll(first, start))).To(Equal([]eventlog.Position{a.Position, later[0]}))
		})
	})

	It("reads from the stream what its window no longer holds", func() {
		channel := newChannel()
		small := open(testOptions(channel, 10))
		start := small.Last()
		// A replica started later with a larger history (a rolling update)
		// makes the stream retain more than the first one's window.
		large := open(testOptions(channel, 50))
		appended := appendTo(large, 30)
		Eventually(small.Last).Should(Equal(appended[29]))

		events, recovered, err := small.ReadAfter(ctx, appended[4], 100)
		Expect(err).NotTo(HaveOccurred())
		Expect(recovered).To(BeTrue())
		Expect(positionsOf(events)).To(Equal(appended[5:]))
		Expect(string(events[0].Data)).To(Equal(`{"n":5}`))

		events, recovered, err = small.ReadAfter(ctx, appended[4], 3)
		Expect(err).NotTo(HaveOccurred())
		Expect(recovered).To(BeTrue())
		Expect(positionsOf(events)).To(Equal(appended[5:8]))

		Expect(readAll(small, start)).To(HaveLen(30), "the stream still has all")
	})

	It("forgets what the stream was purged of, in the same epoch", func() {
		channel := newChannel()
		l := open(testOptions(channel, 100))
		before := appendTo(l, 3)
		s, err := admin.Stream(ctx, l.StreamName())
		Expect(err).NotTo(HaveOccurred())
		Expect(s.Purge(ctx)).To(Succeed())
		Eventually(func() bool {
			_, recovered, err := l.ReadAfter(ctx, before[0], 10)
			return err == nil && recovered
		}).Should(BeFalse())
		after := appendTo(l, 1)
		Expect(after[0].Epoch).To(Equal(before[0].Epoch))
		Expect(after[0].Seq).To(BeNumerically(">", before[2].Seq))
	})

	It("creates its stream again when it is deleted, in a new epoch", func() {
		l := open(testOptions(newChannel(), 100))
		old := appendTo(l, 1)[0]
		Expect(admin.DeleteStream(ctx, l.StreamName())).To(Succeed())
		Eventually(l.Last).ShouldNot(HaveField("Epoch", old.Epoch))
		Expect(l.Last().Epoch).To(BeNumerically(">", old.Epoch))
		Eventually(func() float64 {
			return metricOf(l, "herald_log_consumers_created_total").GetCounter().GetValue()
		}).Should(BeNumerically(">=", 2), "a consumer on the new stream, after the first")
		Eventually(func() error {
			_, err := l.Append(ctx, eventlog.Event{Type: "custom"}, "")
			return err
		}).Should(Succeed())
	})

	Describe("a stream that exists", func() {
		var channel string
		BeforeEach(func() { channel = newChannel() })
		create := func(cfg jetstream.StreamConfig) {
			GinkgoHelper()
			cfg.Name = jetstreamlog.StreamName("test", channel)
			if cfg.Subjects == nil {
				cfg.Subjects = []string{jetstreamlog.Subject("test", channel)}
			}
			_, err := admin.CreateStream(ctx, cfg)
			Expect(err).NotTo(HaveOccurred())
			DeferCleanup(func() { _ = admin.DeleteStream(context.Background(), cfg.Name) })
		}

		DescribeTable("with settings Herald cannot work with is reported, and left as it is",
			func(cfg jetstream.StreamConfig, field string) {
				create(cfg)
				name := jetstreamlog.StreamName("test", channel)
				s, err := admin.Stream(ctx, name)
				Expect(err).NotTo(HaveOccurred())
				before := s.CachedInfo().Config
				ctx, cancel := context.WithTimeout(ctx, 20*time.Second)
				defer cancel()
				_, err = jetstreamlog.Open(ctx, testOptions(channel, 100))
				var incompatible *jetstreamlog.IncompatibleStreamError
				Expect(errors.As(err, &incompatible)).To(BeTrue(), "got %v", err)
				Expect(incompatible.Stream).To(Equal(name))
				Expect(incompatible.Field).To(Equal(field))
				Expect(err.Error()).To(ContainSubstring(name))

				_, err = s.Info(ctx)
				Expect(err).NotTo(HaveOccurred())
				Expect(s.CachedInfo().Config).To(Equal(before), "left as it was")
			},
			Entry("other subjects", jetstream.StreamConfig{Subjects: []string{"orders.>"}, Storage: jetstream.FileStorage}, "subjects"),
			Entry("memory storage", jetstream.StreamConfig{Storage: jetstream.MemoryStorage}, "storage"),
			Entry("work-queue retention", jetstream.StreamConfig{Storage: jetstream.FileStorage, Retention: jetstream.WorkQueuePolicy}, "retention"),
		)

		It("with other limits is updated to the log's, keeping the settings Herald does not own", func() {
			create(jetstream.StreamConfig{Storage: jetstream.FileStorage, MaxMsgs: 5, MaxBytes: 1 << 20, Replicas: 1})
			l := open(testOptions(channel, 100))
			s, err := admin.Stream(ctx, l.StreamName())
			Expect(err).NotTo(HaveOccurred())
			cfg := s.CachedInfo().Config
			Expect(cfg.MaxMsgs).To(Equal(int64(100)))
			Expect(cfg.MaxAge).To(Equal(time.Hour))
			Expect(cfg.Replicas).To(Equal(3))
			Expect(cfg.Duplicates).To(Equal(time.Hour), "the duplicate window defaults to the retention")
			Expect(cfg.MaxBytes).To(Equal(int64(1 << 20)))
		})
	})

	Describe("when the broker fails", Ordered, func() {
		It("keeps serving reads from memory through an outage of the whole cluster, and delivers what was stored meanwhile", func() {
			channel := newChannel()
			l := open(testOptions(channel, 100))
			start := l.Last()
			before := appendTo(l, 3)
			Expect(l.Healthy()).To(BeTrue())

			cluster.StopAll()
			DeferCleanup(func() { Expect(cluster.RestartAll()).To(Succeed()) }) // should the spec fail midway
			Eventually(l.Healthy).Should(BeFalse())
			// The consumer may stop (server shutdown) before the connection
			// notices it is gone: the log says so once it does.
			Eventually(l.LastError).Should(MatchError(jetstreamlog.ErrNotConnected))
			appendCtx, cancel := context.WithTimeout(ctx, 2*time.Second)
			defer cancel()
			_, err := l.Append(appendCtx, eventlog.Event{Type: "custom"}, "")
			Expect(err).To(HaveOccurred())
			Expect(positionsOf(readAll(l, start))).To(Equal(before))

			Expect(cluster.RestartAll()).To(Succeed())
			// Another replica stores events while this one is reconnecting.
			other, err := nats.Connect(cluster.URL(), fastReconnect()...)
			Expect(err).NotTo(HaveOccurred())
			DeferCleanup(other.Close)
			otherJS, err := jetstream.New(other)
			Expect(err).NotTo(HaveOccurred())
			var stored []uint64
			for range 3 {
				var ack *jetstream.PubAck
				Eventually(func() (err error) {
					ack, err = otherJS.Publish(ctx, jetstreamlog.Subject("test", channel), []byte{1, 6, 'c', 'u', 's', 't', 'o', 'm', 0, '{', '}'})
					return err
				}).Should(Succeed())
				stored = append(stored, ack.Sequence)
			}

			Eventually(func() []uint64 {
				events, _, _ := l.ReadAfter(ctx, before[2], 100)
				return seqsOf(events)
			}).Should(Equal(stored))
			Eventually(l.Healthy).Should(BeTrue())
			Expect(l.LastError()).NotTo(HaveOccurred())
			after := appendTo(l, 1)
			Expect(after[0].Epoch).To(Equal(before[0].Epoch), "the same stream")
		})

		// How soon is not asserted: deleting the lost consumer no longer
		// delays the next one (test/chaos found that), but another request
		// to the lost node can still wait out the request timeout now and
		// then on this loaded machine (see the closing note of 2026-12-02).
		It("goes on delivering after the node holding its consumer stops", func() {
			channel := newChannel()
			opts := testOptions(channel, 100)
			opts.RequestTimeout = 5 * time.Second // the default: what waiting on a lost consumer costs
			l, node := openConsumingElsewhere(opts)
			start := l.Last()

			By("stopping the node that holds the log's consumer, not the one it is connected to")
			cluster.Stop(node)
			DeferCleanup(func() { Expect(cluster.RestartAll()).To(Succeed()) })

			By("storing an event through another client")
			var ack *jetstream.PubAck
			Eventually(func() (err error) {
				// Bounded: a request lost while the client reconnects is
				// retried, not waited on until the spec's deadline.
				publishCtx, cancel := context.WithTimeout(ctx, 2*time.Second)
				defer cancel()
				ack, err = admin.Publish(publishCtx, jetstreamlog.Subject("test", channel), []byte{1, 6, 'c', 'u', 's', 't', 'o', 'm', 0, '{', '}'})
				return err
			}).Should(Succeed())
			stored := time.Now()
			Eventually(func() []uint64 {
				events, _, _ := l.ReadAfter(ctx, start, 100)
				return seqsOf(events)
			}).Should(Equal([]uint64{ack.Sequence}))
			GinkgoWriter.Printf("delivered %s after it was stored\n", time.Since(stored))
		})

		It("loses no acknowledged event when a node of three stops", func() {
			channel := newChannel()
			l := open(testOptions(channel, 1000))
			start := l.Last()
			acked := appendTo(l, 20)

			s, err := admin.Stream(ctx, l.StreamName())
			Expect(err).NotTo(HaveOccurred())
			leader := s.CachedInfo().Cluster.Leader
			stopped := -1
			for i := range cluster.Size() {
				if srv, err := cluster.Server(i); err == nil && srv.Name() == leader {
					stopped = i
				}
			}
			Expect(stopped).NotTo(Equal(-1), "the stream's leader %q is a node", leader)
			cluster.Stop(stopped)
			DeferCleanup(func() { Expect(cluster.RestartAll()).To(Succeed()) })

			// Appends go on once the two others elect a leader; only the
			// acknowledged ones count.
			for i := 0; len(acked) < 40; i++ {
				appendCtx, cancel := context.WithTimeout(ctx, 2*time.Second)
				r, err := l.Append(appendCtx, eventlog.Event{Type: "custom", Data: fmt.Appendf(nil, `{"late":%d}`, i)}, "")
				cancel()
				if err == nil {
					acked = append(acked, r.Position)
				}
			}
			Expect(cluster.RestartAll()).To(Succeed())

			// A log opened now reads the stream itself, not this one's memory;
			// Open returns once its window holds what the stream's leader
			// has, even when its consumer sits on a replica still catching up.
			fresh := open(testOptions(channel, 1000))
			events, recovered, err := fresh.ReadAfter(ctx, start, 1000)
			Expect(err).NotTo(HaveOccurred())
			Expect(recovered).To(BeTrue())
			Expect(positionsOf(events)).To(ContainElements(acked))
		})
	})
})

func positionsOf(events []eventlog.Event) []eventlog.Position {
	out := make([]eventlog.Position, len(events))
	for i, e := range events {
		out[i] = e.Position
	}
	return out
}

func seqsOf(events []eventlog.Event) []uint64 {
	out := make([]uint64, len(events))
	for i, e := range events {
		out[i] = e.Position.Seq
	}
	return out
}

// openConsumingElsewhere opens a log connected to node 0 only, whose
// consumer JetStream placed on another node, and returns it with that
// node. JetStream places a consumer on any of the stream's nodes: a few
// attempts find one.
func openConsumingElsewhere(opts jetstreamlog.Options) (*jetstreamlog.Log, int) {
	GinkgoHelper()
	for range 20 {
		nc, err := nats.Connect(cluster.URLs()[0], fastReconnect()...)
		Expect(err).NotTo(HaveOccurred())
		DeferCleanup(nc.Close)
		opts.Conn = nc
		l := open(opts)
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		s, err := admin.Stream(ctx, l.StreamName())
		Expect(err).NotTo(HaveOccurred())
		node := -1
		for info := range s.ListConsumers(ctx).Info() { // only l's: each log deletes its own on Close
			node = nodeNamed(info.Cluster.Leader)
		}
		// Not the meta leader either: then the next consumer's creation
		// waits for a new one, which is JetStream's time, not the log's.
		if node > 0 && !isMetaLeader(node) {
			return l, node
		}
		Expect(l.Close()).To(Succeed())
	}
	Fail("JetStream placed every consumer on the node the log is connected to, or on the meta leader")
	return nil, 0
}

// isMetaLeader reports whether node i leads the JetStream meta group.
func isMetaLeader(i int) bool {
	srv, err := cluster.Server(i)
	return err == nil && srv.JetStreamIsLeader()
}

// nodeNamed is the index of the running node called name, or -1.
func nodeNamed(name string) int {
	for i := range cluster.Size() {
		if srv, err := cluster.Server(i); err == nil && srv.Name() == name {
			return i
		}
	}
	return -1
}
