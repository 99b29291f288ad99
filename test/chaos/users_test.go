package chaos_test

import (
	"context"
	"io"
	"math/rand/v2"
	"net"
	"net/http"
	"sync"
	"sync/atomic"
	"time"

	. "github.com/onsi/ginkgo/v2"

	"github.com/herald-notify/herald/internal/testutil/fleettest"
	"github.com/herald-notify/herald/streamer/sse"
)

// Bounds of a client's wait before it asks for a stream again: a failed
// request backs off from the first to the second; a stream that was open
// and ended is asked for again after a jitter below the first, so that the
// clients of a killed streamer do not all come back at once.
const (
	minBackoff = 50 * time.Millisecond
	maxBackoff = time.Second
)

// newStreamClient is the HTTP client of every stream: no overall timeout (a
// stream lasts the run), but bounded dials and waits for the headers so that
// a streamer that is gone or stuck is left for another soon; one connection
// per stream, never reused, as an EventSource does.
func newStreamClient() *http.Client {
	return &http.Client{Transport: &http.Transport{
		DialContext:           (&net.Dialer{Timeout: 2 * time.Second}).DialContext,
		ResponseHeaderTimeout: 10 * time.Second,
		DisableKeepAlives:     true,
	}}
}

// user is one client: a stream at a time, resumed with Last-Event-ID on a
// random replica whenever it ends.
type user struct {
	index    int
	token    string
	inbox    *inbox
	fleet    *fleet
	client   *http.Client
	rng      *rand.Rand // this user's goroutine's only
	stats    *stats
	problems *problems
	// firstStreams counts the users whose first stream is open.
	firstStreams *atomic.Int64

	mu   sync.Mutex
	drop context.CancelFunc // ends the current stream
}

// run keeps the user's stream open until ctx ends, starting on replica
// first.
func (u *user) run(ctx context.Context, first int) {
	defer GinkgoRecover()
	replica, opened, backoff := first, 0, minBackoff
	for {
		wasOpen := u.stream(ctx, replica, opened)
		if ctx.Err() != nil {
			return
		}
		wait := backoff
		if wasOpen {
			opened++
			backoff = minBackoff
			wait = rand.N(minBackoff)
		} else {
			backoff = min(2*backoff, maxBackoff)
		}
		if !sleep(ctx, wait) {
			return
		}
		replica = u.rng.IntN(u.fleet.size())
	}
}

// stream opens one stream on replica (the user's opened-th so far) and
// reads it until it ends, and reports whether it opened.
func (u *user) stream(ctx context.Context, replica, opened int) bool {
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	u.mu.Lock()
	u.drop = cancel
	u.mu.Unlock()

	lastID := u.inbox.lastEventID()
	resp, err := fleettest.OpenStream(ctx, u.client, u.fleet.api(replica), u.token, lastID)
	if err != nil {
		u.stats.unreachable.Add(1)
		return false
	}
	defer func() { _ = resp.Body.Close() }()
	if resp.StatusCode != http.StatusOK {
		_, _ = io.Copy(io.Discard, resp.Body)
		u.stats.refused.Add(1)
		return false
	}
	events := sse.NewReader(resp.Body)
	ev, err := nextMessage(events)
	if err != nil {
		return false // gone before its connection event: not open
	}
	if err := u.inbox.connected(ev, lastID); err != nil {
		u.problems.add(err)
	}
	if opened == 0 {
		u.firstStreams.Add(1)
	} else {
		u.stats.reconnects.Add(1)
	}
	for {
		ev, err := nextMessage(events)
		if err != nil {
			return true // the streamer died, closed the stream, or u.drop did
		}
		if streamerNotice(ev) {
			continue
		}
		u.stats.notifyEvents.Add(1)
		duplicate, err := u.inbox.add(ev)
		if err != nil {
			u.problems.add(err)
		}
		if duplicate {
			u.stats.duplicates.Add(1)
		}
	}
}

// dropStream ends the user's current stream, as a network that drops a
// connection would: the user resumes on a random replica.
func (u *user) dropStream() {
	u.mu.Lock()
	defer u.mu.Unlock()
	if u.drop != nil {
		u.drop()
	}
}

// nextMessage is the next event that carries data: comments (keep-alives)
// and events of only a retry: field are skipped.
func nextMessage(events *sse.Reader) (sse.Event, error) {
	for {
		ev, err := events.Next()
		if err != nil {
			return sse.Event{}, err
		}
		if !ev.IsComment && ev.Data != "" {
			return ev, nil
		}
	}
}

// sleep waits d, and reports false if ctx ended first. It paces retries;
// nothing waits on it to be in step with anything.
func sleep(ctx context.Context, d time.Duration) bool {
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-ctx.Done():
		return false
	case <-t.C:
		return true
	}
}
