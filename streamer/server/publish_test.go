package server_test

import (
	"net/http"
	"strings"
	"time"

	. "github.com/onsi/ginkgo/v2"
	. "github.com/onsi/gomega"
)

var _ = Describe("the publish API", func() {
	var s *streamer

	BeforeEach(func() {
		s = startStreamer(nil)
	})

	It("answers 202 with the notification's one event id, repeated per recipient, and the notification id", func() {
		status, answer := s.publish("/api/v1/notifications", s.token("backend", true, time.Hour), map[string]any{
			"recipientUserIds": []string{"u1", "u2", "u1"}, "notificationId": "n1", "notificationType": "VOCAB_TRAINER",
		})
		Expect(status).To(Equal(http.StatusAccepted))
		Expect(answer).To(HaveKeyWithValue("notificationId", "n1"))
		Expect(answer).To(HaveKeyWithValue("eventId", Not(BeEmpty())))
		Expect(answer).To(HaveKeyWithValue("eventIds", Equal([]any{answer["eventId"], answer["eventId"]})), "duplicate recipients receive it once")
		Expect(s.metrics()).To(ContainSubstring(`herald_events_published_total{type="notification"} 1`), "one write for all recipients")
	})

	It("delivers a system event with its priority", func() {
		c := s.connectAs("u1")
		c.next()
		status, answer := s.publish("/api/v1/system-events", s.token("backend", true, time.Hour), map[string]any{
			"eventType": "maintenance", "priority": "HIGH", "data": map[string]any{"message": "System maintenance scheduled"},
		})
		Expect(status).To(Equal(http.StatusAccepted))
		ev, data := c.nextJSON()
		Expect(ev.ID).To(Equal(answer["eventId"]))
		Expect(data).To(HaveKeyWithValue("type", "system"))
		Expect(data).To(HaveKeyWithValue("eventType", "maintenance"))
		Expect(data).To(HaveKeyWithValue("priority", "HIGH"))
		Expect(data).To(HaveKeyWithValue("data", HaveKeyWithValue("message", "System maintenance scheduled")))
	})

	DescribeTable("rejects a bad request with a JSON error naming the problem",
		func(path string, withToken, publisher bool, body string, status int, code, message string) {
			token := ""
			if withToken {
				token = s.token("backend", publisher, time.Hour)
			}
			got, answer := s.publish(path, token, body)
			Expect(got).To(Equal(status))
			Expect(errorCode(answer)).To(Equal(code))
			Expect(answer["error"]).To(HaveKeyWithValue("message", ContainSubstring(message)))
		},
		Entry("no token", "/api/v1/custom-events", false, false, `{"eventType":"x"}`, 401, "unauthorized", "Bearer token is required"),
		Entry("no publish grant", "/api/v1/custom-events", true, false, `{"eventType":"x"}`, 403, "forbidden", "publish grant"),
		Entry("not JSON", "/api/v1/custom-events", true, true, `eventType=x`, 400, "invalid_request", "invalid JSON body"),
		Entry("unknown field", "/api/v1/custom-events", true, true, `{"eventType":"x","recipients":["u1"]}`, 400, "invalid_request", `unknown field "recipients"`),
		Entry("missing event type", "/api/v1/system-events", true, true, `{"data":{}}`, 400, "invalid_request", "eventType is required"),
		Entry("data not an object", "/api/v1/custom-events", true, true, `{"eventType":"x","data":[1]}`, 400, "invalid_request", "data must be a JSON object"),
		Entry("no recipients", "/api/v1/notifications", true, true, `{"notificationType":"x","recipientUserIds":[]}`, 400, "invalid_request", "recipientUserIds must name at least one user"),
		Entry("empty recipient", "/api/v1/notifications", true, true, `{"notificationType":"x","recipientUserIds":[""]}`, 400, "invalid_request", "recipientUserIds[0] is required"),
		Entry("missing notification type", "/api/v1/notifications", true, true, `{"recipientUserIds":["u1"]}`, 400, "invalid_request", "notificationType is required"),
		Entry("bad priority", "/api/v1/notifications", true, true, `{"recipientUserIds":["u1"],"notificationType":"x","priority":"URGENT"}`, 400, "invalid_request", `not "URGENT"`),
		Entry("priority on a custom event", "/api/v1/custom-events", true, true, `{"eventType":"x","priority":"LOW"}`, 400, "invalid_request", "system events only"),
		Entry("two JSON values", "/api/v1/custom-events", true, true, `{"eventType":"x"}{}`, 400, "invalid_request", "more than one JSON value"),
		Entry("too large", "/api/v1/custom-events", true, true, `{"eventType":"x","data":{"big":"`+strings.Repeat("a", 70<<10)+`"}}`, 413, "too_large", "exceeds 65536 bytes"),
	)

	It("delivers a notification published without an action with an empty one, as the seed's clients read it", func() {
		c := s.connectAs("u1")
		c.next()
		status, answer := s.publish("/api/v1/notifications", s.token("backend", true, time.Hour), map[string]any{
			"recipientUserIds": []string{"u1"}, "notificationType": "VOCAB_TRAINER",
		})
		Expect(status).To(Equal(http.StatusAccepted), "%v", answer)
		_, data := c.nextJSON()
		Expect(data).To(HaveKeyWithValue("type", "notification"))
		Expect(data).To(HaveKeyWithValue("action", ""))
	})

	DescribeTable("answers a wrong method or an unknown path with the contract's JSON error",
		func(method, path string, status int, code, message string) {
			req, err := http.NewRequest(method, s.http.URL+path, nil)
			Expect(err).NotTo(HaveOccurred())
			resp, err := http.DefaultClient.Do(req)
			Expect(err).NotTo(HaveOccurred())
			Expect(resp.StatusCode).To(Equal(status))
			Expect(resp.Header.Get("Content-Type")).To(Equal("application/json"))
			var answer map[string]any
			Expect(jsonDecode(resp, &answer)).To(Succeed())
			Expect(errorCode(answer)).To(Equal(code))
			Expect(answer["error"]).To(HaveKeyWithValue("message", message))
			if status == http.StatusMethodNotAllowed {
				Expect(resp.Header.Get("Allow")).To(Equal(http.MethodPost))
			}
		},
		Entry("GET on a publish path", http.MethodGet, "/api/v1/notifications", 405, "method_not_allowed", "use POST"),
		Entry("DELETE on the tickets path", http.MethodDelete, "/api/v1/sse/tickets", 405, "method_not_allowed", "use POST"),
		Entry("an unknown path under /api/v1/", http.MethodGet, "/api/v1/nothing", 404, "not_found", "nothing is served at /api/v1/nothing"),
		Entry("a POST to an unknown path", http.MethodPost, "/api/v1/notification", 404, "not_found", "nothing is served at /api/v1/notification"),
		Entry("an unknown path elsewhere", http.MethodGet, "/", 404, "not_found", "nothing is served at /"),
	)
})

var _ = Describe("CORS", func() {
	It("allows the listed origins with credentials, and no other", func() {
		s := startStreamer(func(spec *channelSpec) { spec.CORS.AllowedOrigins = []string{"https://app.example.com"} })
		preflight := func(origin string) *http.Response {
			req, _ := http.NewRequest(http.MethodOptions, s.http.URL+"/api/v1/sse/tickets", nil)
			req.Header.Set("Origin", origin)
			req.Header.Set("Access-Control-Request-Method", "POST")
			// A page's ticket request carries the user's token (examples/browser).
			req.Header.Set("Access-Control-Request-Headers", "authorization")
			resp, err := http.DefaultClient.Do(req)
			Expect(err).NotTo(HaveOccurred())
			Expect(resp.Body.Close()).To(Succeed())
			return resp
		}
		allowed := preflight("https://app.example.com")
		Expect(allowed.StatusCode).To(Equal(http.StatusNoContent))
		Expect(allowed.Header.Get("Access-Control-Allow-Origin")).To(Equal("https://app.example.com"))
		Expect(allowed.Header.Get("Access-Control-Allow-Credentials")).To(Equal("true"))
		Expect(allowed.Header.Get("Access-Control-Allow-Headers")).To(ContainSubstring("Last-Event-ID"))
		Expect(allowed.Header.Get("Access-Control-Allow-Headers")).To(ContainSubstring("Authorization"))
		Expect(allowed.Header.Get("Access-Control-Allow-Methods")).To(Equal(http.MethodPost))

		other := preflight("https://evil.example.com")
		Expect(other.Header.Get("Access-Control-Allow-Origin")).To(BeEmpty())
		Expect(other.Header.Values("Vary")).To(ContainElement("Origin"))
	})
})
