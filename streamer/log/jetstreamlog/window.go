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

// window is the retained events in position order, oldest first: a ring
// that grows up to its bound, so that a quiet channel does not pay for the
// capacity it is allowed. Sequences increase but may skip (a message deleted
// from the stream, one that is not a Herald event); the events of one message
// share its sequence. Not safe for concurrent use: the Log's lock guards it.
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
// returns the dropped entry's position, if any.
func (w *window) push(e entry) (dropped eventlog.Position, full bool) {
	if w.count == w.bound {
		dropped, full = w.at(0).Position, true
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
	return dropped, full
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

// firstAfter is the index of the oldest entry after pos, or len() when
// there is none.
func (w *window) firstAfter(pos eventlog.Position) int {
	return sort.Search(w.count, func(i int) bool { return w.at(i).Position.After(pos) })
}

// find is the entry at pos, or nil.
func (w *window) find(pos eventlog.Position) *entry {
	i := sort.Search(w.count, func(i int) bool { return w.at(i).Position.Compare(pos) >= 0 })
	if i == w.count || w.at(i).Position != pos {
		return nil
	}
	return w.at(i)
}

// after copies up to limit events that follow pos.
func (w *window) after(pos eventlog.Position, limit int) []eventlog.Event {
	i := w.firstAfter(pos)
	n := min(w.count-i, limit)
	events := make([]eventlog.Event, n)
	for j := range n {
		events[j] = w.at(i + j).Event
	}
	return events
}
