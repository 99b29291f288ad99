package server

import (
	"bytes"
	"crypto/tls"
	"errors"
	"net"
	"net/http"
	"strconv"
	"sync"
	"syscall"
	"time"

	"github.com/herald-notify/herald/streamer/hub"
)

// detachedWriter writes an HTTP/1.1 stream taken off net/http: the
// connection is hijacked once the stream is admitted, the response is
// written straight to the socket with chunked framing, and the handler
// returns, so that net/http's per-request state (buffers, request, handler
// goroutine, its background reader) is released. The server's writers write
// without waiting for the client (tryWrite), a goroutine of the stream's own
// what the socket did not take at once (writeRest); the server's close
// watcher notices the client going away (docs/benchmarks.md).
//
// Once the stream is open and its socket watched, a plain TCP stream on
// Linux keeps its socket as a bare descriptor (bare): the net package's
// state of the connection (its netFD, both addresses, the runtime poller's
// descriptor, about 0.5 KiB) is released, and a write that must wait for
// the client goes through a pollable duplicate for that write only.
//
// An idle stream holds this writer between writes: its fields are kept few
// and small (docs/benchmarks.md).
type detachedWriter struct {
	// nc is the connection; nil once the socket is bare.
	nc net.Conn
	// server's write timeout bounds a write that waits, and its close
	// watcher watches the socket.
	server *Server
	// fd is the socket, written without the runtime's poller, or -1 where
	// that cannot be (TLS, or another system than Linux): every write then
	// goes through nc, from a goroutine that may wait. Only the goroutine
	// serving the stream writes and closes the socket, so the descriptor is
	// valid whenever it writes.
	fd int32
	// The client closing the connection is noticed by the server's close
	// watcher (watching), or by a goroutine of the stream's own
	// (watchAlone), which closes watched when it returns.
	watching bool
	watched  chan struct{}
	deadline writeDeadline
	// head is the response's head, written with the first chunk.
	head *bytes.Buffer
	// bufp holds the pooled buffer of a write in progress; between writes
	// a detached stream keeps no buffer.
	bufp *[]byte
}

// chunkHeadroom is the room for a chunk's size line at the start of every
// buffer: up to 16 hex digits and CRLF.
const chunkHeadroom = 18

// lastChunk ends a chunked response.
var lastChunk = []byte("0\r\n\r\n")

// writeBuffers are the write buffers of detached streams, taken for a write
// and put back after it: thousands of idle streams hold none.
var writeBuffers = sync.Pool{New: func() any { b := make([]byte, 0, 1024); return &b }}

// maxPooledBuffer is the largest write buffer put back into writeBuffers.
const maxPooledBuffer = 64 << 10

// detach hijacks an HTTP/1.1 stream's connection. It returns an error
// wrapping http.ErrNotSupported, having written nothing, when the connection
// cannot be hijacked: the stream is then served through net/http.
func detach(w http.ResponseWriter, r *http.Request, s *Server) (*detachedWriter, error) {
	h := w.Header()
	setHeaders(h, r)
	// Only the connection is kept: net/http's buffers, request and response
	// become garbage once the handler returns. The returned reader holds no
	// byte the stream needs (a stream request has no body), the writer
	// nothing yet.
	nc, _, err := http.NewResponseController(w).Hijack()
	if err != nil {
		return nil, err
	}
	if _, ok := h["Date"]; !ok {
		h.Set("Date", time.Now().UTC().Format(http.TimeFormat))
	}
	h.Set("Transfer-Encoding", "chunked")
	head := bytes.NewBuffer(append(make([]byte, 0, 512), "HTTP/1.1 200 OK\r\n"...))
	_ = h.Write(head)
	head.WriteString("\r\n")
	return &detachedWriter{nc: nc, server: s, fd: int32(socketFD(nc)), head: head}, nil
}

func (dw *detachedWriter) buffer() []byte {
	if dw.bufp == nil {
		dw.bufp = writeBuffers.Get().(*[]byte)
	}
	return (*dw.bufp)[:chunkHeadroom]
}

// write sends buf as one chunk of the response, with one write to the
// socket (after the response's head, the first time), waiting for the
// client up to the write timeout.
func (dw *detachedWriter) write(buf []byte) error {
	err := dw.writeRest(dw.frame(buf, false))
	dw.release(buf)
	return err
}

// frame is buf as one chunk (and the response's last, if last), after the
// response's head the first time.
func (dw *detachedWriter) frame(buf []byte, last bool) []byte {
	out := chunk(buf)
	if last {
		out = append(out, lastChunk...)
	}
	if dw.head != nil {
		out = append(dw.head.Bytes(), out...)
		dw.head = nil
	}
	return out
}

// tryWrite sends buf as one chunk of the response (and the response's last
// chunk, if last) as far as the socket takes it at once, and returns what it
// did not take, nil when it took everything. buf is not released: what is
// left of it is written by writeRest.
func (dw *detachedWriter) tryWrite(buf []byte, last bool) ([]byte, error) {
	out := dw.frame(buf, last)
	if dw.fd < 0 {
		return out, nil
	}
	n, err := writeNow(int(dw.fd), out)
	if err != nil {
		return nil, err
	}
	if n == len(out) {
		return nil, nil
	}
	return out[n:], nil
}

// writeRest writes what tryWrite left, waiting for the client up to the
// write timeout.
func (dw *detachedWriter) writeRest(rest []byte) error {
	if dw.nc == nil {
		return writeWaiting(int(dw.fd), rest, dw.server.writeTimeout)
	}
	dw.deadline.arm(dw.server.writeTimeout, dw.nc.SetWriteDeadline)
	_, err := dw.nc.Write(rest)
	return err
}

func (dw *detachedWriter) release(buf []byte) {
	if dw.bufp == nil {
		return
	}
	if cap(buf) <= maxPooledBuffer {
		*dw.bufp = buf[:0]
		writeBuffers.Put(dw.bufp)
	}
	dw.bufp = nil
}

// chunk frames buf, which holds at least one byte after its headroom, as one
// chunk of a chunked response: the size line goes in the headroom, CRLF
// after the data.
func chunk(buf []byte) []byte {
	size := len(buf) - chunkHeadroom
	buf = append(buf, '\r', '\n')
	var line [chunkHeadroom]byte
	head := append(strconv.AppendUint(line[:0], uint64(size), 16), '\r', '\n')
	start := chunkHeadroom - len(head)
	copy(buf[start:], head)
	return buf[start:]
}

// watch has the client's closing of the connection noticed, and st told:
// by the server's close watcher for all streams at once, or where it cannot,
// by a goroutine of the stream's own. A plain TCP socket that the close
// watcher watches is then kept bare (dw.nc released).
func (dw *detachedWriter) watch(st *stream) {
	closes, id := &dw.server.closes, st.conn.ID()
	if fd, err := bareSocket(dw.nc); err == nil {
		if err := closes.add(fd, id); err == nil {
			dw.watching = true
			// The duplicate keeps the socket open: closing nc takes its
			// descriptor out of the runtime's poller and frees its state.
			_ = dw.nc.Close()
			dw.nc, dw.fd = nil, int32(fd)
			return
		}
		_ = closeSocket(fd)
	}
	if err := controlFD(socketOf(dw.nc), func(fd int) error { return closes.add(fd, id) }); err == nil {
		dw.watching = true
		return
	}
	dw.watched = make(chan struct{})
	go dw.watchAlone(st)
}

// controlFD calls f with the descriptor of nc's socket, valid during the
// call only.
func controlFD(nc net.Conn, f func(fd int) error) error {
	sc, ok := nc.(syscall.Conn)
	if !ok {
		return errors.New("not a socket")
	}
	raw, err := sc.SyscallConn()
	if err != nil {
		return err
	}
	var ferr error
	if err := raw.Control(func(fd uintptr) { ferr = f(int(fd)) }); err != nil {
		return err
	}
	return ferr
}

// socketOf is the TCP connection under nc: a TLS connection's own. The close
// watcher waits for the client's shutdown of the socket, which TLS records
// the client may send before it (a close_notify alert) do not signal, and
// never reads, so it may watch a TLS stream's socket as a plain one's.
func socketOf(nc net.Conn) net.Conn {
	if tc, ok := nc.(*tls.Conn); ok {
		return tc.NetConn()
	}
	return nc
}

// watchAlone waits for the client to close the connection. Reading one byte
// at a time, it costs a goroutine parked in the runtime's poller. A client
// that sends anything while its response streams is not watched further (as
// net/http does): its going away is then noticed at the next write, at most
// a keep-alive interval later.
func (dw *detachedWriter) watchAlone(st *stream) {
	defer close(dw.watched)
	var b [1]byte
	if _, err := dw.nc.Read(b[:]); err != nil {
		st.clientGone()
	}
}

// finish closes the connection. The terminating chunk, with which a client
// reading the response as HTTP/1.1 sees the stream end between events, went
// with the stream's last write (tryWrite's last), the end event's.
func (dw *detachedWriter) finish(hub.CloseReason) {
	if dw.watching {
		dw.server.closes.remove()
	}
	if dw.nc == nil {
		_ = closeSocket(int(dw.fd))
		return
	}
	_ = dw.nc.Close()
	if dw.watched != nil {
		<-dw.watched
	}
}
