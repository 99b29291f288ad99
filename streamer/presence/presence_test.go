package presence_test

import (
	"encoding/json"
	"io"
	"net/http"
	"time"

	. "github.com/onsi/ginkgo/v2"
	. "github.com/onsi/gomega"

	notifyv1alpha1 "github.com/herald-notify/herald/api/v1alpha1"
)

// replacementBound is the bound asserted on the time from a stream's opening
// on one replica to the end of the user's older stream on another: generous
// for a shared machine under -race; the measured times are reported.
const replacementBound = 2 * time.Second

// refused expects the contract's 429 for a stream beyond the user's limit.
func refused(resp *http.Response) {
	GinkgoHelper()
	defer func() { _ = resp.Body.Close() }()
	Expect(resp.StatusCode).To(Equal(http.StatusTooManyRequests))
	var body struct {
		Error struct {
			Code string `json:"code"`
		} `json:"error"`
	}
	raw, _ := io.ReadAll(resp.Body)
	Expect(json.Unmarshal(raw, &body)).To(Succeed(), string(raw))
	Expect(body.Error.Code).To(Equal("rate_limited"))
}

// status is the status of a stream request on r for user; a stream it opens
// is closed.
func status(r *replica, user string) int {
	resp := r.request(user)
	_ = resp.Body.Close()
	return resp.StatusCode
}

var _ = Describe("maxPerUser across the replicas of a channel over NATS", func() {
	It("refuses with Reject the stream beyond the limit on any replica, and admits again once one ends", func() {
		channel := newChannel()
		a := startReplica(channel, 2, notifyv1alpha1.UserLimitReject)
		b := startReplica(channel, 2, notifyv1alpha1.UserLimitReject)
		c := startReplica(channel, 2, notifyv1alpha1.UserLimitReject)

		first := a.connect("alice")
		b.connect("alice")
		refused(c.request("alice"))
		refused(a.request("alice"))
		c.connect("bob") // other users are not affected

		first.close()
		Eventually(func() int { return status(c, "alice") }).Should(Equal(http.StatusOK),
			"the stream closed on one replica must free its place for another")
	})

	It("closes with ReplaceOldest the user's oldest stream on another replica, within a bounded time", func() {
		channel := newChannel()
		a := startReplica(channel, 1, notifyv1alpha1.UserLimitReplaceOldest)
		b := startReplica(channel, 1, notifyv1alpha1.UserLimitReplaceOldest)

		var worst time.Duration
		for range 5 {
			old := a.connect("carol")
			opened := time.Now()
			newer := b.connect("carol")
			var ended time.Time
			Eventually(old.ended).WithTimeout(replacementBound).Should(Receive(&ended), "the older stream did not end")
			delay := ended.Sub(opened)
			worst = max(worst, delay)
			AddReportEntry("replaced across replicas after", delay.String())
			Consistently(newer.ended, 100*time.Millisecond).ShouldNot(Receive(), "the newer stream must stay open")
			Expect(a.srv.Streams()).To(Equal(0))
			newer.close()
			Eventually(b.srv.Streams).Should(Equal(0))
		}
		GinkgoWriter.Printf("worst time from the newer stream's 200 to the older one's end: %s\n", worst)
		Expect(worst).To(BeNumerically("<", replacementBound))
	})

	It("stops counting the streams of a replica that died after its TTL, and of one that stopped at once", func() {
		channel := newChannel()
		a := startReplica(channel, 1, notifyv1alpha1.UserLimitReject)
		b := startReplica(channel, 1, notifyv1alpha1.UserLimitReject)
		dying := startReplica(channel, 1, notifyv1alpha1.UserLimitReject)
		leaving := startReplica(channel, 1, notifyv1alpha1.UserLimitReject)

		dying.connect("dave")
		leaving.connect("erin")
		refused(a.request("dave"))
		refused(a.request("erin"))

		// A replica that stops cleanly deletes its heartbeat: its users are
		// free as soon as the others' watchers see it, well before its last
		// heartbeat (at most one heartbeat ago) would reach the TTL.
		left := time.Now()
		leaving.presence.Close()
		Eventually(func() int { return status(b, "erin") }).WithTimeout(ttl - heartbeat).Should(Equal(http.StatusOK))
		AddReportEntry("a stopped replica's user free after", time.Since(left).String())

		// One that dies (its connection gone, no goodbye) keeps its users
		// out for at most the TTL after its last heartbeat.
		died := time.Now()
		dying.log.Conn().Close()
		Eventually(func() int { return status(a, "dave") }).WithTimeout(3 * ttl).Should(Equal(http.StatusOK))
		lockout := time.Since(died)
		AddReportEntry("a dead replica's user locked out for", lockout.String())
		Expect(lockout).To(BeNumerically("<", ttl+heartbeat+time.Second))
	})

	It("admits by the pod's own limit when NATS cannot be reached (fail open), counting it", func() {
		channel := newChannel()
		cut := startReplica(channel, 1, notifyv1alpha1.UserLimitReject)
		cut.log.Conn().Close()

		cut.connect("frank")
		refused(cut.request("frank")) // the pod's limit still holds
		Expect(cut.admitFailures()).To(BeNumerically(">=", 2))
	})
})
