package event_test

import (
	"testing"
	"time"

	. "github.com/onsi/ginkgo/v2"
	. "github.com/onsi/gomega"

	"github.com/herald-notify/herald/api/v1alpha1"
	"github.com/herald-notify/herald/internal/testutil"
	"github.com/herald-notify/herald/streamer/event"
)

func TestEvent(t *testing.T) {
	testutil.RunSuite(t, "Event vocabulary")
}

// The values are the client contract (DESIGN.md): spelt out here, not taken
// from the package, so that changing one fails.
var _ = Describe("the event vocabulary", func() {
	It("names the types and actions as the NestJS module's clients know them", func() {
		Expect([]string{event.TypeConnection, event.TypeNotification, event.TypeSystem, event.TypeCustom}).
			To(Equal([]string{"connection", "notification", "system", "custom"}))
		Expect([]string{event.ActionCreate, event.ActionUpdate, event.ActionDelete}).
			To(Equal([]string{"CREATE", "UPDATE", "DELETE"}))
	})

	It("writes timestamps in UTC with milliseconds, whatever the time's location", func() {
		berlin := time.FixedZone("CET", 3600)
		Expect(event.Timestamp(time.Date(2024, 1, 1, 1, 0, 0, 123456789, berlin))).To(Equal("2024-01-01T00:00:00.123Z"))
		Expect(event.Timestamp(time.Date(2024, 1, 1, 0, 0, 0, 0, time.UTC))).To(Equal("2024-01-01T00:00:00.000Z"))
	})

	DescribeTable("parses a priority",
		func(given string, want v1alpha1.Priority) {
			Expect(event.ParsePriority(given)).To(Equal(want))
		},
		Entry("none as the default, MEDIUM", "", v1alpha1.PriorityMedium),
		Entry("LOW", "LOW", v1alpha1.PriorityLow),
		Entry("MEDIUM", "MEDIUM", v1alpha1.PriorityMedium),
		Entry("HIGH", "HIGH", v1alpha1.PriorityHigh),
		Entry("CRITICAL", "CRITICAL", v1alpha1.PriorityCritical),
	)

	It("accepts every priority a SystemEvent may hold", func() {
		for _, p := range v1alpha1.Priorities {
			Expect(event.ParsePriority(string(p))).To(Equal(p))
		}
	})

	DescribeTable("refuses an unknown priority, naming the valid ones",
		func(given string) {
			_, err := event.ParsePriority(given)
			Expect(err).To(MatchError(`priority must be one of LOW, MEDIUM, HIGH, CRITICAL, not "` + given + `"`))
		},
		Entry("another word", "URGENT"),
		Entry("lower case", "low"),
		Entry("padded", " LOW"),
	)
})

var _ = DescribeTable("names a notification's recipient in their copy, last",
	func(data, user, want string) {
		Expect(string(event.WithRecipient([]byte("prefix:"), []byte(data), user))).To(Equal("prefix:" + want))
	},
	Entry("a notification", `{"type":"notification","timestamp":"t"}`, "u1", `{"type":"notification","timestamp":"t","userId":"u1"}`),
	Entry("an empty object", `{}`, "u1", `{"userId":"u1"}`),
	Entry("a user id that JSON must escape", `{"a":1}`, "u\"1\\\t<", `{"a":1,"userId":"u\"1\\\t\u003c"}`),
	Entry("not an object: left as it is", `[1]`, "u1", `[1]`),
)
