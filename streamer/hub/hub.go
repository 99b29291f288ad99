// Package hub fans the events of a channel's log out to the connected streams.
// It tails the log, encodes each event into an SSE frame once, and hands the
// same bytes to the send queue of every connection the event is addressed to.
// It also enforces the connection limits per user and per process.
package hub

import (
	"context"
	"crypto/rand"
	"encoding/binary"
	"errors"
	"slices"
	"sync"
	"time"

	"github.com/herald-notify/herald/streamer/event"
	eventlog "github.com/herald-notify/herald/streamer/log"
	"github.com/herald-notify/herald/streamer/sse"
)

// UserLimitPolicy is what happens to a connection beyond the per-user limit.
type UserLimitPolicy int

const (
	// ReplaceOldest closes the user's oldest stream to admit the new one.
	ReplaceOldest UserLimitPolicy = iota
	// Reject refuses the new stream.
	Reject
)

// Options bound the hub. Zero values take the defaults of the
// NotificationChannel API.
type Options struct {
	// MaxPerUser is how many streams one user may hold (default 1).
	MaxPerUser int
	// Policy applies beyond MaxPerUser.
	Policy UserLimitPolicy
	// MaxConnections is how many streams the process holds (default 10,000).
	MaxConnections int
	// SendQueueBytes bounds one connection's queued frames (default 64 KiB).
	SendQueueBytes int
	// Observer is told about deliveries and disconnects (metrics); may be nil.
	Observer Observer
	// Presence, when set, holds the per-user limit across every replica of
	// the channel (see Presence); nil keeps it per process.
	Presence Presence
}

// StreamID names a stream within its process; the hub assigns it.
type StreamID uint64

// Presence is the channel-wide record of who holds which streams, shared by
// the replicas of a channel. The hub asks it to admit each new stream and
// tells it about each stream that ends; the streams it replaces on this
// replica are closed through the function given to Bind.
type Presence interface {
	// Bind hands the presence the function that closes a local stream that
	// another replica's admission replaced. The hub calls it once, in New.
	Bind(replaced func(user string, id StreamID))
	// Admit records stream id of user, within limit streams per user across
	// the channel. Beyond it, with Reject it returns ErrUserLimit; with
	// ReplaceOldest it removes the user's oldest streams from the record and
	// returns those held by this process, for the hub to close (the other
	// replicas close theirs). Any other error means the record could not be
	// reached: the hub then admits within its own limit (fail open).
	Admit(ctx context.Context, user string, id StreamID, limit int, policy UserLimitPolicy) (evicted []StreamID, err error)
	// Release records that a stream ended. It must not block: the hub calls
	// it with its lock held.
	Release(user string, id StreamID)
}

// Observer receives the hub's events, for metrics.
type Observer interface {
	// Delivered is called once per write to a connection, with the frames
	// it carried.
	Delivered(w Write)
	// Disconnected is called when the hub closes a connection.
	Disconnected(reason CloseReason)
	// ReadFailed is called when the log could not be read; the hub tries
	// again.
	ReadFailed(err error)
}

// Errors of Register.
var (
	// ErrUserLimit: the user holds MaxPerUser streams and the policy is Reject.
	ErrUserLimit = errors.New("too many streams for this user")
	// ErrProcessLimit: the process holds MaxConnections streams.
	ErrProcessLimit = errors.New("too many streams on this server")
	// ErrClosed: the hub is shutting down.
	ErrClosed = errors.New("server is shutting down")
)

// readBatch is how many events the hub reads from the log at a time.
const readBatch = 512

// readRetryDelay is the wait before a failed read of the log is tried again.
const readRetryDelay = time.Second

// Hub tracks the connected streams and delivers the log's events to them.
type Hub struct {
	log eventlog.Log
	// observer is opts.Observer, which SetLimits keeps: read without the lock.
	observer Observer

	mu    sync.Mutex
	opts  Options            // SetLimits replaces the limits
	users map[string][]*Conn // a user's streams, oldest first
	// byID holds the same streams by id (Lookup): the one index of the
	// process's streams by id, for refreshes and the close watcher.
	byID   map[StreamID]*Conn
	count  int
	cursor eventlog.Position // the last event dispatched to the connections
	closed bool

	// recipients is dispatch's, reused from one event to the next.
	recipients []*Conn
}

// New returns a hub that delivers the events appended to log from now on.
func New(log eventlog.Log, opts Options) *Hub {
	h := &Hub{log: log, opts: withDefaults(opts), users: map[string][]*Conn{}, byID: map[StreamID]*Conn{}, cursor: log.Last()}
	h.observer = h.opts.Observer
	if h.opts.Presence != nil {
		h.opts.Presence.Bind(h.closeReplaced)
	}
	return h
}

// withDefaults fills the zero values of opts with the defaults.
func withDefaults(opts Options) Options {
	if opts.MaxPerUser <= 0 {
		opts.MaxPerUser = 1
	}
	if opts.MaxConnections <= 0 {
		opts.MaxConnections = 10000
	}
	if opts.SendQueueBytes <= 0 {
		opts.SendQueueBytes = 64 << 10
	}
	if opts.Observer == nil {
		opts.Observer = nopObserver{}
	}
	return opts
}

// SetLimits replaces MaxPerUser, Policy, MaxConnections and SendQueueBytes
// (zero values take the defaults, as in New) for the streams registered from
// now on; the hub keeps its Observer and Presence. Connected streams are left alone, even
// beyond a lowered limit: closing them would make their clients reconnect at
// once, all together. A user over the new per-user limit is brought back to
// it at their next connect (ReplaceOldest closes as many of their oldest
// streams as it takes, Reject refuses the new one).
func (h *Hub) SetLimits(opts Options) {
	h.mu.Lock()
	defer h.mu.Unlock()
	opts.Observer, opts.Presence = h.opts.Observer, h.opts.Presence
	h.opts = withDefaults(opts)
}

// Run dispatches events until ctx ends, or the log is closed and every
// event it holds was dispatched.
func (h *Hub) Run(ctx context.Context) {
	retry := time.NewTimer(0)
	defer retry.Stop()
	for {
		changed := h.log.Changed()
		h.mu.Lock()
		cursor := h.cursor
		h.mu.Unlock()
		events, recovered, err := h.log.ReadAfter(ctx, cursor, readBatch)
		switch {
		case errors.Is(err, eventlog.ErrClosed):
			return
		case err != nil:
			// The log could not be read (a broker away): the streams stay
			// open, and the read is tried again.
			h.opts.Observer.ReadFailed(err)
			retry.Reset(readRetryDelay)
			select {
			case <-ctx.Done():
				return
			case <-retry.C:
			case <-changed:
			}
			continue
		case !recovered:
			h.skipLost()
			continue
		case len(events) > 0:
			h.dispatch(events)
			continue
		}
		select {
		case <-ctx.Done():
			return
		case <-changed:
		}
	}
}

// skipLost handles a log that no longer holds the events after the hub's
// cursor (they were evicted before the hub got to them, or the log began a
// new epoch): the streams may have missed some of them, and which ones no
// one can tell, so every stream is closed as lagged. Its client reconnects
// with its Last-Event-ID and learns that it was not recovered: never a silent
// gap. The hub goes on from the log's newest event.
func (h *Hub) skipLost() {
	h.mu.Lock()
	defer h.mu.Unlock()
	h.cursor = h.log.Last()
	for _, conns := range h.users {
		for _, c := range slices.Clone(conns) {
			h.removeLocked(c, CloseLagged)
		}
	}
}

// dispatch encodes each event once and enqueues it on its recipients'
// streams. The recipients are copied under the hub's lock, which then moves
// the cursor past the event, and the frames are encoded and enqueued outside
// it: Register, Unregister and a refresh do not wait for a broadcast's
// fan-out. A stream that joins meanwhile joins after the event (its joinedAt
// is the event's position), and one that leaves has a closed queue, which
// ignores the frame.
//
// Consecutive events addressed to everyone (a burst of system or custom
// events, or the events of one broker message) are dispatched as one run:
// the recipients are copied once, the frames encoded once, and each stream's
// queue takes a reference to the run, under one lock, with one wake-up of its
// writer.
func (h *Hub) dispatch(events []eventlog.Event) {
	for len(events) > 0 {
		run := 1
		if isBroadcast(&events[0]) {
			for run < len(events) && isBroadcast(&events[run]) {
				run++
			}
		}
		h.mu.Lock()
		h.recipients = h.recipientsLocked(&events[0], h.recipients[:0])
		h.cursor = events[run-1].Position
		h.mu.Unlock()
		if run == 1 {
			h.enqueueAll(&events[0], h.recipients)
		} else {
			h.enqueueRun(events[:run], h.recipients)
		}
		clear(h.recipients)
		if cap(h.recipients) > maxKeptRecipients {
			h.recipients = nil
		}
		events = events[run:]
	}
}

// isBroadcast reports whether e goes to every stream.
func isBroadcast(e *eventlog.Event) bool {
	return len(e.UserIDs) == 0 && e.Type != event.TypeNotification
}

// maxKeptRecipients is the capacity of the recipients slice that dispatch
// keeps from one event to the next.
const maxKeptRecipients = 1 << 16

// recipientsLocked appends the streams e is addressed to, a user's streams
// next to each other.
func (h *Hub) recipientsLocked(e *eventlog.Event, to []*Conn) []*Conn {
	if isBroadcast(e) {
		for _, conns := range h.users {
			to = append(to, conns...)
		}
		return to
	}
	for _, user := range e.UserIDs {
		to = append(to, h.users[user]...)
	}
	return to
}

// enqueueAll enqueues e's frame on each of its recipients, and closes those
// whose queue is full as slow consumers. A notification names each recipient
// in its copy: it is encoded per user.
func (h *Hub) enqueueAll(e *eventlog.Event, recipients []*Conn) {
	frame := Frame{Position: e.Position, Type: e.Type, Appended: e.Time}
	perUser := e.Type == event.TypeNotification
	var run []Frame
	for i, c := range recipients {
		if run == nil || perUser && c.user != recipients[i-1].user {
			user := ""
			if perUser {
				user = c.user
			}
			frame.Bytes = EncodeEvent(e, user)
			run = []Frame{frame}
		}
		if !c.enqueue(run) {
			h.Unregister(c, CloseSlowConsumer)
		}
	}
}

// enqueueRun enqueues the frames of run, events addressed to everyone, on
// each recipient, and closes those whose queue is full as slow consumers.
func (h *Hub) enqueueRun(run []eventlog.Event, recipients []*Conn) {
	frames := make([]Frame, len(run))
	for i := range run {
		e := &run[i]
		frames[i] = Frame{Position: e.Position, Type: e.Type, Appended: e.Time, Bytes: EncodeEvent(e, "")}
	}
	for _, c := range recipients {
		if !c.enqueue(frames) {
			h.Unregister(c, CloseSlowConsumer)
		}
	}
}

// EncodeEvent is the SSE frame of a logged event for user: its position as
// the id, and its JSON data. A notification is logged once for all its
// recipients and names each in its copy (event.WithRecipient); every other
// event is the same for all.
func EncodeEvent(e *eventlog.Event, user string) []byte {
	data := e.Data
	if e.Type == event.TypeNotification {
		data = event.WithRecipient(make([]byte, 0, len(e.Data)+len(user)+16), e.Data, user)
	}
	return sse.AppendFrame(make([]byte, 0, len(data)+64), sse.Frame{ID: e.Position.String(), HasID: true, Data: data})
}

// Register admits a stream for user and returns it with the position of the
// last event dispatched before it joined: the stream receives every later
// event addressed to user through its queue, and reads earlier ones from the
// log.
func (h *Hub) Register(user string) (*Conn, eventlog.Position, error) {
	c := new(Conn)
	joinedAt, err := h.RegisterConn(context.Background(), c, user, nil)
	if err != nil {
		return nil, eventlog.Position{}, err
	}
	return c, joinedAt, nil
}

// RegisterConn is Register for c, a zero Conn of the caller's, which the hub
// fills (the caller may hold it within a larger struct): ctx bounds the
// admission by the channel's Presence, if any, and the stream's writer is
// told through n (nil: through Wake or a later SetNotifier). n is the Conn's
// from the start, so that Lookup finds the writer of any stream it finds.
func (h *Hub) RegisterConn(ctx context.Context, c *Conn, user string, n Notifier) (eventlog.Position, error) {
	h.mu.Lock()
	presence := h.opts.Presence
	if presence == nil {
		defer h.mu.Unlock()
		return h.registerLocked(c, user, n)
	}
	if h.closed {
		h.mu.Unlock()
		return eventlog.Position{}, ErrClosed
	}
	if h.count >= h.opts.MaxConnections {
		h.mu.Unlock()
		return eventlog.Position{}, ErrProcessLimit
	}
	// The stream joins before the channel-wide admission, so that a replica
	// that replaces it meanwhile finds it to close, and it misses no event.
	joinedAt := h.addLocked(c, user, n)
	limit, policy := h.opts.MaxPerUser, h.opts.Policy
	h.mu.Unlock()

	evicted, err := presence.Admit(ctx, user, c.id, limit, policy)

	h.mu.Lock()
	defer h.mu.Unlock()
	switch {
	case errors.Is(err, ErrUserLimit):
		h.dropLocked(c)
		return eventlog.Position{}, ErrUserLimit
	case err != nil:
		// The record is out of reach: the local limit still holds (the
		// presence counts and logs the failure).
		if err := h.limitLocally(c); err != nil {
			h.dropLocked(c)
			return eventlog.Position{}, err
		}
	}
	for _, id := range evicted {
		h.closeLocked(user, id, CloseReplaced)
	}
	return joinedAt, nil
}

// registerLocked admits c within this process's limits only.
func (h *Hub) registerLocked(c *Conn, user string, n Notifier) (eventlog.Position, error) {
	if h.closed {
		return eventlog.Position{}, ErrClosed
	}
	existing := h.users[user]
	if len(existing) >= h.opts.MaxPerUser {
		if h.opts.Policy == Reject {
			return eventlog.Position{}, ErrUserLimit
		}
		// More than one to close only after SetLimits lowered the limit.
		for _, oldest := range existing[:len(existing)-h.opts.MaxPerUser+1] {
			h.removeLocked(oldest, CloseReplaced)
		}
	} else if h.count >= h.opts.MaxConnections {
		return eventlog.Position{}, ErrProcessLimit
	}
	return h.addLocked(c, user, n), nil
}

// addLocked adds c, a new stream of user told through n, and returns the
// position it joins at.
func (h *Hub) addLocked(c *Conn, user string, n Notifier) eventlog.Position {
	c.init(h.newIDLocked(), user, h.opts.SendQueueBytes, n)
	h.users[user] = append(h.users[user], c)
	h.byID[c.id] = c
	h.count++
	return h.cursor
}

// newIDLocked is an id no open stream has: random, so that an id says
// nothing of the streams opened before or after it. A stream's id is in its
// connection event and names it for a token refresh, which tells a token of
// another user that the stream exists (403): a sequential id would let any
// user count and probe the others' streams.
func (h *Hub) newIDLocked() StreamID {
	for {
		var b [8]byte
		_, _ = rand.Read(b[:]) // never fails (crypto/rand)
		if id := StreamID(binary.LittleEndian.Uint64(b[:])); id != 0 && h.byID[id] == nil {
			return id
		}
	}
}

// limitLocally applies the per-user limit within this process to c, just
// added: what holds when the channel-wide record cannot be reached.
func (h *Hub) limitLocally(c *Conn) error {
	others := h.users[c.user]
	others = others[:len(others)-1] // c is the newest
	if len(others) < h.opts.MaxPerUser {
		return nil
	}
	if h.opts.Policy == Reject {
		return ErrUserLimit
	}
	for _, oldest := range slices.Clone(others[:len(others)-h.opts.MaxPerUser+1]) {
		h.removeLocked(oldest, CloseReplaced)
	}
	return nil
}

// dropLocked removes a stream that was never admitted: no client saw it.
func (h *Hub) dropLocked(c *Conn) {
	h.removeLocked(c, CloseClient)
}

// closeReplaced closes the local stream id of user, which another replica's
// admission replaced (Presence.Bind).
func (h *Hub) closeReplaced(user string, id StreamID) {
	h.mu.Lock()
	defer h.mu.Unlock()
	h.closeLocked(user, id, CloseReplaced)
}

func (h *Hub) closeLocked(user string, id StreamID, reason CloseReason) {
	if c := h.byID[id]; c != nil && c.user == user {
		h.removeLocked(c, reason)
	}
}

// Lookup is the open stream id, or nil: one the hub has not closed.
func (h *Hub) Lookup(id StreamID) *Conn {
	h.mu.Lock()
	defer h.mu.Unlock()
	return h.byID[id]
}

// Unregister removes a stream that ended on its own (client gone, token
// expired). It is safe to call for a stream the hub already closed.
func (h *Hub) Unregister(c *Conn, reason CloseReason) {
	h.mu.Lock()
	defer h.mu.Unlock()
	h.removeLocked(c, reason)
}

func (h *Hub) removeLocked(c *Conn, reason CloseReason) {
	conns := h.users[c.user]
	for i, other := range conns {
		if other == c {
			conns = append(conns[:i:i], conns[i+1:]...)
			if len(conns) == 0 {
				delete(h.users, c.user)
			} else {
				h.users[c.user] = conns
			}
			delete(h.byID, c.id)
			h.count--
			if h.opts.Presence != nil {
				h.opts.Presence.Release(c.user, c.id)
			}
			if c.close(reason) && reason.byServer() {
				h.opts.Observer.Disconnected(reason)
			}
			return
		}
	}
}

// Conns are the open streams.
func (h *Hub) Conns() []*Conn {
	h.mu.Lock()
	defer h.mu.Unlock()
	all := make([]*Conn, 0, h.count)
	for _, conns := range h.users {
		all = append(all, conns...)
	}
	return all
}

// Len is the number of connected streams.
func (h *Hub) Len() int {
	h.mu.Lock()
	defer h.mu.Unlock()
	return h.count
}

// Drain refuses new streams, then closes the connected ones spread evenly over
// period, each told to reconnect after a random delay below jitter, so that
// clients move to other replicas without arriving all at once. Frames already
// queued are written before each stream closes. It returns when every stream
// was asked to close, or ctx ends (then the rest are closed at once).
func (h *Hub) Drain(ctx context.Context, period, jitter time.Duration, random func(time.Duration) time.Duration) {
	h.mu.Lock()
	h.closed = true
	h.mu.Unlock()
	all := h.Conns()

	var step time.Duration
	if len(all) > 0 {
		step = period / time.Duration(len(all))
	}
	timer := time.NewTimer(0)
	defer timer.Stop()
	for i, c := range all {
		if i > 0 && step > 0 {
			timer.Reset(step)
			select {
			case <-timer.C:
			case <-ctx.Done():
				step = 0
			}
		}
		var retry time.Duration
		if jitter > 0 && random != nil {
			retry = random(jitter)
		}
		c.setRetry(retry)
		h.Unregister(c, CloseDrain)
	}
}

type nopObserver struct{}

func (nopObserver) Delivered(Write)          {}
func (nopObserver) Disconnected(CloseReason) {}
func (nopObserver) ReadFailed(error)         {}
