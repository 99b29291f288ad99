package server

import (
	"bytes"
	"encoding/json"
	"errors"
	"net"
	"net/http"
	"strconv"
	"strings"
	"sync"
	"time"

	notifyv1alpha1 "github.com/herald-notify/herald/api/v1alpha1"
	"github.com/herald-notify/herald/streamer/auth"
	"github.com/herald-notify/herald/streamer/event"
	"github.com/herald-notify/herald/streamer/httpapi"
	"github.com/herald-notify/herald/streamer/hub"
	"github.com/herald-notify/herald/streamer/sse"
)

// connectionEvent is the first event of every stream.
type connectionEvent struct {
	Type      string `json:"type"`
	Message   string `json:"message"`
	UserID    string `json:"userId"`
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
	conn, joinedAt, err := s.hub.Register(identity.UserID)
	if err != nil {
		s.streamEnded()
		s.refuse(w, err)
		return
	}
	s.metrics.connects.WithLabelValues(connectOK).Inc()
	s.metrics.connections.Inc()

	stream := newStream(s, w, conn, identity)
	stream.opened = s.now()
	// HTTP/1.1 streams leave net/http once their headers are written; HTTP/2
	// and HTTP/1.0 (no chunked framing) stay on the handler's path.
	if r.ProtoMajor == 1 && r.ProtoMinor >= 1 && stream.detach(r, joinedAt) {
		return
	}
	stream.end(stream.serve(r, joinedAt))
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

// authenticateStream finds the request's token in the channel's enabled
// sources, in the contract's order (header, cookie, ticket, query parameter):
// the first one present decides, an invalid one is not skipped.
func (s *Server) authenticateStream(r *http.Request) (auth.Identity, error) {
	spec := s.settings().Auth
	sources := spec.TokenSources
	enabled := func(src notifyv1alpha1.TokenSource) bool {
		for _, e := range sources {
			if e == src {
				return true
			}
		}
		return false
	}
	if enabled(notifyv1alpha1.TokenSourceHeader) {
		if token, ok := httpapi.BearerToken(r); ok {
			return s.verify(token)
		}
	}
	if enabled(notifyv1alpha1.TokenSourceCookie) {
		if c, err := r.Cookie(spec.CookieName); err == nil && c.Value != "" {
			return s.verify(c.Value)
		}
	}
	if enabled(notifyv1alpha1.TokenSourceTicket) {
		if ticket := r.URL.Query().Get("ticket"); ticket != "" {
			identity, ok := s.tickets.Redeem(ticket)
			if !ok {
				s.metrics.authFailures.WithLabelValues("invalid_ticket").Inc()
				return auth.Identity{}, errors.New("the ticket is unknown, used or expired: request a new one")
			}
			return identity, nil
		}
	}
	if enabled(notifyv1alpha1.TokenSourceQueryParameter) {
		if token := r.URL.Query().Get("access_token"); token != "" {
			return s.verify(token)
		}
	}
	s.metrics.authFailures.WithLabelValues("missing_token").Inc()
	return auth.Identity{}, errors.New("no token: send Authorization: Bearer <jwt>" + otherSources(spec))
}

// otherSources describes the enabled token sources besides the header.
func otherSources(spec notifyv1alpha1.AuthSpec) string {
	var names []string
	for _, src := range spec.TokenSources {
		switch src {
		case notifyv1alpha1.TokenSourceCookie:
			names = append(names, "the "+spec.CookieName+" cookie")
		case notifyv1alpha1.TokenSourceTicket:
			names = append(names, "a ticket from POST "+TicketsPath)
		case notifyv1alpha1.TokenSourceQueryParameter:
			names = append(names, "the access_token parameter")
		}
	}
	if len(names) == 0 {
		return ""
	}
	return ", or " + strings.Join(names, ", or ")
}

// verify checks a token, counting failures by reason.
func (s *Server) verify(token string) (auth.Identity, error) {
	identity, err := s.verifier.Verify(token)
	if err != nil {
		reason := "invalid"
		var authErr *auth.Error
		if errors.As(err, &authErr) {
			reason = string(authErr.Reason)
		}
		s.metrics.authFailures.WithLabelValues(reason).Inc()
		return auth.Identity{}, err
	}
	if !identity.ExpiresAt.After(s.now()) {
		s.metrics.authFailures.WithLabelValues(string(auth.ReasonExpired)).Inc()
		return auth.Identity{}, errors.New("the token expires now")
	}
	return identity, nil
}

// ticketResponse is the answer of POST /api/v1/sse/tickets.
type ticketResponse struct {
	Ticket    string `json:"ticket"`
	ExpiresAt string `json:"expiresAt"`
}

// serveTicket is POST /api/v1/sse/tickets: a browser trades its bearer token
// for a short-lived, single-use ticket to put in the EventSource URL.
func (s *Server) serveTicket(w http.ResponseWriter, r *http.Request) {
	if r.Method != http.MethodPost {
		httpapi.MethodNotAllowed(w, http.MethodPost)
		return
	}
	token, ok := httpapi.BearerToken(r)
	if !ok {
		httpapi.WriteError(w, httpapi.CodeUnauthorized, "an Authorization: Bearer token is required")
		return
	}
	identity, err := s.verify(token)
	if err != nil {
		httpapi.WriteError(w, httpapi.CodeUnauthorized, err.Error())
		return
	}
	ttl := duration(s.settings().Auth.TicketTTL)
	ticket, err := s.tickets.Issue(identity, ttl)
	if err != nil {
		httpapi.WriteRetryAfter(w, httpapi.CodeRateLimited, err.Error(), ttl)
		return
	}
	expires := s.now().Add(ttl)
	if identity.ExpiresAt.Before(expires) {
		expires = identity.ExpiresAt
	}
	httpapi.WriteJSON(w, http.StatusCreated, ticketResponse{Ticket: ticket, ExpiresAt: event.Timestamp(expires)})
}

// stream writes one client's events.
//
// On HTTP/2 (and HTTP/1.0) a stream is written through net/http, in its
// handler's goroutine (serve). An HTTP/1.1 stream is detached: the connection
// is hijacked once the stream is admitted, the response is written straight
// to the socket with chunked framing, and the handler returns, so that
// net/http's per-request state (buffers, request, handler goroutine, its
// background reader) is released. A goroutine of the stream's own writes it;
// the server's close watcher notices the client going away
// (docs/benchmarks.md).
type stream struct {
	server   *Server
	w        http.ResponseWriter      // nil once detached
	rc       *http.ResponseController // nil once detached
	nc       net.Conn                 // the hijacked connection, when detached
	conn     *hub.Conn
	identity auth.Identity
	opened   time.Time
	// buf is the next write. When detached, its first chunkHeadroom bytes are
	// kept free for the chunk's size line (see chunk).
	buf      []byte
	headroom int
	frames   []hub.Frame
	// bufp holds buf's pooled array while a detached stream writes (see
	// reset); between writes a detached stream keeps no buffer.
	bufp *[]byte
	// The client closing a detached stream's connection is noticed by the
	// server's close watcher (watchID), or by a goroutine of the stream's own
	// (watch), which closes watched when it returns.
	watched  chan struct{}
	watchID  uint64
	skipUpTo uint64
	// deadlineSet is when the armed write deadline was set (see flush).
	deadlineSet time.Time
	// keepDeadline: the deadline may stay armed between flushes (HTTP/1).
	keepDeadline bool
}

// chunkHeadroom is the room for a chunk's size line: up to 16 hex digits
// and CRLF.
const chunkHeadroom = 18

// lastChunk ends a chunked response.
var lastChunk = []byte("0\r\n\r\n")

// writeBuffers are the write buffers of detached streams, taken for a write
// and put back after it: thousands of idle streams hold none.
var writeBuffers = sync.Pool{New: func() any { b := make([]byte, 0, 1024); return &b }}

// maxPooledBuffer is the largest write buffer put back into writeBuffers.
const maxPooledBuffer = 64 << 10

// reset empties buf for the next write, keeping a detached stream's headroom
// and taking a buffer from writeBuffers if it has none.
func (st *stream) reset() {
	if st.nc != nil && st.bufp == nil {
		st.bufp = writeBuffers.Get().(*[]byte)
		st.buf = *st.bufp
	}
	st.buf = st.buf[:st.headroom]
}

// release puts a detached stream's write buffer back after a write.
func (st *stream) release() {
	if st.bufp == nil {
		return
	}
	if cap(st.buf) <= maxPooledBuffer {
		*st.bufp = st.buf[:0]
		writeBuffers.Put(st.bufp)
	}
	st.buf, st.bufp = nil, nil
}

// newStream allocates a stream's state on the heap. It is not inlined on
// purpose: inlined, the compiler would keep the state in serveStream's stack
// frame, and the handler goroutine's deepest call (in the stream's first
// flush) then goes past the 8 KiB beyond which its stack doubles
// (docs/benchmarks.md).
//
//go:noinline
func newStream(s *Server, w http.ResponseWriter, conn *hub.Conn, identity auth.Identity) *stream {
	return &stream{server: s, w: w, rc: http.NewResponseController(w), conn: conn, identity: identity}
}

// end unregisters a stream that ended for reason.
func (st *stream) end(reason hub.CloseReason) {
	s := st.server
	s.hub.Unregister(st.conn, reason)
	s.metrics.connections.Dec()
	s.logger.Debug("stream closed", "user", st.identity.UserID, "reason", string(reason), "duration", s.now().Sub(st.opened).String())
	s.streamEnded()
}

// setHeaders sets the stream's response headers.
func setHeaders(h http.Header, r *http.Request) {
	h.Set("Content-Type", "text/event-stream")
	h.Set("Cache-Control", "no-cache, no-transform")
	h.Set("X-Accel-Buffering", "no")
	if r.ProtoMajor == 1 {
		h.Set("Connection", "keep-alive")
	}
}

// serve writes the stream through net/http until it ends and returns why it
// ended.
func (st *stream) serve(r *http.Request, joinedAt uint64) hub.CloseReason {
	// On HTTP/1 the write deadline stays armed between flushes; lift it when
	// the stream ends, or it would cut the response's end, which net/http
	// writes after the handler returns, once the stream was idle for a while.
	st.keepDeadline = r.ProtoMajor == 1
	defer func() { _ = st.rc.SetWriteDeadline(time.Time{}) }()
	// Opening the stream and writing its events are methods of their own so
	// that their stack frames are gone while the stream idles: the garbage
	// collector halves an idle goroutine's stack (16 to 8 KiB) only when it
	// uses less than a quarter of it (docs/benchmarks.md).
	setHeaders(st.w.Header(), r)
	st.w.WriteHeader(http.StatusOK)
	skipUpTo, err := st.open(r, joinedAt, nil)
	if err != nil {
		return hub.CloseClient
	}
	return st.loop(r.Context().Done(), skipUpTo)
}

// detach takes an HTTP/1.1 stream off net/http: it hijacks the connection,
// writes the response's head and the stream's opening, and leaves the rest
// to goroutines of the stream's own (run and watch). It returns false, having
// written nothing, when the connection cannot be hijacked: the stream is then
// served through net/http.
func (st *stream) detach(r *http.Request, joinedAt uint64) bool {
	h := st.w.Header()
	setHeaders(h, r)
	// Only the connection is kept: net/http's buffers, request and response
	// become garbage once the handler returns. The returned reader holds no
	// byte the stream needs (a stream request has no body), the writer
	// nothing yet.
	nc, _, err := st.rc.Hijack()
	if errors.Is(err, http.ErrNotSupported) {
		return false
	}
	if err != nil {
		st.end(hub.CloseClient)
		return true
	}
	st.w, st.rc, st.nc = nil, nil, nc
	st.keepDeadline = true
	st.headroom = chunkHeadroom

	head := append(make([]byte, 0, 512), "HTTP/1.1 200 OK\r\n"...)
	if _, ok := h["Date"]; !ok {
		h.Set("Date", time.Now().UTC().Format(http.TimeFormat))
	}
	h.Set("Transfer-Encoding", "chunked")
	hb := bytes.NewBuffer(head)
	_ = h.Write(hb)
	hb.WriteString("\r\n")
	skipUpTo, err := st.open(r, joinedAt, hb.Bytes())
	if err != nil {
		_ = nc.Close()
		st.end(hub.CloseClient)
		return true
	}
	st.skipUpTo = skipUpTo
	// The client going away is what net/http's background reader noticed.
	// The server's close watcher notices it for all streams at once; where
	// it cannot, a goroutine of the stream's own does.
	if id, err := st.server.closes.add(nc, st); err == nil {
		st.watchID = id
	} else {
		st.watched = make(chan struct{})
		go st.watch()
	}
	go st.run()
	return true
}

// clientGone ends a detached stream whose client closed its connection: the
// hub closes the stream's queue, which wakes its writer.
func (st *stream) clientGone() { st.server.hub.Unregister(st.conn, hub.CloseClient) }

// watch waits for the client to close a detached stream's connection, where
// the server's close watcher cannot. Reading one byte at a time, it costs a
// goroutine parked in the runtime's poller. A client that sends anything
// while its response streams is not watched further (as net/http does): its
// going away is then noticed at the next write, at most a keep-alive interval
// later.
func (st *stream) watch() {
	defer close(st.watched)
	var b [1]byte
	if _, err := st.nc.Read(b[:]); err != nil {
		st.clientGone()
	}
}

// run writes a detached stream until it ends, then ends the response and
// closes the connection.
func (st *stream) run() {
	reason := st.loop(nil, st.skipUpTo)
	if reason != hub.CloseClient && reason != hub.CloseSlowConsumer {
		// The terminating chunk: the response is complete, and a client
		// reading it as HTTP/1.1 sees the stream end between events. A slow
		// consumer, which reads nothing, is not waited for.
		st.refreshDeadline()
		_, _ = st.nc.Write(lastChunk)
	}
	if st.watchID != 0 {
		st.server.closes.remove(st.watchID)
	}
	_ = st.nc.Close()
	if st.watched != nil {
		<-st.watched
	}
	st.end(reason)
}

// loop waits for the stream's events, keep-alives, token expiry or the
// client going away (gone), and returns why the stream ended.
func (st *stream) loop(gone <-chan struct{}, skipUpTo uint64) hub.CloseReason {
	s := st.server
	interval := duration(s.settings().Connections.KeepAliveInterval)
	keepAlive := time.NewTicker(interval)
	defer keepAlive.Stop()
	expiry := time.NewTimer(st.identity.ExpiresAt.Sub(s.now()))
	defer expiry.Stop()
	for {
		select {
		case <-gone:
			return hub.CloseClient
		case <-expiry.C:
			return hub.CloseTokenExpired
		case <-keepAlive.C:
			st.reset()
			st.buf = sse.AppendComment(st.buf, "keep-alive")
			if err := st.flush(nil); err != nil {
				return hub.CloseClient
			}
			// SetSpec may have changed the interval: it applies from here on.
			if next := duration(s.settings().Connections.KeepAliveInterval); next != interval {
				interval = next
				keepAlive.Reset(interval)
			}
		case <-st.conn.Wake():
			if reason, done := st.deliver(skipUpTo); done {
				return reason
			}
		}
	}
}

// deliver writes the frames queued for the stream, those after skipUpTo,
// and reports whether the stream must end, and why. It is kept out of serve
// for the same reason as open.
func (st *stream) deliver(skipUpTo uint64) (hub.CloseReason, bool) {
	frames, done, reason, retry := st.conn.Take(st.frames[:0])
	st.frames = frames
	if done && reason == hub.CloseClient {
		// The close watcher found the client gone: nothing more to write.
		clear(st.frames)
		return reason, done
	}
	st.reset()
	for _, f := range frames {
		if f.ID > skipUpTo {
			st.buf = append(st.buf, f.Bytes...)
		}
	}
	if done && reason == hub.CloseDrain {
		st.buf = sse.AppendRetry(st.buf, retry)
	}
	if len(st.buf) > st.headroom {
		if err := st.flush(nil); err != nil {
			return hub.CloseClient, true
		}
		now := st.server.now()
		for _, f := range frames {
			if f.ID > skipUpTo {
				st.conn.Delivered(f, now)
			}
		}
	}
	st.release() // when nothing was written
	clear(st.frames)
	return reason, done
}

// appendAnnouncements appends the announcements in force that the client
// has not seen: those logged up to joinedAt (later ones arrive live) and
// after the client's Last-Event-ID. A recovered resume needs none: its
// replay holds every event after that ID. They carry no id: field, so the
// client's resume position stays where the log put it.
func (st *stream) appendAnnouncements(buf []byte, r *http.Request, recovered *bool, joinedAt uint64) []byte {
	if st.server.announcements == nil || (recovered != nil && *recovered) {
		return buf
	}
	var after uint64
	if lastID, resuming, valid := lastEventID(r); resuming && valid {
		after = lastID
	}
	for _, data := range st.server.announcements.Active(st.identity.UserID, after, joinedAt) {
		buf = sse.AppendFrame(buf, sse.Frame{Data: data})
	}
	return buf
}

// open writes the stream's connection event, and what a resuming client
// missed, after head (the response's head of a detached stream, nil when
// net/http writes it), and returns the ID up to which the queued events were
// already written (from the log).
func (st *stream) open(r *http.Request, joinedAt uint64, head []byte) (uint64, error) {
	// Events up to joinedAt come from the log; later ones through the queue.
	skipUpTo := joinedAt
	// The connection event carries the ID the client resumes from if the
	// stream breaks before another event: where the live events start, or the
	// client's own ID when its replay follows. Without it, a client that
	// reconnects before its first event would miss what came in between, and
	// one told "recovered": false would keep resuming from its lost ID.
	startID := joinedAt
	var recovered *bool
	var replayed []byte
	if lastID, resuming, valid := lastEventID(r); resuming {
		ok := valid
		if valid {
			replayed, ok = st.replay(lastID, joinedAt)
			if ok {
				startID = lastID
				skipUpTo = max(lastID, joinedAt) // the client may have seen events the hub has yet to dispatch
			}
		}
		recovered = &ok
	}
	st.reset()
	st.buf = sse.AppendFrame(st.buf, sse.Frame{
		ID: startID, HasID: true, Retry: DefaultReconnectDelay, Data: st.connectionEvent(recovered),
	})
	st.buf = append(st.buf, replayed...)
	st.buf = st.appendAnnouncements(st.buf, r, recovered, joinedAt)
	return skipUpTo, st.flush(head)
}

// replay encodes the events in (lastID, joinedAt] addressed to the user, and
// reports whether the log still held all of them.
func (st *stream) replay(lastID, joinedAt uint64) ([]byte, bool) {
	if lastID >= joinedAt {
		// Nothing to replay; the ID is valid only if the log assigned it.
		_, recovered := st.server.log.ReadAfter(lastID, 0)
		return nil, recovered
	}
	var out []byte
	for cursor := lastID; cursor < joinedAt; {
		events, recovered := st.server.log.ReadAfter(cursor, replayBatch)
		if !recovered {
			return nil, false
		}
		if len(events) == 0 {
			break
		}
		for i := range events {
			e := &events[i]
			if e.ID > joinedAt {
				return out, true
			}
			cursor = e.ID
			if e.ForUser(st.identity.UserID) {
				out = append(out, hub.EncodeEvent(e)...)
				st.server.metrics.replayed.Inc()
			}
		}
	}
	return out, true
}

func (st *stream) connectionEvent(recovered *bool) []byte {
	data, _ := json.Marshal(connectionEvent{
		Type: event.TypeConnection, Message: "SSE connection established", UserID: st.identity.UserID,
		Timestamp: event.Timestamp(st.server.now()), Recovered: recovered,
	})
	return data
}

// deadlineRefresh is the share of the write timeout after which flush moves
// the armed deadline: every write starts with at least 9/10 of the timeout
// ahead of it.
const deadlineRefresh = 10

// flush writes buf to the client, after head when it is not nil, and
// flushes it, within the write timeout. A detached stream writes buf as one
// chunk of the response, with one write to the socket.
//
// Moving a write deadline is a timer update in the runtime's poller: set
// before and lifted after every flush, it took 12-15% of the streamer's CPU
// in a broadcast to 10,000 streams (docs/benchmarks.md). On HTTP/1 the
// deadline is the socket's, which only bounds writes: there it stays armed
// between flushes and moves only once a tenth of the timeout has passed since
// it was set, and the stream lifts it when it ends (a detached one closes the
// socket). On HTTP/2 a deadline is a timer that resets the stream when it
// fires, pending write or not: there it is lifted after every flush.
func (st *stream) flush(head []byte) error {
	st.refreshDeadline()
	if st.nc != nil {
		out := st.chunk()
		if head != nil {
			out = append(head, out...)
		}
		_, err := st.nc.Write(out)
		st.release()
		return err
	}
	if _, err := st.w.Write(st.buf); err != nil {
		return err
	}
	if err := st.rc.Flush(); err != nil {
		return err
	}
	if st.keepDeadline {
		return nil
	}
	st.deadlineSet = time.Time{}
	return st.rc.SetWriteDeadline(time.Time{})
}

// refreshDeadline moves the write deadline to a write timeout from now,
// unless the armed one was set less than a tenth of the timeout ago.
func (st *stream) refreshDeadline() {
	timeout := st.server.writeTimeout
	now := time.Now()
	if now.Sub(st.deadlineSet) < timeout/deadlineRefresh {
		return
	}
	if st.nc != nil {
		_ = st.nc.SetWriteDeadline(now.Add(timeout))
	} else {
		_ = st.rc.SetWriteDeadline(now.Add(timeout))
	}
	st.deadlineSet = now
}

// chunk frames a detached stream's buf, which holds at least one byte after
// its headroom, as one chunk of the chunked response: the size line goes in
// the headroom, CRLF after the data.
func (st *stream) chunk() []byte {
	size := len(st.buf) - st.headroom
	st.buf = append(st.buf, '\r', '\n')
	var line [chunkHeadroom]byte
	head := append(strconv.AppendUint(line[:0], uint64(size), 16), '\r', '\n')
	start := st.headroom - len(head)
	copy(st.buf[start:], head)
	return st.buf[start:]
}

// lastEventID reads Last-Event-ID, or the lastEventId query parameter that
// EventSource polyfills use: whether the client resumes, and whether its ID
// is a log sequence number at all (if not, nothing can be recovered).
func lastEventID(r *http.Request) (id uint64, resuming, valid bool) {
	raw := r.Header.Get("Last-Event-ID")
	if raw == "" {
		raw = r.URL.Query().Get("lastEventId")
	}
	if raw == "" {
		return 0, false, false
	}
	id, err := strconv.ParseUint(strings.TrimSpace(raw), 10, 64)
	return id, true, err == nil
}
