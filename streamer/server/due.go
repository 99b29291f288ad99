package server

import (
	"container/heap"
	"sync"
	"time"
)

// dueStreams wakes streams up when their next keep-alive, expiry warning or
// expiry is due, for all of a server's streams at once: one runtime timer
// (no goroutine while it waits) set to the nearest instant of a min-heap,
// instead of a timer per stream (about 170 bytes each, docs/benchmarks.md).
// An instant is a monoNow; a stream's entry is its dueAt and its index in
// the heap.
type dueStreams struct {
	mu    sync.Mutex
	heap  dueHeap
	timer *time.Timer
	// armedAt is the instant timer is set to; 0 when it is not set.
	armedAt int64
}

// set has st woken up (workTimer) at at, instead of when it was to be.
func (d *dueStreams) set(st *stream, at int64) {
	d.mu.Lock()
	defer d.mu.Unlock()
	st.dueAt = at
	if st.dueIndex < 0 {
		heap.Push(&d.heap, st)
	} else {
		heap.Fix(&d.heap, int(st.dueIndex))
	}
	d.armLocked(monoNow())
}

// remove forgets st, which ended.
func (d *dueStreams) remove(st *stream) {
	d.mu.Lock()
	defer d.mu.Unlock()
	if st.dueIndex >= 0 {
		heap.Remove(&d.heap, int(st.dueIndex))
	}
}

// armLocked sets the timer to the nearest instant, unless it is set to
// that or sooner already.
func (d *dueStreams) armLocked(now int64) {
	if len(d.heap) == 0 {
		return
	}
	next := d.heap[0].dueAt
	if d.armedAt != 0 && d.armedAt <= next {
		return
	}
	d.armedAt = max(next, 1)
	wait := time.Duration(next - now)
	if d.timer == nil {
		d.timer = time.AfterFunc(wait, d.fire)
		return
	}
	d.timer.Reset(wait)
}

// fire wakes up the streams that are due, and sets the timer to the next.
func (d *dueStreams) fire() {
	var due []*stream
	d.mu.Lock()
	now := monoNow()
	d.armedAt = 0
	for len(d.heap) > 0 && d.heap[0].dueAt <= now {
		due = append(due, heap.Pop(&d.heap).(*stream))
	}
	d.armLocked(now)
	d.mu.Unlock()
	for _, st := range due {
		st.notify(workTimer)
	}
}

// dueHeap orders streams by dueAt (container/heap), keeping each stream's
// dueIndex; -1 is out of the heap.
type dueHeap []*stream

func (h dueHeap) Len() int           { return len(h) }
func (h dueHeap) Less(i, j int) bool { return h[i].dueAt < h[j].dueAt }
func (h dueHeap) Swap(i, j int) {
	h[i], h[j] = h[j], h[i]
	h[i].dueIndex, h[j].dueIndex = int32(i), int32(j)
}

func (h *dueHeap) Push(x any) {
	st := x.(*stream)
	st.dueIndex = int32(len(*h))
	*h = append(*h, st)
}

func (h *dueHeap) Pop() any {
	old := *h
	st := old[len(old)-1]
	old[len(old)-1] = nil
	st.dueIndex = -1
	*h = old[:len(old)-1]
	if len(*h) == 0 && cap(*h) > maxKeptReady {
		*h = nil
	}
	return st
}
