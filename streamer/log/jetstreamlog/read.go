package jetstreamlog

import (
	"context"
	"errors"
	"fmt"

	"github.com/nats-io/nats.go/jetstream"

	eventlog "github.com/herald-notify/herald/streamer/log"
)

// ReadAfter implements log.Log. It serves the window from memory, also while
// NATS is unreachable; only events older than the window are read from
// JetStream.
func (l *Log) ReadAfter(ctx context.Context, after eventlog.Position, limit int) ([]eventlog.Event, bool, error) {
	l.mu.Lock()
	l.evictExpiredLocked()
	if after.Epoch != l.epoch || after.Seq > max(l.last, l.known) {
		l.mu.Unlock()
		return nil, false, nil
	}
	if !l.heldAfter.After(after) {
		events := l.win.after(after, limit)
		closed := l.closed
		l.mu.Unlock()
		if len(events) == 0 && closed {
			return nil, true, eventlog.ErrClosed
		}
		return events, true, nil
	}
	heldAfter := l.heldAfter
	l.mu.Unlock()
	return l.readStored(ctx, after, heldAfter, limit)
}

// readStored reads the events after after that the window no longer holds
// (up to heldAfter) from the stream, message by message, then continues
// from the window.
func (l *Log) readStored(ctx context.Context, after, heldAfter eventlog.Position, limit int) ([]eventlog.Event, bool, error) {
	epoch := heldAfter.Epoch
	info, err := l.handle.Info(ctx)
	if err != nil {
		return nil, false, fmt.Errorf("failed to read the state of stream %s: %w", l.stream, err)
	}
	from := after.Seq + 1
	if after.Following > 0 {
		from = after.Seq // the rest of its message
	}
	if epochOf(info.Created) != epoch || from < info.State.FirstSeq {
		return nil, false, nil // another life of the stream, or aged out of it
	}
	var events []eventlog.Event
	for seq := from; len(events) < limit && seq <= heldAfter.Seq; {
		// The next message at or after seq: deleted ones leave holes.
		msg, err := l.handle.GetMsg(ctx, seq, jetstream.WithGetMsgSubject(l.subject))
		if errors.Is(err, jetstream.ErrMsgNotFound) {
			break
		}
		if err != nil {
			return nil, false, fmt.Errorf("failed to read event %d of stream %s: %w", seq, l.stream, err)
		}
		if msg.Sequence > heldAfter.Seq {
			break
		}
		stored, err := decodeEvents(msg.Data)
		if err != nil {
			stored = nil // not a Herald event: skipped, as the consumer does
		}
		for i, e := range stored {
			if len(events) == limit {
				break
			}
			e.Position = eventlog.Position{Epoch: epoch, Seq: msg.Sequence, Following: uint32(len(stored) - 1 - i)}
			e.Time = msg.Time
			if e.Position.After(after) && !e.Position.After(heldAfter) {
				events = append(events, e)
			}
		}
		seq = msg.Sequence + 1
	}

	l.mu.Lock()
	defer l.mu.Unlock()
	if l.epoch == epoch && l.heldAfter == heldAfter && len(events) < limit {
		// The window still starts where the stream's part ended.
		events = append(events, l.win.after(heldAfter, limit-len(events))...)
	}
	return events, true, nil
}
