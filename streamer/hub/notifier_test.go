package hub_test

import (
	"strings"
	"sync/atomic"

	. "github.com/onsi/ginkgo/v2"
	. "github.com/onsi/gomega"

	"github.com/herald-notify/herald/streamer/hub"
	eventlog "github.com/herald-notify/herald/streamer/log"
	"github.com/herald-notify/herald/streamer/log/logtest"
)

// countingNotifier counts the Notify calls it gets.
type countingNotifier struct{ calls atomic.Int32 }

func (n *countingNotifier) Notify() { n.calls.Add(1) }

var _ = Describe("a Conn with a Notifier", func() {
	It("is told at once of frames queued before it was set, then of frames queued after its writer took them, and of its close", func() {
		h, log := running(hub.Options{})
		c, _, err := h.Register("u1")
		Expect(err).NotTo(HaveOccurred())
		publish(log, `{"n":1}`, "u1")
		Eventually(c.QueueCap).Should(BeNumerically(">", 0), "the hub queued the first frame")

		n := &countingNotifier{}
		c.SetNotifier(n)
		Expect(n.calls.Load()).To(BeEquivalentTo(1), "told of the frame already queued")
		Expect(taken(c, 1)).To(HaveLen(1))
		publish(log, `{"n":2}`, "u1")
		Eventually(n.calls.Load).Should(BeEquivalentTo(2))
		Expect(taken(c, 1)).To(HaveLen(1))

		h.Unregister(c, hub.CloseClient)
		Expect(n.calls.Load()).To(BeEquivalentTo(3), "told of the close")
		_, done, reason := take(c)
		Expect(done).To(BeTrue())
		Expect(reason).To(Equal(hub.CloseClient))
	})

	It("is told once of frames queued until its writer takes them, which takes them all", func() {
		h, log := running(hub.Options{})
		n := &countingNotifier{}
		c := new(hub.Conn)
		_, err := h.RegisterConn(GinkgoT().Context(), c, "u1", n)
		Expect(err).NotTo(HaveOccurred())
		marker, _, err := h.Register("u2")
		Expect(err).NotTo(HaveOccurred())

		first := publish(log, `{"n":1}`, "u1")
		Eventually(n.calls.Load).Should(BeEquivalentTo(1))
		second := publish(log, `{"n":2}`, "u1")
		third := publish(log, `{"n":3}`)
		// The hub dispatches in order: once the marker stream has the
		// broadcast, u1's stream has all three queued.
		Expect(taken(marker, 1)).To(Equal([]eventlog.Position{third}))
		Expect(n.calls.Load()).To(BeEquivalentTo(1), "not told again while its first frame waits to be taken")
		Expect(taken(c, 3)).To(Equal([]eventlog.Position{first, second, third}))

		publish(log, `{"n":4}`, "u1")
		Eventually(n.calls.Load).Should(BeEquivalentTo(2), "told again once its writer took what it was told of")
	})

	It("releases a queue that a burst grew once its frames are taken", func() {
		h, log := running(hub.Options{})
		c, _, err := h.Register("u1")
		Expect(err).NotTo(HaveOccurred())
		for range 20 {
			publish(log, `{"burst":true}`, "u1")
		}
		Eventually(c.QueueCap).Should(BeNumerically(">", 1), "the burst grew the queue")
		Expect(taken(c, 20)).To(HaveLen(20))
		Expect(c.QueueCap()).To(BeNumerically("<=", 1), "at most one frame's room is kept")
	})
})

var _ = Describe("the hub's index of streams by id", func() {
	It("finds an open stream with the notifier it registered with, and no longer once the stream is closed", func() {
		h, _ := running(hub.Options{})
		n := &countingNotifier{}
		c := new(hub.Conn)
		_, err := h.RegisterConn(GinkgoT().Context(), c, "u1", n)
		Expect(err).NotTo(HaveOccurred())
		other, _, err := h.Register("u2")
		Expect(err).NotTo(HaveOccurred())

		Expect(h.Lookup(c.ID())).To(BeIdenticalTo(c))
		Expect(h.Lookup(c.ID()).Notifier()).To(BeIdenticalTo(n))
		Expect(h.Lookup(other.ID()).Notifier()).To(BeNil(), "registered without one")
		Expect(h.Lookup(other.ID()+1)).To(BeNil(), "an id never assigned")

		h.Unregister(c, hub.CloseClient)
		Expect(h.Lookup(c.ID())).To(BeNil())
		Expect(h.Lookup(other.ID())).To(BeIdenticalTo(other))
	})

	It("forgets a stream replaced by a newer one of its user, and each stream a drain closes", func() {
		h, _ := running(hub.Options{})
		first, _, err := h.Register("u1")
		Expect(err).NotTo(HaveOccurred())
		second, _, err := h.Register("u1")
		Expect(err).NotTo(HaveOccurred())
		Expect(h.Lookup(first.ID())).To(BeNil(), "replaced (one stream per user)")
		Expect(h.Lookup(second.ID())).To(BeIdenticalTo(second))
		Expect(h.Conns()).To(ConsistOf(second))

		h.Drain(GinkgoT().Context(), 0, 0, nil)
		Expect(h.Lookup(second.ID())).To(BeNil())
		Expect(h.Conns()).To(BeEmpty())
	})
})

var _ = Describe("a run of events to everyone", func() {
	// runningGated is a hub whose reads of the log wait for the gate, so
	// that what is appended meanwhile is read, and dispatched, at once.
	runningGated := func(opts hub.Options) (*hub.Hub, *eventlog.Embedded, *logtest.GatedReads) {
		log := eventlog.NewEmbedded(eventlog.Options{})
		gated := logtest.NewGatedReads(log)
		return runningOn(gated, opts), log, gated
	}

	It("is queued on each stream in order, between events for one user, with one wake-up until the writer takes them", func() {
		h, log, gated := runningGated(hub.Options{})
		u1, u2 := &countingNotifier{}, &countingNotifier{}
		c1, c2 := new(hub.Conn), new(hub.Conn)
		_, err := h.RegisterConn(GinkgoT().Context(), c1, "u1", u1)
		Expect(err).NotTo(HaveOccurred())
		_, err = h.RegisterConn(GinkgoT().Context(), c2, "u2", u2)
		Expect(err).NotTo(HaveOccurred())
		var all, forU1 []eventlog.Position
		for range 3 {
			all = append(all, publish(log, `{"to":"all"}`))
		}
		direct := publish(log, `{"to":"u1"}`, "u1")
		forU1 = append(append(forU1, all...), direct)
		for range 2 {
			p := publish(log, `{"to":"all"}`)
			all, forU1 = append(all, p), append(forU1, p)
		}
		close(gated.Gate)

		Expect(taken(c1, 6)).To(Equal(forU1))
		Expect(taken(c2, 5)).To(Equal(all))
		Expect(u1.calls.Load()).To(BeEquivalentTo(1), "told of the first run; the direct event and the second run joined it untaken")
		Expect(u2.calls.Load()).To(BeEquivalentTo(1), "told of the first run only")
	})

	It("fills a queue up to its bound, then closes the stream as a slow consumer", func() {
		h, log, gated := runningGated(hub.Options{SendQueueBytes: 300})
		n := &countingNotifier{}
		c := new(hub.Conn)
		_, err := h.RegisterConn(GinkgoT().Context(), c, "u1", n)
		Expect(err).NotTo(HaveOccurred())
		for range 5 {
			publish(log, `{"padding":"`+strings.Repeat("x", 80)+`"}`)
		}
		close(gated.Gate)

		Eventually(func() bool { return n.calls.Load() >= 2 }).Should(BeTrue())
		frames, done, reason := take(c)
		Expect(done).To(BeTrue())
		Expect(reason).To(Equal(hub.CloseSlowConsumer))
		Expect(frames).To(BeEmpty(), "a slow consumer's backlog is released")
		Expect(n.calls.Load()).To(BeEquivalentTo(2), "woken once for the frames that fit, once for the close")
	})
})
