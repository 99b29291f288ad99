package server

import (
	"net/http"
	"time"

	"github.com/herald-notify/herald/streamer/hub"
)

// handlerWriter writes a stream through net/http, in its handler's
// goroutine: HTTP/2, whose streams share one connection that net/http
// multiplexes, and HTTP/1.0, which has no chunked framing.
type handlerWriter struct {
	w        http.ResponseWriter
	rc       *http.ResponseController
	timeout  time.Duration
	deadline writeDeadline
	// keepDeadline: on HTTP/1 the deadline is the socket's and may stay
	// armed between writes. On HTTP/2 it is a timer that resets the stream
	// when it fires, pending write or not: there it is lifted after every
	// write.
	keepDeadline bool
	// buf is kept from one write to the next.
	buf []byte
}

// newHandlerWriter starts the stream's response.
func newHandlerWriter(w http.ResponseWriter, r *http.Request, timeout time.Duration) *handlerWriter {
	setHeaders(w.Header(), r)
	w.WriteHeader(http.StatusOK)
	return &handlerWriter{
		w: w, rc: http.NewResponseController(w), timeout: timeout,
		keepDeadline: r.ProtoMajor == 1,
	}
}

func (hw *handlerWriter) buffer() []byte { return hw.buf[:0] }

func (hw *handlerWriter) write(buf []byte) error {
	hw.buf = buf
	hw.deadline.arm(hw.timeout, hw.rc.SetWriteDeadline)
	if _, err := hw.w.Write(buf); err != nil {
		return err
	}
	if err := hw.rc.Flush(); err != nil {
		return err
	}
	if hw.keepDeadline {
		return nil
	}
	return hw.deadline.lift(hw.rc.SetWriteDeadline)
}

func (hw *handlerWriter) release(buf []byte) { hw.buf = buf }

// finish lifts the write deadline: on HTTP/1, armed, it would cut the
// response's end, which net/http writes after the handler returns, once the
// stream was idle for a while.
func (hw *handlerWriter) finish(hub.CloseReason) { _ = hw.deadline.lift(hw.rc.SetWriteDeadline) }
