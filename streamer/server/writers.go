package server

import (
	"runtime"
	"sync"
	"sync/atomic"
	"time"

	"github.com/herald-notify/herald/streamer/hub"
)

// work is what woke a stream up: set by the hub, the stream's timer or a
// refresh, taken by the goroutine that serves the stream.
type work uint8

const (
	// workQueued: the hub queued frames, or closed the stream.
	workQueued work = 1 << iota
	// workTimer: the stream's timer fired (keep-alive, warning or expiry).
	workTimer
	// workMoved: a refresh moved the token's expiry.
	workMoved
)

// writerPool serves the detached streams that have work: a stream with
// nothing to do has no goroutine. A stream that has work is scheduled once,
// and served by one writer at a time; the writers (see writers) take the
// ready streams in batches and end when none is left.
type writerPool struct {
	mu sync.Mutex
	// ready are the streams scheduled, from head on.
	ready   []*stream
	head    int
	running int
	// max bounds running; 0 means the default of writers. peak is the
	// most running at once.
	max, peak int
	// bound is writers() as read when the pool was last idle: reading
	// GOMAXPROCS takes the runtime's scheduler lock, too dear for each of
	// the streams a broadcast schedules, and it changes only with the
	// container's CPU limit.
	bound int
	// waiting counts the streams whose write waits for the client, each
	// in a goroutine of its own (stream.finishRound).
	waiting atomic.Int32
}

// writerBatch is how many ready streams a writer takes at a time.
const writerBatch = 64

// maxKeptReady is the capacity of the ready list kept once it is empty: a
// larger one, grown by a broadcast, is released.
const maxKeptReady = 1024

// schedule has st served by a writer. The caller made st scheduled: it is
// in the list at most once.
func (p *writerPool) schedule(st *stream) {
	p.mu.Lock()
	p.ready = append(p.ready, st)
	if p.running == 0 {
		p.bound = p.writers()
	}
	start := p.running < p.bound
	if start {
		p.running++
		p.peak = max(p.peak, p.running)
	}
	p.mu.Unlock()
	if start {
		go p.run()
	}
}

// writers is how many writers may run at once: by default one fewer than
// GOMAXPROCS, and at least one. A writer does not block: while every P runs
// one, a goroutine the network wakes (a publish request, the broker's
// acknowledgement, the log's consumer, a new stream) waits for the runtime's
// 10 ms network poll, so a burst's events would reach the hub further apart
// and each write would carry fewer of them. The P left over takes those at
// once.
func (p *writerPool) writers() int {
	if p.max > 0 {
		return p.max
	}
	return defaultWriters(runtime.GOMAXPROCS(0))
}

// defaultWriters is the writers' bound for procs Ps.
func defaultWriters(procs int) int { return max(1, procs-1) }

// run serves ready streams until none is left.
func (p *writerPool) run() {
	var batch [writerBatch]*stream
	for {
		n := p.take(batch[:])
		if n == 0 {
			return
		}
		for i, st := range batch[:n] {
			st.serveDetached()
			batch[i] = nil
		}
	}
}

// take moves up to len(batch) ready streams to batch; 0 ends the writer.
func (p *writerPool) take(batch []*stream) int {
	p.mu.Lock()
	defer p.mu.Unlock()
	n := copy(batch, p.ready[p.head:])
	clear(p.ready[p.head : p.head+n])
	p.head += n
	if p.head == len(p.ready) {
		p.ready, p.head = p.ready[:0], 0
		if cap(p.ready) > maxKeptReady {
			p.ready = nil
		}
	}
	if n == 0 {
		p.running--
	}
	return n
}

// runsPool holds the slices the streams take their queued runs of frames
// into, so that an idle stream holds none.
var runsPool = sync.Pool{New: func() any { r := make([][]hub.Frame, 0, 16); return &r }}

// maxPooledRuns is the capacity of the largest runs slice put back.
const maxPooledRuns = 1024

// round is what a stream writes for one wake-up.
type round struct {
	// buf holds the bytes to write after its first empty bytes; nil when
	// the round writes nothing.
	buf   []byte
	empty int
	// runs are the runs of frames taken from the hub (pooled), which are
	// counted as delivered once written.
	runs *[][]hub.Frame
	// ending: the stream ends after the write, for reason.
	ending bool
	reason hub.CloseReason
}

// wrote reports whether the round has bytes to write.
func (r *round) wrote() bool { return r.buf != nil && len(r.buf) > r.empty }

// releaseFrames puts the round's runs slice back.
func (r *round) releaseFrames() {
	if r.runs == nil {
		return
	}
	clear(*r.runs)
	if cap(*r.runs) <= maxPooledRuns {
		*r.runs = (*r.runs)[:0]
		runsPool.Put(r.runs)
	}
	r.runs = nil
}

// clockBase is the origin of the monotonic instants a stream's timer is set
// from (monoNow).
var clockBase = time.Now()

// monoNow is the monotonic time since clockBase, in nanoseconds: an
// instant in 8 bytes instead of a time.Time's 24.
func monoNow() int64 { return int64(time.Since(clockBase)) }
