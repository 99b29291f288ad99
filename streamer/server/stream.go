package server

import (
	"encoding/json"
	"errors"
	"net/http"
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
	conn, joinedAt, err := s.hub.RegisterContext(r.Context(), identity.UserID)
	if err != nil {
		s.streamEnded()
		s.refuse(w, err)
		return
	}
	st := newStream(s, conn, identity)
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
	st.opened = s.now()
	s.remember(st)

	// HTTP/1.1 streams leave net/http once their headers are written; HTTP/2
	// and HTTP/1.0 (no chunked framing) stay on the handler's path.
	if r.ProtoMajor == 1 && r.ProtoMinor >= 1 {
		out, err := detach(w, r, s.writeTimeout)
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
type stream struct {
	server   *Server
	out      streamWriter
	conn     *hub.Conn
	identity auth.Identity
	// id names the stream for a token refresh (streamID).
	id string
	// token is when the stream's token expires, which a refresh moves.
	token  *streamToken
	opened time.Time
	frames []hub.Frame
	// skipUpTo is the position up to which the stream's opening already
	// holds the events: queued frames up to it are not written again.
	skipUpTo eventlog.Position
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
func newStream(s *Server, conn *hub.Conn, identity auth.Identity) *stream {
	return &stream{
		server: s, conn: conn, identity: identity,
		id: s.streamID(conn.ID()), token: newStreamToken(identity.ExpiresAt),
	}
}

// end unregisters a stream that ended for reason.
func (st *stream) end(reason hub.CloseReason) {
	s := st.server
	s.hub.Unregister(st.conn, reason)
	s.forget(st)
	if !st.opened.IsZero() {
		s.metrics.connections.Dec()
		s.logger.Debug("stream closed", "user", st.identity.UserID, "reason", string(reason), "duration", s.now().Sub(st.opened).String())
	}
	s.streamEnded()
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
	return st.loop(gone)
}

// startDetached writes a detached stream's opening and leaves the rest to a
// goroutine of the stream's own (runDetached).
func (st *stream) startDetached(o *opening) {
	if err := st.open(o); err != nil {
		st.out.finish(hub.CloseClient)
		st.end(hub.CloseClient)
		return
	}
	st.out.(*detachedWriter).watch(&st.server.closes, st)
	go st.runDetached()
}

// runDetached writes a detached stream until it ends, then ends the response
// and closes the connection.
func (st *stream) runDetached() {
	reason := st.loop(nil)
	st.out.finish(reason)
	st.end(reason)
}

// clientGone ends a detached stream whose client closed its connection: the
// hub closes the stream's queue, which wakes its writer.
func (st *stream) clientGone() { st.server.hub.Unregister(st.conn, hub.CloseClient) }

// loop waits for the stream's events, keep-alives, the token's expiry (and
// the warning before it), a refresh moving it, or the client going away
// (gone), and returns why the stream ended.
func (st *stream) loop(gone <-chan struct{}) hub.CloseReason {
	s := st.server
	interval := duration(s.settings().Connections.KeepAliveInterval)
	keepAlive := time.NewTicker(interval)
	defer keepAlive.Stop()
	expiresAt := st.token.expiry()
	expiry := time.NewTimer(expiresAt.Sub(s.now()))
	defer expiry.Stop()
	warning := time.NewTimer(time.Hour)
	defer warning.Stop()
	st.armWarning(warning, expiresAt)
	for {
		select {
		case <-gone:
			return hub.CloseClient
		case <-expiry.C:
			var expired bool
			if expiresAt, expired = st.token.expire(s.now()); expired {
				// Written with the deadline, failed or not: the stream ends.
				_ = st.out.write(st.appendEnd(st.out.buffer(), hub.CloseTokenExpired, 0))
				return hub.CloseTokenExpired
			}
			expiry.Reset(expiresAt.Sub(s.now()))
		case <-st.token.moved:
			expiresAt = st.token.expiry()
			expiry.Reset(expiresAt.Sub(s.now()))
			st.armWarning(warning, expiresAt)
		case <-warning.C:
			if err := st.out.write(st.appendExpiring(st.out.buffer(), expiresAt)); err != nil {
				return hub.CloseClient
			}
		case <-keepAlive.C:
			if err := st.out.write(sse.AppendComment(st.out.buffer(), "keep-alive")); err != nil {
				return hub.CloseClient
			}
			// SetSpec may have changed the interval: it applies from here on.
			if next := duration(s.settings().Connections.KeepAliveInterval); next != interval {
				interval = next
				keepAlive.Reset(interval)
			}
		case <-st.conn.Wake():
			if reason, done := st.deliver(); done {
				return reason
			}
		}
	}
}

// deliver writes the frames queued for the stream, those after skipUpTo,
// and reports whether the stream must end, and why. It is kept out of serve
// for the same reason as open.
func (st *stream) deliver() (hub.CloseReason, bool) {
	frames, done, reason, retry := st.conn.Take(st.frames[:0])
	st.frames = frames
	defer clear(st.frames)
	if done && reason == hub.CloseClient {
		// The close watcher found the client gone: nothing more to write.
		return reason, done
	}
	buf := st.out.buffer()
	empty := len(buf)
	for _, f := range frames {
		if f.Position.After(st.skipUpTo) {
			buf = append(buf, f.Bytes...)
		}
	}
	if done {
		// The end event bypasses the queue's byte bound, so that a slow
		// consumer learns why too; its write is bounded by the deadline.
		buf = st.appendEnd(buf, reason, retry)
		if reason == hub.CloseDrain {
			buf = sse.AppendRetry(buf, retry)
		}
	}
	if len(buf) == empty {
		st.out.release(buf)
		return reason, done
	}
	if err := st.out.write(buf); err != nil {
		return hub.CloseClient, true
	}
	now := st.server.now()
	for _, f := range frames {
		if f.Position.After(st.skipUpTo) {
			st.conn.Delivered(f, now)
		}
	}
	return reason, done
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
		o.announced = announcements.Active(st.identity.UserID, seen, joinedAt)
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
			if e.ForUser(st.identity.UserID) {
				out = append(out, hub.EncodeEvent(e, st.identity.UserID)...)
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
		Type: event.TypeConnection, Message: "SSE connection established", UserID: st.identity.UserID,
		StreamID: st.id, Timestamp: event.Timestamp(st.server.now()), Recovered: recovered,
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
