package announce_test

import (
	"context"
	"encoding/json"
	"fmt"
	"strings"
	"sync"
	"testing"
	"time"

	. "github.com/onsi/ginkgo/v2"
	. "github.com/onsi/gomega"
	"go.uber.org/goleak"
	apiextensionsv1 "k8s.io/apiextensions-apiserver/pkg/apis/apiextensions/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"

	notifyv1alpha1 "github.com/herald-notify/herald/api/v1alpha1"
	"github.com/herald-notify/herald/internal/testutil"
	"github.com/herald-notify/herald/streamer/announce"
	eventlog "github.com/herald-notify/herald/streamer/log"
)

func TestAnnounce(t *testing.T) {
	testutil.RunSuite(t, "SystemEvent announcements")
}

var leaksBefore goleak.Option

var _ = BeforeSuite(func() {
	SetDefaultEventuallyTimeout(5 * time.Second)
	leaksBefore = goleak.IgnoreCurrent()
})

// Timers of deleted or superseded revisions may still fire; they must not
// leave goroutines behind once their Announcer stopped.
var _ = AfterSuite(func() {
	Eventually(func() error { return goleak.Find(leaksBefore) }).Should(Succeed())
})

// statusLog records every status written, as the API server would keep the
// last one.
type statusLog struct {
	mu      sync.Mutex
	written []notifyv1alpha1.SystemEventStatus
	fail    int
}

func (s *statusLog) WriteStatus(_ context.Context, _ *notifyv1alpha1.SystemEvent, status notifyv1alpha1.SystemEventStatus) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.fail > 0 {
		s.fail--
		return fmt.Errorf("the API server is unavailable")
	}
	s.written = append(s.written, status)
	return nil
}

// last is the last status written.
func (s *statusLog) last() notifyv1alpha1.SystemEventStatus {
	s.mu.Lock()
	defer s.mu.Unlock()
	if len(s.written) == 0 {
		return notifyv1alpha1.SystemEventStatus{}
	}
	return s.written[len(s.written)-1]
}

// announced is a delivered system event, decoded.
type announced struct {
	ID        eventlog.Position
	Users     []string
	Type      string          `json:"type"`
	EventType string          `json:"eventType"`
	Data      json.RawMessage `json:"data"`
	Action    string          `json:"action"`
	Name      string          `json:"name"`
	Revision  int64           `json:"revision"`
	Priority  string          `json:"priority"`
	Timestamp string          `json:"timestamp"`
}

// fixture is an Announcer running over a real embedded log.
type fixture struct {
	announcer *announce.Announcer
	log       *eventlog.Embedded
	status    *statusLog
	// first is the log's position before its first event.
	first eventlog.Position
}

func start() *fixture {
	f := &fixture{log: eventlog.NewEmbedded(eventlog.Options{}), status: &statusLog{}}
	f.first = f.log.Last()
	f.announcer = announce.New(announce.Options{Channel: "app", Log: f.log, Status: f.status})
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() { f.announcer.Run(ctx); close(done) }()
	DeferCleanup(func() { cancel(); <-done })
	return f
}

// events returns what the log holds.
func (f *fixture) events() []announced {
	logged, _, err := f.log.ReadAfter(context.Background(), f.first, 1000)
	Expect(err).NotTo(HaveOccurred())
	out := make([]announced, len(logged))
	for i, e := range logged {
		Expect(json.Unmarshal(e.Data, &out[i])).To(Succeed())
		out[i].ID, out[i].Users = e.Position, e.UserIDs
	}
	return out
}

// systemEvent is a SystemEvent of channel "app" at generation 1.
func systemEvent(name string, edit func(*notifyv1alpha1.SystemEventSpec)) *notifyv1alpha1.SystemEvent {
	sev := &notifyv1alpha1.SystemEvent{
		ObjectMeta: metav1.ObjectMeta{Namespace: "apps", Name: name, UID: types.UID("uid-" + name), Generation: 1},
		Spec: notifyv1alpha1.SystemEventSpec{
			ChannelRef: notifyv1alpha1.ChannelReference{Name: "app"},
			EventType:  "maintenance",
			Data:       &apiextensionsv1.JSON{Raw: []byte(`{"message":"Down at 02:00"}`)},
			Priority:   notifyv1alpha1.PriorityHigh,
		},
	}
	if edit != nil {
		edit(&sev.Spec)
	}
	return sev
}

// at is a time d from now, as the API stores it.
func at(d time.Duration) *metav1.Time { return new(metav1.NewTime(time.Now().Add(d))) }

var _ = Describe("Announcer", func() {
	It("announces each revision once, however often it is seen", func() {
		f := start()
		sev := systemEvent("maintenance", nil)
		f.announcer.Observe(sev)
		f.announcer.Observe(sev)
		Eventually(f.status.last).Should(HaveField("Phase", notifyv1alpha1.PhaseDelivered))
		sev.Status = f.status.last()
		f.announcer.Observe(sev) // the watch after the status write
		events := f.events()
		Expect(events).To(HaveLen(1))
		Expect(events[0]).To(And(
			HaveField("Type", "system"), HaveField("EventType", "maintenance"),
			HaveField("Data", json.RawMessage(`{"message":"Down at 02:00"}`)),
			HaveField("Action", "CREATE"), HaveField("Name", "maintenance"),
			HaveField("Revision", BeEquivalentTo(1)), HaveField("Priority", "HIGH"),
			HaveField("Timestamp", MatchRegexp(`^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z$`)),
		))
		Expect(events[0].Users).To(BeEmpty())
		Expect(f.status.last()).To(And(
			HaveField("EventID", events[0].ID.String()),
			HaveField("ObservedGeneration", BeEquivalentTo(1)),
			HaveField("DeliveredAt", Not(BeNil())),
		))

		By("announcing an edit as an UPDATE of the next revision")
		edited := sev.DeepCopy()
		edited.Generation = 2
		edited.Spec.Data = &apiextensionsv1.JSON{Raw: []byte(`{"message":"Moved to 03:00"}`)}
		f.announcer.Observe(edited)
		Eventually(func() int { return len(f.events()) }).Should(Equal(2))
		Expect(f.events()[1]).To(And(HaveField("Action", "UPDATE"), HaveField("Revision", BeEquivalentTo(2)),
			HaveField("Data", json.RawMessage(`{"message":"Moved to 03:00"}`))))
		Eventually(f.status.last).Should(HaveField("ObservedGeneration", BeEquivalentTo(2)))
	})

	It("records the streamers' fields only, delivered at the time the log stored the revision", func() {
		f := start()
		sev := systemEvent("maintenance", nil)
		sev.Status.Conditions = []metav1.Condition{{
			Type: notifyv1alpha1.ConditionChannelFound, Status: metav1.ConditionTrue, Reason: notifyv1alpha1.ReasonChannelExists,
		}}
		f.announcer.Observe(sev)
		Eventually(f.status.last).Should(HaveField("Phase", notifyv1alpha1.PhaseDelivered))
		logged, _, err := f.log.ReadAfter(context.Background(), f.first, 1)
		Expect(err).NotTo(HaveOccurred())
		Expect(f.status.last().DeliveredAt.Time).To(Equal(logged[0].Time))
		Expect(f.status.last().Conditions).To(ConsistOf(HaveField("Type", notifyv1alpha1.ConditionReady)),
			"the operator's condition is the operator's to write")
	})

	It("addresses the audience's users only", func() {
		f := start()
		f.announcer.Observe(systemEvent("beta", func(s *notifyv1alpha1.SystemEventSpec) {
			s.Audience = notifyv1alpha1.Audience{UserIDs: []string{"u1", "u2"}}
		}))
		Eventually(f.events).Should(HaveLen(1))
		Expect(f.events()[0].Users).To(Equal([]string{"u1", "u2"}))
	})

	It("ignores the SystemEvents of other channels", func() {
		f := start()
		f.announcer.Observe(systemEvent("other", func(s *notifyv1alpha1.SystemEventSpec) { s.ChannelRef.Name = "shop" }))
		f.announcer.Observe(systemEvent("mine", nil))
		Eventually(f.events).Should(HaveLen(1))
		Expect(f.events()[0].Name).To(Equal("mine"))
	})

	It("stores each revision and retraction once when several replicas announce into one log", func() {
		f := start()
		replica := announce.New(announce.Options{Channel: "app", Log: f.log, Status: &statusLog{}})
		ctx, cancel := context.WithCancel(context.Background())
		done := make(chan struct{})
		go func() { replica.Run(ctx); close(done) }()
		DeferCleanup(func() { cancel(); <-done })

		sev := systemEvent("maintenance", nil)
		f.announcer.Observe(sev)
		replica.Observe(sev)
		Eventually(f.status.last).Should(HaveField("Phase", notifyv1alpha1.PhaseDelivered))
		edited := sev.DeepCopy()
		edited.Generation = 2
		f.announcer.Observe(edited)
		replica.Observe(edited)
		Eventually(f.events).Should(HaveLen(2))
		f.announcer.Forget(edited)
		replica.Forget(edited)
		Eventually(f.events).Should(HaveLen(3))
		Consistently(f.events, 200*time.Millisecond).Should(HaveLen(3))
		actions := []string{}
		for _, e := range f.events() {
			actions = append(actions, e.Action)
		}
		Expect(actions).To(Equal([]string{"CREATE", "UPDATE", "DELETE"}))
	})

	It("does not announce again what its status records, after a restart", func() {
		f := start()
		sev := systemEvent("maintenance", func(s *notifyv1alpha1.SystemEventSpec) { s.ExpiresAt = at(time.Hour) })
		sev.Status = notifyv1alpha1.SystemEventStatus{
			Phase: notifyv1alpha1.PhaseDelivered, EventID: "1-42", ObservedGeneration: 1, DeliveredAt: at(-time.Minute),
		}
		f.announcer.Observe(sev)
		Eventually(func() int { return len(f.announcer.Active("u1", eventlog.Position{}, f.log.Last())) }).Should(Equal(1))
		Expect(f.events()).To(BeEmpty())
		Expect(f.status.written).To(BeEmpty())

		By("still retracting it when it is deleted")
		f.announcer.Forget(sev)
		Eventually(f.events).Should(ConsistOf(And(HaveField("Action", "DELETE"), HaveField("Name", "maintenance"))))
	})

	It("schedules a revision for deliverAt without announcing it early", func() {
		f := start()
		deliverAt := at(1500 * time.Millisecond)
		f.announcer.Observe(systemEvent("later", func(s *notifyv1alpha1.SystemEventSpec) { s.DeliverAt = deliverAt }))
		Eventually(f.status.last).Should(HaveField("Phase", notifyv1alpha1.PhaseScheduled))
		Expect(f.events()).To(BeEmpty())
		Eventually(f.events, 5*time.Second).Should(HaveLen(1))
		logged, _, err := f.log.ReadAfter(context.Background(), f.first, 1)
		Expect(err).NotTo(HaveOccurred())
		Expect(logged[0].Time).To(BeTemporally(">=", deliverAt.Time))
		Eventually(f.status.last).Should(HaveField("Phase", notifyv1alpha1.PhaseDelivered))
	})

	It("hands an announcement to later users until expiresAt, then records Expired", func() {
		f := start()
		sev := systemEvent("incident", func(s *notifyv1alpha1.SystemEventSpec) {
			s.ExpiresAt = at(1500 * time.Millisecond)
			s.Audience = notifyv1alpha1.Audience{UserIDs: []string{"u1"}}
		})
		f.announcer.Observe(sev)
		Eventually(f.events).Should(HaveLen(1))
		id := f.events()[0].ID

		none, later := eventlog.Position{}, eventlog.Position{Epoch: id.Epoch, Seq: id.Seq + 10}
		before := eventlog.Position{Epoch: id.Epoch, Seq: id.Seq - 1}
		Expect(f.announcer.Active("u1", none, id)).To(HaveLen(1), "a user connecting later")
		Expect(string(f.announcer.Active("u1", none, id)[0])).To(ContainSubstring(`"name":"incident"`))
		Expect(f.announcer.Active("u2", none, id)).To(BeEmpty(), "a user outside the audience")
		Expect(f.announcer.Active("u1", id, later)).To(BeEmpty(), "a user whose Last-Event-ID shows it was seen")
		Expect(f.announcer.Active("u1", none, before)).To(BeEmpty(), "a stream that receives it live")

		Eventually(f.status.last, 5*time.Second).Should(HaveField("Phase", notifyv1alpha1.PhaseExpired))
		Expect(f.announcer.Active("u1", none, id)).To(BeEmpty())
		Expect(f.status.last().EventID).To(Equal(id.String()))

		By("not retracting an expired announcement")
		f.announcer.Forget(sev)
		f.announcer.Observe(systemEvent("after", nil))
		Eventually(f.events).Should(HaveLen(2))
		Expect(f.events()[1].Name).To(Equal("after"))
	})

	It("retracts a deleted announcement, and forgets a scheduled one silently", func() {
		f := start()
		banner := systemEvent("banner", nil)
		scheduled := systemEvent("scheduled", func(s *notifyv1alpha1.SystemEventSpec) { s.DeliverAt = at(time.Hour) })
		f.announcer.Observe(banner)
		f.announcer.Observe(scheduled)
		Eventually(f.events).Should(HaveLen(1))
		f.announcer.Forget(scheduled)
		f.announcer.Forget(banner)
		Eventually(f.events).Should(HaveLen(2))
		Expect(f.events()[1]).To(And(HaveField("Action", "DELETE"), HaveField("Name", "banner"),
			HaveField("Data", json.RawMessage(`{"message":"Down at 02:00"}`))))
	})

	It("refuses data over 32 KiB with phase Failed, and announces nothing", func() {
		f := start()
		big := `{"message":"` + strings.Repeat("x", announce.MaxDataBytes) + `"}`
		f.announcer.Observe(systemEvent("huge", func(s *notifyv1alpha1.SystemEventSpec) {
			s.Data = &apiextensionsv1.JSON{Raw: []byte(big)}
		}))
		Eventually(f.status.last).Should(HaveField("Phase", notifyv1alpha1.PhaseFailed))
		Expect(f.status.last().Conditions).To(ContainElement(And(
			HaveField("Reason", notifyv1alpha1.ReasonDataTooLarge), HaveField("Message", ContainSubstring("32768")))))
		Expect(f.events()).To(BeEmpty())
	})

	It("records an expiry that passed before delivery without announcing", func() {
		f := start()
		f.announcer.Observe(systemEvent("stale", func(s *notifyv1alpha1.SystemEventSpec) {
			s.DeliverAt, s.ExpiresAt = at(-2*time.Minute), at(-time.Minute)
		}))
		Eventually(f.status.last).Should(HaveField("Phase", notifyv1alpha1.PhaseExpired))
		Expect(f.events()).To(BeEmpty())
	})

	It("retries a failed status write", func() {
		f := start()
		f.status.fail = 1
		f.announcer.Observe(systemEvent("maintenance", nil))
		Eventually(f.status.last, 10*time.Second).Should(HaveField("Phase", notifyv1alpha1.PhaseDelivered))
		Expect(f.events()).To(HaveLen(1))
	})
})
