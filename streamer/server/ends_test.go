package server_test

import (
	"encoding/base64"
	"encoding/json"
	"io"
	"net/http"
	"strings"
	"time"

	. "github.com/onsi/ginkgo/v2"
	. "github.com/onsi/gomega"

	notifyv1alpha1 "github.com/herald-notify/herald/api/v1alpha1"
	eventlog "github.com/herald-notify/herald/streamer/log"
	"github.com/herald-notify/herald/streamer/log/logtest"
	"github.com/herald-notify/herald/streamer/sse"
)

// tokenExpiry is the "exp" of a JWT, read from its payload.
func tokenExpiry(token string) time.Time {
	GinkgoHelper()
	parts := strings.Split(token, ".")
	Expect(parts).To(HaveLen(3))
	payload, err := base64.RawURLEncoding.DecodeString(parts[1])
	Expect(err).NotTo(HaveOccurred())
	var claims struct {
		Exp int64 `json:"exp"`
	}
	Expect(json.Unmarshal(payload, &claims)).To(Succeed())
	return time.Unix(claims.Exp, 0)
}

// timestamp is t as the streamer writes timestamps.
func timestamp(t time.Time) string { return t.UTC().Format("2006-01-02T15:04:05.000Z07:00") }

// connectWith opens a stream with the bearer token.
func (s *streamer) connectWith(token string) *client {
	return s.connect(func(r *http.Request) { r.Header.Set("Authorization", "Bearer "+token) })
}

// expectEndEvent reads the stream's remaining events up to its end event,
// which must be the last, carry no id (the resume position stays lastID)
// and give reason. It returns the end event's data and the reconnect delay
// the client was told last.
func (c *client) expectEndEvent(lastID, reason string) (map[string]any, time.Duration) {
	GinkgoHelper()
	ev, data := c.nextJSON()
	Expect(data).To(HaveKeyWithValue("type", "end"), "event %q", ev.Data)
	Expect(data).To(HaveKeyWithValue("reason", reason))
	Expect(data).To(HaveKeyWithValue("message", Not(BeEmpty())))
	Expect(data).To(HaveKeyWithValue("timestamp", MatchRegexp(timestampPattern)))
	Expect(ev.ID).To(Equal(lastID), "the end event has no id: the resume position is unchanged")
	retry := c.expectEnd()
	Expect(c.events).NotTo(Receive(HaveField("IsComment", false)), "the end event is the last")
	return data, retry
}

// readUnreadBody reads a stream its client did not read while the server
// filled it, to the end, and returns its last event.
func readUnreadBody(body io.Reader) sse.Event {
	GinkgoHelper()
	reader := sse.NewReader(body)
	var last sse.Event
	for {
		ev, err := reader.Next()
		if err != nil {
			Expect(err).To(MatchError(io.EOF), "the server ends the stream between events")
			return last
		}
		if !ev.IsComment {
			last = ev
		}
	}
}

var _ = Describe("the end of a stream the server ends", func() {
	for _, t := range []transport{overHTTP1, overTLSHTTP1, overHTTP2} {
		Context("over "+string(t), func() {
			It("warns before the token expires, with its expiry, then ends saying to fetch a new token", func() {
				s := startStreamerOn(t, nil, func(spec *notifyv1alpha1.NotificationChannelSpec) {
					spec.Auth.ExpiryWarning.Duration = 2 * time.Second
				})
				// JWT expiry has whole seconds: 4s leaves at least 3s.
				token := s.token("u1", false, 4*time.Second)
				expires := tokenExpiry(token)
				c := s.connectWith(token)
				hello, _ := c.nextJSON()

				ev, warning := c.nextJSON()
				Expect(time.Now()).To(BeTemporally(">=", expires.Add(-2*time.Second)), "the warning comes expiryWarning before the expiry")
				Expect(warning).To(HaveKeyWithValue("type", "token_expiring"))
				Expect(warning).To(HaveKeyWithValue("expiresAt", timestamp(expires)))
				Expect(warning).To(HaveKeyWithValue("streamId", Not(BeEmpty())))
				Expect(ev.ID).To(Equal(hello.ID), "the warning has no id")

				end, _ := c.expectEndEvent(hello.ID, "token_expired")
				Expect(time.Now()).To(BeTemporally(">=", expires))
				Expect(end).To(HaveKeyWithValue("reconnect", "new_token"))
				Expect(end).NotTo(HaveKey("retryMs"))
			})

			It("ends a replaced stream saying not to reconnect on its own", func() {
				s := startStreamerOn(t, nil, nil)
				old := s.connectAs("u1")
				hello, _ := old.nextJSON()
				s.connectAs("u1").next()
				end, _ := old.expectEndEvent(hello.ID, "replaced")
				Expect(end).To(HaveKeyWithValue("reconnect", "none"))
			})

			It("ends a slow consumer saying to back off, the end event past the queue's bound", func() {
				s := startStreamerOn(t, nil, nil)
				token := s.token("slow", false, time.Hour)
				resp := s.request(func(r *http.Request) { r.Header.Set("Authorization", "Bearer "+token) })
				DeferCleanup(resp.Body.Close)
				Expect(resp.StatusCode).To(Equal(http.StatusOK))

				By("not reading until the server gave up on the client")
				s.overwhelm("slow")
				last := readUnreadBody(resp.Body)
				var end map[string]any
				Expect(json.Unmarshal([]byte(last.Data), &end)).To(Succeed())
				Expect(end).To(HaveKeyWithValue("type", "end"))
				Expect(end).To(HaveKeyWithValue("reason", "slow_consumer"))
				Expect(end).To(HaveKeyWithValue("reconnect", "back_off"))
			})

			It("ends a stream that lagged past the log's retention saying to resume", func() {
				log := logtest.NewGatedReads(eventlog.NewEmbedded(eventlog.Options{MaxEvents: 5}))
				s := startStreamerOn(t, log, func(spec *notifyv1alpha1.NotificationChannelSpec) { spec.History.MaxEvents = 5 })
				c := s.connectAs("u1")
				hello, _ := c.nextJSON()
				for range 12 {
					s.notify("u1")
				}
				close(log.Gate)
				end, _ := c.expectEndEvent(hello.ID, "lagged")
				Expect(end).To(HaveKeyWithValue("reconnect", "resume"))
			})

			It("ends a drained stream saying to resume after the drain's retry delay", func() {
				s := startStreamerOn(t, nil, func(spec *notifyv1alpha1.NotificationChannelSpec) {
					spec.Drain.GracePeriod.Duration = 100 * time.Millisecond
					spec.Drain.ReconnectJitter.Duration = 300 * time.Millisecond
				})
				c := s.connectAs("u1")
				c.next()
				accepted := s.custom("maintenance")
				go s.srv.Drain(GinkgoT().Context())
				ev, _ := c.nextJSON()
				Expect(ev.ID).To(Equal(accepted))
				end, retry := c.expectEndEvent(accepted, "drain")
				Expect(end).To(HaveKeyWithValue("reconnect", "resume"))
				Expect(end).To(HaveKeyWithValue("retryMs", BeNumerically("==", retry.Milliseconds())), "the retry: hint that follows it")
				Expect(retry).To(BeNumerically("<", 300*time.Millisecond))
				Expect(s.srv.WaitStreams(GinkgoT().Context())).To(Succeed())
			})
		})
	}

	It("sends no warning when spec.auth.expiryWarning is 0s", func() {
		s := startStreamer(func(spec *notifyv1alpha1.NotificationChannelSpec) { spec.Auth.ExpiryWarning.Duration = 0 })
		c := s.connectWith(s.token("u1", false, 3*time.Second))
		hello, _ := c.nextJSON()
		c.expectEndEvent(hello.ID, "token_expired")
	})
})
