package nats_test

import (
	"context"
	"net/http"
	"time"

	"github.com/nats-io/nats.go/jetstream"
	. "github.com/onsi/ginkgo/v2"
	. "github.com/onsi/gomega"

	"github.com/herald-notify/herald/streamer/log/jetstreamlog"
)

var _ = Describe("three streamers of one channel over NATS", Ordered, func() {
	var a, b, c *replica

	BeforeAll(func() {
		a, b, c = startReplica(), startReplica(), startReplica()
		for _, r := range []*replica{a, b, c} {
			Eventually(r.readyz).Should(Equal(http.StatusOK))
		}
	})

	It("gives a notification published through one replica the same id on every other", func() {
		onB, onC := b.connect("u1", ""), c.connect("u1", "")
		onB.connected()
		onC.connected()
		id := a.mustNotify("u1", "n1")

		idB, nB := onB.notification()
		idC, nC := onC.notification()
		Expect([]string{nB, nC}).To(Equal([]string{"n1", "n1"}))
		Expect(idB).To(Equal(id), "the id the 202 named is the SSE id on replica B")
		Expect(idC).To(Equal(id), "and on replica C")
	})

	It("resumes a client on another replica with exactly what it missed", func() {
		onA := a.connect("u2", "")
		onA.connected()
		seen := b.mustNotify("u2", "before")
		Expect(firstOf(onA.notification())).To(Equal(seen))
		onA.close()

		missed := []string{b.mustNotify("u2", "m1"), a.mustNotify("u2", "m2"), c.mustNotify("u2", "m3")}
		b.mustNotify("u3", "someone else's")

		onC := c.connect("u2", seen)
		Expect(onC.connected()).To(HaveValue(BeTrue()))
		for i, want := range missed {
			id, n := onC.notification()
			Expect(id).To(Equal(want))
			Expect(n).To(Equal([]string{"m1", "m2", "m3"}[i]))
		}
		after := a.mustNotify("u2", "after")
		Expect(firstOf(onC.notification())).To(Equal(after), "nothing more was replayed than what was missed")
	})

	It("holds maxPerUser across the replicas: a user's stream beyond it, on any replica, replaces their oldest on another", func() {
		const maxPerUser = 10 // the manifest's
		replicas := []*replica{a, b, c}
		oldest := a.connect("u-limit", "")
		oldest.connected()
		for i := 1; i < maxPerUser; i++ {
			replicas[i%3].connect("u-limit", "").connected()
		}
		Consistently(oldest.ended, 200*time.Millisecond).ShouldNot(Receive(), "within the limit across the channel")
		b.connect("u-limit", "").connected()
		Eventually(oldest.ended).WithTimeout(5*time.Second).Should(Receive(), "the oldest stream, on another replica, was not replaced")
		_, end := oldest.next()
		Expect(end.Type).To(Equal("end"), "the replaced stream was told why it ended")
		Expect(end.Reason).To(Equal("replaced"))
	})

	It("rides out an outage of every NATS node: 503 with Retry-After, unready, streams kept; then recovers without a restart", func() {
		onB := b.connect("u4", "")
		onB.connected()

		cluster.StopAll()
		DeferCleanup(func() { Expect(cluster.RestartAll()).To(Succeed()) }) // no-op once restarted below

		By("refusing to acknowledge what cannot be stored")
		Eventually(func(g Gomega) {
			res, err := a.notify("u4", "lost")
			g.Expect(err).NotTo(HaveOccurred())
			g.Expect(res.Status).To(Equal(http.StatusServiceUnavailable))
			g.Expect(res.RetryAfter).NotTo(BeEmpty())
		}).Should(Succeed())

		By("failing readiness past the grace, on every replica")
		for _, r := range []*replica{a, b, c} {
			Eventually(r.readyz).Should(Equal(http.StatusServiceUnavailable))
		}

		By("keeping the open stream alive with keep-alives")
		read := onB.bytes.Load()
		Eventually(onB.bytes.Load).Should(BeNumerically(">", read))
		Expect(onB.ended).NotTo(Receive())

		By("bringing NATS back")
		Expect(cluster.RestartAll()).To(Succeed())
		Expect(cluster.WaitReady()).To(Succeed())
		var id string
		Eventually(func(g Gomega) {
			res, err := a.notify("u4", "back")
			g.Expect(err).NotTo(HaveOccurred())
			g.Expect(res.Status).To(Equal(http.StatusAccepted))
			id = res.EventIDs[0]
		}).Should(Succeed())
		for _, r := range []*replica{a, b, c} {
			Eventually(r.readyz).Should(Equal(http.StatusOK))
		}
		// A publish answered 503 just as NATS came back may have been stored
		// all the same (its acknowledgement arrived, its read-back did not):
		// the retry then stores a second copy. Either way, nothing refused
		// during the outage itself arrives, and the accepted event does.
		for copies := 1; ; copies++ {
			got, n := onB.notification()
			Expect(n).To(Equal("back"), "the event refused during the outage was never stored")
			if got == id {
				break
			}
			Expect(copies).To(BeNumerically("<", 5), "copies of the retried publish")
		}
	})

	It("closes the streams of a stream deleted and recreated, and tells their resume it is not recovered", func() {
		onA := a.connect("u5", "")
		onA.connected()
		last := c.mustNotify("u5", "old life")
		Expect(firstOf(onA.notification())).To(Equal(last))

		By("deleting the channel's stream behind the streamers' back")
		js, err := jetstream.New(connectAsAdmin())
		Expect(err).NotTo(HaveOccurred())
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		Expect(js.DeleteStream(ctx, jetstreamlog.StreamName(namespace, channel))).To(Succeed())

		By("the streamers recreating it: publishing works again")
		Eventually(func(g Gomega) {
			res, err := b.notify("u6", "new life")
			g.Expect(err).NotTo(HaveOccurred())
			g.Expect(res.Status).To(Equal(http.StatusAccepted))
		}).Should(Succeed())

		By("the open stream closed, so that its client resumes")
		Eventually(onA.ended).Should(Receive())
		resumed := b.connect("u5", last)
		Expect(resumed.connected()).To(HaveValue(BeFalse()), "an id of the stream's former life is not mapped onto new events")
	})
})

// firstOf is the first of two results: an event's SSE id.
func firstOf(id, _ string) string { return id }
