package server

import (
	"encoding/json"
	"sync"
	"time"

	"github.com/herald-notify/herald/streamer/event"
	"github.com/herald-notify/herald/streamer/hub"
	"github.com/herald-notify/herald/streamer/sse"
)

// endEvent is the last event of a stream the server ends for its own
// reasons. It has no id: it is not in the log, and the client's resume
// position stays where its last event put it.
type endEvent struct {
	Type string `json:"type"`
	// Reason is why the stream ended: a hub.CloseReason, also the label of
	// herald_disconnects_total.
	Reason string `json:"reason"`
	// Reconnect is what the client should do (event.Reconnect*).
	Reconnect string `json:"reconnect"`
	// RetryMs, when set, is how long to wait before reconnecting.
	RetryMs   *int64 `json:"retryMs,omitempty"`
	Message   string `json:"message"`
	Timestamp string `json:"timestamp"`
}

// endAdvice is what a client is told to do after a stream ended for a
// reason, and why in words.
type endAdvice struct {
	reconnect, message string
}

// endAdvices covers every reason the server ends a stream for.
var endAdvices = map[hub.CloseReason]endAdvice{
	hub.CloseTokenExpired: {event.ReconnectNewToken,
		"the stream's token expired: fetch a new token (and ticket), then reconnect with Last-Event-ID"},
	hub.CloseReplaced: {event.ReconnectNone,
		"a newer stream of the same user took this stream's place (connections.maxPerUser): reconnecting would end that one"},
	hub.CloseSlowConsumer: {event.ReconnectBackOff,
		"the client read too slowly and the stream's send queue filled up: reconnect with Last-Event-ID after a backoff"},
	hub.CloseLagged: {event.ReconnectResume,
		"the stream fell behind the channel's history: reconnect with Last-Event-ID; the connection event says whether every missed event follows"},
	hub.CloseDrain: {event.ReconnectResume,
		"the server is shutting down: reconnect with Last-Event-ID after retryMs, to another replica"},
}

// appendEnd appends the end event for reason to buf; retry is the drain's
// reconnect delay.
func (st *stream) appendEnd(buf []byte, reason hub.CloseReason, retry time.Duration) []byte {
	advice, ok := endAdvices[reason]
	if !ok {
		return buf
	}
	e := endEvent{
		Type: event.TypeEnd, Reason: string(reason), Reconnect: advice.reconnect, Message: advice.message,
		Timestamp: event.Timestamp(st.server.now()),
	}
	if reason == hub.CloseDrain {
		ms := max(retry.Milliseconds(), 0)
		e.RetryMs = &ms
	}
	data, _ := json.Marshal(e)
	return sse.AppendFrame(buf, sse.Frame{Data: data})
}

// tokenExpiringEvent warns that the stream's token expires soon.
type tokenExpiringEvent struct {
	Type      string `json:"type"`
	StreamID  string `json:"streamId"`
	ExpiresAt string `json:"expiresAt"`
	Message   string `json:"message"`
	Timestamp string `json:"timestamp"`
}

// appendExpiring appends the warning that the token expires at expiresAt.
func (st *stream) appendExpiring(buf []byte, expiresAt time.Time) []byte {
	data, _ := json.Marshal(tokenExpiringEvent{
		Type: event.TypeTokenExpiring, StreamID: st.id, ExpiresAt: event.Timestamp(expiresAt),
		Message:   "the stream's token expires at expiresAt: POST a new one to " + streamTokenPath(st.id) + " to keep the stream",
		Timestamp: event.Timestamp(st.server.now()),
	})
	return sse.AppendFrame(buf, sse.Frame{Data: data})
}

// streamToken is when a stream's token expires, which a refresh moves from
// another goroutine than the stream's writer.
type streamToken struct {
	mu        sync.Mutex
	expiresAt time.Time
	// ended is set once the stream ended: a refresh can no longer move it.
	ended bool
	// moved is signalled when a refresh moved expiresAt.
	moved chan struct{}
}

func newStreamToken(expiresAt time.Time) *streamToken {
	return &streamToken{expiresAt: expiresAt, moved: make(chan struct{}, 1)}
}

// expiry is when the token expires.
func (t *streamToken) expiry() time.Time {
	t.mu.Lock()
	defer t.mu.Unlock()
	return t.expiresAt
}

// move sets a new expiry; false when the stream already ended.
func (t *streamToken) move(expiresAt time.Time) bool {
	t.mu.Lock()
	defer t.mu.Unlock()
	if t.ended {
		return false
	}
	t.expiresAt = expiresAt
	select {
	case t.moved <- struct{}{}:
	default:
	}
	return true
}

// expire ends the stream if its token expired by now, and returns the
// expiry otherwise: a refresh may have moved it as the timer fired.
func (t *streamToken) expire(now time.Time) (time.Time, bool) {
	t.mu.Lock()
	defer t.mu.Unlock()
	if now.Before(t.expiresAt) {
		return t.expiresAt, false
	}
	t.ended = true
	return t.expiresAt, true
}

// end records that the stream ended.
func (t *streamToken) end() {
	t.mu.Lock()
	defer t.mu.Unlock()
	t.ended = true
}

// armWarning sets warning to fire spec.auth.expiryWarning before expiresAt
// (at once when that is past), or stops it when the warning is off.
func (st *stream) armWarning(warning *time.Timer, expiresAt time.Time) {
	ahead := duration(st.server.settings().Auth.ExpiryWarning)
	if ahead <= 0 {
		warning.Stop()
		return
	}
	warning.Reset(max(expiresAt.Add(-ahead).Sub(st.server.now()), 0))
}
