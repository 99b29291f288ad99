package log

import (
	"context"
	"sync"
	"time"
)

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

// Embedded is the in-memory log of a single streamer: a ring bounded by
// count and age. Its epoch is the time it was created, in microseconds, so
// that a client resuming with an id from before a restart of the process is
// told its events were not recovered, never handed new events under old ids.
// De-duplication keys are remembered as long as their events are retained.
type Embedded struct {
	maxEvents int
	maxAge    time.Duration
	now       func() time.Time
	epoch     uint64

	mu sync.Mutex
	// ring holds the retained events in sequence order, oldest at head;
	// sequences are contiguous, so the event with sequence x is at offset
	// x - ring[head].Seq.
	ring  []entry
	head  int
	count int
	// lastSeq is the sequence of the newest event ever appended.
	lastSeq uint64
	// keys maps the de-duplication keys of retained events to their
	// sequence.
	keys map[string]uint64
	// changed is closed and replaced by every Append, waking readers.
	changed chan struct{}
	closed  bool
}

// entry is a retained event and the key it was stored under.
type entry struct {
	Event
	dedupKey string
}

var _ Log = (*Embedded)(nil)

// NewEmbedded returns an empty log whose epoch is the clock's current time.
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
	return &Embedded{
		maxEvents: opts.MaxEvents,
		maxAge:    opts.MaxAge,
		now:       opts.Now,
		epoch:     uint64(max(opts.Now().UnixMicro(), 1)),
		keys:      map[string]uint64{},
		changed:   make(chan struct{}),
	}
}

// Append implements Log. It never blocks on anything but the log's lock.
func (l *Embedded) Append(_ context.Context, e Event, dedupKey string) (Receipt, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	if l.closed {
		return Receipt{}, ErrClosed
	}
	now := l.now()
	l.evictExpired(now)
	if seq, seen := l.keys[dedupKey]; seen && dedupKey != "" {
		first := l.at(seq)
		return Receipt{Position: first.Position, Time: first.Time, Duplicate: true}, nil
	}
	l.lastSeq++
	e.Position = Position{Epoch: l.epoch, Seq: l.lastSeq}
	e.Time = now
	if l.count == l.maxEvents {
		l.evictOldest()
	}
	l.push(entry{Event: e, dedupKey: dedupKey})
	if dedupKey != "" {
		l.keys[dedupKey] = l.lastSeq
	}
	close(l.changed)
	l.changed = make(chan struct{})
	return Receipt{Position: e.Position, Time: now}, nil
}

// push appends to the ring, growing it up to maxEvents: a quiet channel does
// not pay for the capacity it is allowed.
func (l *Embedded) push(e entry) {
	if l.count == len(l.ring) {
		grown := make([]entry, min(max(2*len(l.ring), 64), l.maxEvents))
		for i := range l.count {
			grown[i] = l.ring[(l.head+i)%len(l.ring)]
		}
		l.ring, l.head = grown, 0
	}
	l.ring[(l.head+l.count)%len(l.ring)] = e
	l.count++
}

// at is the retained event with sequence seq.
func (l *Embedded) at(seq uint64) *entry {
	oldest := l.lastSeq + 1 - uint64(l.count)
	return &l.ring[(l.head+int(seq-oldest))%len(l.ring)]
}

func (l *Embedded) evictOldest() {
	if key := l.ring[l.head].dedupKey; key != "" {
		delete(l.keys, key)
	}
	l.ring[l.head] = entry{} // release the event's memory
	l.head = (l.head + 1) % len(l.ring)
	l.count--
}

func (l *Embedded) evictExpired(now time.Time) {
	for l.count > 0 && now.Sub(l.ring[l.head].Time) > l.maxAge {
		l.evictOldest()
	}
}

// ReadAfter implements Log.
func (l *Embedded) ReadAfter(_ context.Context, after Position, limit int) ([]Event, bool, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	l.evictExpired(l.now())
	if after.Epoch != l.epoch || after.Seq > l.lastSeq {
		return nil, false, nil
	}
	oldest := l.lastSeq + 1 - uint64(l.count)
	if after.Seq+1 < oldest {
		return nil, false, nil
	}
	n := min(int(l.lastSeq-after.Seq), limit)
	if n == 0 && l.closed {
		return nil, true, ErrClosed
	}
	events := make([]Event, n)
	for i := range n {
		events[i] = l.at(after.Seq + 1 + uint64(i)).Event
	}
	return events, true, nil
}

// Last implements Log.
func (l *Embedded) Last() Position {
	l.mu.Lock()
	defer l.mu.Unlock()
	return Position{Epoch: l.epoch, Seq: l.lastSeq}
}

// Changed implements Log.
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

// Close implements Log.
func (l *Embedded) Close() error {
	l.mu.Lock()
	defer l.mu.Unlock()
	if !l.closed {
		l.closed = true
		close(l.changed)
	}
	return nil
}
