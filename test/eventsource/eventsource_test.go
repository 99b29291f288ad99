package eventsource_test

import (
	"net/http"
	"time"

	. "github.com/onsi/ginkgo/v2"
	. "github.com/onsi/gomega"

	notifyv1alpha1 "github.com/herald-notify/herald/api/v1alpha1"
	"github.com/herald-notify/herald/internal/testutil/nodeclient"
)

const timestampPattern = `^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}\.\d{3}Z$`

// reconnectTimeout bounds the wait for the library's reconnect: it waits
// the retry: hint of the stream's first frame (3s) before it tries again.
const reconnectTimeout = 15 * time.Second

var _ = Describe("the eventsource package reading a Herald stream", func() {
	It("opens with the connection event, which carries no event id", func() {
		s := startStreamer(nil)
		token := s.Token("alice", false, time.Hour)
		c := startClient(s, token)

		req := s.gate.nextRequest(10 * time.Second)
		Expect(req.Get("Authorization")).To(Equal("Bearer "+token), "client.mjs adds the token through the fetch option")
		Expect(req.Get("Accept")).To(Equal("text/event-stream"))
		Expect(req.Values("Last-Event-ID")).To(BeEmpty(), "a first connection does not resume")

		c.expectOpen()
		hello, data := c.expectConnected("alice")
		Expect(hello.LastEventID).NotTo(BeEmpty(), "the connection event's id: is where the live events start")
		Expect(data).To(HaveKeyWithValue("timestamp", MatchRegexp(timestampPattern)))
		Expect(data).NotTo(HaveKey("recovered"), "only a resuming client is told whether it recovered")
	})

	It("delivers a published notification with the publish API's event id and the data the streamer sent", func() {
		// Two streams for u1: the library's, and a witness read with the
		// project's SSE reader that shows the bytes the streamer sent.
		s := startStreamer(func(spec *notifyv1alpha1.NotificationChannelSpec) { spec.Connections.MaxPerUser = 2 })
		c := startClient(s, s.Token("u1", false, time.Hour))
		c.expectOpen()
		c.expectConnected("u1")
		witness := s.witnessStream("u1")
		nextWitnessed(witness) // its connection event

		published := s.notify("u1")
		msg, data := c.nextMessage()
		sent := nextWitnessed(witness)
		Expect(sent.ID).To(Equal(published.eventID))
		Expect(msg.LastEventID).To(Equal(published.eventID), "the id: field is the event id the publish API returned")
		Expect(msg.Data).To(Equal(sent.Data), "the library's data is the streamer's, byte for byte")

		Expect(data).To(HaveKeyWithValue("type", "notification"))
		Expect(data).To(HaveKeyWithValue("userId", "u1"))
		Expect(data).To(HaveKeyWithValue("notificationId", published.notificationID))
		Expect(data).To(HaveKeyWithValue("notificationType", "VOCAB_TRAINER"))
		Expect(data).To(HaveKeyWithValue("action", "CREATE"))
		Expect(data).To(HaveKeyWithValue("priority", "LOW"))
		Expect(data).To(HaveKeyWithValue("timestamp", MatchRegexp(timestampPattern)))
		Expect(data).To(HaveKeyWithValue("data", map[string]any{
			"message": "New vocab trainer available", "unicode": "größe ✓ \u2028",
		}))
	})

	It("delivers a custom event to everyone, and not one addressed to another user", func() {
		s := startStreamer(nil)
		c := startClient(s, s.Token("u1", false, time.Hour))
		c.expectOpen()
		c.expectConnected("u1")
		u2 := s.witnessStream("u2")
		nextWitnessed(u2)

		targeted := s.custom("flag", "u2")
		everyone := s.custom("user_activity")

		By("u2 receiving both, so the targeted one was delivered")
		Expect(nextWitnessed(u2).ID).To(Equal(targeted))
		sent := nextWitnessed(u2)
		Expect(sent.ID).To(Equal(everyone))

		By("the library delivering the broadcast next: the events reach a stream in log order, so the targeted one was not")
		msg, data := c.nextMessage()
		Expect(msg.LastEventID).To(Equal(everyone))
		Expect(msg.Data).To(Equal(sent.Data), "every stream receives the same bytes")
		Expect(data).To(HaveKeyWithValue("type", "custom"))
		Expect(data).To(HaveKeyWithValue("eventType", "user_activity"))
		Expect(data).To(HaveKeyWithValue("data", HaveKeyWithValue("action", "login")))
		Expect(data).NotTo(HaveKey("priority"), "custom events have none")
	})

	It("reconnects by itself after the connection drops, with Last-Event-ID, and receives exactly what it missed", func() {
		s := startStreamer(nil)
		token := s.Token("u1", false, time.Hour)
		c := startClient(s, token)
		s.gate.nextRequest(10 * time.Second)
		c.expectOpen()
		c.expectConnected("u1")
		seen := s.notify("u1").eventID
		msg, _ := c.nextMessage()
		Expect(msg.LastEventID).To(Equal(seen))

		By("cutting the library's connection, and holding its reconnect at the gate")
		s.gate.hold()
		s.cutGated()
		drop := c.expectError()
		Expect(drop.ReadyState).To(HaveValue(Equal(connecting)), "the library reconnects after a dropped stream: %+v", drop)
		Eventually(s.Server.Streams).Should(BeZero(), "the streamer saw the stream end")

		// The library waits the retry: hint (3s) before it reconnects.
		resume := s.gate.nextRequest(reconnectTimeout)
		Expect(resume.Get("Last-Event-ID")).To(Equal(seen), "the library resumes from the last id it received")
		Expect(resume.Get("Authorization")).To(Equal("Bearer "+token), "the fetch option applies to reconnects too")

		By("publishing while the library is disconnected")
		notified := s.notify("u1").eventID
		broadcast := s.custom("everyone")
		s.notify("u2")         // someone else's
		s.custom("flag", "u2") // someone else's
		missed := []string{notified, broadcast, s.notify("u1").eventID, s.custom("for_u1", "u1")}
		s.gate.release()

		By("the library receiving the connection event, recovered, then the missed events in order")
		c.expectOpen()
		hello, data := c.expectConnected("u1")
		Expect(data).To(HaveKeyWithValue("recovered", true))
		// A resumed, recovered stream's connection event carries the
		// client's own id, so the resume point stays where it was.
		Expect(hello.LastEventID).To(Equal(seen))
		for _, id := range missed {
			msg, data := c.nextMessage()
			Expect(msg.LastEventID).To(Equal(id))
			Expect(data).NotTo(HaveKeyWithValue("userId", "u2"))
		}
		// Replayed from the log: all four, except any the hub had not yet
		// handed out when the stream joined, which came live instead (the
		// order and ids above show nothing was lost or doubled either way).
		Expect(s.Metrics()).To(MatchRegexp(`(?m)^herald_replayed_events_total [1-4]$`), "the streamer replayed them from its log")

		By("then live events, with no duplicate and no gap")
		live := s.notify("u1").eventID
		msg, _ = c.nextMessage()
		Expect(msg.LastEventID).To(Equal(live))
		Expect(s.Metrics()).To(ContainSubstring(`herald_connects_total{result="ok"} 2`))
		Expect(s.gate.requests).NotTo(Receive(), "the library connected twice, no more")
	})

	It("reports a refused stream as an error, with the status, and does not reconnect", func() {
		s := startStreamer(nil)
		c := startClient(s, nodeclient.Token([]byte("not the channel's key, but long enough"), "u1", false, time.Hour))
		refused := c.expectError()
		Expect(refused.Code).To(HaveValue(Equal(http.StatusUnauthorized)), "%+v", refused)
		Expect(refused.ReadyState).To(HaveValue(Equal(closed)), "a non-200 answer fails the connection for good")
		Expect(s.Metrics()).To(ContainSubstring(`herald_connects_total{result="unauthorized"} 1`))
	})
})
