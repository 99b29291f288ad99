package auth

import (
	"container/heap"
	"context"
	"crypto/rand"
	"crypto/sha256"
	"encoding/base64"
	"errors"
	"fmt"
	"sync"
	"time"
)

// ticketBytes is the entropy of a ticket: 256 bits, beyond guessing.
const ticketBytes = 32

// MaxTicketsPerUser bounds one user's outstanding tickets, so that one user
// (or one stolen token) cannot fill the store and lock everyone else out. A
// browser needs one ticket per reconnect, redeemed within seconds.
const MaxTicketsPerUser = 16

// ticketLen is the length of a ticket's unpadded base64url text.
var ticketLen = base64.RawURLEncoding.EncodedLen(ticketBytes)

// ErrTooManyTickets is returned by Issue when the store holds its maximum of
// outstanding tickets, or the user MaxTicketsPerUser; the HTTP layer answers
// 429 Too Many Requests.
var ErrTooManyTickets = errors.New("too many outstanding tickets")

// ErrIdentityExpired is returned by Issue for an identity whose token has
// already expired, or a ttl that is not positive: such a ticket would be
// born dead.
var ErrIdentityExpired = errors.New("ticket would expire at once: the token has expired or the ttl is not positive")

// Tickets issues and redeems tickets; the server needs nothing else of a
// ticket store. TicketStore keeps them in one process; a store shared by
// every replica of a channel (package jetstreamtickets) lets a ticket issued
// by one replica be redeemed on another.
type Tickets interface {
	// Issue returns a new single-use ticket standing for id, valid for ttl
	// or until id's token expires if that is sooner. It fails with
	// ErrTooManyTickets or ErrIdentityExpired, or any other error when the
	// store cannot be reached (the caller answers 503, not 429).
	Issue(ctx context.Context, id Identity, ttl time.Duration) (string, error)
	// Redeem consumes a ticket and returns the identity it stands for. ok
	// is false, with a nil error, for an unknown, already redeemed or
	// expired ticket; a non-nil error means the store could not tell (the
	// client should retry, not start over).
	Redeem(ctx context.Context, ticket string) (id Identity, ok bool, err error)
}

var _ Tickets = (*TicketStore)(nil)

// TicketStore issues single-use, short-lived tickets that stand for a
// verified Identity, so that a browser's EventSource, which cannot send an
// Authorization header, carries a ticket rather than its JWT in the URL.
//
// Tickets are kept by their SHA-256 digest, never in clear: a lookup by
// digest gives a timing side channel only on the digest, which reveals
// nothing usable about a ticket (unlike comparing tickets themselves, which
// would need constant-time comparison against every entry), and a heap dump
// holds no redeemable ticket. Memory is bounded by the maximum of outstanding
// tickets; expired tickets are purged in expiry order on every Issue and
// Redeem, at amortised O(log n) each, so no goroutine is needed.
//
// A TicketStore is safe for concurrent use. Its tickets live in one process:
// with several replicas, a ticket must be redeemed on the replica that issued
// it, so a channel with several replicas uses a shared store instead.
type TicketStore struct {
	max int
	now func() time.Time

	mu      sync.Mutex
	tickets map[[sha256.Size]byte]*ticket
	expiry  expiryHeap
	// perUser counts each user's outstanding tickets.
	perUser map[string]int
}

// ticket is an outstanding ticket.
type ticket struct {
	digest   [sha256.Size]byte
	identity Identity
	expires  time.Time
	index    int // position in the expiry heap
}

// NewTicketStore returns a store holding at most maxOutstanding unexpired,
// unredeemed tickets. now is the clock (nil means time.Now; it must be safe
// for concurrent use). It panics if maxOutstanding is not positive, like
// time.NewTicker does for a non-positive period: that is a programming error.
func NewTicketStore(maxOutstanding int, now func() time.Time) *TicketStore {
	if maxOutstanding <= 0 {
		panic(fmt.Sprintf("auth: NewTicketStore: maxOutstanding %d is not positive", maxOutstanding))
	}
	if now == nil {
		now = time.Now
	}
	return &TicketStore{max: maxOutstanding, now: now, tickets: make(map[[sha256.Size]byte]*ticket), perUser: map[string]int{}}
}

// Issue returns a new ticket for id, an opaque 256-bit random base64url
// string (see NewTicket). The ticket expires after ttl, or when id's token
// expires if that is sooner. It fails with ErrTooManyTickets when the store
// is full, and with ErrIdentityExpired when the ticket would already be
// expired. It never fails otherwise, and ignores ctx: it waits for nothing.
func (s *TicketStore) Issue(_ context.Context, id Identity, ttl time.Duration) (string, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	now := s.now()
	s.purge(now)
	expires, err := TicketExpiry(id, ttl, now)
	if err != nil {
		return "", err
	}
	if len(s.tickets) >= s.max {
		return "", fmt.Errorf("%w: %d outstanding", ErrTooManyTickets, s.max)
	}
	if s.perUser[id.UserID] >= MaxTicketsPerUser {
		return "", fmt.Errorf("%w: the user has %d outstanding; redeem one or let them expire", ErrTooManyTickets, MaxTicketsPerUser)
	}
	text, digest := NewTicket()
	t := &ticket{digest: digest, identity: id, expires: expires}
	s.tickets[t.digest] = t
	s.perUser[id.UserID]++
	heap.Push(&s.expiry, t)
	return text, nil
}

// Redeem returns the identity a ticket stands for and consumes the ticket. It
// reports false for an unknown, already redeemed or expired ticket, and never
// fails: its error is always nil.
func (s *TicketStore) Redeem(_ context.Context, text string) (Identity, bool, error) {
	digest, ok := TicketDigest(text)
	if !ok {
		return Identity{}, false, nil
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	s.purge(s.now())
	t, found := s.tickets[digest]
	if !found {
		return Identity{}, false, nil
	}
	s.forget(t)
	heap.Remove(&s.expiry, t.index)
	return t.identity, true, nil
}

// NewTicket returns a new ticket, 256 random bits as unpadded base64url
// text, and its SHA-256 digest, the only form a store keeps.
func NewTicket() (text string, digest [sha256.Size]byte) {
	raw := make([]byte, ticketBytes)
	// crypto/rand.Read never fails (it crashes the program instead) since Go 1.24.
	_, _ = rand.Read(raw)
	text = base64.RawURLEncoding.EncodeToString(raw)
	return text, sha256.Sum256([]byte(text))
}

// TicketDigest is the digest a store looks a ticket up by; ok is false for
// text that cannot be a ticket, which no store needs to look up.
func TicketDigest(text string) (digest [sha256.Size]byte, ok bool) {
	if len(text) != ticketLen {
		return digest, false
	}
	return sha256.Sum256([]byte(text)), true
}

// TicketExpiry is when a ticket for id issued at now with ttl expires: after
// ttl, or when id's token expires if that is sooner. It fails with
// ErrIdentityExpired when that is not after now.
func TicketExpiry(id Identity, ttl time.Duration, now time.Time) (time.Time, error) {
	expires := now.Add(ttl)
	if id.ExpiresAt.Before(expires) {
		expires = id.ExpiresAt
	}
	if !expires.After(now) {
		return time.Time{}, ErrIdentityExpired
	}
	return expires, nil
}

// Outstanding returns the number of tickets neither redeemed nor purged, for
// a gauge metric.
func (s *TicketStore) Outstanding() int {
	s.mu.Lock()
	defer s.mu.Unlock()
	return len(s.tickets)
}

// purge drops the tickets expired at now. The caller holds s.mu.
func (s *TicketStore) purge(now time.Time) {
	for len(s.expiry) > 0 && !s.expiry[0].expires.After(now) {
		s.forget(heap.Pop(&s.expiry).(*ticket))
	}
}

// forget drops t from the map and its user's count. The caller holds s.mu.
func (s *TicketStore) forget(t *ticket) {
	delete(s.tickets, t.digest)
	if s.perUser[t.identity.UserID]--; s.perUser[t.identity.UserID] <= 0 {
		delete(s.perUser, t.identity.UserID)
	}
}

// expiryHeap orders outstanding tickets by expiry, soonest first
// (container/heap.Interface).
type expiryHeap []*ticket

func (h expiryHeap) Len() int           { return len(h) }
func (h expiryHeap) Less(i, j int) bool { return h[i].expires.Before(h[j].expires) }

func (h expiryHeap) Swap(i, j int) {
	h[i], h[j] = h[j], h[i]
	h[i].index = i
	h[j].index = j
}

func (h *expiryHeap) Push(x any) {
	t := x.(*ticket)
	t.index = len(*h)
	*h = append(*h, t)
}

func (h *expiryHeap) Pop() any {
	old := *h
	t := old[len(old)-1]
	old[len(old)-1] = nil
	*h = old[:len(old)-1]
	return t
}
