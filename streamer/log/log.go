// Package log is a channel's ordered event log: every event a channel delivers
// is appended here first and gets the next position, which clients see as the
// SSE "id:". A client that reconnects with Last-Event-ID reads what it missed
// from here, or learns that it cannot be recovered.
//
// Log is the one interface the hub, the streams, the publish API and the
// SystemEvent announcer use; which implementation is behind it (the embedded
// ring of one replica, or a broker shared by many) is chosen where the
// streamer is assembled.
package log

import (
	"cmp"
	"context"
	"errors"
	"strconv"
	"strings"
	"time"
)

// Position is a place in a log: an event's position, or the position before
// the first event of an epoch (Seq 0).
//
// The epoch names one history of the log. It changes whenever the log could
// have lost or reused positions (an embedded log restarted with its process,
// a broker stream deleted and recreated), so a position of another epoch is
// never mapped onto this one's events. Epochs increase with the time they
// began, so positions order by epoch, then sequence.
//
// A log that stores several events under one sequence (a broker message
// holding the events appended at the same time) tells them apart by
// Following: how many events of the same sequence come after this one. The
// last event of a sequence, and every event stored alone, has Following 0,
// so a reader that has it has read the whole sequence.
type Position struct {
	Epoch     uint64
	Seq       uint64
	Following uint32
}

// String is the position as an SSE id: "<epoch>-<seq>" in decimal, and
// "-<following>" after it when Following is not 0. Clients treat ids as
// opaque strings.
func (p Position) String() string {
	return string(p.AppendText(make([]byte, 0, 52)))
}

// AppendText appends the position's String form to dst.
func (p Position) AppendText(dst []byte) []byte {
	dst = strconv.AppendUint(dst, p.Epoch, 10)
	dst = append(dst, '-')
	dst = strconv.AppendUint(dst, p.Seq, 10)
	if p.Following != 0 {
		dst = append(dst, '-')
		dst = strconv.AppendUint(dst, uint64(p.Following), 10)
	}
	return dst
}

// ParsePosition reads a position written by String.
func ParsePosition(s string) (Position, error) {
	epoch, rest, ok := strings.Cut(strings.TrimSpace(s), "-")
	if !ok {
		return Position{}, errors.New("not an event id of this channel: want <epoch>-<sequence>")
	}
	seq, following, hasFollowing := strings.Cut(rest, "-")
	e, err := strconv.ParseUint(epoch, 10, 64)
	if err != nil {
		return Position{}, errors.New("not an event id of this channel: bad epoch")
	}
	q, err := strconv.ParseUint(seq, 10, 64)
	if err != nil {
		return Position{}, errors.New("not an event id of this channel: bad sequence")
	}
	var f uint64
	if hasFollowing {
		// Written only when not 0, so "-0" is not an id of this channel.
		if f, err = strconv.ParseUint(following, 10, 32); err != nil || f == 0 {
			return Position{}, errors.New("not an event id of this channel: bad event of its sequence")
		}
	}
	return Position{Epoch: e, Seq: q, Following: uint32(f)}, nil
}

// Compare orders positions: by epoch, then sequence, then the events of a
// sequence in the order stored (the most following first). It returns -1, 0
// or +1.
func (p Position) Compare(q Position) int {
	return cmp.Or(cmp.Compare(p.Epoch, q.Epoch), cmp.Compare(p.Seq, q.Seq), cmp.Compare(q.Following, p.Following))
}

// After reports whether p comes after q.
func (p Position) After(q Position) bool { return p.Compare(q) > 0 }

// Event is one entry of the log. Its slices are shared with every reader and
// must not be modified after Append.
type Event struct {
	// Position is where the log stored the event; Append ignores it.
	Position Position
	// Time is when the event was appended: retention by age and delivery
	// latency are measured from it. Append sets it.
	Time time.Time
	// Type is the event's "type": notification, system or custom.
	Type string
	// UserIDs are the recipients; empty means every connected user.
	UserIDs []string
	// Data is the event's JSON object, encoded once and written to every
	// recipient as is.
	Data []byte
}

// ForUser reports whether the event is addressed to user.
func (e *Event) ForUser(user string) bool {
	if len(e.UserIDs) == 0 {
		return true
	}
	for _, u := range e.UserIDs {
		if u == user {
			return true
		}
	}
	return false
}

// Receipt is what Append stored.
type Receipt struct {
	// Position is the event's position; for a duplicate, that of the event
	// first stored under the same de-duplication key.
	Position Position
	// Time is when the event was stored.
	Time time.Time
	// Duplicate is set when nothing was stored because the key was seen.
	Duplicate bool
}

// Log is a channel's ordered event log. Implementations are safe for
// concurrent use.
type Log interface {
	// Append stores e at the next position and wakes the readers waiting on
	// Changed. It returns only once the event is stored (for a broker: once
	// the broker acknowledged it); an error means it may not be. A non-empty
	// dedupKey that the log already stored an event under, within its
	// de-duplication window, stores nothing: the receipt then names the
	// first event and says Duplicate. Once Append returns, this Log's Last
	// and ReadAfter include the event. After Close it returns ErrClosed.
	Append(ctx context.Context, e Event, dedupKey string) (Receipt, error)
	// ReadAfter returns up to limit events that follow after, oldest first.
	// recovered is false when after is not a position of this log's current
	// epoch, lies beyond its newest event, or events that follow it are no
	// longer retained: the reader must then say so rather than leave a silent
	// gap. Once the log is closed and nothing follows after, it returns
	// ErrClosed (with recovered true). Other errors are the log's failures
	// (the broker unreachable); the reader may try again.
	ReadAfter(ctx context.Context, after Position, limit int) (events []Event, recovered bool, err error)
	// Last is the position of the newest event, or the position before the
	// first when the log's epoch holds none: reading after it returns only
	// later events.
	Last() Position
	// Changed returns a channel closed by the next change (an append, a new
	// epoch, Close). Take it before ReadAfter, so that a change in between
	// is not missed.
	Changed() <-chan struct{}
	// Close refuses further appends and wakes every reader; events already
	// stored can still be read.
	Close() error
}

// ErrClosed is returned by Append after Close, and by ReadAfter once a closed
// log has nothing more to read.
var ErrClosed = errors.New("event log is closed")
