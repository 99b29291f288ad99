package hub_test

import (
	"context"
	"sync"
	"testing"
	"time"

	. "github.com/onsi/ginkgo/v2"
	. "github.com/onsi/gomega"

	"github.com/herald-notify/herald/streamer/hub"
	eventlog "github.com/herald-notify/herald/streamer/log"
	"github.com/herald-notify/herald/streamer/log/logtest"

	"github.com/herald-notify/herald/internal/testutil"
)

func TestHub(t *testing.T) {
	testutil.RunSuite(t, "hub")
}

// recorder is an Observer that remembers what it was told.
type recorder struct {
	mu          sync.Mutex
	disconnects []hub.CloseReason
}

func (r *recorder) Delivered(hub.Write) {}
func (r *recorder) ReadFailed(error)    {}

func (r *recorder) Disconnected(reason hub.CloseReason) {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.disconnects = append(r.disconnects, reason)
}

func (r *recorder) Disconnects() []hub.CloseReason {
	r.mu.Lock()
	defer r.mu.Unlock()
	return append([]hub.CloseReason(nil), r.disconnects...)
}

// running starts a hub over a fresh log until the spec ends.
func running(opts hub.Options) (*hub.Hub, *eventlog.Embedded) {
	log := eventlog.NewEmbedded(eventlog.Options{})
	return runningOn(log, opts), log
}

// runningOn is a hub reading log, running until the spec ends.
func runningOn(log eventlog.Log, opts hub.Options) *hub.Hub {
	h := hub.New(log, opts)
	run(h)
	return h
}

// run runs h until the spec ends.
func run(h *hub.Hub) {
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() { h.Run(ctx); close(done) }()
	DeferCleanup(func() {
		cancel()
		Eventually(done).Should(BeClosed())
	})
}

func publish(log eventlog.Log, data string, users ...string) eventlog.Position {
	GinkgoHelper()
	r, err := log.Append(context.Background(), eventlog.Event{Type: "custom", UserIDs: users, Data: []byte(data)}, "")
	Expect(err).NotTo(HaveOccurred())
	return r.Position
}

// take is Conn.Take with the frames of its runs in one slice.
func take(c *hub.Conn) (frames []hub.Frame, done bool, reason hub.CloseReason) {
	runs, done, reason, _ := c.Take(nil)
	for _, run := range runs {
		frames = append(frames, run...)
	}
	return frames, done, reason
}

// taken collects the positions of the frames queued on c, waiting for n of
// them.
func taken(c *hub.Conn, n int) []eventlog.Position {
	GinkgoHelper()
	var positions []eventlog.Position
	Eventually(func() []eventlog.Position {
		frames, _, _ := take(c)
		for _, f := range frames {
			positions = append(positions, f.Position)
		}
		return positions
	}).Should(HaveLen(n))
	return positions
}

var _ = Describe("the hub", func() {
	It("queues each event on its recipients' streams only, encoded once", func() {
		h, log := running(hub.Options{})
		u1, _, err := h.Register("u1")
		Expect(err).NotTo(HaveOccurred())
		u2, _, err := h.Register("u2")
		Expect(err).NotTo(HaveOccurred())

		direct := publish(log, `{"n":1}`, "u1")
		all := publish(log, `{"n":2}`)
		Expect(taken(u1, 2)).To(Equal([]eventlog.Position{direct, all}))
		Expect(taken(u2, 1)).To(Equal([]eventlog.Position{all}))
	})

	It("hands consecutive events to everyone as one run of frames, shared by every stream", func() {
		log := eventlog.NewEmbedded(eventlog.Options{})
		h := hub.New(log, hub.Options{})
		u1, _, err := h.Register("u1")
		Expect(err).NotTo(HaveOccurred())
		u2, _, err := h.Register("u2")
		Expect(err).NotTo(HaveOccurred())
		// Appended before the hub runs: it reads the three at once.
		want := []eventlog.Position{publish(log, `{"n":1}`), publish(log, `{"n":2}`), publish(log, `{"n":3}`)}
		run(h)

		var runs [2][][]hub.Frame
		for i, c := range []*hub.Conn{u1, u2} {
			Eventually(func() [][]hub.Frame { runs[i], _, _, _ = c.Take(nil); return runs[i] }).Should(HaveLen(1), "one run")
			Expect(runs[i][0]).To(HaveLen(3))
			for j, f := range runs[i][0] {
				Expect(f.Position).To(Equal(want[j]))
			}
		}
		Expect(&runs[0][0][0]).To(BeIdenticalTo(&runs[1][0][0]), "the streams share the run's frames, not copies")
	})

	It("gives each stream a random id, which says nothing of the streams opened before or after it", func() {
		h, _ := running(hub.Options{MaxPerUser: 100})
		ids := map[hub.StreamID]bool{}
		var previous hub.StreamID
		for range 50 {
			c, _, err := h.Register("u1")
			Expect(err).NotTo(HaveOccurred())
			Expect(c.ID()).NotTo(BeZero())
			Expect(ids).NotTo(HaveKey(c.ID()), "ids are unique")
			ids[c.ID()] = true
			Expect(c.ID()-previous).NotTo(BeNumerically("<=", 50), "not sequential")
			previous = c.ID()
		}
	})

	It("closes a stream whose queue reaches its bound as a slow consumer", func() {
		observer := &recorder{}
		h, log := running(hub.Options{SendQueueBytes: 4096, Observer: observer})
		slow, _, err := h.Register("slow")
		Expect(err).NotTo(HaveOccurred())
		payload := `{"pad":"` + string(make([]byte, 1000)) + `"}`
		for range 10 {
			publish(log, payload)
		}
		Eventually(observer.Disconnects).Should(ConsistOf(hub.CloseSlowConsumer))
		Eventually(slow.Wake()).Should(Receive())
		frames, done, reason := take(slow)
		Expect(done).To(BeTrue())
		Expect(reason).To(Equal(hub.CloseSlowConsumer))
		Expect(frames).To(BeEmpty(), "its backlog is released at once")
		Expect(h.Len()).To(Equal(0))
	})

	It("replaces the oldest stream of a user at the limit, or rejects", func() {
		h, _ := running(hub.Options{MaxPerUser: 1})
		first, _, err := h.Register("u1")
		Expect(err).NotTo(HaveOccurred())
		_, _, err = h.Register("u1")
		Expect(err).NotTo(HaveOccurred())
		_, done, reason := take(first)
		Expect(done).To(BeTrue())
		Expect(reason).To(Equal(hub.CloseReplaced))
		Expect(h.Len()).To(Equal(1))

		strict, _ := running(hub.Options{MaxPerUser: 1, Policy: hub.Reject})
		_, _, err = strict.Register("u1")
		Expect(err).NotTo(HaveOccurred())
		_, _, err = strict.Register("u1")
		Expect(err).To(MatchError(hub.ErrUserLimit))
	})

	It("applies lowered limits from the next connect, leaving connected streams alone", func() {
		observer := &recorder{}
		h, _ := running(hub.Options{MaxPerUser: 3, Observer: observer})
		oldest := make([]*hub.Conn, 0, 3)
		for range 3 {
			c, _, err := h.Register("u1")
			Expect(err).NotTo(HaveOccurred())
			oldest = append(oldest, c)
		}

		h.SetLimits(hub.Options{MaxPerUser: 1, MaxConnections: 4})
		Expect(h.Len()).To(Equal(3), "SetLimits closes nothing")
		Expect(observer.Disconnects()).To(BeEmpty())

		By("replacing as many of the user's oldest streams as it takes to admit the new one")
		_, _, err := h.Register("u1")
		Expect(err).NotTo(HaveOccurred())
		for _, c := range oldest {
			_, done, reason := take(c)
			Expect(done).To(BeTrue())
			Expect(reason).To(Equal(hub.CloseReplaced))
		}
		Expect(h.Len()).To(Equal(1))
		Expect(observer.Disconnects()).To(HaveLen(3), "the hub keeps its observer")

		By("rejecting under the new policy, and counting the new process limit")
		h.SetLimits(hub.Options{MaxPerUser: 1, Policy: hub.Reject, MaxConnections: 2})
		_, _, err = h.Register("u1")
		Expect(err).To(MatchError(hub.ErrUserLimit))
		_, _, err = h.Register("u2")
		Expect(err).NotTo(HaveOccurred())
		_, _, err = h.Register("u3")
		Expect(err).To(MatchError(hub.ErrProcessLimit))
	})

	It("refuses streams beyond the process limit and after a drain started", func() {
		h, _ := running(hub.Options{MaxConnections: 1})
		_, _, err := h.Register("u1")
		Expect(err).NotTo(HaveOccurred())
		_, _, err = h.Register("u2")
		Expect(err).To(MatchError(hub.ErrProcessLimit))

		h.Drain(context.Background(), 0, 0, nil)
		Expect(h.Len()).To(Equal(0))
		_, _, err = h.Register("u3")
		Expect(err).To(MatchError(hub.ErrClosed))
	})

	It("tells a joining stream where the live events start", func() {
		h, log := running(hub.Options{})
		before := publish(log, `{}`)
		Eventually(func() eventlog.Position {
			probe, joined, err := h.Register("probe")
			Expect(err).NotTo(HaveOccurred())
			h.Unregister(probe, hub.CloseClient)
			return joined
		}).Should(Equal(before))
		c, joined, err := h.Register("u1")
		Expect(err).NotTo(HaveOccurred())
		Expect(joined).To(Equal(before))
		after := publish(log, `{}`)
		Expect(taken(c, 1)).To(Equal([]eventlog.Position{after}), "the earlier event is the log's to replay")
	})

	It("closes every stream as lagged when the log dropped events it had yet to dispatch, then goes on", func() {
		observer := &recorder{}
		log := logtest.NewGatedReads(eventlog.NewEmbedded(eventlog.Options{MaxEvents: 10}))
		h := hub.New(log, hub.Options{Observer: observer})
		u1, _, err := h.Register("u1")
		Expect(err).NotTo(HaveOccurred())
		u2, _, err := h.Register("u2")
		Expect(err).NotTo(HaveOccurred())
		ctx, cancel := context.WithCancel(context.Background())
		done := make(chan struct{})
		go func() { h.Run(ctx); close(done) }()
		DeferCleanup(func() { cancel(); Eventually(done).Should(BeClosed()) })

		By("publishing past the log's retention before the hub reads it")
		for range 25 {
			publish(log, `{}`, "u1")
		}
		close(log.Gate)
		Eventually(observer.Disconnects).Should(ConsistOf(hub.CloseLagged, hub.CloseLagged))
		for _, c := range []*hub.Conn{u1, u2} {
			frames, done, reason := take(c)
			Expect(done).To(BeTrue())
			Expect(reason).To(Equal(hub.CloseLagged))
			Expect(frames).To(BeEmpty(), "no event that follows a gap is handed out")
		}
		Expect(h.Len()).To(Equal(0))

		By("delivering what follows to the streams that join afterwards")
		again, _, err := h.Register("u1")
		Expect(err).NotTo(HaveOccurred())
		next := publish(log, `{}`, "u1")
		Expect(taken(again, 1)).To(Equal([]eventlog.Position{next}))
	})
})

var _ = It("queues an event larger than the bound for a client with nothing queued", func() {
	h, log := running(hub.Options{SendQueueBytes: 4096})
	c, _, err := h.Register("u1")
	Expect(err).NotTo(HaveOccurred())
	big := publish(log, `{"pad":"`+string(make([]byte, 10000))+`"}`)
	Expect(taken(c, 1)).To(Equal([]eventlog.Position{big}))
	Expect(h.Len()).To(Equal(1))
})

var _ = It("hands each recipient of a notification, logged once, a copy that names them", func() {
	h, log := running(hub.Options{})
	u1, _, err := h.Register("u1")
	Expect(err).NotTo(HaveOccurred())
	u2, _, err := h.Register("u2")
	Expect(err).NotTo(HaveOccurred())
	other, _, err := h.Register("u3")
	Expect(err).NotTo(HaveOccurred())
	r, err := log.Append(context.Background(), eventlog.Event{
		Type: "notification", UserIDs: []string{"u1", "u2"}, Data: []byte(`{"type":"notification"}`),
	}, "")
	Expect(err).NotTo(HaveOccurred())
	for user, c := range map[string]*hub.Conn{"u1": u1, "u2": u2} {
		var frames []hub.Frame
		Eventually(func() []hub.Frame { frames, _, _ = take(c); return frames }).Should(HaveLen(1))
		Expect(frames[0].Position).To(Equal(r.Position))
		Expect(string(frames[0].Bytes)).To(Equal("id: " + r.Position.String() + "\ndata: {\"type\":\"notification\",\"userId\":\"" + user + "\"}\n\n"))
	}
	Consistently(func() []hub.Frame { f, _, _ := take(other); return f }, 100*time.Millisecond).Should(BeEmpty())
})
