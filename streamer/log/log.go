// Package log is a channel's ordered event log: every event a channel delivers
// is appended here first and gets the next sequence number, which clients see
// as the SSE "id:". A client that reconnects with Last-Event-ID reads what it
// missed from here, or learns that it cannot be recovered.
//
// This file holds the embedded log: a bounded in-memory ring for a single
// replica. A broker-backed log (NATS JetStream) offers the same methods.
package log

import (
	"errors"
	"sync"
	"time"
)

// Event is one entry of the log. Its slices are shared with every reader and
// must not be modified after Append.
type Event struct {
	// ID is the sequence number the log assigned; it is the SSE "id:".
	ID uint64
	// Time is when the event was appended: retention by age and delivery
	// latency are measured from it.
	Time time.Time
	// Type is the event's "type": notification, system or custom.
	Type string
	// UserIDs are the recipients; empty means every connected user.
	UserIDs []string
	// Data is the event's JSON object, encoded once and written to every
	// recipient as is.
	Data []byte
}

// ForUser reports whether the event is addressed to user.
func (e *Event) ForUser(user string) bool {
	if len(e.UserIDs) == 0 {
		return true
	}
	for _, u := range e.UserIDs {
		if u == user {
			return true
		}
	}
	return false
}

// Options bound the embedded log. Zero values are replaced by the defaults
// of the NotificationChannel API (10,000 events, one hour).
type Options struct {
	// MaxEvents is the most events retained; the oldest go first.
	MaxEvents int
	// MaxAge is how long an event is retained.
	MaxAge time.Duration
	// Now is the clock; nil means time.Now.
	Now func() time.Time
}

// Default bounds, as NotificationChannel.spec.history defaults them.
const (
	DefaultMaxEvents = 10000
	DefaultMaxAge    = time.Hour
)

// ErrClosed is returned by Append after Close.
var ErrClosed = errors.New("event log is closed")

// Embedded is the in-memory log of a single streamer. Safe for concurrent use.
type Embedded struct {
	maxEvents int
	maxAge    time.Duration
	now       func() time.Time

	mu sync.Mutex
	// ring holds the retained events in ID order, oldest at head; IDs are
	// contiguous, so the event with ID x is at offset x - ring[head].ID.
	ring  []Event
	head  int
	count int
	// lastID is the ID of the newest event ever appended (evicted or not).
	lastID uint64
	// changed is closed and replaced by every Append, waking readers.
	changed chan struct{}
	closed  bool
}

// NewEmbedded returns an empty log. Its first ID is the current time in
// microseconds, so that IDs keep increasing across restarts of the process:
// a client resuming with an ID from before a restart is told its events were
// not recovered, never handed new events under old IDs.
func NewEmbedded(opts Options) *Embedded {
	if opts.MaxEvents <= 0 {
		opts.MaxEvents = DefaultMaxEvents
	}
	if opts.MaxAge <= 0 {
		opts.MaxAge = DefaultMaxAge
	}
	if opts.Now == nil {
		opts.Now = time.Now
	}
	start := opts.Now().UnixMicro()
	if start < 1 {
		start = 1
	}
	return &Embedded{
		maxEvents: opts.MaxEvents,
		maxAge:    opts.MaxAge,
		now:       opts.Now,
		lastID:    uint64(start) - 1,
		changed:   make(chan struct{}),
	}
}

// Append assigns the next ID to e, stamps its time, retains it and wakes the
// readers waiting on Changed. It returns the stored event.
func (l *Embedded) Append(e Event) (Event, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	if l.closed {
		return Event{}, ErrClosed
	}
	l.lastID++
	e.ID = l.lastID
	e.Time = l.now()
	l.evictExpired(e.Time)
	if l.count == l.maxEvents {
		l.evictOldest()
	}
	l.push(e)
	close(l.changed)
	l.changed = make(chan struct{})
	return e, nil
}

// push appends to the ring, growing it up to maxEvents: a quiet channel does
// not pay for the capacity it is allowed.
func (l *Embedded) push(e Event) {
	if l.count == len(l.ring) {
		grown := make([]Event, min(max(2*len(l.ring), 64), l.maxEvents))
		for i := range l.count {
			grown[i] = l.ring[(l.head+i)%len(l.ring)]
		}
		l.ring, l.head = grown, 0
	}
	l.ring[(l.head+l.count)%len(l.ring)] = e
	l.count++
}

func (l *Embedded) evictOldest() {
	l.ring[l.head] = Event{} // release the event's memory
	l.head = (l.head + 1) % len(l.ring)
	l.count--
}

func (l *Embedded) evictExpired(now time.Time) {
	for l.count > 0 && now.Sub(l.ring[l.head].Time) > l.maxAge {
		l.evictOldest()
	}
}

// ReadAfter returns up to limit retained events with an ID greater than after,
// oldest first. recovered is false when events after `after` are no longer
// retained, or when `after` is not an ID this log could have assigned (from
// before a restart, or from the future): the caller must then say so to the
// client rather than leave a silent gap.
func (l *Embedded) ReadAfter(after uint64, limit int) (events []Event, recovered bool) {
	l.mu.Lock()
	defer l.mu.Unlock()
	l.evictExpired(l.now())
	if after > l.lastID {
		return nil, false
	}
	next := after + 1 // the first ID the reader needs
	oldest := l.lastID + 1 - uint64(l.count)
	if next < oldest {
		return nil, false
	}
	n := min(int(l.lastID-after), limit)
	events = make([]Event, n)
	start := int(next - oldest)
	for i := range n {
		events[i] = l.ring[(l.head+start+i)%len(l.ring)]
	}
	return events, true
}

// LastID is the ID of the newest event appended, or the ID before the first
// when the log is empty: reading after it returns only new events.
func (l *Embedded) LastID() uint64 {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.lastID
}

// Changed returns a channel that is closed by the next Append. Take it before
// ReadAfter, so that an event appended in between is not missed.
func (l *Embedded) Changed() <-chan struct{} {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.changed
}

// Len is the number of events retained.
func (l *Embedded) Len() int {
	l.mu.Lock()
	defer l.mu.Unlock()
	l.evictExpired(l.now())
	return l.count
}

// Closed reports whether Close was called. A reader woken by Changed checks
// it: after Close, Changed returns a closed channel.
func (l *Embedded) Closed() bool {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.closed
}

// Close refuses further appends and wakes every reader.
func (l *Embedded) Close() {
	l.mu.Lock()
	defer l.mu.Unlock()
	if !l.closed {
		l.closed = true
		close(l.changed)
	}
}
