package nats_test

import (
	"encoding/json"
	"net/http"
	"strings"
	"time"

	. "github.com/onsi/ginkgo/v2"
	. "github.com/onsi/gomega"

	"github.com/herald-notify/herald/internal/testutil/streamertest"
	"github.com/herald-notify/herald/streamer/log/jetstreamlog"
	"github.com/herald-notify/herald/streamer/paths"
)

var _ = Describe("an in-place token refresh over NATS", func() {
	It("reaches the stream's replica from another one, and is answered there", func() {
		a, b := startReplica(), startReplica()
		for _, r := range []*replica{a, b} {
			Eventually(r.readyz).Should(Equal(http.StatusOK))
		}
		c := a.connect("u-refresh", "")
		ev, _ := c.next()
		var hello struct {
			StreamID string `json:"streamId"`
		}
		Expect(json.Unmarshal([]byte(ev.Data), &hello)).To(Succeed())
		Expect(hello.StreamID).NotTo(BeEmpty())

		By("refreshing through B with a token expiring within the warning's minute")
		short, err := streamertest.Token(fleet.Key, "u-refresh", false, 40*time.Second)
		Expect(err).NotTo(HaveOccurred())
		status, answer := b.refresh(hello.StreamID, short)
		Expect(status).To(Equal(http.StatusOK), "%v", answer)
		expiresAt := answer["expiresAt"]
		Expect(expiresAt).NotTo(BeEmpty())
		ev, msg := c.next()
		Expect(msg.Type).To(Equal("token_expiring"), "the stream on A took the token given to B")
		Expect(ev.Data).To(ContainSubstring(`"expiresAt":"` + expiresAt.(string) + `"`))

		By("answering what A answers: another user's token, a stream A does not hold")
		other, err := streamertest.Token(fleet.Key, "u-other", false, time.Hour)
		Expect(err).NotTo(HaveOccurred())
		status, answer = b.refresh(hello.StreamID, other)
		Expect(status).To(Equal(http.StatusForbidden), "%v", answer)
		replicaA, _, _ := strings.Cut(hello.StreamID, ".")
		status, answer = b.refresh(replicaA+".999999", short)
		Expect(status).To(Equal(http.StatusNotFound), "%v", answer)

		By("answering 404 for a replica that is not there")
		status, answer = b.refresh("nosuchreplica.1", short)
		Expect(status).To(Equal(http.StatusNotFound), "%v", answer)

		By("answering 401 for an invalid token, whichever replica the stream is on")
		for _, id := range []string{hello.StreamID, "nosuchreplica.1"} {
			status, answer = b.refresh(id, "not.a.token")
			Expect(status).To(Equal(http.StatusUnauthorized), "%v", answer)
		}
	})

	It("answers 503 with Retry-After when the stream's replica does not answer in time", func() {
		b := startReplica()
		Eventually(b.readyz).Should(Equal(http.StatusOK))
		By("listening as a replica that never answers")
		nc := connectAsAdmin()
		sub, err := nc.SubscribeSync(jetstreamlog.ReplicaSubject(namespace, channel, "stuck"))
		Expect(err).NotTo(HaveOccurred())
		DeferCleanup(sub.Unsubscribe)
		Expect(nc.Flush()).To(Succeed())

		Eventually(func() int {
			status, _ := b.refresh("stuck.1", token("u-stuck", false))
			return status
		}).Should(Equal(http.StatusServiceUnavailable), "once B's server knows of the subscription")
		Expect(b.refreshRetryAfter("stuck.1", token("u-stuck", false))).To(Equal("1"))
	})
})

// refreshRequest POSTs token to r's refresh endpoint of stream id.
func (r *replica) refreshRequest(id, token string) *http.Response {
	GinkgoHelper()
	req, err := http.NewRequest(http.MethodPost, r.API+strings.Replace(paths.StreamToken, "{streamId}", id, 1), nil)
	Expect(err).NotTo(HaveOccurred())
	req.Header.Set("Authorization", "Bearer "+token)
	resp, err := http.DefaultClient.Do(req)
	Expect(err).NotTo(HaveOccurred())
	return resp
}

// refresh is refreshRequest's status and JSON answer.
func (r *replica) refresh(id, token string) (int, map[string]any) {
	GinkgoHelper()
	resp := r.refreshRequest(id, token)
	defer func() { _ = resp.Body.Close() }()
	var answer map[string]any
	Expect(json.NewDecoder(resp.Body).Decode(&answer)).To(Succeed())
	return resp.StatusCode, answer
}

// refreshRetryAfter is refreshRequest's Retry-After.
func (r *replica) refreshRetryAfter(id, token string) string {
	GinkgoHelper()
	resp := r.refreshRequest(id, token)
	Expect(resp.Body.Close()).To(Succeed())
	return resp.Header.Get("Retry-After")
}
