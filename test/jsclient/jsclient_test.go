package jsclient_test

import (
	"context"
	"strings"
	"time"

	. "github.com/onsi/ginkgo/v2"
	. "github.com/onsi/gomega"

	notifyv1alpha1 "github.com/herald-notify/herald/api/v1alpha1"
	eventlog "github.com/herald-notify/herald/streamer/log"
	"github.com/herald-notify/herald/streamer/log/logtest"
)

// noReconnectWindow is longer than any delay after which the client would
// reconnect on its own in these specs: its backoff starts at 1s.
const noReconnectWindow = 3 * time.Second

var _ = Describe("the JavaScript client", func() {
	It("dispatches notifications, system and custom events to their callbacks, with their ids", func() {
		s := startStreamer(nil, nil)
		c := startClient(s.Direct.URL, s.issueTokens("u1", time.Hour), nil)
		c.expectState("connecting", "opening")
		hello, _ := c.expectOpened("")
		Expect(hello.ID).NotTo(BeEmpty(), "the connection event's id is where the stream resumes")
		Expect(hello.Data).To(HaveKeyWithValue("streamId", Not(BeEmpty())))

		notified := s.notify()
		announced := s.Publish("/api/v1/system-events", map[string]any{"eventType": "maintenance", "data": map[string]any{"message": "tonight"}})["eventId"]
		custom := s.Publish("/api/v1/custom-events", map[string]any{"eventType": "user_activity", "data": map[string]any{"action": "login"}})["eventId"]

		n := c.expectEvent("notification")
		Expect(n.ID).To(Equal(notified))
		Expect(n.Data).To(HaveKeyWithValue("notificationType", "VOCAB_TRAINER"))
		sys := c.expectEvent("system")
		Expect(sys.ID).To(Equal(announced))
		Expect(sys.Data).To(HaveKeyWithValue("eventType", "maintenance"))
		cu := c.expectEvent("custom")
		Expect(cu.ID).To(Equal(custom))
		Expect(cu.Data).To(HaveKeyWithValue("data", HaveKeyWithValue("action", "login")))
	})

	It("holds one stream across three token lifetimes, refreshing the token in place, and receives every event once, in order", func() {
		const lifetime = 4 * time.Second
		s := startStreamer(nil, func(spec *notifyv1alpha1.NotificationChannelSpec) {
			spec.Auth.ExpiryWarning.Duration = 2 * time.Second
		})
		c := startClient(s.Direct.URL, s.issueTokens("u1", lifetime), nil)
		c.expectState("connecting", "opening")
		c.expectOpened("")

		By("publishing a notification every 100ms for more than three token lifetimes")
		opened := time.Now()
		pace := time.NewTicker(100 * time.Millisecond)
		defer pace.Stop()
		var published []string
		for time.Since(opened) < 3*lifetime+time.Second {
			published = append(published, s.notify())
			<-pace.C
		}

		By("the client receiving each, in order, on the stream it opened first")
		var received []string
		warnings, refreshes := 0, 0
		for len(received) < len(published) {
			l := c.next("notification", "event", "state", "request")
			switch {
			case l.Kind == "notification":
				received = append(received, l.ID)
			case l.Kind == "event" && l.Type == "token_expiring":
				warnings++
			case l.Kind == "request":
				Expect(l.URL).To(MatchRegexp(`/api/v1/sse/streams/[^/]+/token$`), "the client makes no request but refreshes")
				refreshes++
			default:
				Fail("the stream did not stay open: " + l.Kind + " " + l.Type + l.State)
			}
		}
		Expect(received).To(Equal(published))
		Expect(warnings).To(BeNumerically(">=", 3))
		Expect(refreshes).To(Equal(warnings), "each warning is answered with one refresh")
		metrics := s.Metrics()
		Expect(metrics).To(ContainSubstring(`herald_connects_total{result="ok"} 1`+"\n"), "one stream, never reopened")
		Expect(metrics).To(MatchRegexp(`herald_token_refreshes_total\{result="ok"\} ([3-9]|\d\d+)\n`))
		Expect(metrics).To(ContainSubstring("herald_connections 1\n"))
	})

	It("when a refresh is refused, opens a new stream with a new ticket before the token expires", func() {
		s := startStreamer(nil, func(spec *notifyv1alpha1.NotificationChannelSpec) {
			spec.Auth.ExpiryWarning.Duration = 3 * time.Second
		})
		issuer := s.issueTokens("u1", 5*time.Second)
		c := startClient(s.Direct.URL, issuer, nil)
		c.expectState("connecting", "opening")
		c.expectOpened("")
		seen := s.notify()
		Expect(c.expectEvent("notification").ID).To(Equal(seen))

		issuer.spoilNext.Store(true)
		warning := c.expectEvent("token_expiring")
		expiresAt, err := time.Parse(time.RFC3339, warning.Data["expiresAt"].(string))
		Expect(err).NotTo(HaveOccurred())
		Expect(c.next("request").URL).To(HaveSuffix("/token"), "the refresh, with a token of another key")
		c.expectState("reconnecting", "refresh_failed")
		hello, request := c.expectOpened(seen)
		Expect(request.at()).To(BeTemporally("<", expiresAt), "before the old token expired")
		Expect(hello.Data).To(HaveKeyWithValue("recovered", true))
		Expect(s.Metrics()).To(ContainSubstring(`herald_token_refreshes_total{result="unauthorized"} 1` + "\n"))
		live := s.notify()
		Expect(c.expectEvent("notification").ID).To(Equal(live))
	})

	It("after its token expired without a refresh, fetches a new token and resumes with a new ticket", func() {
		s := startStreamer(nil, func(spec *notifyv1alpha1.NotificationChannelSpec) { spec.Auth.ExpiryWarning.Duration = 0 })
		c := startClient(s.Direct.URL, s.issueTokens("u1", 3*time.Second), nil)
		c.expectState("connecting", "opening")
		c.expectOpened("")
		before := s.notify()
		Expect(c.expectEvent("notification").ID).To(Equal(before))

		end := c.expectEvent("end")
		Expect(end.Data).To(HaveKeyWithValue("reason", "token_expired"))
		Expect(end.Data).To(HaveKeyWithValue("reconnect", "new_token"))
		c.expectState("reconnecting", "token_expired")
		hello, _ := c.expectOpened(before)
		Expect(hello.Data).To(HaveKeyWithValue("recovered", true))
		after := s.notify()
		Expect(c.expectEvent("notification").ID).To(Equal(after))
	})

	It("after its connection dropped, backs off with jitter and resumes with a new ticket, missing nothing", func() {
		s := startStreamer(nil, nil)
		f := startFront(s)
		c := startClient(f.url(), s.issueTokens("u1", time.Hour), nil)
		c.expectState("connecting", "opening")
		c.expectOpened("")
		published := make([]string, 0, 4)
		published = append(published, s.notify())
		Expect(c.expectEvent("notification").ID).To(Equal(published[0]))

		f.cut()
		for range 3 {
			published = append(published, s.notify())
		}
		dropped := c.expectState("reconnecting", "error")
		Expect(*dropped.RetryInMs).To(BeNumerically(">=", 500), "the backoff's first step, 1s, jittered within its upper half")
		Expect(*dropped.RetryInMs).To(BeNumerically("<=", 1000))
		hello, _ := c.expectOpened(published[0])
		Expect(hello.Data).To(HaveKeyWithValue("recovered", true))
		for _, id := range published[1:] {
			Expect(c.expectEvent("notification").ID).To(Equal(id))
		}
		live := s.notify()
		Expect(c.expectEvent("notification").ID).To(Equal(live))
	})

	It("stays closed when a newer stream of its user replaced its own", func() {
		s := startStreamer(nil, nil)
		c := startClient(s.Direct.URL, s.issueTokens("u1", time.Hour), nil)
		c.expectState("connecting", "opening")
		c.expectOpened("")

		s.openStream("u1")
		end := c.expectEvent("end")
		Expect(end.Data).To(HaveKeyWithValue("reason", "replaced"))
		Expect(end.Data).To(HaveKeyWithValue("reconnect", "none"))
		c.expectState("closed", "replaced")
		Consistently(c.Lines, noReconnectWindow).ShouldNot(Receive(HaveField("Kind", "request")), "the client does not reconnect")
		Expect(s.Metrics()).To(ContainSubstring(`herald_connects_total{result="ok"} 2` + "\n"))
	})

	It("ended as a slow consumer, backs off with jitter and resumes from the last event it read", func() {
		const initial = 800 * time.Millisecond
		s := startStreamer(nil, nil)
		f := startFront(s)
		c := startClient(f.url(), s.issueTokens("slow", time.Hour), map[string]any{
			"backoff": map[string]any{"initialMs": initial.Milliseconds(), "maxMs": 10000},
		})
		c.expectState("connecting", "opening")
		hello, _ := c.expectOpened("")

		By("stalling the front, as a client that stops reading, until the streamer gives up on the stream")
		f.stall()
		pad := strings.Repeat("x", 30000)
		Eventually(func() string {
			s.Publish("/api/v1/custom-events", map[string]any{"eventType": "bulk", "userIds": []string{"slow"}, "data": map[string]any{"pad": pad}})
			return s.Metrics()
		}, 60*time.Second).Should(ContainSubstring(`herald_disconnects_total{reason="slow_consumer"} 1`))
		f.unstall()

		By("the client reading what was sent, then the end event")
		last := hello.ID
		var end line
		for {
			l := c.next("custom", "event")
			if l.Kind == "custom" {
				last = l.ID
				continue
			}
			end = l
			break
		}
		Expect(end.Type).To(Equal("end"))
		Expect(end.Data).To(HaveKeyWithValue("reason", "slow_consumer"))
		Expect(end.Data).To(HaveKeyWithValue("reconnect", "back_off"))
		backingOff := c.expectState("reconnecting", "slow_consumer")
		Expect(*backingOff.RetryInMs).To(BeNumerically(">=", initial.Milliseconds()/2), "jittered within the backoff's upper half")
		Expect(*backingOff.RetryInMs).To(BeNumerically("<=", initial.Milliseconds()))
		_, request := c.expectOpened(last)
		Expect(request.at().Sub(end.at())).To(BeNumerically(">=", time.Duration(*backingOff.RetryInMs)*time.Millisecond-time.Millisecond))
	})

	It("ended because the streamer lagged, resumes at once from its last id and is told what was lost", func() {
		log := logtest.NewGatedReads(eventlog.NewEmbedded(eventlog.Options{MaxEvents: 5}))
		s := startStreamer(log, func(spec *notifyv1alpha1.NotificationChannelSpec) { spec.History.MaxEvents = 5 })
		c := startClient(s.Direct.URL, s.issueTokens("u1", time.Hour), nil)
		c.expectState("connecting", "opening")
		hello, _ := c.expectOpened("")
		for range 12 {
			s.notify()
		}
		close(log.Gate)

		end := c.expectEvent("end")
		Expect(end.Data).To(HaveKeyWithValue("reason", "lagged"))
		Expect(end.Data).To(HaveKeyWithValue("reconnect", "resume"))
		resuming := c.expectState("reconnecting", "lagged")
		Expect(*resuming.RetryInMs).To(BeNumerically("<=", 250), "a resume waits a short jitter only")
		again, _ := c.expectOpened(hello.ID)
		Expect(again.Data).To(HaveKeyWithValue("recovered", false), "the events it missed are past the history")
	})

	It("ended by a draining streamer, resumes on another after the retry delay, with a new ticket", func() {
		draining := startStreamer(nil, func(spec *notifyv1alpha1.NotificationChannelSpec) {
			spec.Drain.GracePeriod.Duration = 100 * time.Millisecond
			spec.Drain.ReconnectJitter.Duration = 1500 * time.Millisecond
		})
		next := startStreamer(nil, nil)
		f := startFront(draining)
		issuer := draining.issueTokens("u1", time.Hour)
		c := startClient(f.url(), issuer, nil)
		c.expectState("connecting", "opening")
		c.expectOpened("")
		seen := draining.notify()
		Expect(c.expectEvent("notification").ID).To(Equal(seen))

		By("pointing the front at the next streamer and draining the first, as a rolling update does")
		f.pointAt(next)
		issuer.streamer.Store(next)
		drained := make(chan struct{})
		go func() { draining.Server.Drain(context.Background()); close(drained) }()
		DeferCleanup(func() { Eventually(drained).Should(BeClosed()) })

		end := c.expectEvent("end")
		Expect(end.Data).To(HaveKeyWithValue("reason", "drain"))
		Expect(end.Data).To(HaveKeyWithValue("reconnect", "resume"))
		Expect(end.Data).To(HaveKeyWithValue("retryMs", BeNumerically(">=", 0)))
		retryMs := end.Data["retryMs"].(float64)
		resuming := c.expectState("reconnecting", "drain")
		Expect(*resuming.RetryInMs).To(BeNumerically(">=", retryMs))
		Expect(*resuming.RetryInMs).To(BeNumerically("<=", retryMs*1.5+1))
		hello, request := c.expectOpened(seen)
		Expect(request.at().Sub(end.at())).To(BeNumerically(">=", time.Duration(retryMs)*time.Millisecond-time.Millisecond))
		Expect(hello.Data).To(HaveKeyWithValue("recovered", false), "the next streamer has a log of its own here, another epoch")
		Expect(next.Metrics()).To(ContainSubstring(`herald_connects_total{result="ok"} 1` + "\n"))
		live := next.notify()
		Expect(c.expectEvent("notification").ID).To(Equal(live))
	})
})
