package chaos_test

import (
	"context"
	"fmt"
	"math/rand/v2"
	"net"
	"net/http"
	"slices"
	"time"

	. "github.com/onsi/ginkgo/v2"

	"github.com/herald-notify/herald/internal/testutil/fleettest"
)

// publishTimeout bounds one publish request: the streamer answers 503 once
// its broker has not acknowledged within 5 s.
const publishTimeout = 15 * time.Second

// newPublishClient is the HTTP client the publishers share, keeping a
// connection per publisher and replica, as a backend's pool does.
func newPublishClient(publishers int) *http.Client {
	return &http.Client{Timeout: publishTimeout, Transport: &http.Transport{
		DialContext:         (&net.Dialer{Timeout: 2 * time.Second}).DialContext,
		MaxIdleConnsPerHost: publishers,
	}}
}

// publisher publishes its notifications in order, each one only once the
// one before was accepted, through a random replica per request.
type publisher struct {
	index    int
	plan     []*planned // its own, in publish order
	token    string
	fleet    *fleet
	client   *http.Client
	rng      *rand.Rand // this publisher's goroutine's only
	stats    *stats
	progress *progress
	// accepted is the 202's eventId of each notification of the run, and
	// attempts the requests that published it, by index; a publisher
	// writes only its own.
	accepted []string
	attempts [][]attempt
}

// attempt is one publish request and its outcome.
type attempt struct {
	replica int
	status  int    // 0: no answer
	note    string // the error, or the answer's message
}

func (a attempt) String() string {
	if a.status == 0 {
		return fmt.Sprintf("no answer from %s (%s)", streamerName(a.replica), a.note)
	}
	if a.note == "" {
		return fmt.Sprintf("%d from %s", a.status, streamerName(a.replica))
	}
	return fmt.Sprintf("%d from %s (%s)", a.status, streamerName(a.replica), a.note)
}

// run publishes every notification of the publisher, and fails on the
// first that was refused for good or not accepted before ctx ended.
func (p *publisher) run(ctx context.Context) error {
	defer GinkgoRecover()
	for _, n := range p.plan {
		if err := p.publish(ctx, n); err != nil {
			return fmt.Errorf("publisher %d, notification %s (#%d): %w", p.index, n.id(), n.seq, err)
		}
		p.progress.add()
	}
	return nil
}

// publish sends n until a replica accepts it. A 503 or a request without an
// answer is retried with the same notificationId on another random replica
// after a short backoff: Retry-After is one replica's advice, and the run
// must keep publishing through its faults. A retry after an answer that was
// lost may store the notification twice; the recipients count that.
func (p *publisher) publish(ctx context.Context, n *planned) error {
	body := fleettest.Notification{
		RecipientUserIDs: recipientNames(n), NotificationID: n.id(), NotificationType: "chaos", Data: n.payload(),
	}
	backoff := minBackoff
	for try := 1; ; try++ {
		if try == 2 {
			p.stats.retried.Add(1)
		}
		p.stats.attempts.Add(1)
		replica := p.rng.IntN(p.fleet.size())
		res, err := fleettest.Notify(ctx, p.client, p.fleet.api(replica), p.token, body)
		a := attempt{replica: replica, status: res.Status, note: res.Message}
		if err != nil {
			a.note = err.Error()
		}
		p.attempts[n.index] = append(p.attempts[n.index], a)
		switch {
		case ctx.Err() != nil:
			return fmt.Errorf("not accepted after %d attempts: %w", try, ctx.Err())
		case err != nil && res.Status == 0:
			p.stats.lost.Add(1)
		case err != nil:
			return err
		case res.Status == http.StatusServiceUnavailable:
			p.stats.unavailable.Add(1)
		case res.Status == http.StatusAccepted:
			return p.accept(n, res)
		default:
			return fmt.Errorf("answered %d", res.Status)
		}
		if !sleep(ctx, backoff) {
			return fmt.Errorf("not accepted after %d attempts: %w", try, ctx.Err())
		}
		backoff = min(2*backoff, maxBackoff)
	}
}

// accept records a 202, which must name one event for all recipients.
func (p *publisher) accept(n *planned, res fleettest.PublishResult) error {
	if len(res.EventIDs) != len(n.recipients) || slices.ContainsFunc(res.EventIDs, func(id string) bool { return id != res.EventID }) {
		return fmt.Errorf("202 with eventId %q and eventIds %q for %d recipients: want that one id for each", res.EventID, res.EventIDs, len(n.recipients))
	}
	p.accepted[n.index] = res.EventID
	p.stats.accepted.Add(1)
	return nil
}

func recipientNames(n *planned) []string {
	names := make([]string, len(n.recipients))
	for i, u := range n.recipients {
		names[i] = userName(u)
	}
	return names
}
