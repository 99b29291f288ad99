package server_test

import (
	"errors"
	"net/http"
	"time"

	. "github.com/onsi/ginkgo/v2"
	. "github.com/onsi/gomega"

	notifyv1alpha1 "github.com/herald-notify/herald/api/v1alpha1"
	"github.com/herald-notify/herald/internal/testutil/streamertest"
	"github.com/herald-notify/herald/streamer/auth"
	"github.com/herald-notify/herald/streamer/server"
)

// setSpec applies the running spec changed by edit, with the streamer's key
// parsed for the new spec's algorithms, as the channel watch does.
func (s *streamer) setSpec(edit func(spec *channelSpec)) error {
	GinkgoHelper()
	spec := s.srv.Spec()
	edit(&spec)
	keys, err := auth.ParseKeys(spec.Auth.Algorithms, map[string][]byte{streamertest.KeyID: s.secret})
	Expect(err).NotTo(HaveOccurred())
	return s.srv.SetSpec(spec, keys)
}

// status opens a stream for user with a bearer token and returns the status,
// closing whatever was opened.
func (s *streamer) status(token string) int {
	GinkgoHelper()
	resp := s.request(func(r *http.Request) { r.Header.Set("Authorization", "Bearer "+token) })
	Expect(resp.Body.Close()).To(Succeed())
	return resp.StatusCode
}

var _ = Describe("SetSpec", func() {
	It("keeps open streams open and delivering across a change", func() {
		s := startStreamer(nil)
		c := s.connectAs("u1")
		c.next()

		Expect(s.setSpec(func(spec *channelSpec) {
			spec.CORS.AllowedOrigins = []string{"https://app.example.com"}
			spec.Connections.MaxPerPod = 5
			spec.Drain.GracePeriod.Duration = time.Minute
		})).To(Succeed())
		Expect(s.srv.Spec().Connections.MaxPerPod).To(BeEquivalentTo(5))
		Expect(s.srv.Spec().Drain.GracePeriod.Duration).To(Equal(time.Minute))

		id := s.custom("after_change", "u1")
		ev, _ := c.nextJSON()
		Expect(ev.ID).To(Equal(id))
		Expect(s.srv.Streams()).To(Equal(1))
	})

	It("applies a lowered maxPerUser at the user's next connect, under the new policy", func() {
		s := startStreamer(func(spec *channelSpec) { spec.Connections.MaxPerUser = 3 })
		first, second := s.connectAs("u1"), s.connectAs("u1")
		first.next()
		second.next()

		Expect(s.setSpec(func(spec *channelSpec) { spec.Connections.MaxPerUser = 1 })).To(Succeed())
		id := s.custom("still_here", "u1")
		for _, c := range []*client{first, second} {
			ev, _ := c.nextJSON()
			Expect(ev.ID).To(Equal(id), "lowering the limit closes no open stream")
		}

		By("replacing both older streams to admit the new one (ReplaceOldest)")
		third := s.connectAs("u1")
		third.next()
		first.expectEnd()
		second.expectEnd()
		Eventually(s.srv.Streams).Should(Equal(1))

		By("refusing the next one once the policy is Reject")
		Expect(s.setSpec(func(spec *channelSpec) {
			spec.Connections.UserLimitPolicy = notifyv1alpha1.UserLimitReject
		})).To(Succeed())
		Expect(s.status(s.token("u1", false, time.Hour))).To(Equal(http.StatusTooManyRequests))
		Expect(s.status(s.token("u2", false, time.Hour))).To(Equal(http.StatusOK))
	})

	It("answers a newly allowed CORS origin", func() {
		s := startStreamer(nil)
		allowedOrigin := func() string {
			req, err := http.NewRequest(http.MethodOptions, s.http.URL+server.TicketsPath, nil)
			Expect(err).NotTo(HaveOccurred())
			req.Header.Set("Origin", "https://new.example.com")
			req.Header.Set("Access-Control-Request-Method", http.MethodPost)
			resp, err := http.DefaultClient.Do(req)
			Expect(err).NotTo(HaveOccurred())
			Expect(resp.Body.Close()).To(Succeed())
			return resp.Header.Get("Access-Control-Allow-Origin")
		}
		Expect(allowedOrigin()).To(BeEmpty())
		Expect(s.setSpec(func(spec *channelSpec) {
			spec.CORS.AllowedOrigins = []string{"https://new.example.com"}
		})).To(Succeed())
		Expect(allowedOrigin()).To(Equal("https://new.example.com"))
	})

	It("verifies new streams and publish requests with a changed issuer, leaving open streams alone", func() {
		s := startStreamer(nil)
		open := s.connectAs("u1")
		open.next()
		withIssuer := func(user, issuer string, publish bool) string {
			token, err := auth.Sign(auth.TokenClaims{
				Subject: user, Issuer: issuer, ExpiresAt: time.Now().Add(time.Hour), Publish: publish,
				PublishGrant: notifyv1alpha1.PublishGrantSpec{
					Claim: notifyv1alpha1.DefaultPublishGrantClaim, Value: notifyv1alpha1.DefaultPublishGrantValue,
				},
			}, notifyv1alpha1.HS256, streamertest.KeyID, s.secret)
			Expect(err).NotTo(HaveOccurred())
			return token
		}

		Expect(s.setSpec(func(spec *channelSpec) { spec.Auth.Issuer = "https://id.example.com" })).To(Succeed())
		Expect(s.status(s.token("u2", false, time.Hour))).To(Equal(http.StatusUnauthorized), "a token without the issuer")
		Expect(s.status(withIssuer("u2", "https://old.example.com", false))).To(Equal(http.StatusUnauthorized))
		Expect(s.status(withIssuer("u2", "https://id.example.com", false))).To(Equal(http.StatusOK))
		status, answer := s.publish("/api/v1/custom-events", s.token("backend", true, time.Hour), map[string]any{"eventType": "x"})
		Expect(status).To(Equal(http.StatusUnauthorized), "%v", answer)

		status, answer = s.publish("/api/v1/custom-events", withIssuer("backend", "https://id.example.com", true),
			map[string]any{"eventType": "after_issuer_change", "userIds": []string{"u1"}})
		Expect(status).To(Equal(http.StatusAccepted), "%v", answer)
		ev, _ := open.nextJSON()
		Expect(ev.ID).To(Equal(answer["eventId"]))
	})

	It("sends keep-alives at a changed interval", func() {
		s := startStreamer(nil)
		Expect(s.setSpec(func(spec *channelSpec) { spec.Connections.KeepAliveInterval.Duration = time.Second })).To(Succeed())
		c := s.connectAs("u1")
		c.next()
		Eventually(c.events, 5*time.Second).Should(Receive(HaveField("IsComment", true)))
	})

	It("names the start-only settings it cannot change, and applies the others", func() {
		s := startStreamer(nil)
		before := s.srv.Spec()
		err := s.setSpec(func(spec *channelSpec) {
			spec.History.MaxEvents = 7
			spec.Broker.Type = notifyv1alpha1.BrokerNATS
			spec.Broker.NATS = &notifyv1alpha1.NATSBrokerSpec{URL: "nats://nats:4222"}
			spec.Auth.KeySecretRef.Name = "other-keys"
			spec.CORS.AllowedOrigins = []string{"https://app.example.com"}
		})
		var restart *server.RestartError
		Expect(errors.As(err, &restart)).To(BeTrue(), "%v", err)
		Expect(restart.Fields).To(ConsistOf("spec.history", "spec.broker", "spec.auth.keySecretRef"))
		Expect(err).To(MatchError(ContainSubstring("spec.broker, spec.history, spec.auth.keySecretRef cannot change while the streamer runs")))

		after := s.srv.Spec()
		Expect(after.History).To(Equal(before.History))
		Expect(after.Broker).To(Equal(before.Broker))
		Expect(after.Auth.KeySecretRef).To(Equal(before.Auth.KeySecretRef))
		Expect(after.CORS.AllowedOrigins).To(ConsistOf("https://app.example.com"))
	})

	It("refuses a spec without keys, or with auth settings the verifier refuses, and changes nothing", func() {
		s := startStreamer(nil)
		spec := s.srv.Spec()
		spec.CORS.AllowedOrigins = []string{"https://app.example.com"}
		Expect(s.srv.SetSpec(spec, nil)).To(MatchError(ContainSubstring("needs the channel's keys")))

		err := s.setSpec(func(spec *channelSpec) {
			spec.CORS.AllowedOrigins = []string{"https://app.example.com"}
			spec.Auth.Leeway.Duration = -time.Second
		})
		Expect(err).To(MatchError(ContainSubstring("spec.auth cannot be applied")))
		Expect(s.srv.Spec().CORS.AllowedOrigins).To(BeEmpty())
		Expect(s.status(s.token("u1", false, time.Hour))).To(Equal(http.StatusOK))
	})
})
