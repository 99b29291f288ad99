package server

import (
	"encoding/json"
	"errors"
	"net/http"
	"sync"
	"time"

	"github.com/herald-notify/herald/streamer/auth"
	"github.com/herald-notify/herald/streamer/event"
	"github.com/herald-notify/herald/streamer/httpapi"
	"github.com/herald-notify/herald/streamer/hub"
	eventlog "github.com/herald-notify/herald/streamer/log"
	"github.com/herald-notify/herald/streamer/sse"
)

// connectionEvent is the first event of every stream.
type connectionEvent struct {
	Type    string `json:"type"`
	Message string `json:"message"`
	UserID  string `json:"userId"`
	// StreamID names the stream for an in-place token refresh.
	StreamID  string `json:"streamId"`
	Timestamp string `json:"timestamp"`
	// Recovered is set when the client resumed with Last-Event-ID: true when
	// every event it missed follows, false when some are gone.
	Recovered *bool `json:"recovered,omitempty"`
}

// serveStream is GET /api/v1/sse/notifications.
func (s *Server) serveStream(w http.ResponseWriter, r *http.Request) {
	if r.Method != http.MethodGet {
		httpapi.MethodNotAllowed(w, http.MethodGet)
		return
	}
	identity, err := s.authenticateStream(r)
	if errors.Is(err, errTicketsUnavailable) {
		// Not 401: the ticket may well be valid, and a 401 would make a
		// browser give up instead of retrying.
		s.metrics.connects.WithLabelValues(connectTicketsUnavailable).Inc()
		s.logger.Warn("stream refused: the ticket store cannot be reached", "reason", "TicketsUnavailable", "error", err.Error())
		httpapi.WriteRetryAfter(w, httpapi.CodeUnavailable, "tickets cannot be checked right now; retry", ticketsRetryAfter)
		return
	}
	if err != nil {
		s.metrics.connects.WithLabelValues(connectUnauthorized).Inc()
		httpapi.WriteError(w, httpapi.CodeUnauthorized, err.Error())
		return
	}
	if _, ok := w.(http.Flusher); !ok {
		httpapi.WriteError(w, httpapi.CodeUnavailable, "streaming is not supported on this connection")
		return
	}
	// Counted before the hub admits it, so that WaitStreams, called after a
	// drain closed the hub, waits for every stream the hub admitted.
	s.streamStarted()
	st := newStream(s, identity)
	joinedAt, err := s.hub.RegisterConn(r.Context(), &st.conn, identity.UserID, st)
	if err != nil {
		s.streamEnded()
		s.refuse(w, err)
		return
	}
	// What a resuming client missed is read before anything is written, so
	// that a log that cannot be read is answered with a status the client
	// retries on.
	opening, err := st.prepare(r, joinedAt)
	if err != nil {
		st.end(hub.CloseClient)
		s.metrics.connects.WithLabelValues(connectLogUnavailable).Inc()
		s.logger.Warn("stream refused: the log could not be read", "user", identity.UserID, "reason", "LogUnavailable", "error", err.Error())
		httpapi.WriteRetryAfter(w, httpapi.CodeUnavailable, "the channel's event log cannot be read right now; retry", time.Second)
		return
	}
	s.metrics.connects.WithLabelValues(connectOK).Inc()
	s.metrics.connections.Inc()
	st.opened = monoNow()

	// HTTP/1.1 streams leave net/http once their headers are written; HTTP/2
	// and HTTP/1.0 (no chunked framing) stay on the handler's path.
	if r.ProtoMajor == 1 && r.ProtoMinor >= 1 {
		out, err := detach(w, r, s)
		switch {
		case err == nil:
			st.out = out
			st.startDetached(opening)
			return
		case !errors.Is(err, http.ErrNotSupported):
			st.end(hub.CloseClient)
			return
		}
	}
	st.out = newHandlerWriter(w, r, s.writeTimeout)
	st.end(st.serve(r.Context().Done(), opening))
}

// refuse answers a stream request the hub did not admit.
func (s *Server) refuse(w http.ResponseWriter, err error) {
	switch {
	case errors.Is(err, hub.ErrUserLimit):
		s.metrics.connects.WithLabelValues(connectUserLimit).Inc()
		httpapi.WriteError(w, httpapi.CodeRateLimited, "this user already holds the most streams the channel allows")
	case errors.Is(err, hub.ErrProcessLimit):
		s.metrics.connects.WithLabelValues(connectProcessLimit).Inc()
		httpapi.WriteRetryAfter(w, httpapi.CodeUnavailable, "this server holds the most streams it allows", 5*time.Second)
	default:
		s.metrics.connects.WithLabelValues(connectShuttingDown).Inc()
		httpapi.WriteRetryAfter(w, httpapi.CodeUnavailable, "this server is shutting down", time.Second)
	}
}

// stream writes one client's events, through its streamWriter: net/http
// (handlerWriter) or a connection taken off net/http (detachedWriter).
//
// Its work comes from the hub (frames queued, the stream closed), the timer
// (keep-alive, the token's expiry and the warning before it) and refreshes
// (the expiry moved): each sets pending work and wakes the stream up (notify).
// A detached stream is then scheduled onto the server's writers; a stream on
// net/http's path has its handler goroutine kicked.
type stream struct {
	server *Server
	out    streamWriter
	// conn is the stream's share of the hub, held here rather than in an
	// allocation of its own (hub.RegisterConn); conn.User() is the stream's
	// user.
	conn hub.Conn
	// opened is when the stream opened (monoNow), 0 before.
	opened int64
	// skipUpTo is the position up to which the stream's opening already
	// holds the events: queued frames up to it are not written again.
	skipUpTo eventlog.Position

	// mu guards what other goroutines than the one serving the stream set.
	// The small fields are next to each other: an idle stream is this
	// struct, and padding counts (docs/benchmarks.md).
	mu      sync.Mutex
	pending work
	// scheduled: a goroutine serves the detached stream, or will (it is in
	// the writers' ready list); it stays set once the stream ended.
	scheduled bool
	// tokenEnded is set once the stream ended: a refresh can no longer move
	// expiresAt, when the stream's token expires (Unix milliseconds, the
	// precision of the events that tell it).
	tokenEnded bool
	// dueIndex and dueAt are the stream's entry in dueStreams, guarded by
	// its lock; dueIndex is -1 out of it.
	dueIndex  int32
	expiresAt int64
	dueAt     int64
	// kick wakes the handler goroutine of a stream on net/http's path; nil
	// for a detached stream.
	kick chan struct{}

	// The instants (monoNow) the server's dueStreams wakes the stream up
	// at, for the goroutine serving it: the next keep-alive, the warning (0
	// once written, until a refresh), and when the expiry is due to be
	// checked.
	keepAliveAt, warningAt, expiryAt int64
}

// opening is what a stream writes first: its connection event, what the
// client missed, and the announcements in force that it has not seen.
type opening struct {
	startID   eventlog.Position
	recovered *bool
	replayed  []byte
	announced [][]byte
}

// newStream allocates a stream's state on the heap. It is not inlined on
// purpose: inlined, the compiler would keep the state in serveStream's stack
// frame, and the handler goroutine's deepest call (in the stream's first
// flush) then goes past the 8 KiB beyond which its stack doubles
// (docs/benchmarks.md).
//
//go:noinline
func newStream(s *Server, identity auth.Identity) *stream {
	// Owned by the goroutine that opens it until it starts (serve,
	// startDetached): work that comes meanwhile is pending, not scheduled.
	return &stream{
		server: s, expiresAt: identity.ExpiresAt.UnixMilli(), scheduled: true, dueIndex: -1,
	}
}

// user is the stream's user.
func (st *stream) user() string { return st.conn.User() }

// id names the stream for a token refresh (streamIDs).
func (st *stream) id() string { return st.server.streamIDs.id(st.conn.ID()) }

// end unregisters a stream that ended for reason.
func (st *stream) end(reason hub.CloseReason) {
	s := st.server
	s.due.remove(st)
	s.hub.Unregister(&st.conn, reason)
	// A refresh no longer finds the stream in the hub; one that found it
	// before can no longer move its expiry.
	st.endToken()
	if st.opened != 0 {
		s.metrics.connections.Dec()
		s.logger.Debug("stream closed", "user", st.user(), "reason", string(reason), "duration", time.Duration(monoNow()-st.opened).String())
	}
	s.streamEnded()
}

// Notify is the hub's: frames were queued, or the stream must end.
func (st *stream) Notify() { st.notify(workQueued) }

// notify records work for the stream and wakes it up: a detached stream is
// scheduled onto the writers unless it already is.
func (st *stream) notify(w work) {
	st.mu.Lock()
	st.pending |= w
	if kick := st.kick; kick != nil {
		st.mu.Unlock()
		wakeUp(kick)
		return
	}
	schedule := !st.scheduled
	st.scheduled = true
	st.mu.Unlock()
	if schedule {
		st.server.writers.schedule(st)
	}
}

// wakeUp signals kick, which has room for one signal.
func wakeUp(kick chan struct{}) {
	select {
	case kick <- struct{}{}:
	default:
	}
}

// takePending returns the work pending and clears it.
func (st *stream) takePending() work {
	st.mu.Lock()
	defer st.mu.Unlock()
	w := st.pending
	st.pending = 0
	return w
}

// release returns a detached stream that its goroutine has served to the
// event-driven state: scheduled again if work came meanwhile.
func (st *stream) release() {
	st.mu.Lock()
	again := st.pending != 0
	st.scheduled = again
	st.mu.Unlock()
	if again {
		st.server.writers.schedule(st)
	}
}

// serve writes the stream through net/http until it ends, or the client
// goes away (gone), and returns why it ended.
func (st *stream) serve(gone <-chan struct{}, o *opening) hub.CloseReason {
	defer st.out.finish(hub.CloseClient)
	// Opening the stream and writing its events are methods of their own so
	// that their stack frames are gone while the stream idles: the garbage
	// collector halves an idle goroutine's stack (16 to 8 KiB) only when it
	// uses less than a quarter of it (docs/benchmarks.md).
	if err := st.open(o); err != nil {
		return hub.CloseClient
	}
	st.startTimer()
	st.mu.Lock()
	st.kick = make(chan struct{}, 1)
	if st.pending != 0 {
		wakeUp(st.kick)
	}
	st.mu.Unlock()
	return st.loop(gone)
}

// loop serves the work of a stream on net/http's path as it comes, until
// the stream ends or the client goes away (gone), and returns why it ended.
func (st *stream) loop(gone <-chan struct{}) hub.CloseReason {
	for {
		select {
		case <-gone:
			return hub.CloseClient
		case <-st.kick:
			if reason, done := st.serveHandler(); done {
				return reason
			}
		}
	}
}

// serveHandler writes one round of the stream's work through net/http, and
// reports whether the stream must end, and why.
func (st *stream) serveHandler() (hub.CloseReason, bool) {
	r := st.collect(st.takePending())
	defer r.releaseFrames()
	if !r.wrote() {
		if r.buf != nil {
			st.out.release(r.buf)
		}
		return r.reason, r.ending
	}
	if err := st.out.write(r.buf); err != nil {
		return writeFailed(r), true
	}
	st.delivered(r)
	return r.reason, r.ending
}

// writeFailed is why a stream ends whose round's write failed: the client
// went away, unless the round ended an expired stream (its end event is
// written with the deadline, failed or not).
func writeFailed(r round) hub.CloseReason {
	if r.ending && r.reason == hub.CloseTokenExpired {
		return r.reason
	}
	return hub.CloseClient
}

// startDetached writes a detached stream's opening, then leaves it to the
// server's writers, which serve it whenever it has work.
func (st *stream) startDetached(o *opening) {
	if err := st.open(o); err != nil {
		st.out.finish(hub.CloseClient)
		st.end(hub.CloseClient)
		return
	}
	st.out.(*detachedWriter).watch(st)
	st.startTimer()
	st.release()
}

// clientGone ends a detached stream whose client closed its connection: the
// hub closes the stream's queue, which wakes its writer.
func (st *stream) clientGone() { st.server.hub.Unregister(&st.conn, hub.CloseClient) }

// clientGone ends the detached stream id, if still open, whose client closed
// its connection (the close watcher's).
func (s *Server) clientGone(id hub.StreamID) {
	if c := s.hub.Lookup(id); c != nil {
		s.hub.Unregister(c, hub.CloseClient)
	}
}

// serveDetached writes one round of a detached stream's work, for a writer
// of the pool. It never waits for the client: what the socket does not take
// at once is written by a goroutine of the stream's own (finishRound).
func (st *stream) serveDetached() {
	r := st.collect(st.takePending())
	dw := st.out.(*detachedWriter)
	if !r.wrote() {
		if r.buf != nil {
			dw.release(r.buf)
		}
		r.releaseFrames()
		if r.ending {
			st.close(r.reason)
			return
		}
		st.release()
		return
	}
	rest, err := dw.tryWrite(r.buf, r.ending)
	switch {
	case err != nil:
		st.endRound(r, err)
	case rest != nil:
		st.server.writers.waiting.Add(1)
		go st.finishRound(r, rest)
	default:
		st.endRound(r, nil)
	}
}

// finishRound writes what the socket did not take at once, within the
// write timeout, then returns the stream to the writers' care.
func (st *stream) finishRound(r round, rest []byte) {
	err := st.out.(*detachedWriter).writeRest(rest)
	st.server.writers.waiting.Add(-1)
	st.endRound(r, err)
}

// endRound closes the stream after a failed write or its last, or counts
// the frames written and releases the stream.
func (st *stream) endRound(r round, err error) {
	st.out.release(r.buf)
	if err == nil {
		st.delivered(r)
	}
	r.releaseFrames()
	switch {
	case err != nil:
		st.close(writeFailed(r))
	case r.ending:
		st.close(r.reason)
	default:
		st.release()
	}
}

// close closes a detached stream's connection, its response ended or not
// (finish), and unregisters it. The stream stays scheduled: nothing serves
// it again.
func (st *stream) close(reason hub.CloseReason) {
	st.out.finish(reason)
	st.end(reason)
}

// collect takes the stream's pending work w and returns what to write for
// it: the frames queued after skipUpTo, then the end event if the hub closed
// the stream, or what its timer and refreshes made due.
func (st *stream) collect(w work) (r round) {
	if w&workQueued != 0 {
		if st.collectQueued(&r) {
			return r
		}
	}
	if w&(workTimer|workMoved) != 0 {
		st.collectDue(&r, w&workMoved != 0)
	}
	return r
}

// buffer is the round's buffer, taken from the writer on first use.
func (st *stream) buffer(r *round) []byte {
	if r.buf == nil {
		r.buf = st.out.buffer()
		r.empty = len(r.buf)
	}
	return r.buf
}

// collectQueued appends the frames the hub queued, and reports whether the
// stream ends with them.
func (st *stream) collectQueued(r *round) bool {
	rp := runsPool.Get().(*[][]hub.Frame)
	runs, done, reason, retry := st.conn.Take((*rp)[:0])
	*rp = runs
	r.runs = rp
	if done && reason == hub.CloseClient {
		// The close watcher found the client gone: nothing more to write.
		r.ending, r.reason = true, reason
		return true
	}
	for _, run := range runs {
		for _, f := range run {
			if f.Position.After(st.skipUpTo) {
				r.buf = append(st.buffer(r), f.Bytes...)
			}
		}
	}
	if done {
		// The end event bypasses the queue's byte bound, so that a slow
		// consumer learns why too; its write is bounded by the deadline.
		r.buf = st.appendEnd(st.buffer(r), reason, retry)
		if reason == hub.CloseDrain {
			r.buf = sse.AppendRetry(r.buf, retry)
		}
		r.ending, r.reason = true, reason
	}
	return done
}

// delivered counts the round's frames, written.
func (st *stream) delivered(r round) {
	if r.runs == nil || len(*r.runs) == 0 {
		return
	}
	st.server.hub.Delivered(hub.NewWrite(*r.runs, st.skipUpTo, st.server.now()))
}

// prepare reads what the stream writes first. The stream joined the hub at
// joinedAt: events up to it come from the log, later ones through the queue.
//
// The connection event carries the id the client resumes from if the stream
// breaks before another event: where the live events start, or the client's
// own id when its replay follows. Without it, a client that reconnects before
// its first event would miss what came in between, and one told "recovered":
// false would keep resuming from its lost id.
func (st *stream) prepare(r *http.Request, joinedAt eventlog.Position) (*opening, error) {
	o := &opening{startID: joinedAt}
	st.skipUpTo = joinedAt
	lastID, resuming, valid := lastEventID(r)
	if resuming {
		ok := valid
		if valid {
			replayed, recovered, err := st.replay(r, lastID, joinedAt)
			if err != nil {
				return nil, err
			}
			ok = recovered
			if recovered {
				o.replayed = replayed
				o.startID = lastID
				// The client may have seen events the hub has yet to dispatch.
				st.skipUpTo = maxPosition(lastID, joinedAt)
			}
		}
		o.recovered = &ok
	}
	// A recovered resume needs no announcements: its replay holds every event
	// after the client's id.
	if announcements := st.server.announcements; announcements != nil && (o.recovered == nil || !*o.recovered) {
		var seen eventlog.Position
		if resuming && valid {
			seen = lastID
		}
		// Those logged up to joinedAt: later ones arrive live.
		o.announced = announcements.Active(st.user(), seen, joinedAt)
	}
	return o, nil
}

// open writes the stream's opening.
func (st *stream) open(o *opening) error {
	buf := st.out.buffer()
	buf = sse.AppendFrame(buf, sse.Frame{
		ID: o.startID.String(), HasID: true, Retry: DefaultReconnectDelay, Data: st.connectionEvent(o.recovered),
	})
	buf = append(buf, o.replayed...)
	// Announcements carry no id: field, so the client's resume position
	// stays where the log put it.
	for _, data := range o.announced {
		buf = sse.AppendFrame(buf, sse.Frame{Data: data})
	}
	return st.out.write(buf)
}

// replay encodes the events in (lastID, joinedAt] addressed to the user, and
// reports whether the log still held all of them.
func (st *stream) replay(r *http.Request, lastID, joinedAt eventlog.Position) ([]byte, bool, error) {
	log := st.server.log
	if !joinedAt.After(lastID) {
		// Nothing to replay; the id is valid only if the log assigned it.
		_, recovered, err := log.ReadAfter(r.Context(), lastID, 0)
		return nil, recovered, ignoreClosed(err)
	}
	var out []byte
	for cursor := lastID; cursor.Compare(joinedAt) < 0; {
		events, recovered, err := log.ReadAfter(r.Context(), cursor, replayBatch)
		if err != nil {
			return out, true, ignoreClosed(err)
		}
		if !recovered {
			return nil, false, nil
		}
		if len(events) == 0 {
			break
		}
		for i := range events {
			e := &events[i]
			if e.Position.After(joinedAt) {
				return out, true, nil
			}
			cursor = e.Position
			if e.ForUser(st.user()) {
				out = append(out, hub.EncodeEvent(e, st.user())...)
				st.server.metrics.replayed.Inc()
			}
		}
	}
	return out, true, nil
}

// ignoreClosed treats a closed log as one that has nothing more: the server
// is draining, and the stream is closed with the others.
func ignoreClosed(err error) error {
	if errors.Is(err, eventlog.ErrClosed) {
		return nil
	}
	return err
}

func maxPosition(a, b eventlog.Position) eventlog.Position {
	if a.After(b) {
		return a
	}
	return b
}

func (st *stream) connectionEvent(recovered *bool) []byte {
	data, _ := json.Marshal(connectionEvent{
		Type: event.TypeConnection, Message: "SSE connection established", UserID: st.user(),
		StreamID: st.id(), Timestamp: event.Timestamp(st.server.now()), Recovered: recovered,
	})
	return data
}

// lastEventID reads Last-Event-ID, or the lastEventId query parameter that
// EventSource polyfills use: whether the client resumes, and whether its id
// is a position of a log at all (if not, nothing can be recovered).
func lastEventID(r *http.Request) (id eventlog.Position, resuming, valid bool) {
	raw := r.Header.Get("Last-Event-ID")
	if raw == "" {
		raw = r.URL.Query().Get("lastEventId")
	}
	if raw == "" {
		return eventlog.Position{}, false, false
	}
	id, err := eventlog.ParsePosition(raw)
	return id, true, err == nil
}
