package sse

import (
	"bufio"
	"bytes"
	"errors"
	"fmt"
	"io"
	"math"
	"strconv"
	"time"
)

// DefaultMaxLineSize is the longest line, in bytes without its line break,
// that a Reader accepts unless WithMaxLineSize says otherwise.
const DefaultMaxLineSize = 1 << 20

// DefaultMaxEventSize is the most data, in bytes, that a Reader collects
// for one event unless WithMaxEventSize says otherwise.
const DefaultMaxEventSize = 1 << 20

var (
	// ErrLineTooLong is returned (wrapped) by Reader.Next when a line
	// exceeds the reader's maximum line size.
	ErrLineTooLong = errors.New("sse: line too long")
	// ErrEventTooLarge is returned (wrapped) by Reader.Next when the data
	// of one event exceeds the reader's maximum event size.
	ErrEventTooLarge = errors.New("sse: event too large")
)

// Event is what Reader.Next returns: a dispatched event, or a comment line
// when IsComment is set.
type Event struct {
	// ID is the stream's last event ID when the event was dispatched: the
	// value of the latest id field, in this event or an earlier one, as in
	// a browser's MessageEvent.lastEventId.
	ID string
	// Event is the event type, empty when the event had no event field
	// (a browser delivers such an event as "message").
	Event string
	// Data is the event's data lines joined with LF.
	Data string
	// Retry is the reconnection time set by a retry field within this
	// event, if HasRetry. Reader.Retry reports the stream's current one.
	Retry    time.Duration
	HasRetry bool
	// IsComment marks a comment line rather than an event. Comment is its
	// text after the colon and one optional space; the other fields are
	// then empty. The specification ignores comments; they are returned so
	// that tests can observe the streamer's keep-alives.
	IsComment bool
	Comment   string
}

// ReaderOption configures a Reader.
type ReaderOption func(*Reader)

// WithMaxLineSize sets the longest line, in bytes without its line break,
// that the Reader accepts; a longer one fails with ErrLineTooLong. It
// panics if n is not positive.
func WithMaxLineSize(n int) ReaderOption {
	mustBePositive("WithMaxLineSize", n)
	return func(r *Reader) { r.maxLine = n }
}

// WithMaxEventSize sets the most data, in bytes and counting the LF that
// ends each data line, that the Reader collects for one event; more fails
// with ErrEventTooLarge. It panics if n is not positive.
func WithMaxEventSize(n int) ReaderOption {
	mustBePositive("WithMaxEventSize", n)
	return func(r *Reader) { r.maxEvent = n }
}

// mustBePositive panics unless n > 0: a non-positive size is a programming
// error that would otherwise surface as every stream failing.
func mustBePositive(option string, n int) {
	if n <= 0 {
		panic(fmt.Sprintf("sse: %s(%d): size must be positive", option, n))
	}
}

// Reader parses an event stream with the WHATWG algorithm: lines end in
// CRLF, CR or LF; a leading byte order mark is skipped; "field: value"
// loses one space after the colon; data lines are joined with LF; a blank
// line dispatches the event unless its data is empty; an id holding NUL
// and a retry that is not all ASCII digits are ignored, as are unknown
// fields. It holds at most one line and one event's data in memory, each
// bounded (see WithMaxLineSize and WithMaxEventSize). A Reader is not safe
// for concurrent use.
type Reader struct {
	src      *bufio.Reader
	maxLine  int
	maxEvent int
	err      error // sticky: once Next fails it keeps failing

	line    []byte // the line being read, reused from line to line
	atStart bool   // no line read yet, so a byte order mark may come
	afterCR bool   // the last line ended in CR: a LF next belongs to it
	pending bool   // a field line came since the last blank line

	data       []byte // the data buffer: each data line and a LF
	eventType  string
	idBuffer   string // the latest id field, committed at a blank line
	blockRetry time.Duration
	blockHas   bool // a retry field came since the last blank line

	lastEventID string
	retry       time.Duration
	hasRetry    bool
}

// NewReader returns a Reader that parses the event stream read from src.
func NewReader(src io.Reader, opts ...ReaderOption) *Reader {
	r := &Reader{
		src:      bufio.NewReader(src),
		maxLine:  DefaultMaxLineSize,
		maxEvent: DefaultMaxEventSize,
		atStart:  true,
	}
	for _, opt := range opts {
		opt(r)
	}
	return r
}

// Next returns the next dispatched event or comment line. At the end of
// the stream it returns io.EOF, or io.ErrUnexpectedEOF when the stream
// ended inside an event, which is then discarded as the specification
// requires. Errors are sticky: after one, Next returns it again.
func (r *Reader) Next() (Event, error) {
	for r.err == nil {
		line, err := r.readLine()
		if err != nil {
			r.err = r.streamError(err, len(line) > 0)
			break
		}
		ev, ok, err := r.processLine(line)
		if err != nil {
			r.err = err
			break
		}
		if ok {
			return ev, nil
		}
	}
	return Event{}, r.err
}

// LastEventID returns the stream's last event ID: the value of the latest
// id field up to the last blank line, whether or not an event was
// dispatched there. It is what a client sends as Last-Event-ID when it
// reconnects.
func (r *Reader) LastEventID() string {
	return r.lastEventID
}

// Retry returns the reconnection time set by the latest valid retry field,
// and whether there has been one.
func (r *Reader) Retry() (time.Duration, bool) {
	return r.retry, r.hasRetry
}

// streamError turns the error that ended reading into Next's error: EOF
// inside an event, or in the middle of a line, is unexpected.
func (r *Reader) streamError(err error, partialLine bool) error {
	if err == io.EOF && (partialLine || r.pending) {
		return io.ErrUnexpectedEOF
	}
	return err
}

// readLine returns the next line without its line break. The line is only
// valid until the next call. On error it returns what it had read of the
// line.
func (r *Reader) readLine() ([]byte, error) {
	r.line = r.line[:0]
	for {
		buf, err := r.buffered()
		if err != nil {
			return r.line, err
		}
		if r.afterCR {
			r.afterCR = false
			if buf[0] == '\n' {
				r.skip(1)
				continue
			}
		}
		n := bytes.IndexAny(buf, "\r\n")
		if n < 0 {
			n = len(buf)
		}
		if len(r.line)+n > r.maxLine {
			return r.line, fmt.Errorf("%w: over %d bytes", ErrLineTooLong, r.maxLine)
		}
		r.line = append(r.line, buf[:n]...)
		if n == len(buf) {
			r.skip(n)
			continue
		}
		r.afterCR = buf[n] == '\r'
		r.skip(n + 1)
		return r.line, nil
	}
}

// buffered returns the unread bytes in the buffer, reading from the source
// first when there are none. It never returns an empty slice without an
// error.
func (r *Reader) buffered() ([]byte, error) {
	if r.src.Buffered() == 0 {
		if _, err := r.src.Peek(1); err != nil {
			return nil, err
		}
	}
	return r.src.Peek(r.src.Buffered())
}

// skip consumes n buffered bytes; as they are buffered, it cannot fail.
func (r *Reader) skip(n int) {
	_, _ = r.src.Discard(n)
}

// utf8BOM is the byte order mark that may open a stream.
var utf8BOM = []byte("\uFEFF")

// processLine interprets one line. It returns the event or comment to
// hand to the caller, if the line produced one.
func (r *Reader) processLine(line []byte) (Event, bool, error) {
	if r.atStart {
		r.atStart = false
		line = bytes.TrimPrefix(line, utf8BOM)
	}
	if len(line) == 0 {
		ev, ok := r.dispatch()
		return ev, ok, nil
	}
	name, value := splitField(line)
	if len(name) == 0 {
		return Event{IsComment: true, Comment: string(value)}, true, nil
	}
	r.pending = true
	return Event{}, false, r.setField(name, value)
}

// splitField splits a line into its field name and value: the value is
// what follows the first colon, less one leading space, or empty when
// there is no colon.
func splitField(line []byte) (name, value []byte) {
	i := bytes.IndexByte(line, ':')
	if i < 0 {
		return line, nil
	}
	value = line[i+1:]
	if len(value) > 0 && value[0] == ' ' {
		value = value[1:]
	}
	return line[:i], value
}

// setField applies one field to the event being built.
func (r *Reader) setField(name, value []byte) error {
	switch string(name) {
	case "event":
		r.eventType = string(value)
	case "data":
		if len(r.data)+len(value)+1 > r.maxEvent {
			return fmt.Errorf("%w: data over %d bytes", ErrEventTooLarge, r.maxEvent)
		}
		r.data = append(append(r.data, value...), '\n')
	case "id":
		if bytes.IndexByte(value, 0) < 0 {
			r.idBuffer = string(value)
		}
	case "retry":
		if d, ok := parseRetry(value); ok {
			r.retry, r.hasRetry = d, true
			r.blockRetry, r.blockHas = d, true
		}
	}
	return nil
}

// parseRetry reads a retry value: milliseconds as ASCII digits only.
// Values too large for a time.Duration are refused like malformed ones.
func parseRetry(value []byte) (time.Duration, bool) {
	if len(value) == 0 {
		return 0, false
	}
	for _, c := range value {
		if c < '0' || c > '9' {
			return 0, false
		}
	}
	ms, err := strconv.ParseInt(string(value), 10, 64)
	if err != nil || ms > math.MaxInt64/int64(time.Millisecond) {
		return 0, false
	}
	return time.Duration(ms) * time.Millisecond, true
}

// dispatch ends the event at a blank line: it commits the last event ID
// and returns the event unless its data buffer is empty, then clears the
// per-event state.
func (r *Reader) dispatch() (Event, bool) {
	r.lastEventID = r.idBuffer
	ev := Event{ID: r.lastEventID, Event: r.eventType, Retry: r.blockRetry, HasRetry: r.blockHas}
	ok := len(r.data) > 0
	if ok {
		ev.Data = string(r.data[:len(r.data)-1])
	}
	r.data = r.data[:0]
	r.eventType = ""
	r.blockRetry, r.blockHas = 0, false
	r.pending = false
	return ev, ok
}
