package publisher_test

import (
	"context"
	"crypto/rand"
	"encoding/json"
	"errors"
	"net/http"
	"net/http/httptest"
	"strings"
	"time"

	. "github.com/onsi/ginkgo/v2"
	. "github.com/onsi/gomega"

	"github.com/herald-notify/herald/api/v1alpha1"
	"github.com/herald-notify/herald/streamer/auth"
	eventpkg "github.com/herald-notify/herald/streamer/event"
	eventlog "github.com/herald-notify/herald/streamer/log"
	"github.com/herald-notify/herald/streamer/publish"
	"github.com/herald-notify/herald/streamer/publisher"
)

// These specs run the client against the streamer's real publish API, so
// that the two cannot drift apart unnoticed.
var _ = Describe("against the streamer's publish API", func() {
	var (
		secret   []byte
		eventLog *eventlog.Embedded
		baseURL  string
	)

	// signToken mints an HS256 token for the suite's secret.
	signToken := func(publishGrant bool) string {
		GinkgoHelper()
		signed, err := auth.Sign(auth.TokenClaims{
			Subject:   "backend",
			IssuedAt:  time.Now(),
			ExpiresAt: time.Now().Add(time.Hour),
			Publish:   publishGrant,
		}, v1alpha1.HS256, "", secret)
		Expect(err).NotTo(HaveOccurred())
		return signed
	}

	// client is a client of the real API with a token that may publish.
	client := func() *publisher.Client {
		GinkgoHelper()
		c, err := publisher.New(baseURL, publisher.WithToken(signToken(true)))
		Expect(err).NotTo(HaveOccurred())
		return c
	}

	// stored is the log event with the given id.
	stored := func(id string) eventlog.Event {
		GinkgoHelper()
		pos, err := eventlog.ParsePosition(id)
		Expect(err).NotTo(HaveOccurred())
		events, _, err := eventLog.ReadAfter(context.Background(), eventlog.Position{Epoch: pos.Epoch, Seq: pos.Seq - 1}, 1)
		Expect(err).NotTo(HaveOccurred())
		Expect(events).To(HaveLen(1))
		Expect(events[0].Position).To(Equal(pos))
		return events[0]
	}

	BeforeEach(func() {
		secret = make([]byte, 32)
		_, _ = rand.Read(secret)
		keys, err := auth.ParseKeys(nil, map[string][]byte{"default": secret})
		Expect(err).NotTo(HaveOccurred())
		verifier, err := auth.NewVerifier(auth.Options{Keys: keys})
		Expect(err).NotTo(HaveOccurred())
		eventLog = eventlog.NewEmbedded(eventlog.Options{})
		DeferCleanup(eventLog.Close)
		mux := http.NewServeMux()
		publish.New(publish.Options{Log: eventLog, Authenticator: verifier, NewID: func() string { return "generated-1" }}).Register(mux)
		server := httptest.NewServer(mux)
		DeferCleanup(server.Close)
		baseURL = server.URL
	})

	It("publishes a notification, one log event for all its recipients, each named in their copy", func() {
		result, err := client().PublishNotification(context.Background(), publisher.Notification{
			RecipientUserIDs: []string{"u1", "u2"},
			NotificationType: "VOCAB_TRAINER",
			Action:           "CREATE",
			Priority:         publisher.PriorityLow,
			Data:             map[string]string{"message": "New vocab trainer available"},
		})
		Expect(err).NotTo(HaveOccurred())
		Expect(result.NotificationID).To(Equal("generated-1"))
		Expect(result.EventIDs).To(Equal([]string{result.EventID, result.EventID}))
		event := stored(result.EventID)
		Expect(event.UserIDs).To(Equal([]string{"u1", "u2"}))
		for _, user := range []string{"u1", "u2"} {
			var delivered map[string]any
			Expect(json.Unmarshal(eventpkg.WithRecipient(nil, event.Data, user), &delivered)).To(Succeed())
			Expect(delivered).To(HaveKeyWithValue("userId", user))
			Expect(delivered).To(HaveKeyWithValue("notificationType", "VOCAB_TRAINER"))
			Expect(delivered).To(HaveKeyWithValue("action", "CREATE"))
			Expect(delivered).To(HaveKeyWithValue("priority", "LOW"))
			Expect(delivered).To(HaveKeyWithValue("data", map[string]any{"message": "New vocab trainer available"}))
		}
	})

	It("publishes a system event and a custom event", func() {
		id, err := client().PublishSystemEvent(context.Background(), publisher.SystemEvent{
			EventType: "maintenance", Priority: publisher.PriorityHigh, Data: map[string]string{"message": "at noon"},
		})
		Expect(err).NotTo(HaveOccurred())
		Expect(stored(id).UserIDs).To(BeEmpty())
		Expect(string(stored(id).Data)).To(ContainSubstring(`"priority":"HIGH"`))

		id, err = client().PublishCustomEvent(context.Background(), publisher.CustomEvent{
			EventType: "user_activity", Data: map[string]string{"action": "login"}, UserIDs: []string{"u3"},
		})
		Expect(err).NotTo(HaveOccurred())
		Expect(stored(id).UserIDs).To(Equal([]string{"u3"}))
	})

	// The client keeps its own copy of the priorities, so that backends need
	// not import the API types: it must be the streamer's list, and the
	// default it documents must be the streamer's.
	It("knows the streamer's priorities: the same values, in the same order", func() {
		Expect(publisher.Priorities).To(HaveLen(len(v1alpha1.Priorities)))
		for i, p := range publisher.Priorities {
			Expect(string(p)).To(Equal(string(v1alpha1.Priorities[i])))
			id, err := client().PublishSystemEvent(context.Background(), publisher.SystemEvent{EventType: "maintenance", Priority: p})
			Expect(err).NotTo(HaveOccurred(), "the streamer refuses %s", p)
			Expect(string(stored(id).Data)).To(ContainSubstring(`"priority":"` + string(p) + `"`))
		}

		id, err := client().PublishSystemEvent(context.Background(), publisher.SystemEvent{EventType: "maintenance"})
		Expect(err).NotTo(HaveOccurred())
		Expect(string(stored(id).Data)).To(ContainSubstring(`"priority":"` + string(publisher.PriorityMedium) + `"`))
	})

	It("is refused without the publish grant", func() {
		c, err := publisher.New(baseURL, publisher.WithToken(signToken(false)))
		Expect(err).NotTo(HaveOccurred())
		_, err = c.PublishCustomEvent(context.Background(), publisher.CustomEvent{EventType: "t"})
		Expect(err).To(MatchError(publisher.ErrForbidden))
		var apiErr *publisher.APIError
		Expect(errors.As(err, &apiErr)).To(BeTrue())
		Expect(apiErr.Code).To(Equal("forbidden"))
		Expect(eventLog.Len()).To(BeZero())
	})

	It("is refused with a token the streamer cannot verify", func() {
		c, err := publisher.New(baseURL, publisher.WithToken("not.a.token"))
		Expect(err).NotTo(HaveOccurred())
		_, err = c.PublishCustomEvent(context.Background(), publisher.CustomEvent{EventType: "t"})
		Expect(err).To(MatchError(publisher.ErrUnauthorized))
	})

	It("reports the streamer's own validation as invalid", func() {
		_, err := client().PublishCustomEvent(context.Background(), publisher.CustomEvent{EventType: strings.Repeat("x", 300)})
		Expect(err).To(MatchError(publisher.ErrInvalidRequest))
		var apiErr *publisher.APIError
		Expect(errors.As(err, &apiErr)).To(BeTrue())
		Expect(apiErr.Code).To(Equal("invalid_request"))
		Expect(apiErr.Message).To(ContainSubstring("eventType"))
	})

	It("reports a body over the streamer's limit as too large", func() {
		_, err := client().PublishCustomEvent(context.Background(), publisher.CustomEvent{
			EventType: "t", Data: map[string]string{"blob": strings.Repeat("x", publish.DefaultMaxBodyBytes)},
		})
		Expect(err).To(MatchError(publisher.ErrTooLarge))
	})
})
