package jetstreamlog

import (
	"sort"

	eventlog "github.com/herald-notify/herald/streamer/log"
)

// entry is a retained event and the Nats-Msg-Id it was stored under.
type entry struct {
	eventlog.Event
	msgID string
}

// window is the retained events in stream-sequence order, oldest first: a
// ring that grows up to its bound, so that a quiet channel does not pay for
// the capacity it is allowed. Sequences increase but may skip (a message
// deleted from the stream, one that is not a Herald event). Not safe for
// concurrent use: the Log's lock guards it.
type window struct {
	bound int
	ring  []entry
	head  int
	count int
}

func newWindow(bound int) window { return window{bound: bound} }

func (w *window) len() int { return w.count }

// at is the i-th oldest entry.
func (w *window) at(i int) *entry { return &w.ring[(w.head+i)%len(w.ring)] }

// push appends e, dropping the oldest entry when the window is full; it
// returns the dropped entry's sequence, or 0.
func (w *window) push(e entry) (dropped uint64) {
	if w.count == w.bound {
		dropped = w.at(0).Position.Seq
		w.popOldest()
	}
	if w.count == len(w.ring) {
		grown := make([]entry, min(max(2*len(w.ring), 64), w.bound))
		for i := range w.count {
			grown[i] = *w.at(i)
		}
		w.ring, w.head = grown, 0
	}
	w.ring[(w.head+w.count)%len(w.ring)] = e
	w.count++
	return dropped
}

func (w *window) popOldest() {
	*w.at(0) = entry{} // release the event's memory
	w.head = (w.head + 1) % len(w.ring)
	w.count--
}

// dropBefore drops the entries with a sequence below seq.
func (w *window) dropBefore(seq uint64) {
	for w.count > 0 && w.at(0).Position.Seq < seq {
		w.popOldest()
	}
}

// reset drops every entry.
func (w *window) reset() {
	for w.count > 0 {
		w.popOldest()
	}
}

// firstAfter is the index of the oldest entry whose sequence is above seq,
// or len() when there is none.
func (w *window) firstAfter(seq uint64) int {
	return sort.Search(w.count, func(i int) bool { return w.at(i).Position.Seq > seq })
}

// find is the entry with sequence seq, or nil.
func (w *window) find(seq uint64) *entry {
	i := w.firstAfter(seq - 1)
	if i == w.count || w.at(i).Position.Seq != seq {
		return nil
	}
	return w.at(i)
}

// after copies up to limit events that follow seq.
func (w *window) after(seq uint64, limit int) []eventlog.Event {
	i := w.firstAfter(seq)
	n := min(w.count-i, limit)
	events := make([]eventlog.Event, n)
	for j := range n {
		events[j] = w.at(i + j).Event
	}
	return events
}
