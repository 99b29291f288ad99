package jetstreamlog

import (
	"encoding/binary"
	"errors"
	"fmt"

	eventlog "github.com/herald-notify/herald/streamer/log"
)

// envelopeVersion is the first byte of every message body this package
// writes; a later encoding takes another.
const envelopeVersion = 1

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
	size := 1 + binary.MaxVarintLen64*(2+len(e.UserIDs)) + len(e.Type) + len(e.Data)
	for _, u := range e.UserIDs {
		size += len(u)
	}
	body := make([]byte, 0, size)
	body = append(body, envelopeVersion)
	body = appendString(body, e.Type)
	body = binary.AppendUvarint(body, uint64(len(e.UserIDs)))
	for _, u := range e.UserIDs {
		body = appendString(body, u)
	}
	return append(body, e.Data...)
}

func appendString(dst []byte, s string) []byte {
	dst = binary.AppendUvarint(dst, uint64(len(s)))
	return append(dst, s...)
}

var errNotAnEvent = errors.New("not a Herald event")

// decodeEvent reads a body written by encodeEvent into e's Type, UserIDs and
// Data. Data shares body's memory.
func decodeEvent(body []byte, e *eventlog.Event) error {
	if len(body) == 0 || body[0] != envelopeVersion {
		return fmt.Errorf("%w: unknown envelope", errNotAnEvent)
	}
	rest := body[1:]
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
