package nats_test

import (
	"encoding/json"
	"net/http"
	"net/url"

	. "github.com/onsi/ginkgo/v2"
	. "github.com/onsi/gomega"

	"github.com/herald-notify/herald/streamer/paths"
	"github.com/herald-notify/herald/streamer/sse"
)

var _ = Describe("a ticket over NATS", func() {
	It("is issued by one replica, opens a stream on another, and is spent for all of them", func() {
		a, b, c := startReplica(), startReplica(), startReplica()
		for _, r := range []*replica{a, b, c} {
			Eventually(r.readyz).Should(Equal(http.StatusOK))
		}
		ticket := a.ticket("u-ticket")

		status, body := b.streamWithTicket(ticket)
		Expect(status).To(Equal(http.StatusOK), "the ticket issued by A opens a stream on B")
		Expect(body).To(ContainSubstring(`"userId":"u-ticket"`))

		for _, r := range []*replica{a, b, c} {
			status, _ := r.streamWithTicket(ticket)
			Expect(status).To(Equal(http.StatusUnauthorized), "a spent ticket is spent on every replica")
		}
	})
})

// ticket trades user's token for a ticket on r.
func (r *replica) ticket(user string) string {
	GinkgoHelper()
	req, err := http.NewRequest(http.MethodPost, r.API+paths.Tickets, nil)
	Expect(err).NotTo(HaveOccurred())
	req.Header.Set("Authorization", "Bearer "+token(user, false))
	resp, err := http.DefaultClient.Do(req)
	Expect(err).NotTo(HaveOccurred())
	defer func() { _ = resp.Body.Close() }()
	Expect(resp.StatusCode).To(Equal(http.StatusCreated))
	var answer struct {
		Ticket string `json:"ticket"`
	}
	Expect(json.NewDecoder(resp.Body).Decode(&answer)).To(Succeed())
	Expect(answer.Ticket).NotTo(BeEmpty())
	return answer.Ticket
}

// streamWithTicket opens a stream on r with ticket and returns its status
// and, for a stream, its connection event.
func (r *replica) streamWithTicket(ticket string) (int, string) {
	GinkgoHelper()
	resp, err := http.Get(r.API + paths.Stream + "?ticket=" + url.QueryEscape(ticket))
	Expect(err).NotTo(HaveOccurred())
	defer func() { _ = resp.Body.Close() }()
	if resp.StatusCode != http.StatusOK {
		return resp.StatusCode, ""
	}
	hello, err := sse.NewReader(resp.Body).Next()
	Expect(err).NotTo(HaveOccurred())
	return resp.StatusCode, hello.Data
}
