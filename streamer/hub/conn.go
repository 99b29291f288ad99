package hub

import (
	"math"
	"sync"
	"time"

	eventlog "github.com/herald-notify/herald/streamer/log"
)

// Frame is an encoded event on its way to one or more streams. Bytes are
// shared by every stream and never modified.
//
// Frames travel in runs ([]Frame): the frames of consecutive events queued
// together, one slice shared by every stream they go to and never modified,
// so that a stream's queue holds a reference per run, not a copy per frame.
type Frame struct {
	Position eventlog.Position
	Type     string
	Appended time.Time
	Bytes    []byte
}

// CloseReason says why a stream ended.
type CloseReason string

// Close reasons, also the values of the disconnect metric's "reason" label
// and of the end event's "reason" (every one but CloseClient).
const (
	// CloseClient: the client went away or a write to it failed.
	CloseClient CloseReason = "client"
	// CloseTokenExpired: the stream's token expired.
	CloseTokenExpired CloseReason = "token_expired"
	// CloseSlowConsumer: the client did not read fast enough and its send
	// queue reached its bound.
	CloseSlowConsumer CloseReason = "slow_consumer"
	// CloseReplaced: the user opened a newer stream beyond the per-user limit.
	CloseReplaced CloseReason = "replaced"
	// CloseDrain: the server is shutting down.
	CloseDrain CloseReason = "drain"
	// CloseLagged: the log no longer holds events the stream had yet to
	// receive (the hub fell behind its retention, or it began a new epoch).
	CloseLagged CloseReason = "lagged"
)

// byServer reports whether the server, not the client, ended the stream.
func (r CloseReason) byServer() bool { return r != CloseClient && r != CloseTokenExpired }

// Conn is one stream's share of the hub: a send queue bounded in bytes, which
// the stream's writer drains. The hub never blocks on a client.
//
// The hub fills a Conn when it registers it (RegisterConn), so that a
// stream's writer may hold its Conn within its own state, one allocation
// per stream (docs/benchmarks.md); a Conn is registered once, and not
// copied.
type Conn struct {
	id    StreamID
	user  string
	limit int32

	mu     sync.Mutex
	queued int32 // bytes in queue
	done   bool
	queue  [][]Frame // runs, oldest first
	// notifier tells the writer that it has work or must stop: the
	// writer's (SetNotifier), or the channel of Wake.
	notifier Notifier
	reason   CloseReason
	retry    time.Duration
}

// Notifier is told that a stream has frames to write (once, until its writer
// takes them: Take) or must end, without a channel or a goroutine waiting on
// one: a stream served by a pool of writers (package server) is scheduled by
// it.
type Notifier interface {
	// Notify is called with the stream's lock held, often the hub's too:
	// it must not block, nor call back into the hub or the Conn.
	Notify()
}

// maxKeptQueue is the capacity of the queue a Conn keeps once its writer
// took what it held: a larger one, grown by a burst, is released, so that an
// idle stream holds at most this many runs' room.
const maxKeptQueue = 1

// grownQueue is the room of a queue that holds more than one run: a stream
// behind its writer during a burst gathers several. Grown queues come from
// grownQueues and go back to it when the writer takes their runs, so that a
// broadcast's pass over streams still holding frames grows no queue (a
// growth was the most of such a pass's cost: docs/benchmarks.md), while an
// idle stream keeps room for one run only. A queue that outgrows one takes
// a largeQueue the same way (events that reach the hub one by one, a few
// milliseconds apart, while writers work through thousands of streams,
// leave each dozens of runs); one that outgrows that grows on the heap.
type (
	grownQueue [grownQueueRuns][]Frame
	largeQueue [largeQueueRuns][]Frame
)

const (
	grownQueueRuns = 16
	largeQueueRuns = 128
)

var (
	grownQueues = sync.Pool{New: func() any { return new(grownQueue) }}
	largeQueues = sync.Pool{New: func() any { return new(largeQueue) }}
)

// growQueueLocked gives a full queue room for more runs: from grownQueues,
// then from largeQueues (the grown room going back), then the heap's.
func (c *Conn) growQueueLocked() {
	switch n := cap(c.queue); {
	case n < grownQueueRuns:
		grown := grownQueues.Get().(*grownQueue)
		c.queue = append(grown[:0], c.queue...)
	case n == grownQueueRuns:
		large := largeQueues.Get().(*largeQueue)
		old := c.queue
		c.queue = append(large[:0], old...)
		clear(old)
		grownQueues.Put((*grownQueue)(old[:grownQueueRuns]))
	}
}

// init fills a new Conn.
func (c *Conn) init(id StreamID, user string, limit int, n Notifier) {
	c.id, c.user, c.limit, c.notifier = id, user, int32(min(limit, math.MaxInt32)), n
}

// wakeChan is the Notifier of Wake: a channel with room for one signal.
type wakeChan chan struct{}

func (w wakeChan) Notify() {
	select {
	case w <- struct{}{}:
	default:
	}
}

// Notifier is who is told that the stream has work: the writer given to
// RegisterConn or SetNotifier, or nil.
func (c *Conn) Notifier() Notifier {
	c.mu.Lock()
	defer c.mu.Unlock()
	if _, ok := c.notifier.(wakeChan); ok {
		return nil
	}
	return c.notifier
}

// User is the stream's user id.
func (c *Conn) User() string { return c.user }

// ID is the stream's id within its process.
func (c *Conn) ID() StreamID { return c.id }

// enqueue adds run, frames shared with other streams, and wakes the stream
// once; false means the queue bound was reached (the frames before the one
// that would pass it are queued) and the stream must be closed as a slow
// consumer.
func (c *Conn) enqueue(run []Frame) bool {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.done {
		return true
	}
	queued, n := c.queued, 0
	for _, f := range run {
		// A frame larger than the whole bound still goes to a client that
		// has nothing queued: an event is never undeliverable because of
		// its size.
		if queued > 0 && int(queued)+len(f.Bytes) > int(c.limit) {
			break
		}
		queued += int32(len(f.Bytes))
		n++
	}
	if n > 0 {
		// A stream with frames queued already was told of them and has not
		// taken them yet: it takes these with them. A broadcast that reaches
		// a busy writer's streams touches only their queues.
		told := len(c.queue) > 0
		if told && len(c.queue) == cap(c.queue) {
			c.growQueueLocked()
		}
		c.queue = append(c.queue, run[:n:n])
		c.queued = queued
		if !told {
			c.signal()
		}
	}
	return n == len(run)
}

func (c *Conn) signal() {
	if c.notifier != nil {
		c.notifier.Notify()
	}
}

// pendingLocked reports whether the writer has something to take.
func (c *Conn) pendingLocked() bool { return len(c.queue) > 0 || c.done }

// SetNotifier has n told, instead of the channel of Wake, whenever the
// stream has frames to write or must end; at once if it already has.
func (c *Conn) SetNotifier(n Notifier) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.notifier = n
	if c.pendingLocked() {
		n.Notify()
	}
}

// close marks the stream done; true when this call closed it.
func (c *Conn) close(reason CloseReason) bool {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.done {
		return false
	}
	c.done, c.reason = true, reason
	if reason == CloseSlowConsumer {
		// Nothing more will be written: release the backlog now.
		c.queue, c.queued = nil, 0
	}
	c.signal()
	return true
}

func (c *Conn) setRetry(d time.Duration) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.retry = d
}

// Wake is signalled when frames were queued or the stream must end, for a
// writer that waits on a channel rather than setting a Notifier. The channel
// is made by the first call, signalled at once if the stream already has
// something for its writer.
func (c *Conn) Wake() <-chan struct{} {
	c.mu.Lock()
	defer c.mu.Unlock()
	if w, ok := c.notifier.(wakeChan); ok {
		return w
	}
	w := make(wakeChan, 1)
	c.notifier = w
	if c.pendingLocked() {
		w.Notify()
	}
	return w
}

// Take removes and returns the queued runs of frames, oldest first
// (appending to buf, which the writer reuses; the runs are shared and must
// not be modified), and whether the stream must end after writing them, with
// the reason and the reconnect delay to send.
func (c *Conn) Take(buf [][]Frame) (runs [][]Frame, done bool, reason CloseReason, retry time.Duration) {
	c.mu.Lock()
	defer c.mu.Unlock()
	runs = append(buf, c.queue...)
	clear(c.queue)
	c.queue, c.queued = c.queue[:0], 0
	switch {
	case cap(c.queue) == grownQueueRuns:
		grownQueues.Put((*grownQueue)(c.queue[:grownQueueRuns]))
		c.queue = nil
	case cap(c.queue) == largeQueueRuns:
		largeQueues.Put((*largeQueue)(c.queue[:largeQueueRuns]))
		c.queue = nil
	case cap(c.queue) > maxKeptQueue:
		c.queue = nil
	}
	return runs, c.done, c.reason, c.retry
}

// QueueCap is the capacity of the stream's queue, in runs: what it holds
// while idle.
func (c *Conn) QueueCap() int {
	c.mu.Lock()
	defer c.mu.Unlock()
	return cap(c.queue)
}

// Write is what one write to a stream carried, for the observer: the
// frames of runs after a position (the stream's opening wrote those up to
// it), written at now.
type Write struct {
	runs  [][]Frame
	after eventlog.Position
	now   time.Time
}

// NewWrite is the write of runs' frames after position after, at now.
func NewWrite(runs [][]Frame, after eventlog.Position, now time.Time) Write {
	return Write{runs: runs, after: after, now: now}
}

// Each calls fn with the type of each frame w carried and its latency, from
// its append to the write.
func (w Write) Each(fn func(eventType string, latency time.Duration)) {
	for _, run := range w.runs {
		for i := range run {
			if f := &run[i]; f.Position.After(w.after) {
				fn(f.Type, w.now.Sub(f.Appended))
			}
		}
	}
}

// Delivered tells the observer of a write to a stream: once per write, not
// per frame, as a burst writes dozens of frames at once to each of
// thousands of streams.
func (h *Hub) Delivered(w Write) {
	h.observer.Delivered(w)
}
