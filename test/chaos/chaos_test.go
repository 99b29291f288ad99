package chaos_test

import (
	"context"
	"errors"
	"fmt"
	"math/rand/v2"
	"net/http"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	. "github.com/onsi/ginkgo/v2"
	. "github.com/onsi/gomega"
	"golang.org/x/sync/errgroup"

	"github.com/herald-notify/herald/internal/testutil/fleettest"
	"github.com/herald-notify/herald/streamer/log/jetstreamlog"
)

const (
	namespace   = "chaos"
	channelName = "app"
	streamers   = 3
	// deliveryTimeout bounds the wait, once every notification was
	// accepted, for the last of them to reach their recipients.
	deliveryTimeout = 2 * time.Minute
	// globalAccount is the account of a NATS server without accounts: the
	// one the channel's stream lives in.
	globalAccount = "$G"
)

var _ = Describe("a streamer fleet under chaos", func() {
	It("delivers every accepted notification to each of its recipients, in order, while a NATS node and a streamer are killed and restarted",
		func(ctx SpecContext) {
			r := newRun(ctx)
			By(fmt.Sprintf("connecting %d users, spread over %d streamers", cfg.users, streamers))
			r.connectUsers(ctx)
			By(fmt.Sprintf("publishing %d notifications through random replicas while the faults strike", cfg.notifications))
			Expect(r.publishThroughFaults(ctx)).To(Succeed())
			r.expectFleetWhole(ctx)
			By("waiting for every notification to reach its recipients")
			r.awaitDelivery(ctx)
			r.stopUsers()
			r.verify()
		}, SpecTimeout(cfg.timeout))
})

// run is one chaos run: its plan, its fleet, its clients and what they saw.
type run struct {
	seed     uint64
	plan     []*planned
	channel  *fleettest.Channel
	fleet    *fleet
	inboxes  []*inbox
	users    []*user
	accepted []string    // the 202's eventId, by notification index
	attempts [][]attempt // the requests that published it
	progress *progress
	timeline *timeline
	stats    stats
	problems problems

	firstStreams atomic.Int64
	stopClients  context.CancelFunc
	clients      sync.WaitGroup
	published    time.Duration // wall time of publishing and faults
	delivered    time.Duration // then until every notification arrived
}

// newRun plans the notifications and starts the streamers.
func newRun(ctx context.Context) *run {
	GinkgoHelper()
	r := &run{
		seed: uint64(cfg.seed), accepted: make([]string, cfg.notifications), attempts: make([][]attempt, cfg.notifications),
		progress: newProgress(cfg.notifications),
	}
	r.plan = makePlan(cfg, r.rng(0))
	var err error
	r.channel, err = fleettest.WriteChannel(GinkgoT().TempDir(), fleettest.ChannelOptions{
		Namespace: namespace, Name: channelName, NATSURL: cluster.URL(),
		// Retention holds every event of the run, copies included, so that
		// no resume may be answered "not recovered".
		MaxEvents: 2*cfg.notifications + 1000,
		// Per pod today: a user holds one stream, but the one a client
		// dropped may linger until its replica notices.
		MaxPerUser: 10,
		// Keep-alives at the default pace: the streams carry traffic.
		KeepAlive: 30 * time.Second,
	})
	Expect(err).NotTo(HaveOccurred())
	r.fleet, err = startFleet(herald, r.channel.Path, streamers)
	DeferCleanup(func() { Expect(r.fleet.stop()).To(Succeed()) })
	Expect(err).NotTo(HaveOccurred())
	for i := range streamers {
		Eventually(ctx, func() (int, error) { return fleettest.Readyz(r.fleet.addrs[i].Ops) }).Should(Equal(http.StatusOK))
	}
	DeferCleanup(r.report) // also when the run fails
	fmt.Fprintf(GinkgoWriter, "chaos: seed %d (%s=%d repeats this run's plan and choices)\n", cfg.seed, envSeed, cfg.seed)
	return r
}

// rng is the random source of one part of the run (0 the plan and the
// faults, then one per user and per publisher), derived from the seed.
func (r *run) rng(part uint64) *rand.Rand { return rand.New(rand.NewPCG(r.seed, part)) }

// connectUsers starts every user's client, user u on streamer u%3 first,
// and waits until each holds a stream: a notification published before a
// user's first stream is not theirs to receive.
func (r *run) connectUsers(ctx context.Context) {
	GinkgoHelper()
	clientsCtx, cancel := context.WithCancel(ctx)
	r.stopClients = cancel
	DeferCleanup(r.stopUsers) // before the fleet stops: the clients would come back
	client := newStreamClient()
	for u := range cfg.users {
		token, err := r.channel.Token(userName(u), false)
		Expect(err).NotTo(HaveOccurred())
		b := newInbox(u, r.plan, cfg.publishers)
		usr := &user{
			index: u, token: token, inbox: b, fleet: r.fleet, client: client, rng: r.rng(1 + uint64(u)),
			stats: &r.stats, problems: &r.problems, firstStreams: &r.firstStreams,
		}
		r.inboxes, r.users = append(r.inboxes, b), append(r.users, usr)
		r.clients.Go(func() { usr.run(clientsCtx, u%streamers) })
	}
	Eventually(ctx, r.firstStreams.Load).Should(BeNumerically("==", cfg.users), "every user holds a stream")
	Expect(r.problems.String()).To(Equal("none"))
}

// publishThroughFaults runs the publishers and the faults to the end, and
// returns the first error of any.
func (r *run) publishThroughFaults(ctx context.Context) error {
	token, err := r.channel.Token("backend", true)
	if err != nil {
		return err
	}
	client := newPublishClient(cfg.publishers)
	r.timeline = &timeline{start: time.Now()}
	group, groupCtx := errgroup.WithContext(ctx)
	for k := range cfg.publishers {
		p := &publisher{
			index: k, token: token, fleet: r.fleet, client: client, rng: r.rng(1 + uint64(cfg.users) + uint64(k)),
			stats: &r.stats, progress: r.progress, accepted: r.accepted, attempts: r.attempts,
		}
		for _, n := range r.plan {
			if n.publisher == k {
				p.plan = append(p.plan, n)
			}
		}
		group.Go(func() error { return p.run(groupCtx) })
	}
	group.Go(func() error { return strike(groupCtx, r.faults(), r.progress, r.timeline) })
	err = group.Wait()
	r.published = time.Since(r.timeline.start)
	return err
}

// faults are the run's blows: the stream's leader among the NATS nodes
// goes, then a streamer is killed and started again while the node is
// still away, then the node comes back; last every client drops its stream
// at once and resumes on a random replica, the restarted one included.
func (r *run) faults() []fault {
	victim := r.rng(0).IntN(streamers)
	node := -1
	return []fault{
		{at: 0.10, name: "stopping the stream's leader", do: func() (string, error) {
			var how string
			node, how = streamLeader()
			cluster.Stop(node)
			return fmt.Sprintf("stopped NATS node %d (%s)", node+1, how), nil
		}},
		{at: 0.25, name: "killing a streamer", do: func() (string, error) {
			return fmt.Sprintf("killed streamer %s (SIGKILL)", streamerName(victim)), r.fleet.kill(victim)
		}},
		{at: 0.45, name: "restarting the streamer", do: func() (string, error) {
			return fmt.Sprintf("restarted streamer %s on its ports (NATS node %d still down)", streamerName(victim), node+1),
				r.fleet.restart(victim)
		}},
		{at: 0.65, name: "restarting the NATS node", do: func() (string, error) {
			return fmt.Sprintf("restarted NATS node %d", node+1), cluster.Restart(node)
		}},
		{at: 0.80, name: "dropping every stream", do: func() (string, error) {
			for _, u := range r.users {
				u.dropStream()
			}
			return fmt.Sprintf("dropped all %d streams: each resumes on a random replica", len(r.users)), nil
		}},
	}
}

// streamLeader is the NATS node that leads the channel's stream, or the
// first running node when none does right now (an election under way).
func streamLeader() (int, string) {
	stream := jetstreamlog.StreamName(namespace, channelName)
	first := -1
	for i := range cluster.Size() {
		srv, err := cluster.Server(i)
		if err != nil {
			continue
		}
		if srv.JetStreamIsStreamLeader(globalAccount, stream) {
			return i, "the stream's leader"
		}
		if first < 0 {
			first = i
		}
	}
	return max(first, 0), "no stream leader known: the first running node"
}

// expectFleetWhole checks that every streamer and NATS node came back and
// is ready.
func (r *run) expectFleetWhole(ctx context.Context) {
	GinkgoHelper()
	Expect(cluster.WaitReady()).To(Succeed())
	for i := range streamers {
		Eventually(ctx, func() (int, error) { return fleettest.Readyz(r.fleet.addrs[i].Ops) }).
			Should(Equal(http.StatusOK), "streamer %s is ready again", streamerName(i))
	}
}

// awaitDelivery waits until every recipient of every notification received
// it, and stops early on a problem the clients found.
func (r *run) awaitDelivery(ctx context.Context) {
	GinkgoHelper()
	start := time.Now()
	Eventually(ctx, func() error {
		if r.problems.any() {
			return StopTrying("the clients found problems").Wrap(errors.New(r.problems.String()))
		}
		return r.missing()
	}).WithTimeout(deliveryTimeout).WithPolling(250 * time.Millisecond).Should(Succeed())
	r.delivered = max(time.Since(start), time.Nanosecond)
}

// missing says which notifications have not reached all their recipients.
func (r *run) missing() error {
	var count int
	var examples []string
	for _, n := range r.plan {
		for _, u := range n.recipients {
			if !r.inboxes[u].has(n.index) {
				count++
				if len(examples) < 10 {
					examples = append(examples, fmt.Sprintf("%s lacks %s (publisher %d's #%d, accepted as %s)",
						userName(u), n.id(), n.publisher, n.seq, r.accepted[n.index]))
				}
			}
		}
	}
	if count == 0 {
		return nil
	}
	return fmt.Errorf("%d deliveries missing, such as:\n  %s", count, strings.Join(examples, "\n  "))
}

// stopUsers closes every stream and waits for the clients to return.
func (r *run) stopUsers() {
	if r.stopClients != nil {
		r.stopClients()
	}
	r.clients.Wait()
}

// verify checks what the clients saw, once they stopped.
func (r *run) verify() {
	GinkgoHelper()
	Expect(r.problems.String()).To(Equal("none"), "what the clients found wrong as events arrived")
	Expect(r.unaccounted()).To(BeEmpty(), "every 202's event reached each recipient under the id the 202 named")
	Expect(r.stats.accepted.Load()).To(BeNumerically("==", cfg.notifications))
}

// unaccounted lists the accepted notifications whose 202 named an event a
// recipient did not receive.
func (r *run) unaccounted() []string {
	var out []string
	for _, n := range r.plan {
		for _, u := range n.recipients {
			if ids := r.inboxes[u].arrivedAs(n.index); !slices.Contains(ids, r.accepted[n.index]) {
				out = append(out, fmt.Sprintf("%s: %s accepted as %q, arrived as %q", userName(u), n.id(), r.accepted[n.index], ids))
			}
		}
	}
	return out
}

// report adds the run's summary to the spec's report.
func (r *run) report() {
	if r.timeline == nil {
		return // it failed before publishing
	}
	summary := report(cfg, &r.stats, r.timeline, r.published, r.delivered) + "\n" + r.storedTwice() + "\n" + r.refusals()
	AddReportEntry("chaos", summary)
}

// storedTwice says which notifications some recipient received under more
// than one id, and what their publisher was answered before its 202: a copy
// is stored by a request whose answer was lost, or that was answered 503
// although the broker stored its event.
func (r *run) storedTwice() string {
	var lines []string
	byFirst := map[string]int{}
	for _, n := range r.plan {
		if !r.receivedTwice(n) {
			continue
		}
		tries := r.attempts[n.index]
		byFirst[firstFailure(tries)]++
		if len(lines) < 5 {
			lines = append(lines, fmt.Sprintf("%s: %s", n.id(), joinAttempts(tries)))
		}
	}
	total := 0
	for _, c := range byFirst {
		total += c
	}
	if total == 0 {
		return "  notifications stored twice: none"
	}
	return fmt.Sprintf("  notifications stored twice: %d (by the failure before their 202: %v), such as:\n    %s",
		total, byFirst, strings.Join(lines, "\n    "))
}

// receivedTwice reports whether a recipient received n under two ids.
func (r *run) receivedTwice(n *planned) bool {
	for _, u := range n.recipients {
		if len(r.inboxes[u].arrivedAs(n.index)) > 1 {
			return true
		}
	}
	return false
}

// firstFailure names the kind of the first failed attempt.
func firstFailure(tries []attempt) string {
	for _, a := range tries {
		switch a.status {
		case 0:
			return "no answer"
		case http.StatusAccepted:
		default:
			return fmt.Sprint(a.status)
		}
	}
	return "none: accepted at once"
}

func joinAttempts(tries []attempt) string {
	parts := make([]string, len(tries))
	for i, a := range tries {
		parts[i] = a.String()
	}
	return strings.Join(parts, ", then ")
}

// refusals counts the answers other than 202 by message: why replicas
// refused to publish during the faults.
func (r *run) refusals() string {
	byMessage := map[string]int{}
	for _, tries := range r.attempts {
		for _, a := range tries {
			if a.status != 0 && a.status != http.StatusAccepted {
				byMessage[fmt.Sprintf("%d %s", a.status, a.note)]++
			}
		}
	}
	if len(byMessage) == 0 {
		return "  refusals: none"
	}
	lines := make([]string, 0, len(byMessage))
	for message, count := range byMessage {
		lines = append(lines, fmt.Sprintf("%dx %s", count, message))
	}
	slices.Sort(lines)
	return "  refusals:\n    " + strings.Join(lines, "\n    ")
}
