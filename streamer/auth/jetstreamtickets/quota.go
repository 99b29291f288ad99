package jetstreamtickets

import (
	"slices"
	"sync"
	"time"

	"github.com/herald-notify/herald/streamer/auth"
)

// minSweep is the number of users the quota holds before it first sweeps
// them all for expired tickets.
const minSweep = 1024

// userQuota bounds, per user, the tickets this store issued that are neither
// expired nor redeemed through it, to auth.MaxTicketsPerUser (see the
// package documentation for why per pod).
type userQuota struct {
	mu sync.Mutex
	// held are the expiries of each user's counted tickets; a user with
	// none has no entry.
	held map[string][]time.Time
	// sweepAt is the number of users at which take drops every expired
	// entry: users who never come back would otherwise stay. Doubling it
	// after a sweep keeps sweeps at amortised O(1) per take.
	sweepAt int
}

func newUserQuota() userQuota {
	return userQuota{held: map[string][]time.Time{}, sweepAt: minSweep}
}

// take counts a ticket for user expiring at expires, unless the user holds
// the most already.
func (q *userQuota) take(user string, expires, now time.Time) bool {
	q.mu.Lock()
	defer q.mu.Unlock()
	if len(q.held) >= q.sweepAt {
		for u := range q.held {
			q.dropExpired(u, now)
		}
		q.sweepAt = max(minSweep, 2*len(q.held))
	}
	q.dropExpired(user, now)
	if len(q.held[user]) >= auth.MaxTicketsPerUser {
		return false
	}
	q.held[user] = append(q.held[user], expires)
	return true
}

// release stops counting a ticket of user expiring at expires, if this
// store counted it (a ticket issued elsewhere has no entry, unless one of
// this store's has the same expiry to the nanosecond, which only frees that
// one a little early).
func (q *userQuota) release(user string, expires time.Time) {
	q.mu.Lock()
	defer q.mu.Unlock()
	held := q.held[user]
	if i := slices.IndexFunc(held, expires.Equal); i >= 0 {
		q.set(user, slices.Delete(held, i, i+1))
	}
}

// dropExpired forgets user's tickets expired at now. The caller holds q.mu.
func (q *userQuota) dropExpired(user string, now time.Time) {
	if held, ok := q.held[user]; ok {
		q.set(user, slices.DeleteFunc(held, func(t time.Time) bool { return !t.After(now) }))
	}
}

// set records held for user, dropping the user when it is empty.
func (q *userQuota) set(user string, held []time.Time) {
	if len(held) == 0 {
		delete(q.held, user)
		return
	}
	q.held[user] = held
}
