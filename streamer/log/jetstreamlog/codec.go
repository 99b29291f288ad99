package jetstreamlog

import (
	"encoding/binary"
	"errors"
	"fmt"

	eventlog "github.com/herald-notify/herald/streamer/log"
)

// Envelope versions: the first byte of every message body this package
// writes. A later encoding takes another.
const (
	// envelopeEvent is a message holding one event.
	envelopeEvent = 1
	// envelopeBatch is a message holding the events of several appends.
	envelopeBatch = 2
)

// encodeEvent is the message body of e: a small binary envelope
//
//	version byte (1)
//	uvarint length, type
//	uvarint count of user ids, then for each: uvarint length, user id
//	the event's JSON data, to the end of the body
//
// An envelope rather than headers: header values are trimmed of surrounding
// spaces and cannot hold line breaks, user ids may hold commas, and a
// notification to thousands of users would make one very long header line.
// The envelope carries any bytes exactly and costs a few bytes per event.
func encodeEvent(e eventlog.Event) []byte {
	body := make([]byte, 0, 1+encodedSize(e))
	body = append(body, envelopeEvent)
	return appendEvent(body, e)
}

// encodeBatch is the message body of two or more events, in order:
//
//	version byte (2)
//	uvarint count of events
//	for each: uvarint length, then the event as encodeEvent writes it after
//	its version byte
func encodeBatch(events []eventlog.Event) []byte {
	size := 1 + uvarintLen(len(events))
	for _, e := range events {
		n := encodedSize(e)
		size += uvarintLen(n) + n
	}
	body := make([]byte, 0, size)
	body = append(body, envelopeBatch)
	body = binary.AppendUvarint(body, uint64(len(events)))
	for _, e := range events {
		body = binary.AppendUvarint(body, uint64(encodedSize(e)))
		body = appendEvent(body, e)
	}
	return body
}

// encodedSize is the length appendEvent adds.
func encodedSize(e eventlog.Event) int {
	size := uvarintLen(len(e.Type)) + len(e.Type) + uvarintLen(len(e.UserIDs)) + len(e.Data)
	for _, u := range e.UserIDs {
		size += uvarintLen(len(u)) + len(u)
	}
	return size
}

// uvarintLen is the length of n as a uvarint.
func uvarintLen(n int) int {
	return len(binary.AppendUvarint(make([]byte, 0, binary.MaxVarintLen64), uint64(n)))
}

// appendEvent appends e's type, users and data.
func appendEvent(dst []byte, e eventlog.Event) []byte {
	dst = appendString(dst, e.Type)
	dst = binary.AppendUvarint(dst, uint64(len(e.UserIDs)))
	for _, u := range e.UserIDs {
		dst = appendString(dst, u)
	}
	return append(dst, e.Data...)
}

func appendString(dst []byte, s string) []byte {
	dst = binary.AppendUvarint(dst, uint64(len(s)))
	return append(dst, s...)
}

var errNotAnEvent = errors.New("not a Herald event")

// decodeEvents reads a body written by encodeEvent or encodeBatch into its
// events' Type, UserIDs and Data, in order. Data shares body's memory.
func decodeEvents(body []byte) ([]eventlog.Event, error) {
	if len(body) == 0 {
		return nil, fmt.Errorf("%w: empty", errNotAnEvent)
	}
	switch body[0] {
	case envelopeEvent:
		events := make([]eventlog.Event, 1)
		return events, decodeEvent(body[1:], &events[0])
	case envelopeBatch:
		rest := body[1:]
		count, n := binary.Uvarint(rest)
		// Every event takes at least its length byte and the two counts
		// of an empty type and no user, which bounds a corrupt count.
		if n <= 0 || count < 2 || count > uint64(len(rest)-n)/3 {
			return nil, fmt.Errorf("%w: bad event count", errNotAnEvent)
		}
		rest = rest[n:]
		events := make([]eventlog.Event, count)
		for i := range events {
			length, n := binary.Uvarint(rest)
			if n <= 0 || length > uint64(len(rest)-n) {
				return nil, fmt.Errorf("%w: truncated", errNotAnEvent)
			}
			end := n + int(length)
			if err := decodeEvent(rest[n:end:end], &events[i]); err != nil {
				return nil, err
			}
			rest = rest[end:]
		}
		if len(rest) > 0 {
			return nil, fmt.Errorf("%w: bytes after the last event", errNotAnEvent)
		}
		return events, nil
	}
	return nil, fmt.Errorf("%w: unknown envelope", errNotAnEvent)
}

// decodeEvent reads an event written by appendEvent into e's Type, UserIDs
// and Data. Data shares part's memory.
func decodeEvent(part []byte, e *eventlog.Event) error {
	rest := part
	var err error
	if e.Type, rest, err = readString(rest); err != nil {
		return err
	}
	count, n := binary.Uvarint(rest)
	// Every user id takes at least its length byte, which bounds a
	// corrupt count before anything is allocated for it.
	if n <= 0 || count > uint64(len(rest)-n) {
		return fmt.Errorf("%w: bad user count", errNotAnEvent)
	}
	rest = rest[n:]
	e.UserIDs = nil
	if count > 0 {
		e.UserIDs = make([]string, count)
		for i := range e.UserIDs {
			if e.UserIDs[i], rest, err = readString(rest); err != nil {
				return err
			}
		}
	}
	e.Data = nil
	if len(rest) > 0 {
		e.Data = rest
	}
	return nil
}

func readString(b []byte) (string, []byte, error) {
	length, n := binary.Uvarint(b)
	if n <= 0 || length > uint64(len(b)-n) {
		return "", nil, fmt.Errorf("%w: truncated", errNotAnEvent)
	}
	end := n + int(length)
	return string(b[n:end]), b[end:], nil
}
