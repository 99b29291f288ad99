package publisher_test

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	. "github.com/onsi/ginkgo/v2"
	. "github.com/onsi/gomega"

	"github.com/herald-notify/herald/streamer/publisher"
)

// newClient is a client of streamer with the suite's token and opts.
func newClient(streamer *fakeStreamer, opts ...publisher.Option) *publisher.Client {
	GinkgoHelper()
	client, err := publisher.New(streamer.URL(), append([]publisher.Option{publisher.WithToken(token)}, opts...)...)
	Expect(err).NotTo(HaveOccurred())
	return client
}

// expectOneRequest asserts that streamer received exactly one POST to path,
// with the client's headers, and returns it.
func expectOneRequest(streamer *fakeStreamer, path string) recorded {
	GinkgoHelper()
	requests := streamer.Requests()
	Expect(requests).To(HaveLen(1))
	req := requests[0]
	Expect(req.Method).To(Equal(http.MethodPost))
	Expect(req.Path).To(Equal(path))
	Expect(req.Header.Get("Authorization")).To(Equal("Bearer " + token))
	Expect(req.Header.Get("Content-Type")).To(Equal("application/json"))
	Expect(req.Header.Get("Accept")).To(Equal("application/json"))
	Expect(req.Header.Get("User-Agent")).To(HavePrefix("herald-publisher/"))
	return req
}

var _ = Describe("PublishNotification", func() {
	It("posts every field and returns the receipt", func() {
		streamer := newFakeStreamer(accepted(`{"notificationId":"n1","eventIds":["1732800000000001","1732800000000002"]}`))
		result, err := newClient(streamer).PublishNotification(context.Background(), publisher.Notification{
			RecipientUserIDs: []string{"u1", "u2"},
			NotificationID:   "n1",
			NotificationType: "VOCAB_TRAINER",
			Action:           "CREATE",
			Priority:         publisher.PriorityLow,
			Data:             map[string]any{"message": "New vocab trainer available", "count": 3},
		})
		Expect(err).NotTo(HaveOccurred())
		Expect(result).To(Equal(publisher.NotificationResult{
			NotificationID: "n1",
			// An earlier streamer's answer, one event per recipient and no
			// eventId: the first recipient's stands for it.
			EventID:  "1732800000000001",
			EventIDs: []string{"1732800000000001", "1732800000000002"},
		}))
		req := expectOneRequest(streamer, "/api/v1/notifications")
		Expect(req.Body).To(MatchJSON(`{
			"recipientUserIds": ["u1", "u2"],
			"notificationId": "n1",
			"notificationType": "VOCAB_TRAINER",
			"action": "CREATE",
			"priority": "LOW",
			"data": {"message": "New vocab trainer available", "count": 3}
		}`))
	})

	It("leaves out the optional fields and takes the generated id", func() {
		streamer := newFakeStreamer(accepted(`{"notificationId":"generated","eventIds":["7"],"futureField":true}`))
		result, err := newClient(streamer).PublishNotification(context.Background(), publisher.Notification{
			RecipientUserIDs: []string{"u1"},
			NotificationType: "EXPORT_READY",
		})
		Expect(err).NotTo(HaveOccurred())
		Expect(result.NotificationID).To(Equal("generated"))
		Expect(result.EventIDs).To(Equal([]string{"7"}))
		req := expectOneRequest(streamer, "/api/v1/notifications")
		Expect(req.Body).To(MatchJSON(`{"recipientUserIds":["u1"],"notificationType":"EXPORT_READY"}`))
	})

	It("sends data of any type that marshals to an object", func() {
		type export struct {
			File string `json:"file"`
			Size int    `json:"size,omitempty"`
		}
		streamer := newFakeStreamer(accepted(`{"notificationId":"n","eventIds":["1"]}`))
		client := newClient(streamer)
		for _, data := range []any{export{File: "a.csv"}, &export{File: "a.csv"}, json.RawMessage(` {"file" : "a.csv"} `)} {
			_, err := client.PublishNotification(context.Background(), publisher.Notification{
				RecipientUserIDs: []string{"u1"}, NotificationType: "EXPORT_READY", Data: data,
			})
			Expect(err).NotTo(HaveOccurred())
		}
		requests := streamer.Requests()
		Expect(requests).To(HaveLen(3))
		for _, req := range requests {
			Expect(req.Body).To(MatchJSON(`{"recipientUserIds":["u1"],"notificationType":"EXPORT_READY","data":{"file":"a.csv"}}`))
		}
	})

	It("treats data that marshals to null as none", func() {
		streamer := newFakeStreamer(accepted(`{"notificationId":"n","eventIds":["1"]}`))
		var nothing map[string]any
		_, err := newClient(streamer).PublishNotification(context.Background(), publisher.Notification{
			RecipientUserIDs: []string{"u1"}, NotificationType: "T", Data: nothing,
		})
		Expect(err).NotTo(HaveOccurred())
		Expect(expectOneRequest(streamer, "/api/v1/notifications").Body).
			To(MatchJSON(`{"recipientUserIds":["u1"],"notificationType":"T"}`))
	})

	DescribeTable("refuses an answer without the receipt",
		func(body string) {
			streamer := newFakeStreamer(accepted(body))
			_, err := newClient(streamer).PublishNotification(context.Background(), publisher.Notification{
				RecipientUserIDs: []string{"u1"}, NotificationType: "T",
			})
			Expect(err).To(MatchError(ContainSubstring("lacks notificationId or eventIds")))
		},
		Entry("no notification id", `{"eventIds":["1"]}`),
		Entry("no event ids", `{"notificationId":"n1"}`),
		Entry("empty object", `{}`),
	)
})

var _ = Describe("PublishSystemEvent", func() {
	It("posts every field and returns the event id", func() {
		streamer := newFakeStreamer(accepted(`{"eventId":"1732800000000003"}`))
		id, err := newClient(streamer).PublishSystemEvent(context.Background(), publisher.SystemEvent{
			EventType: "maintenance",
			Data:      map[string]string{"message": "System maintenance scheduled"},
			Priority:  publisher.PriorityHigh,
			UserIDs:   []string{"u1", "u2"},
		})
		Expect(err).NotTo(HaveOccurred())
		Expect(id).To(Equal("1732800000000003"))
		req := expectOneRequest(streamer, "/api/v1/system-events")
		Expect(req.Body).To(MatchJSON(`{
			"eventType": "maintenance",
			"data": {"message": "System maintenance scheduled"},
			"priority": "HIGH",
			"userIds": ["u1", "u2"]
		}`))
	})

	It("addresses everyone when there are no user ids", func() {
		streamer := newFakeStreamer(accepted(`{"eventId":"9"}`))
		_, err := newClient(streamer).PublishSystemEvent(context.Background(), publisher.SystemEvent{
			EventType: "maintenance", UserIDs: []string{},
		})
		Expect(err).NotTo(HaveOccurred())
		Expect(expectOneRequest(streamer, "/api/v1/system-events").Body).To(MatchJSON(`{"eventType":"maintenance"}`))
	})

	It("refuses an answer without the event id", func() {
		streamer := newFakeStreamer(accepted(`{"id":"9"}`))
		_, err := newClient(streamer).PublishSystemEvent(context.Background(), publisher.SystemEvent{EventType: "maintenance"})
		Expect(err).To(MatchError("publisher: publish system event: the streamer's answer lacks eventId"))
	})
})

var _ = Describe("PublishCustomEvent", func() {
	It("posts every field and returns the event id", func() {
		streamer := newFakeStreamer(accepted(`{"eventId":"1732800000000004"}`))
		id, err := newClient(streamer).PublishCustomEvent(context.Background(), publisher.CustomEvent{
			EventType: "user_activity",
			Data:      map[string]string{"action": "login"},
			UserIDs:   []string{"u3"},
		})
		Expect(err).NotTo(HaveOccurred())
		Expect(id).To(Equal("1732800000000004"))
		req := expectOneRequest(streamer, "/api/v1/custom-events")
		Expect(req.Body).To(MatchJSON(`{"eventType":"user_activity","data":{"action":"login"},"userIds":["u3"]}`))
	})

	It("addresses everyone when there are no user ids", func() {
		streamer := newFakeStreamer(accepted(`{"eventId":"10"}`))
		_, err := newClient(streamer).PublishCustomEvent(context.Background(), publisher.CustomEvent{
			EventType: "user_activity", Data: map[string]string{"action": "login"},
		})
		Expect(err).NotTo(HaveOccurred())
		Expect(expectOneRequest(streamer, "/api/v1/custom-events").Body).
			To(MatchJSON(`{"eventType":"user_activity","data":{"action":"login"}}`))
	})
})

var _ = Describe("Client", func() {
	It("keeps the base URL's path prefix", func() {
		streamer := newFakeStreamer(accepted(`{"eventId":"1"}`))
		client, err := publisher.New(streamer.URL()+"/herald/", publisher.WithToken(token))
		Expect(err).NotTo(HaveOccurred())
		_, err = client.PublishCustomEvent(context.Background(), publisher.CustomEvent{EventType: "t"})
		Expect(err).NotTo(HaveOccurred())
		expectOneRequest(streamer, "/herald/api/v1/custom-events")
	})

	It("asks the token source for every request", func() {
		streamer := newFakeStreamer(accepted(`{"eventId":"1"}`))
		var calls atomic.Int32
		client, err := publisher.New(streamer.URL(), publisher.WithTokenSource(func(context.Context) (string, error) {
			return fmt.Sprintf("token-%d", calls.Add(1)), nil
		}))
		Expect(err).NotTo(HaveOccurred())
		for range 2 {
			_, err := client.PublishCustomEvent(context.Background(), publisher.CustomEvent{EventType: "t"})
			Expect(err).NotTo(HaveOccurred())
		}
		requests := streamer.Requests()
		Expect(requests).To(HaveLen(2))
		Expect(requests[0].Header.Get("Authorization")).To(Equal("Bearer token-1"))
		Expect(requests[1].Header.Get("Authorization")).To(Equal("Bearer token-2"))
	})

	It("reads a token file on every request, as the kubelet rotates it", func() {
		streamer := newFakeStreamer(accepted(`{"eventId":"1"}`))
		file := filepath.Join(GinkgoT().TempDir(), "token")
		Expect(os.WriteFile(file, []byte("first\n"), 0o600)).To(Succeed())
		client, err := publisher.New(streamer.URL(), publisher.WithTokenSource(publisher.TokenFile(file)))
		Expect(err).NotTo(HaveOccurred())
		publish := func() error {
			_, err := client.PublishCustomEvent(context.Background(), publisher.CustomEvent{EventType: "t"})
			return err
		}
		Expect(publish()).To(Succeed())
		Expect(os.WriteFile(file, []byte("second"), 0o600)).To(Succeed())
		Expect(publish()).To(Succeed())
		Expect(os.Remove(file)).To(Succeed())
		Expect(publish()).To(MatchError(os.ErrNotExist))

		requests := streamer.Requests()
		Expect(requests).To(HaveLen(2))
		Expect(requests[0].Header.Get("Authorization")).To(Equal("Bearer first"))
		Expect(requests[1].Header.Get("Authorization")).To(Equal("Bearer second"))
	})

	It("sends through the HTTP client it is given", func() {
		streamer := newFakeStreamer(accepted(`{"eventId":"1"}`))
		transport := &countingTransport{next: http.DefaultTransport}
		client := newClient(streamer, publisher.WithHTTPClient(&http.Client{Transport: transport}))
		_, err := client.PublishCustomEvent(context.Background(), publisher.CustomEvent{EventType: "t"})
		Expect(err).NotTo(HaveOccurred())
		Expect(transport.calls.Load()).To(BeEquivalentTo(1))
	})

	It("is safe for concurrent use", func() {
		streamer := newFakeStreamer(accepted(`{"eventId":"1"}`))
		client := newClient(streamer)
		var wg sync.WaitGroup
		errs := make(chan error, 16)
		for i := range 16 {
			wg.Go(func() {
				_, err := client.PublishCustomEvent(context.Background(), publisher.CustomEvent{
					EventType: "t", UserIDs: []string{fmt.Sprintf("u%d", i)},
				})
				errs <- err
			})
		}
		wg.Wait()
		close(errs)
		for err := range errs {
			Expect(err).NotTo(HaveOccurred())
		}
		Expect(streamer.Requests()).To(HaveLen(16))
	})

	DescribeTable("New refuses a bad base URL",
		func(baseURL, message string) {
			client, err := publisher.New(baseURL, publisher.WithToken(token))
			Expect(err).To(MatchError(ContainSubstring(message)))
			Expect(client).To(BeNil())
		},
		Entry("empty", "", "scheme must be http or https"),
		Entry("other scheme", "ftp://streamer.example", `"ftp://streamer.example": scheme must be http or https`),
		Entry("no scheme", "streamer.example:8080", "scheme must be http or https"),
		Entry("no host", "http://", "no host"),
		Entry("query", "https://streamer.example/?channel=a", "query is not allowed"),
		Entry("empty query", "https://streamer.example/?", "query is not allowed"),
		Entry("fragment", "https://streamer.example/#top", "fragment is not allowed"),
		Entry("user info", "https://user:hunter2@streamer.example", "user info is not allowed"),
		Entry("unparsable", "http://streamer.example/%zz", "invalid URL escape"),
	)

	It("never quotes a password of the base URL", func() {
		_, err := publisher.New("https://user:hunter2@streamer.example", publisher.WithToken(token))
		Expect(err).To(HaveOccurred())
		Expect(err.Error()).NotTo(ContainSubstring("hunter2"))
	})

	DescribeTable("New requires a token",
		func(opts ...publisher.Option) {
			_, err := publisher.New("https://streamer.example", opts...)
			Expect(err).To(MatchError("publisher: no token: pass WithToken or WithTokenSource"))
		},
		Entry("no option"),
		Entry("an empty token", publisher.WithToken("")),
		Entry("a nil token source", publisher.WithTokenSource(nil)),
		Entry("a token replaced by a nil source", publisher.WithToken(token), publisher.WithTokenSource(nil)),
	)
})

// countingTransport counts the requests it carries.
type countingTransport struct {
	next  http.RoundTripper
	calls atomic.Int32
}

func (t *countingTransport) RoundTrip(req *http.Request) (*http.Response, error) {
	t.calls.Add(1)
	return t.next.RoundTrip(req)
}

var _ = Describe("refusals", func() {
	var (
		// sentinels are every sentinel, to check that an error matches
		// exactly one.
		sentinels = []error{
			publisher.ErrInvalidRequest, publisher.ErrUnauthorized, publisher.ErrForbidden, publisher.ErrNotFound,
			publisher.ErrTooLarge, publisher.ErrRateLimited, publisher.ErrUnavailable,
		}
		publish = func(client *publisher.Client) error {
			_, err := client.PublishNotification(context.Background(), publisher.Notification{
				RecipientUserIDs: []string{"u1"}, NotificationType: "T",
			})
			return err
		}
	)

	DescribeTable("map each status to its sentinel, with code, message and retry hint",
		func(respond http.HandlerFunc, want publisher.APIError, sentinel error) {
			err := publish(newClient(newFakeStreamer(respond)))
			var apiErr *publisher.APIError
			Expect(errors.As(err, &apiErr)).To(BeTrue(), "%v", err)
			Expect(*apiErr).To(Equal(want))
			for _, other := range sentinels {
				Expect(errors.Is(err, other)).To(Equal(other == sentinel), "errors.Is(%v, %v)", err, other)
			}
			Expect(err.Error()).To(HavePrefix("publisher: publish notification: streamer answered %d ", want.StatusCode))
			Expect(err.Error()).To(ContainSubstring(want.Message))
			Expect(err.Error()).NotTo(ContainSubstring(token))
		},
		Entry("400", apiError(400, "invalid_request", "recipientUserIds: at most 1000"),
			publisher.APIError{StatusCode: 400, Code: "invalid_request", Message: "recipientUserIds: at most 1000"}, publisher.ErrInvalidRequest),
		Entry("401", apiError(401, "unauthorized", "token expired", "WWW-Authenticate", "Bearer"),
			publisher.APIError{StatusCode: 401, Code: "unauthorized", Message: "token expired"}, publisher.ErrUnauthorized),
		Entry("403", apiError(403, "forbidden", "token lacks the publish grant"),
			publisher.APIError{StatusCode: 403, Code: "forbidden", Message: "token lacks the publish grant"}, publisher.ErrForbidden),
		Entry("404", apiError(404, "not_found", "no such route"),
			publisher.APIError{StatusCode: 404, Code: "not_found", Message: "no such route"}, publisher.ErrNotFound),
		Entry("405, which has no sentinel", apiError(405, "method_not_allowed", "use POST"),
			publisher.APIError{StatusCode: 405, Code: "method_not_allowed", Message: "use POST"}, nil),
		Entry("413", apiError(413, "too_large", "body exceeds 64 KiB"),
			publisher.APIError{StatusCode: 413, Code: "too_large", Message: "body exceeds 64 KiB"}, publisher.ErrTooLarge),
		Entry("429 with Retry-After", apiError(429, "rate_limited", "slow down", "Retry-After", "7"),
			publisher.APIError{StatusCode: 429, Code: "rate_limited", Message: "slow down", RetryAfter: 7 * time.Second}, publisher.ErrRateLimited),
		Entry("503 with Retry-After", apiError(503, "unavailable", "draining", "Retry-After", "30"),
			publisher.APIError{StatusCode: 503, Code: "unavailable", Message: "draining", RetryAfter: 30 * time.Second}, publisher.ErrUnavailable),
		Entry("503 with a Retry-After that is no delay", apiError(503, "unavailable", "draining", "Retry-After", "soon"),
			publisher.APIError{StatusCode: 503, Code: "unavailable", Message: "draining"}, publisher.ErrUnavailable),
		Entry("a non-JSON 502 from a proxy", answer(502, "<html>\r\n<body>\n<h1>502 Bad Gateway</h1>\n</body>\n</html>\n", "Content-Type", "text/html"),
			publisher.APIError{StatusCode: 502, Message: "<html> <body> <h1>502 Bad Gateway</h1> </body> </html>"}, publisher.ErrUnavailable),
		Entry("a plain-text 504 from a proxy", answer(504, "upstream request timeout"),
			publisher.APIError{StatusCode: 504, Message: "upstream request timeout"}, publisher.ErrUnavailable),
		Entry("JSON that is not the error shape", answer(500, `{"message":"boom"}`),
			publisher.APIError{StatusCode: 500, Message: `{"message":"boom"}`}, nil),
		Entry("an empty 500", answer(500, ""),
			publisher.APIError{StatusCode: 500}, nil),
	)

	It("reads a Retry-After date", func() {
		date := time.Now().Add(time.Hour).UTC().Format(http.TimeFormat)
		err := publish(newClient(newFakeStreamer(apiError(503, "unavailable", "draining", "Retry-After", date))))
		var apiErr *publisher.APIError
		Expect(errors.As(err, &apiErr)).To(BeTrue())
		Expect(apiErr.RetryAfter).To(BeNumerically("~", time.Hour, 2*time.Second))
	})

	It("says what a bare error is", func() {
		err := publish(newClient(newFakeStreamer(answer(500, ""))))
		Expect(err).To(MatchError("publisher: publish notification: streamer answered 500 Internal Server Error"))
		err = publish(newClient(newFakeStreamer(apiError(429, "rate_limited", "slow down", "Retry-After", "2"))))
		Expect(err).To(MatchError("publisher: publish notification: streamer answered 429 Too Many Requests (rate_limited): slow down; retry after 2s"))
	})

	It("quotes only the start of a huge error page, on one line", func() {
		page := strings.Repeat("<p>\x1b[31mgateway error</p>\n", 100_000)
		err := publish(newClient(newFakeStreamer(answer(502, page))))
		var apiErr *publisher.APIError
		Expect(errors.As(err, &apiErr)).To(BeTrue())
		Expect(apiErr.Message).To(HavePrefix("<p>[31mgateway error</p> <p>"))
		Expect(apiErr.Message).To(HaveSuffix("..."))
		Expect(len(apiErr.Message)).To(BeNumerically("<=", 256+3))
		Expect(apiErr.Message).NotTo(ContainSubstring("\n"))
		Expect(apiErr.Message).NotTo(ContainSubstring("\x1b"))
	})

	It("refuses a success body beyond the bound", func() {
		huge := `{"notificationId":"n","eventIds":["1"],"padding":"` + strings.Repeat("x", publisher.MaxResponseBytes) + `"}`
		err := publish(newClient(newFakeStreamer(accepted(huge))))
		Expect(err).To(MatchError(ContainSubstring("body exceeds 1048576 bytes")))
	})

	It("refuses a success body that is not JSON", func() {
		err := publish(newClient(newFakeStreamer(answer(http.StatusOK, "<html>welcome</html>"))))
		Expect(err).To(MatchError(ContainSubstring("publisher: publish notification: decode response (status 200)")))
	})
})

var _ = Describe("checks before sending", func() {
	DescribeTable("refuse an invalid event without a request",
		func(publish func(context.Context, *publisher.Client) error, message string) {
			streamer := newFakeStreamer(accepted(`{}`))
			err := publish(context.Background(), newClient(streamer))
			Expect(err).To(MatchError(publisher.ErrInvalidRequest))
			Expect(err).To(MatchError(ContainSubstring(message)))
			var apiErr *publisher.APIError
			Expect(errors.As(err, &apiErr)).To(BeFalse())
			Expect(streamer.Requests()).To(BeEmpty())
		},
		Entry("notification without recipients", notification(func(n *publisher.Notification) { n.RecipientUserIDs = nil }),
			"publisher: publish notification: invalid request: RecipientUserIDs is empty"),
		Entry("notification with an empty recipient", notification(func(n *publisher.Notification) { n.RecipientUserIDs = []string{"u1", ""} }),
			"RecipientUserIDs[1] is empty"),
		Entry("notification without type", notification(func(n *publisher.Notification) { n.NotificationType = "" }),
			"NotificationType is required"),
		Entry("notification of unknown priority", notification(func(n *publisher.Notification) { n.Priority = "URGENT" }),
			`Priority "URGENT" is not one of LOW, MEDIUM, HIGH, CRITICAL`),
		Entry("notification with array data", notification(func(n *publisher.Notification) { n.Data = []string{"a"} }),
			"Data must marshal to a JSON object, not an array"),
		Entry("notification with string data", notification(func(n *publisher.Notification) { n.Data = "hello" }),
			"Data must marshal to a JSON object, not a string"),
		Entry("notification with number data", notification(func(n *publisher.Notification) { n.Data = 42 }),
			"Data must marshal to a JSON object, not a number"),
		Entry("notification with boolean data", notification(func(n *publisher.Notification) { n.Data = true }),
			"Data must marshal to a JSON object, not a boolean"),
		Entry("notification with invalid raw data", notification(func(n *publisher.Notification) { n.Data = json.RawMessage(`{"a":`) }),
			"invalid request: Data: json: error calling MarshalJSON"),
		Entry("system event without type", systemEvent(func(e *publisher.SystemEvent) { e.EventType = "" }),
			"publisher: publish system event: invalid request: EventType is required"),
		Entry("system event of unknown priority", systemEvent(func(e *publisher.SystemEvent) { e.Priority = "low" }),
			`Priority "low" is not one of`),
		Entry("system event with an empty user id", systemEvent(func(e *publisher.SystemEvent) { e.UserIDs = []string{""} }),
			"UserIDs[0] is empty"),
		Entry("system event with array data", systemEvent(func(e *publisher.SystemEvent) { e.Data = []int{1} }),
			"Data must marshal to a JSON object, not an array"),
		Entry("custom event without type", customEvent(func(e *publisher.CustomEvent) { e.EventType = "" }),
			"publisher: publish custom event: invalid request: EventType is required"),
		Entry("custom event with an empty user id", customEvent(func(e *publisher.CustomEvent) { e.UserIDs = []string{"u1", "u2", ""} }),
			"UserIDs[2] is empty"),
		Entry("custom event with string data", customEvent(func(e *publisher.CustomEvent) { e.Data = "login" }),
			"Data must marshal to a JSON object, not a string"),
	)

	It("reports data that cannot be marshalled as invalid, with the cause", func() {
		streamer := newFakeStreamer(accepted(`{}`))
		_, err := newClient(streamer).PublishCustomEvent(context.Background(), publisher.CustomEvent{
			EventType: "t", Data: map[string]any{"callback": func() {}},
		})
		var unsupported *json.UnsupportedTypeError
		Expect(errors.As(err, &unsupported)).To(BeTrue())
		Expect(err).To(MatchError(publisher.ErrInvalidRequest))
		Expect(streamer.Requests()).To(BeEmpty())
	})
})

// notification is a publish of a valid notification, changed by mutate.
func notification(mutate func(*publisher.Notification)) func(context.Context, *publisher.Client) error {
	return func(ctx context.Context, client *publisher.Client) error {
		n := publisher.Notification{RecipientUserIDs: []string{"u1"}, NotificationType: "T", Data: map[string]any{"k": "v"}}
		mutate(&n)
		_, err := client.PublishNotification(ctx, n)
		return err
	}
}

// systemEvent is a publish of a valid system event, changed by mutate.
func systemEvent(mutate func(*publisher.SystemEvent)) func(context.Context, *publisher.Client) error {
	return func(ctx context.Context, client *publisher.Client) error {
		e := publisher.SystemEvent{EventType: "maintenance", Priority: publisher.PriorityHigh}
		mutate(&e)
		_, err := client.PublishSystemEvent(ctx, e)
		return err
	}
}

// customEvent is a publish of a valid custom event, changed by mutate.
func customEvent(mutate func(*publisher.CustomEvent)) func(context.Context, *publisher.Client) error {
	return func(ctx context.Context, client *publisher.Client) error {
		e := publisher.CustomEvent{EventType: "user_activity"}
		mutate(&e)
		_, err := client.PublishCustomEvent(ctx, e)
		return err
	}
}

var _ = Describe("tokens", func() {
	var publish = func(client *publisher.Client) error {
		_, err := client.PublishSystemEvent(context.Background(), publisher.SystemEvent{EventType: "maintenance"})
		return err
	}

	It("passes a token source's error on, without a request", func() {
		streamer := newFakeStreamer(accepted(`{"eventId":"1"}`))
		sourceErr := errors.New("identity provider down")
		client, err := publisher.New(streamer.URL(), publisher.WithTokenSource(func(context.Context) (string, error) {
			return "", sourceErr
		}))
		Expect(err).NotTo(HaveOccurred())
		err = publish(client)
		Expect(err).To(MatchError(sourceErr))
		Expect(err).To(MatchError("publisher: publish system event: get token: identity provider down"))
		Expect(streamer.Requests()).To(BeEmpty())
	})

	DescribeTable("refuses a token a header cannot carry, without quoting it",
		func(bad, message string) {
			streamer := newFakeStreamer(accepted(`{"eventId":"1"}`))
			client, err := publisher.New(streamer.URL(), publisher.WithTokenSource(func(context.Context) (string, error) {
				return bad, nil
			}))
			Expect(err).NotTo(HaveOccurred())
			err = publish(client)
			Expect(err).To(MatchError(ContainSubstring(message)))
			if bad != "" {
				Expect(err.Error()).NotTo(ContainSubstring(strings.TrimSpace(bad)))
			}
			Expect(streamer.Requests()).To(BeEmpty())
		},
		Entry("empty", "", "get token: the token is empty"),
		Entry("trailing newline", "secret-token\n", "white space or control characters"),
		Entry("header injection", "secret-token\r\nX-Admin: yes", "white space or control characters"),
		Entry("non-ASCII", "secret-tökén", "white space or control characters"),
	)

	It("gives the token source the call's context", func() {
		streamer := newFakeStreamer(accepted(`{"eventId":"1"}`))
		type key struct{}
		var seen atomic.Value
		client, err := publisher.New(streamer.URL(), publisher.WithTokenSource(func(ctx context.Context) (string, error) {
			seen.Store(ctx.Value(key{}))
			_, hasDeadline := ctx.Deadline()
			Expect(hasDeadline).To(BeTrue(), "the default timeout bounds the token source too")
			return token, nil
		}))
		Expect(err).NotTo(HaveOccurred())
		ctx := context.WithValue(context.Background(), key{}, "marker")
		_, err = client.PublishSystemEvent(ctx, publisher.SystemEvent{EventType: "maintenance"})
		Expect(err).NotTo(HaveOccurred())
		Expect(seen.Load()).To(Equal("marker"))
	})
})

var _ = Describe("deadlines", func() {
	var (
		// received is closed when the stuck streamer has the request.
		received chan struct{}
		streamer *fakeStreamer
		publish  = func(ctx context.Context, client *publisher.Client) error {
			_, err := client.PublishCustomEvent(ctx, publisher.CustomEvent{EventType: "t"})
			return err
		}
	)

	BeforeEach(func() {
		received = make(chan struct{})
		var once sync.Once
		// A streamer that never answers: it waits until the client gives up.
		streamer = newFakeStreamer(func(_ http.ResponseWriter, r *http.Request) {
			once.Do(func() { close(received) })
			<-r.Context().Done()
		})
	})

	// The specs pass their SpecContext, so that a client that ignored its
	// bounds fails the spec (with context.Canceled) instead of hanging it.

	It("gives up after WithTimeout", func(ctx SpecContext) {
		start := time.Now()
		err := publish(ctx, newClient(streamer, publisher.WithTimeout(100*time.Millisecond)))
		Expect(err).To(MatchError(context.DeadlineExceeded))
		Expect(err).To(MatchError(HavePrefix("publisher: publish custom event: Post ")))
		Expect(time.Since(start)).To(BeNumerically(">=", 100*time.Millisecond))
		Expect(received).To(BeClosed())
	}, SpecTimeout(10*time.Second))

	It("gives up at the context's deadline", func(spec SpecContext) {
		ctx, cancel := context.WithTimeout(spec, 100*time.Millisecond)
		defer cancel()
		err := publish(ctx, newClient(streamer))
		Expect(err).To(MatchError(context.DeadlineExceeded))
		Expect(received).To(BeClosed())
	}, SpecTimeout(10*time.Second))

	It("gives up when the context is cancelled", func() {
		ctx, cancel := context.WithCancel(context.Background())
		defer cancel()
		go func() {
			defer GinkgoRecover()
			<-received
			cancel()
		}()
		err := publish(ctx, newClient(streamer, publisher.WithTimeout(0)))
		Expect(err).To(MatchError(context.Canceled))
	})

	It("bounds a token source by WithTimeout", func(ctx SpecContext) {
		client, err := publisher.New(streamer.URL(), publisher.WithTimeout(50*time.Millisecond),
			publisher.WithTokenSource(func(ctx context.Context) (string, error) {
				<-ctx.Done()
				return "", ctx.Err()
			}))
		Expect(err).NotTo(HaveOccurred())
		Expect(publish(ctx, client)).To(MatchError(context.DeadlineExceeded))
		Expect(streamer.Requests()).To(BeEmpty())
	}, SpecTimeout(10*time.Second))
})
