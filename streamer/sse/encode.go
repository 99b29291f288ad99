package sse

import (
	"bytes"
	"errors"
	"fmt"
	"strconv"
	"strings"
	"time"
)

// Frame is one event as the streamer sends it. The zero value of each
// optional field leaves that field out of the encoding.
type Frame struct {
	// ID is sent as the event's id when HasID is set; the client stores it
	// and sends it back as Last-Event-ID when it reconnects, which is how a
	// stream resumes. AppendFrame drops CR, LF and NUL from it, as from
	// Event.
	ID    string
	HasID bool
	// Event is the event type. Empty omits the field, so a browser
	// delivers the event to onmessage; Herald sends every kind that way and
	// puts the kind in the data. It should pass ValidEventName: AppendFrame
	// drops CR, LF and NUL from it rather than let it forge another field.
	Event string
	// Data is the payload: any bytes, one line of JSON in practice. Line
	// breaks in it (LF, CR or CRLF) are sent as separate data lines, which
	// the client joins again with LF.
	Data []byte
	// Retry, when it is at least one millisecond, is sent as the client's
	// new reconnection delay, truncated to whole milliseconds.
	Retry time.Duration
}

// ErrInvalidEventName is returned (wrapped) by ValidEventName.
var ErrInvalidEventName = errors.New("sse: invalid event name")

// forbiddenNameBytes are the bytes an event name or comment cannot carry:
// CR and LF would end the line and start a field of the sender's choosing,
// and NUL, which the specification already refuses in ids, has no place in
// a name either.
const forbiddenNameBytes = "\r\n\x00"

// ValidEventName reports whether name can be sent as a Frame's Event
// unchanged: it must not contain CR, LF or NUL. The empty name is valid
// (it means the default type, "message"). Callers that take event names
// from configuration or publishers validate them with this up front, so
// that AppendFrame's defensive stripping never silently changes a name.
func ValidEventName(name string) error {
	if i := strings.IndexAny(name, forbiddenNameBytes); i >= 0 {
		return fmt.Errorf("%w: %q has the control byte %q at offset %d", ErrInvalidEventName, name, name[i], i)
	}
	return nil
}

// AppendFrame appends f to dst as one complete event and returns the
// extended buffer. The fields come in the order retry, id, event, data,
// followed by the blank line that dispatches the event. At least one data
// line is always written (empty Data gives an empty one), so every frame
// is exactly one event to the client, empty data included.
//
// AppendFrame allocates only when dst lacks the capacity for the frame.
func AppendFrame(dst []byte, f Frame) []byte {
	if f.Retry >= time.Millisecond {
		dst = appendRetryField(dst, f.Retry)
	}
	if f.HasID {
		dst = append(dst, "id:"...)
		if f.ID != "" {
			dst = append(dst, ' ')
			dst = appendStripped(dst, f.ID)
		}
		dst = append(dst, '\n')
	}
	if f.Event != "" {
		dst = append(dst, "event: "...)
		dst = appendStripped(dst, f.Event)
		dst = append(dst, '\n')
	}
	dst = appendData(dst, f.Data)
	return append(dst, '\n')
}

// AppendComment appends a comment line followed by a blank line and
// returns the extended buffer. Clients ignore comments, so the streamer
// sends them to keep idle connections (and the proxies between) alive.
// CR, LF and NUL are dropped from text, so a comment never carries a field.
func AppendComment(dst []byte, text string) []byte {
	dst = append(dst, ':')
	if text != "" {
		dst = append(dst, ' ')
		dst = appendStripped(dst, text)
	}
	return append(dst, "\n\n"...)
}

// AppendRetry appends a frame holding only a retry field and returns the
// extended buffer. It dispatches no event; it sets the client's
// reconnection delay, which the streamer does just before it closes a
// stream while draining. d is truncated to whole milliseconds and a
// negative d is sent as 0, which asks the client to reconnect at once.
func AppendRetry(dst []byte, d time.Duration) []byte {
	dst = appendRetryField(dst, d)
	return append(dst, '\n')
}

// appendRetryField appends "retry: <ms>\n", with negative d as 0.
func appendRetryField(dst []byte, d time.Duration) []byte {
	dst = append(dst, "retry: "...)
	dst = strconv.AppendInt(dst, max(d.Milliseconds(), 0), 10)
	return append(dst, '\n')
}

// appendStripped appends s without its CR, LF and NUL bytes.
func appendStripped(dst []byte, s string) []byte {
	for {
		i := strings.IndexAny(s, forbiddenNameBytes)
		if i < 0 {
			return append(dst, s...)
		}
		dst = append(dst, s[:i]...)
		s = s[i+1:]
	}
}

// appendData appends data as data lines, one per line of data, where a
// line ends at CRLF, CR or LF as the client's parser sees it.
func appendData(dst, data []byte) []byte {
	for {
		line, rest, more := cutLine(data)
		dst = append(dst, "data:"...)
		if len(line) > 0 {
			dst = append(dst, ' ')
			dst = append(dst, line...)
		}
		dst = append(dst, '\n')
		if !more {
			return dst
		}
		data = rest
	}
}

// cutLine splits b at its first line break (CRLF, CR or LF) into the line
// before it and the rest after it; more is false when b has no line break.
func cutLine(b []byte) (line, rest []byte, more bool) {
	i := bytes.IndexAny(b, "\r\n")
	if i < 0 {
		return b, nil, false
	}
	end := i + 1
	if b[i] == '\r' && end < len(b) && b[end] == '\n' {
		end++
	}
	return b[:i], b[end:], true
}
