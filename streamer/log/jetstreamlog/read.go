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
	if after.Seq+1 >= l.covered {
		events := l.win.after(after.Seq, limit)
		closed := l.closed
		l.mu.Unlock()
		if len(events) == 0 && closed {
			return nil, true, eventlog.ErrClosed
		}
		return events, true, nil
	}
	epoch, covered := l.epoch, l.covered
	l.mu.Unlock()
	return l.readStored(ctx, epoch, after.Seq+1, covered, limit)
}

// readStored reads the events from sequence from on that the window no
// longer holds (those below covered) from the stream, message by message,
// then continues from the window.
func (l *Log) readStored(ctx context.Context, epoch, from, covered uint64, limit int) ([]eventlog.Event, bool, error) {
	info, err := l.handle.Info(ctx)
	if err != nil {
		return nil, false, fmt.Errorf("failed to read the state of stream %s: %w", l.stream, err)
	}
	if epochOf(info.Created) != epoch || from < info.State.FirstSeq {
		return nil, false, nil // another life of the stream, or aged out of it
	}
	var events []eventlog.Event
	for seq := from; len(events) < limit && seq < covered; {
		// The next message at or after seq: deleted ones leave holes.
		msg, err := l.handle.GetMsg(ctx, seq, jetstream.WithGetMsgSubject(l.subject))
		if errors.Is(err, jetstream.ErrMsgNotFound) {
			break
		}
		if err != nil {
			return nil, false, fmt.Errorf("failed to read event %d of stream %s: %w", seq, l.stream, err)
		}
		if msg.Sequence >= covered {
			break
		}
		e := eventlog.Event{Position: eventlog.Position{Epoch: epoch, Seq: msg.Sequence}, Time: msg.Time}
		if err := decodeEvent(msg.Data, &e); err == nil {
			events = append(events, e)
		}
		seq = msg.Sequence + 1
	}

	l.mu.Lock()
	defer l.mu.Unlock()
	if l.epoch == epoch && l.covered == covered && len(events) < limit {
		// The window still starts where the stream's part ended.
		events = append(events, l.win.after(covered-1, limit-len(events))...)
	}
	return events, true, nil
}
