package server_test

import (
	"net/http"
	"strings"
	"time"

	. "github.com/onsi/ginkgo/v2"
	. "github.com/onsi/gomega"

	notifyv1alpha1 "github.com/herald-notify/herald/api/v1alpha1"
	eventlog "github.com/herald-notify/herald/streamer/log"
	"github.com/herald-notify/herald/streamer/server"
)

const timestampPattern = `^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}\.\d{3}Z$`

var _ = Describe("the stream", func() {
	It("opens with the stream headers and the connection event carrying retry:", func() {
		s := startStreamer(nil)
		c := s.connectAs("u1")
		Expect(c.resp.Header.Get("Content-Type")).To(Equal("text/event-stream"))
		Expect(c.resp.Header.Get("Cache-Control")).To(Equal("no-cache, no-transform"))
		Expect(c.resp.Header.Get("X-Accel-Buffering")).To(Equal("no"))
		Expect(c.resp.Header.Get("Content-Encoding")).To(BeEmpty())
		Expect(c.resp.Header.Get("Referrer-Policy")).To(Equal("no-referrer"))

		ev, data := c.nextJSON()
		Expect(ev.HasRetry).To(BeTrue())
		Expect(ev.Retry).To(Equal(server.DefaultReconnectDelay))
		Expect(ev.ID).NotTo(BeEmpty(), "the connection event says where the live events start")
		Expect(data).To(HaveKeyWithValue("type", "connection"))
		Expect(data).To(HaveKeyWithValue("message", "SSE connection established"))
		Expect(data).To(HaveKeyWithValue("userId", "u1"))
		Expect(data).To(HaveKeyWithValue("timestamp", MatchRegexp(timestampPattern)))
		Expect(data).NotTo(HaveKey("recovered"))
	})

	It("delivers a notification to its recipient only, with the seed's fields and the log id", func() {
		s := startStreamer(nil)
		u1, u2 := s.connectAs("u1"), s.connectAs("u2")
		u1.next()
		u2.next()

		ids := s.notify("u1")
		ev, data := u1.nextJSON()
		Expect(ev.ID).To(Equal(ids[0]))
		Expect(ev.Event).To(BeEmpty(), "onmessage receives every event")
		Expect(data).To(HaveKeyWithValue("type", "notification"))
		Expect(data).To(HaveKeyWithValue("notificationType", "VOCAB_TRAINER"))
		Expect(data).To(HaveKeyWithValue("action", "CREATE"))
		Expect(data).To(HaveKeyWithValue("priority", "LOW"))
		Expect(data).To(HaveKeyWithValue("userId", "u1"))
		Expect(data).To(HaveKeyWithValue("data", HaveKeyWithValue("message", "New vocab trainer available")))
		Expect(data).To(HaveKeyWithValue("notificationId", Not(BeEmpty())))
		Expect(data).To(HaveKeyWithValue("timestamp", MatchRegexp(timestampPattern)))

		By("u2 receiving the next broadcast, and nothing before it")
		broadcast := s.custom("user_activity")
		ev, data = u2.nextJSON()
		Expect(ev.ID).To(Equal(broadcast))
		Expect(data).To(HaveKeyWithValue("type", "custom"))
		Expect(data).To(HaveKeyWithValue("eventType", "user_activity"))
		ev, _ = u1.nextJSON()
		Expect(ev.ID).To(Equal(broadcast))
	})

	It("delivers a custom event to the listed users only", func() {
		s := startStreamer(nil)
		u1, u2, u3 := s.connectAs("u1"), s.connectAs("u2"), s.connectAs("u3")
		for _, c := range []*client{u1, u2, u3} {
			c.next()
		}
		targeted := s.custom("flag", "u2", "u3")
		everyone := s.custom("all")
		ev, _ := u1.nextJSON()
		Expect(ev.ID).To(Equal(everyone), "u1 was not among the users")
		for _, c := range []*client{u2, u3} {
			ev, _ = c.nextJSON()
			Expect(ev.ID).To(Equal(targeted))
			ev, _ = c.nextJSON()
			Expect(ev.ID).To(Equal(everyone))
		}
	})

	It("replays exactly what the user missed on reconnect with Last-Event-ID", func() {
		s := startStreamer(nil)
		first := s.connectAs("u1")
		first.next()
		seen := s.notify("u1")[0]
		ev, _ := first.nextJSON()
		Expect(ev.ID).To(Equal(seen))
		Expect(first.resp.Body.Close()).To(Succeed())
		Eventually(s.srv.Streams).Should(Equal(0))

		missed := []string{s.notify("u1")[0], s.custom("everyone"), s.notify("u1")[0]}
		s.notify("u2") // someone else's

		token := s.token("u1", false, time.Hour)
		again := s.connect(func(r *http.Request) {
			r.Header.Set("Authorization", "Bearer "+token)
			r.Header.Set("Last-Event-ID", seen)
		})
		_, hello := again.nextJSON()
		Expect(hello).To(HaveKeyWithValue("type", "connection"))
		Expect(hello).To(HaveKeyWithValue("recovered", true))
		for _, id := range missed {
			ev, _ := again.nextJSON()
			Expect(ev.ID).To(Equal(id))
		}
		live := s.notify("u1")[0]
		ev, _ = again.nextJSON()
		Expect(ev.ID).To(Equal(live), "then the live events, with no gap and no duplicate")
	})

	It("lets a client that breaks off before its first event resume from the connection event's id", func() {
		s := startStreamer(nil)
		first := s.connectAs("u1")
		hello := first.next()
		Expect(first.resp.Body.Close()).To(Succeed())
		Eventually(s.srv.Streams).Should(Equal(0))
		missed := s.notify("u1")[0]

		token := s.token("u1", false, time.Hour)
		again := s.connect(func(r *http.Request) {
			r.Header.Set("Authorization", "Bearer "+token)
			r.Header.Set("Last-Event-ID", hello.ID)
		})
		_, data := again.nextJSON()
		Expect(data).To(HaveKeyWithValue("recovered", true))
		ev, _ := again.nextJSON()
		Expect(ev.ID).To(Equal(missed))
	})

	It("says recovered: false when the missed events are past retention or the id is not the log's", func() {
		s := startStreamer(func(spec *notifyv1alpha1.NotificationChannelSpec) { spec.History.MaxEvents = 2 })
		watcher := s.connectAs("u1c")
		watcher.nextJSON()
		old := s.notify("u1")[0]
		s.notify("u1")
		s.notify("u1b")
		last := s.notify("u1c")[0]
		// Once the watcher has the last event, the hub has dispatched all
		// four: a stream opened now starts after them.
		ev, _ := watcher.nextJSON()
		Expect(ev.ID).To(Equal(last))
		Expect(watcher.resp.Body.Close()).To(Succeed())
		Eventually(s.srv.Streams).Should(Equal(0))
		token := s.token("u1", false, time.Hour)
		for _, resume := range []func(r *http.Request){
			func(r *http.Request) { r.Header.Set("Last-Event-ID", old) },
			func(r *http.Request) { r.Header.Set("Last-Event-ID", "not-a-number") },
			func(r *http.Request) { r.Header.Set("Last-Event-ID", "1-1") }, // another epoch: a log reset since
			func(r *http.Request) { r.URL.RawQuery = "lastEventId=" + old },
		} {
			c := s.connect(func(r *http.Request) {
				r.Header.Set("Authorization", "Bearer "+token)
				resume(r)
			})
			ev, hello := c.nextJSON()
			Expect(hello).To(HaveKeyWithValue("recovered", false))
			startID, err := eventlog.ParsePosition(ev.ID)
			Expect(err).NotTo(HaveOccurred())
			Expect(s.notify("nobody")[0]).To(Equal(eventlog.Position{Epoch: startID.Epoch, Seq: startID.Seq + 1}.String()),
				"resume from where the live events start, not from the lost id")
			Expect(c.resp.Body.Close()).To(Succeed())
			Eventually(s.srv.Streams).Should(Equal(0))
		}
	})

	It("sends keep-alive comments at the configured interval", func() {
		s := startStreamer(func(spec *notifyv1alpha1.NotificationChannelSpec) {
			spec.Connections.KeepAliveInterval.Duration = time.Second
		})
		c := s.connectAs("u1")
		c.next()
		Eventually(c.events, 5*time.Second).Should(Receive(HaveField("IsComment", true)))
	})

	It("keeps delivering after an idle spell longer than the write timeout", func() {
		// The suite's write timeout is 2s; the stream's write deadline stays
		// armed between flushes and must be moved before the next write.
		s := startStreamer(nil)
		c := s.connectAs("u1")
		c.next()
		time.Sleep(2500 * time.Millisecond)
		id := s.custom("after_idle", "u1")
		ev, data := c.nextJSON()
		Expect(ev.ID).To(Equal(id))
		Expect(data).To(HaveKeyWithValue("eventType", "after_idle"))
	})

	It("closes the stream when its token expires", func() {
		s := startStreamer(nil)
		// JWT expiry has whole seconds: 3s leaves at least 2s to connect before it.
		token := s.token("u1", false, 3*time.Second)
		c := s.connect(func(r *http.Request) { r.Header.Set("Authorization", "Bearer "+token) })
		c.next()
		c.expectEnd()
	})
})

var _ = Describe("authentication", func() {
	It("answers 401 with a JSON error and WWW-Authenticate, and no stream, without a valid token", func() {
		s := startStreamer(nil)
		for _, edit := range []func(r *http.Request){
			nil,
			func(r *http.Request) { r.Header.Set("Authorization", "Bearer not.a.token") },
			func(r *http.Request) { r.Header.Set("Authorization", "Bearer "+strings.Repeat(".", 64)) },
			func(r *http.Request) { r.URL.RawQuery = "access_token=" + s.token("u1", false, time.Hour) },
		} {
			resp := s.request(edit)
			Expect(resp.StatusCode).To(Equal(http.StatusUnauthorized))
			Expect(resp.Header.Get("WWW-Authenticate")).To(HavePrefix("Bearer"))
			Expect(resp.Header.Get("Content-Type")).To(Equal("application/json"))
			Expect(resp.Body.Close()).To(Succeed())
		}
		Expect(s.metrics()).To(MatchRegexp(`herald_auth_failures_total\{reason="malformed"\} [1-9]`))
		Expect(s.metrics()).To(MatchRegexp(`herald_connects_total\{result="unauthorized"\} 4`))
	})

	It("accepts the channel's cookie", func() {
		s := startStreamer(nil)
		token := s.token("cookie-user", false, time.Hour)
		c := s.connect(func(r *http.Request) {
			r.AddCookie(&http.Cookie{Name: notifyv1alpha1.DefaultCookieName, Value: token})
		})
		_, hello := c.nextJSON()
		Expect(hello).To(HaveKeyWithValue("userId", "cookie-user"))
	})

	It("trades a bearer token for a single-use ticket", func() {
		s := startStreamer(nil)
		req, _ := http.NewRequest(http.MethodPost, s.http.URL+server.TicketsPath, nil)
		req.Header.Set("Authorization", "Bearer "+s.token("browser-user", false, time.Hour))
		resp, err := http.DefaultClient.Do(req)
		Expect(err).NotTo(HaveOccurred())
		Expect(resp.StatusCode).To(Equal(http.StatusCreated))
		var answer map[string]string
		Expect(jsonDecode(resp, &answer)).To(Succeed())
		Expect(answer).To(HaveKeyWithValue("expiresAt", MatchRegexp(timestampPattern)))

		withTicket := func(r *http.Request) { r.URL.RawQuery = "ticket=" + answer["ticket"] }
		c := s.connect(withTicket)
		_, hello := c.nextJSON()
		Expect(hello).To(HaveKeyWithValue("userId", "browser-user"))

		reused := s.request(withTicket)
		Expect(reused.StatusCode).To(Equal(http.StatusUnauthorized), "a ticket is single-use")
		Expect(reused.Body.Close()).To(Succeed())
	})

	It("accepts the access_token query parameter only when the channel enables it", func() {
		s := startStreamer(func(spec *notifyv1alpha1.NotificationChannelSpec) {
			spec.Auth.TokenSources = append(spec.Auth.TokenSources, notifyv1alpha1.TokenSourceQueryParameter)
		})
		token := s.token("query-user", false, time.Hour)
		c := s.connect(func(r *http.Request) { r.URL.RawQuery = "access_token=" + token })
		_, hello := c.nextJSON()
		Expect(hello).To(HaveKeyWithValue("userId", "query-user"))
	})
})

var _ = Describe("connection limits", func() {
	It("replaces a user's oldest stream by default", func() {
		s := startStreamer(nil)
		old := s.connectAs("u1")
		old.next()
		replacement := s.connectAs("u1")
		replacement.next()
		old.expectEnd()
		Expect(s.metrics()).To(ContainSubstring(`herald_disconnects_total{reason="replaced"} 1`))
		ids := s.notify("u1")
		ev, _ := replacement.nextJSON()
		Expect(ev.ID).To(Equal(ids[0]))
	})

	It("rejects a stream beyond the per-user limit with 429 when configured", func() {
		s := startStreamer(func(spec *notifyv1alpha1.NotificationChannelSpec) {
			spec.Connections.MaxPerUser = 2
			spec.Connections.UserLimitPolicy = notifyv1alpha1.UserLimitReject
		})
		s.connectAs("u1").next()
		s.connectAs("u1").next()
		token := s.token("u1", false, time.Hour)
		resp := s.request(func(r *http.Request) { r.Header.Set("Authorization", "Bearer "+token) })
		Expect(resp.StatusCode).To(Equal(http.StatusTooManyRequests))
		Expect(resp.Body.Close()).To(Succeed())
	})

	It("answers 503 with Retry-After beyond the per-process limit", func() {
		s := startStreamer(func(spec *notifyv1alpha1.NotificationChannelSpec) { spec.Connections.MaxPerPod = 2 })
		s.connectAs("u1").next()
		s.connectAs("u2").next()
		token := s.token("u3", false, time.Hour)
		resp := s.request(func(r *http.Request) { r.Header.Set("Authorization", "Bearer "+token) })
		Expect(resp.StatusCode).To(Equal(http.StatusServiceUnavailable))
		Expect(resp.Header.Get("Retry-After")).To(Equal("5"))
		Expect(resp.Body.Close()).To(Succeed())
	})
})

var _ = Describe("drain", func() {
	It("fails readiness, writes what was accepted, then closes each stream with a retry: hint", func() {
		s := startStreamer(func(spec *notifyv1alpha1.NotificationChannelSpec) {
			spec.Drain.GracePeriod.Duration = 500 * time.Millisecond
			spec.Drain.ReconnectJitter.Duration = 200 * time.Millisecond
		})
		clients := []*client{s.connectAs("u1"), s.connectAs("u2"), s.connectAs("u3")}
		for _, c := range clients {
			c.next()
		}
		accepted := s.custom("maintenance")
		Expect(httpGetStatus(s.ops.URL + "/readyz")).To(Equal(http.StatusOK))

		drained := make(chan struct{})
		go func() { s.srv.Drain(GinkgoT().Context()); close(drained) }()
		Eventually(func() int { return httpGetStatus(s.ops.URL + "/readyz") }).Should(Equal(http.StatusServiceUnavailable))
		for _, c := range clients {
			ev, _ := c.nextJSON()
			Expect(ev.ID).To(Equal(accepted), "nothing accepted is lost")
			Expect(c.expectEnd()).To(BeNumerically("<", 200*time.Millisecond), "the drain's retry: hint replaced the first frame's")
		}
		Eventually(drained).Should(BeClosed())

		status, answer := s.publish("/api/v1/custom-events", s.token("backend", true, time.Hour), map[string]any{"eventType": "late"})
		Expect(status).To(Equal(http.StatusServiceUnavailable))
		Expect(errorCode(answer)).To(Equal("unavailable"))
		token := s.token("u4", false, time.Hour)
		resp := s.request(func(r *http.Request) { r.Header.Set("Authorization", "Bearer "+token) })
		Expect(resp.StatusCode).To(Equal(http.StatusServiceUnavailable))
		Expect(resp.Body.Close()).To(Succeed())
	})
})
