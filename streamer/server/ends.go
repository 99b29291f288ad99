package server

import (
	"encoding/json"
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
		Type: event.TypeTokenExpiring, StreamID: st.id(), ExpiresAt: event.Timestamp(expiresAt),
		Message:   "the stream's token expires at expiresAt: POST a new one to " + streamTokenPath(st.id()) + " to keep the stream",
		Timestamp: event.Timestamp(st.server.now()),
	})
	return sse.AppendFrame(buf, sse.Frame{Data: data})
}

// startTimer has the stream woken up at the nearest of its first
// keep-alive, the expiry warning and the expiry (dueStreams).
func (st *stream) startTimer() {
	now := monoNow()
	st.keepAliveAt = now + int64(st.keepAliveInterval())
	st.setExpiry(now)
	st.server.due.set(st, st.nextDue())
}

// keepAliveInterval is spec.connections.keepAliveInterval, which SetSpec
// may change: each keep-alive schedules the next with the one in force.
func (st *stream) keepAliveInterval() time.Duration {
	return duration(st.server.settings().Connections.KeepAliveInterval)
}

// setExpiry sets when the expiry is checked, and the warning
// spec.auth.expiryWarning before it (at once when that is past; none when
// the warning is off), from the token's expiry.
func (st *stream) setExpiry(now int64) {
	left := int64(st.expiry().Sub(st.server.now()))
	st.expiryAt = now + left
	st.warningAt = 0
	if ahead := int64(duration(st.server.settings().Auth.ExpiryWarning)); ahead > 0 {
		st.warningAt = max(now+max(left-ahead, 0), 1)
	}
}

// nextDue is the nearest instant the stream is to be woken up at.
func (st *stream) nextDue() int64 {
	due := min(st.keepAliveAt, st.expiryAt)
	if st.warningAt != 0 {
		due = min(due, st.warningAt)
	}
	return due
}

// collectDue appends what the timer made due (after a refresh moved the
// expiry, if moved): the end event of an expired token, the warning, a
// keep-alive; and has the stream woken up for what comes next.
func (st *stream) collectDue(r *round, moved bool) {
	now := monoNow()
	if moved {
		st.setExpiry(now)
	}
	if st.expiryAt <= now {
		// A refresh may have moved the expiry as the timer fired.
		expiresAt, expired := st.expire(st.server.now())
		if expired {
			// Written with the deadline, failed or not: the stream ends.
			r.buf = st.appendEnd(st.buffer(r), hub.CloseTokenExpired, 0)
			r.ending, r.reason = true, hub.CloseTokenExpired
			return
		}
		st.expiryAt = now + int64(expiresAt.Sub(st.server.now()))
	}
	if st.warningAt != 0 && st.warningAt <= now {
		r.buf = st.appendExpiring(st.buffer(r), st.expiry())
		st.warningAt = 0
	}
	if st.keepAliveAt <= now {
		r.buf = sse.AppendComment(st.buffer(r), "keep-alive")
		st.keepAliveAt = now + int64(st.keepAliveInterval())
	}
	st.server.due.set(st, st.nextDue())
}

// expiry is when the stream's token expires.
func (st *stream) expiry() time.Time {
	st.mu.Lock()
	defer st.mu.Unlock()
	return time.UnixMilli(st.expiresAt)
}

// moveExpiry sets a new expiry, for a refresh; false when the stream
// already ended.
func (st *stream) moveExpiry(expiresAt time.Time) bool {
	st.mu.Lock()
	if st.tokenEnded {
		st.mu.Unlock()
		return false
	}
	st.expiresAt = expiresAt.UnixMilli()
	st.mu.Unlock()
	st.notify(workMoved)
	return true
}

// expire ends the stream's token if it expired by now, and returns the
// expiry otherwise: a refresh may have moved it as the timer fired.
func (st *stream) expire(now time.Time) (time.Time, bool) {
	st.mu.Lock()
	defer st.mu.Unlock()
	expiresAt := time.UnixMilli(st.expiresAt)
	if now.Before(expiresAt) {
		return expiresAt, false
	}
	st.tokenEnded = true
	return expiresAt, true
}

// endToken records that the stream ended: a refresh can no longer move it.
func (st *stream) endToken() {
	st.mu.Lock()
	defer st.mu.Unlock()
	st.tokenEnded = true
}
