package jetstreamlog

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"

	eventlog "github.com/herald-notify/herald/streamer/log"
)

// Appends without a key are committed in groups. With `sync_interval:
// always` every message costs JetStream a write and an fsync on each of the
// stream's replicas, and every message costs the streamer a publish, an
// acknowledgement and a delivery to its consumer, each a wake-up of a
// goroutine or two. So while one message is on its way, the events appended
// meanwhile gather into the next, published as one message (envelope 2) once
// the first is acknowledged. An append that finds nothing on its way leads a
// group of its own at once, and only appends that would have waited for each
// other share a message; how long a group waits for company is bounded
// (below). A group is stored whole
// or not at all, and each of its appenders is acknowledged only once
// JetStream acknowledged the message.
//
// One of a group's own appenders publishes it (the first to take the lead
// when the message before is acknowledged), so that no goroutine of the log's
// sits between a request and its publish.
//
// A group about to leave first waits for more appends, for at most half as
// long as the write before waited for its acknowledgement and never more than
// maxGather: until it holds as many as that write carried, and as many as
// there are appends under way (those of the write before still being read
// back count too: their publishers, once answered, are likely to append
// again). Requests in flight otherwise split into cohorts that alternate,
// each in a write of its own: one answered while the other's write is on its
// way, with nothing to make either wait for the other. Merged, the same
// requests take half the writes, and the streamer is woken half as often for
// them. After a write of one event with nothing else under way nothing
// waits, so a publisher alone is never delayed.

// Bounds of a group: JetStream refuses a message larger than the server's
// max_payload (1 MiB by default), and a message read again for a resume is
// read whole.
const (
	maxGroupEvents = 1000
	maxGroupBytes  = 256 << 10
)

// maxGather bounds how long a group waits for the appends the write before
// it suggests are coming.
const maxGather = time.Millisecond

// gatherFor is how long a group may wait for more appends after a write
// that waited wait for its acknowledgement (see above).
func gatherFor(wait time.Duration) time.Duration { return min(wait/2, maxGather) }

// group is the events of appends published together as one message.
type group struct {
	members []*member
	live    int // members not withdrawn
	size    int // encoded size of the members' events, at most
	// lead is closed when the group is next to publish; led once one of
	// its members took it on, publishing once it left the queue to be
	// published (appends can join and withdraw until then).
	lead                       chan struct{}
	signalled, led, publishing bool
	// gathered, while the group waits for more appends, is closed once it
	// holds want.
	gathered chan struct{}
	want     int
	done     chan struct{} // closed once published, ack or err set
	ack      *jetstream.PubAck
	err      error
}

// member is one append of a group.
type member struct {
	event     eventlog.Event
	withdrawn bool   // its appender gave up before the group was published
	following uint32 // events of the message after this one, once published
}

// groups is the queue of groups gathering, under Log.groupMu.
type groups struct {
	// sending is set while a group is being published or has the lead.
	sending bool
	// queue is the groups waiting, published in order, one at a time.
	queue []*group
	// lastEvents and lastWait are the last acknowledged write's events and
	// its wait for the acknowledgement.
	lastEvents int
	lastWait   time.Duration
	// appending counts the appends from their join to their receipt.
	appending int
}

// appendGrouped appends e in a group: see above.
func (l *Log) appendGrouped(ctx context.Context, e eventlog.Event) (eventlog.Receipt, error) {
	m := &member{event: e}
	l.groupMu.Lock()
	l.groups.appending++
	defer l.doneAppending()
	g := l.joinLocked(m, encodedSize(e))
	if !l.groups.sending {
		// Nothing on its way: this append's group goes now, or once the
		// appends the last write suggests joined it.
		l.groups.sending = true
		g.led = true
		l.groupMu.Unlock()
		l.leadGroup(ctx, g)
	} else {
		l.groupMu.Unlock()
		if err := l.awaitGroup(ctx, g, m); err != nil {
			return eventlog.Receipt{}, err
		}
	}
	if g.err != nil {
		return eventlog.Receipt{}, g.err
	}
	return l.awaitDelivery(ctx, eventlog.Position{Seq: g.ack.Sequence, Following: m.following}, false, e, "")
}

// doneAppending counts an append out once it has its receipt or error.
func (l *Log) doneAppending() {
	l.groupMu.Lock()
	l.groups.appending--
	l.groupMu.Unlock()
}

// joinLocked adds m to the last group of the queue, or to a new one when
// that one is full (which then waits for nothing more).
func (l *Log) joinLocked(m *member, size int) *group {
	q := l.groups.queue
	var g *group
	if len(q) > 0 {
		last := q[len(q)-1]
		if len(last.members) < maxGroupEvents && last.size+size <= maxGroupBytes {
			g = last
		} else if last.gathered != nil {
			close(last.gathered)
			last.gathered = nil
		}
	}
	if g == nil {
		g = &group{lead: make(chan struct{}), done: make(chan struct{})}
		l.groups.queue = append(q, g)
	}
	g.members = append(g.members, m)
	g.live++
	g.size += size
	if g.gathered != nil && g.live >= g.want {
		close(g.gathered)
		g.gathered = nil
	}
	return g
}

// leadGroup publishes g, which one of its members took the lead of: once it
// gathered what the write before suggests (see above), it leaves the queue.
func (l *Log) leadGroup(ctx context.Context, g *group) {
	l.gather(g)
	l.groupMu.Lock()
	g.gathered = nil
	g.publishing = true
	l.groups.queue = slices.DeleteFunc(l.groups.queue, func(q *group) bool { return q == g })
	l.groupMu.Unlock()
	l.publishGroup(ctx, g)
}

// gather waits until g holds as many appends as the last write carried and
// as are under way, for at most gatherFor that write's wait.
func (l *Log) gather(g *group) {
	l.groupMu.Lock()
	limit := l.gatherLimit(l.groups.lastWait)
	want := min(max(l.groups.lastEvents, l.groups.appending), maxGroupEvents)
	if g.live >= want || limit <= 0 {
		l.groupMu.Unlock()
		return
	}
	g.want = want
	g.gathered = make(chan struct{})
	gathered := g.gathered
	l.groupMu.Unlock()
	timer := time.NewTimer(limit)
	defer timer.Stop()
	select {
	case <-gathered:
	case <-timer.C:
	}
}

// awaitGroup waits until m's group is published, publishing it when the
// lead comes to it; it withdraws m if ctx ends first and the group has not
// left yet.
func (l *Log) awaitGroup(ctx context.Context, g *group, m *member) error {
	for {
		select {
		case <-g.done:
			return nil
		case <-g.lead:
			l.groupMu.Lock()
			if g.led { // another member took it
				l.groupMu.Unlock()
				select {
				case <-g.done:
					return nil
				case <-ctx.Done():
					return l.giveUp(ctx, g, m)
				}
			}
			g.led = true
			l.groupMu.Unlock()
			l.leadGroup(ctx, g)
			return nil
		case <-ctx.Done():
			return l.giveUp(ctx, g, m)
		}
	}
}

// giveUp is the error of an append whose ctx ended before its group was
// acknowledged: m is withdrawn unless the group is being published.
func (l *Log) giveUp(ctx context.Context, g *group, m *member) error {
	l.groupMu.Lock()
	defer l.groupMu.Unlock()
	if g.publishing { // on its way: the event may be stored
		return fmt.Errorf("failed to append to stream %s: %w", l.stream, ctx.Err())
	}
	l.withdrawLocked(g, m)
	return fmt.Errorf("failed to append to stream %s, nothing was stored: %w", l.stream, ctx.Err())
}

// withdrawLocked takes m out of g before g is published. A group left with
// nobody leaves the queue, passing on the lead if it had it.
func (l *Log) withdrawLocked(g *group, m *member) {
	m.withdrawn = true
	g.live--
	if g.live > 0 {
		return
	}
	l.groups.queue = slices.DeleteFunc(l.groups.queue, func(q *group) bool { return q == g })
	if g.signalled {
		l.passLeadLocked()
	}
}

// passLeadLocked gives the lead to the next group, or ends the sending.
func (l *Log) passLeadLocked() {
	if len(l.groups.queue) == 0 {
		l.groups.sending = false
		return
	}
	next := l.groups.queue[0]
	next.signalled = true
	close(next.lead)
}

// publishGroup publishes g's events as one message within the request
// timeout (not its appenders' contexts: the message carries others' events
// too), passes the lead on, and records the outcome for g's members once the
// window holds the message or ctx ends.
func (l *Log) publishGroup(ctx context.Context, g *group) {
	events := make([]eventlog.Event, 0, g.live)
	for _, m := range g.members {
		if !m.withdrawn {
			m.following = uint32(g.live - 1 - len(events))
			events = append(events, m.event)
		}
	}
	l.metrics.appendsPerWrite.Observe(float64(len(events)))
	body := encodeEvent(events[0])
	if len(events) > 1 {
		body = encodeBatch(events)
	}
	if l.beforeGroupPublish != nil {
		l.beforeGroupPublish()
	}
	var wait time.Duration // for the acknowledgement
	g.err = l.checkAppend()
	if g.err == nil {
		publish, cancel := context.WithTimeout(l.ctx, l.opts.RequestTimeout)
		start := time.Now()
		g.ack, g.err = l.js.PublishMsg(publish, &nats.Msg{Subject: l.subject, Data: body}, jetstream.WithExpectStream(l.stream))
		wait = time.Since(start)
		cancel()
		if g.err == nil {
			l.metrics.observeWrite(wait)
		} else {
			if errors.Is(g.err, context.Canceled) && l.ctx.Err() != nil {
				g.err = eventlog.ErrClosed
			}
			g.err = fmt.Errorf("failed to append to stream %s: %w", l.stream, g.err)
		}
	}
	// The next group may go as soon as this one is acknowledged, knowing
	// what this one carried and waited.
	l.groupMu.Lock()
	if g.err == nil {
		l.groups.lastEvents, l.groups.lastWait = len(events), wait
	}
	l.passLeadLocked()
	l.groupMu.Unlock()
	if g.err == nil {
		// Its members are woken once, when the window holds the
		// message (each still checks, in case ctx ended first).
		_, _ = l.awaitDelivery(ctx, eventlog.Position{Seq: g.ack.Sequence}, false, events[len(events)-1], "")
	}
	close(g.done)
}
