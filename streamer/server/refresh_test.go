package server_test

import (
	"crypto/rand"
	"net/http"
	"strings"
	"time"

	. "github.com/onsi/ginkgo/v2"
	. "github.com/onsi/gomega"

	"github.com/herald-notify/herald/internal/testutil/streamertest"
	"github.com/herald-notify/herald/streamer/paths"
)

// refreshToken POSTs token (none when empty) to the refresh endpoint of
// stream id and returns the status and the JSON answer.
func (s *streamer) refreshToken(id, token string) (int, map[string]any) {
	GinkgoHelper()
	req, err := http.NewRequest(http.MethodPost, s.http.URL+strings.Replace(paths.StreamToken, "{streamId}", id, 1), nil)
	Expect(err).NotTo(HaveOccurred())
	if token != "" {
		req.Header.Set("Authorization", "Bearer "+token)
	}
	resp, err := s.client.Do(req)
	Expect(err).NotTo(HaveOccurred())
	Expect(resp.Header.Get("Content-Type")).To(Equal("application/json"))
	var answer map[string]any
	Expect(jsonDecode(resp, &answer)).To(Succeed())
	return resp.StatusCode, answer
}

// streamIDOf is the stream id of a connection event.
func streamIDOf(hello map[string]any) string {
	GinkgoHelper()
	Expect(hello).To(HaveKeyWithValue("type", "connection"))
	id, _ := hello["streamId"].(string)
	Expect(id).NotTo(BeEmpty())
	return id
}

var _ = Describe("an in-place token refresh", func() {
	for _, t := range []transport{overHTTP1, overTLSHTTP1, overHTTP2} {
		It("keeps the stream past its first token, delivering every event published meanwhile, until the new one expires, over "+string(t), func() {
			s := startStreamerOn(t, nil, nil)
			// JWT expiry has whole seconds: 4s leaves at least 3s to connect
			// and refresh.
			first := s.token("u1", false, 4*time.Second)
			firstExpiry := tokenExpiry(first)
			c := s.connectWith(first)
			_, hello := c.nextJSON()
			id := streamIDOf(hello)
			_, warning := c.nextJSON()
			Expect(warning).To(HaveKeyWithValue("expiresAt", timestamp(firstExpiry)), "expiring within the default minute: warned at once")

			second := s.token("u1", false, 8*time.Second)
			secondExpiry := tokenExpiry(second)
			status, answer := s.refreshToken(id, second)
			Expect(status).To(Equal(http.StatusOK), "%v", answer)
			Expect(answer).To(Equal(map[string]any{"streamId": id, "expiresAt": timestamp(secondExpiry)}))
			_, warning = c.nextJSON()
			Expect(warning).To(HaveKeyWithValue("type", "token_expiring"))
			Expect(warning).To(HaveKeyWithValue("expiresAt", timestamp(secondExpiry)), "the warning moved with the expiry")

			By("publishing until well past the first token's expiry")
			var published []string
			Eventually(func() time.Time {
				published = append(published, s.notify("u1")...)
				return time.Now()
			}, 10*time.Second, 200*time.Millisecond).Should(BeTemporally(">", firstExpiry.Add(time.Second)))
			var received []string
			for range published {
				ev, data := c.nextJSON()
				Expect(data).To(HaveKeyWithValue("type", "notification"))
				received = append(received, ev.ID)
			}
			Expect(received).To(Equal(published), "every event, in order, exactly once")

			c.expectEndEvent(published[len(published)-1], "token_expired")
			Expect(time.Now()).To(BeTemporally(">=", secondExpiry))
			Expect(s.metrics()).To(ContainSubstring(`herald_token_refreshes_total{result="ok"} 1`))
		})
	}

	It("refuses a token of another user, an expired or forged one, and an unknown stream, each leaving the stream as it was", func() {
		s := startStreamer(nil)
		c := s.connectAs("u1")
		_, hello := c.nextJSON()
		id := streamIDOf(hello)
		forger := make([]byte, 32)
		_, _ = rand.Read(forger)
		forged, err := streamertest.Token(forger, "u1", false, 2*time.Second)
		Expect(err).NotTo(HaveOccurred())

		// Each refused token expires within the warning's minute: had the
		// stream taken it, a warning would follow at once.
		for _, refused := range []struct {
			id, token string
			status    int
			code      string
		}{
			{id, s.token("u2", false, 2*time.Second), http.StatusForbidden, "forbidden"},
			{id, s.token("u1", false, -time.Minute), http.StatusUnauthorized, "unauthorized"},
			{id, forged, http.StatusUnauthorized, "unauthorized"},
			{id, "", http.StatusUnauthorized, "unauthorized"},
			{id + "0", s.token("u1", false, 2*time.Second), http.StatusNotFound, "not_found"},
			{"not-a-stream", s.token("u1", false, 2*time.Second), http.StatusNotFound, "not_found"},
		} {
			status, answer := s.refreshToken(refused.id, refused.token)
			Expect(status).To(Equal(refused.status), "%v", answer)
			Expect(errorCode(answer)).To(Equal(refused.code))
		}

		By("delivering the next event, with no warning before it")
		ids := s.notify("u1")
		ev, data := c.nextJSON()
		Expect(data).To(HaveKeyWithValue("type", "notification"))
		Expect(ev.ID).To(Equal(ids[0]))
		metrics := s.metrics()
		Expect(metrics).To(ContainSubstring(`herald_token_refreshes_total{result="forbidden"} 1`))
		Expect(metrics).To(ContainSubstring(`herald_token_refreshes_total{result="unauthorized"} 3`))
		Expect(metrics).To(ContainSubstring(`herald_token_refreshes_total{result="unknown_stream"} 2`))
		Expect(metrics).NotTo(ContainSubstring(`herald_token_refreshes_total{result="ok"}`))

		By("answering 404 once the stream ended")
		Expect(c.resp.Body.Close()).To(Succeed())
		Eventually(s.srv.Streams).Should(BeZero())
		status, answer := s.refreshToken(id, s.token("u1", false, time.Hour))
		Expect(status).To(Equal(http.StatusNotFound), "%v", answer)
	})

	It("hands out stream ids that tell nothing of other streams, and answers a guessed one 404, never 403", func() {
		s := startStreamer(nil)
		var ids []string
		for _, user := range []string{"u1", "u2", "u3"} {
			c := s.connectAs(user)
			DeferCleanup(c.resp.Body.Close)
			_, hello := c.nextJSON()
			ids = append(ids, streamIDOf(hello))
		}
		replica, _, _ := strings.Cut(ids[0], ".")
		for _, id := range ids {
			Expect(id).To(MatchRegexp(`^[0-9a-z]+\.[0-9a-f]{32}$`))
			Expect(id).To(HavePrefix(replica+"."), "the replica holding the stream comes first, for forwarding")
		}
		Expect(ids[1]).NotTo(Equal(ids[0]))
		Expect(ids[2]).NotTo(Equal(ids[1]))
		Expect(ids[2]).NotTo(Equal(ids[0]))

		By("answering the holder of a real id: 403 for a token of another user")
		status, answer := s.refreshToken(ids[2], s.token("u1", false, time.Hour))
		Expect(status).To(Equal(http.StatusForbidden), "%v", answer)

		By("answering 404 to ids that were not handed out, whatever the token's user")
		flip := func(id string, i int) string {
			b := []byte(id)
			b[i] = "1032547698badcfe"[strings.IndexByte("0123456789abcdef", b[i])]
			return string(b)
		}
		guesses := []string{replica + ".0", replica + ".1", replica + ".2", replica + ".3",
			flip(ids[0], len(ids[0])-1), flip(ids[0], len(replica)+1), flip(ids[2], len(ids[2])-1)}
		for _, guess := range guesses {
			for _, user := range []string{"u1", "u2"} {
				status, answer := s.refreshToken(guess, s.token(user, false, time.Hour))
				Expect(status).To(Equal(http.StatusNotFound), "%s with a token of %s: %v", guess, user, answer)
			}
		}

		By("refreshing with the real id")
		status, answer = s.refreshToken(ids[0], s.token("u1", false, time.Hour))
		Expect(status).To(Equal(http.StatusOK), "%v", answer)
	})

	It("answers the preflight of an allowed origin, for POST", func() {
		s := startStreamer(func(spec *channelSpec) { spec.CORS.AllowedOrigins = []string{"https://app.example.com"} })
		req, err := http.NewRequest(http.MethodOptions, s.http.URL+strings.Replace(paths.StreamToken, "{streamId}", "abc.1", 1), nil)
		Expect(err).NotTo(HaveOccurred())
		req.Header.Set("Origin", "https://app.example.com")
		req.Header.Set("Access-Control-Request-Method", http.MethodPost)
		resp, err := s.client.Do(req)
		Expect(err).NotTo(HaveOccurred())
		Expect(resp.Body.Close()).To(Succeed())
		Expect(resp.StatusCode).To(Equal(http.StatusNoContent))
		Expect(resp.Header.Get("Access-Control-Allow-Origin")).To(Equal("https://app.example.com"))
		Expect(resp.Header.Get("Access-Control-Allow-Methods")).To(Equal(http.MethodPost))
	})
})
