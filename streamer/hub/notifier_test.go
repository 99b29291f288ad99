package hub_test

import (
	"sync/atomic"

	. "github.com/onsi/ginkgo/v2"
	. "github.com/onsi/gomega"

	"github.com/herald-notify/herald/streamer/hub"
)

// countingNotifier counts the Notify calls it gets.
type countingNotifier struct{ calls atomic.Int32 }

func (n *countingNotifier) Notify() { n.calls.Add(1) }

var _ = Describe("a Conn with a Notifier", func() {
	It("is told at once of frames queued before it was set, then of every frame and of its close", func() {
		h, log := running(hub.Options{})
		c, _, err := h.Register("u1")
		Expect(err).NotTo(HaveOccurred())
		publish(log, `{"n":1}`, "u1")
		Eventually(c.QueueCap).Should(BeNumerically(">", 0), "the hub queued the first frame")

		n := &countingNotifier{}
		c.SetNotifier(n)
		Expect(n.calls.Load()).To(BeEquivalentTo(1), "told of the frame already queued")
		publish(log, `{"n":2}`, "u1")
		Eventually(n.calls.Load).Should(BeEquivalentTo(2))
		Expect(taken(c, 2)).To(HaveLen(2))

		h.Unregister(c, hub.CloseClient)
		Expect(n.calls.Load()).To(BeEquivalentTo(3), "told of the close")
		_, done, reason, _ := c.Take(nil)
		Expect(done).To(BeTrue())
		Expect(reason).To(Equal(hub.CloseClient))
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
