package server

import (
	"net/http"
	"time"

	"github.com/herald-notify/herald/streamer/hub"
)

// streamWriter is how a stream's bytes reach its client. The stream asks for
// a buffer, appends its frames and writes it; the writer frames and flushes
// it within the write timeout.
type streamWriter interface {
	// buffer returns an empty buffer for the next write, which may reserve
	// room at its start (len(buf) need not be 0): append after it.
	buffer() []byte
	// write writes and flushes buf, a buffer from buffer with the stream's
	// bytes appended, and takes it back.
	write(buf []byte) error
	// release takes back a buffer that is not written.
	release(buf []byte)
	// finish ends the response of a stream that ended for reason.
	finish(reason hub.CloseReason)
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

// deadlineRefresh is the share of the write timeout after which a write
// moves the armed deadline: every write starts with at least 9/10 of the
// timeout ahead of it.
const deadlineRefresh = 10

// writeDeadline bounds each write to a client by the write timeout.
//
// Moving a write deadline is a timer update in the runtime's poller: set
// before and lifted after every flush, it took 12-15% of the streamer's CPU
// in a broadcast to 10,000 streams (docs/benchmarks.md). Where the deadline
// is the socket's, which only bounds writes (HTTP/1), it stays armed between
// writes and moves only once a tenth of the timeout has passed since it was
// set.
type writeDeadline struct {
	// set is when the armed deadline was set (monoNow); 0 when none is.
	set int64
}

// arm moves the deadline to timeout from now through setDeadline, unless
// the armed one was set less than a tenth of timeout ago.
func (d *writeDeadline) arm(timeout time.Duration, setDeadline func(time.Time) error) {
	now := monoNow()
	if d.set != 0 && now-d.set < int64(timeout/deadlineRefresh) {
		return
	}
	_ = setDeadline(time.Now().Add(timeout))
	d.set = now
}

// lift removes the deadline through setDeadline.
func (d *writeDeadline) lift(setDeadline func(time.Time) error) error {
	d.set = 0
	return setDeadline(time.Time{})
}
