package jetstreamlog

import (
	"bytes"
	"context"
	"fmt"
	"slices"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"

	eventlog "github.com/herald-notify/herald/streamer/log"
)

// Append implements log.Log. It publishes the event, waits for JetStream's
// acknowledgement, then for the consumer to deliver it to this log's window
// (so that Last and ReadAfter include it), all within ctx. While NATS is
// unreachable it fails at once with ErrNotConnected.
//
// An event without a de-duplication key may be stored in one message with
// others appended at the same time (see appendGrouped); a keyed event is a
// message of its own, since JetStream de-duplicates messages.
func (l *Log) Append(ctx context.Context, e eventlog.Event, dedupKey string) (eventlog.Receipt, error) {
	if err := l.checkAppend(); err != nil {
		return eventlog.Receipt{}, err
	}
	if dedupKey == "" {
		return l.appendGrouped(ctx, e)
	}
	start := time.Now()
	ack, err := l.js.PublishMsg(ctx, &nats.Msg{Subject: l.subject, Data: encodeEvent(e)},
		jetstream.WithExpectStream(l.stream), jetstream.WithMsgID(dedupKey))
	if err != nil {
		return eventlog.Receipt{}, fmt.Errorf("failed to append to stream %s: %w", l.stream, err)
	}
	l.metrics.observeWrite(time.Since(start))
	return l.awaitDelivery(ctx, eventlog.Position{Seq: ack.Sequence}, ack.Duplicate, e, dedupKey)
}

// checkAppend is why an append cannot be published now, or nil.
func (l *Log) checkAppend() error {
	l.mu.Lock()
	closed := l.closed
	l.mu.Unlock()
	if closed {
		return eventlog.ErrClosed
	}
	if !l.nc.IsConnected() {
		return fmt.Errorf("failed to append to stream %s: %w", l.stream, ErrNotConnected)
	}
	return nil
}

// awaitDelivery waits until the window holds the acknowledged event at pos
// (a sequence, and the event's place in its message). The acknowledgement
// names a sequence but not the stream's life: if the event the window holds
// there is another one, the stream was recreated under the log and the
// position is only known in a later epoch.
func (l *Log) awaitDelivery(ctx context.Context, pos eventlog.Position, duplicate bool, e eventlog.Event, dedupKey string) (eventlog.Receipt, error) {
	var otherLife uint64 // the epoch whose event at pos is not this one
	for {
		l.mu.Lock()
		if l.epoch != otherLife && l.last >= pos.Seq {
			pos.Epoch = l.epoch
			if r, ok := l.receiptLocked(pos, duplicate, e, dedupKey); ok {
				l.mu.Unlock()
				return r, nil
			}
			otherLife = l.epoch
		}
		changed, closed := l.changed, l.closed
		l.mu.Unlock()
		if closed {
			return eventlog.Receipt{}, fmt.Errorf("failed to read back event %d of stream %s: %w", pos.Seq, l.stream, eventlog.ErrClosed)
		}
		select {
		case <-changed:
		case <-ctx.Done():
			return eventlog.Receipt{}, fmt.Errorf("failed to read back event %d, stored in stream %s: %w", pos.Seq, l.stream, ctx.Err())
		}
	}
}

// receiptLocked is the receipt for the event acknowledged at pos once the
// window reached its sequence; ok is false when the window holds another
// event there.
func (l *Log) receiptLocked(pos eventlog.Position, duplicate bool, e eventlog.Event, dedupKey string) (r eventlog.Receipt, ok bool) {
	held := l.win.find(pos)
	if held == nil {
		// No longer in memory (a duplicate of an evicted event, or a
		// window outpaced by other writers): nothing to compare with.
		return eventlog.Receipt{Position: pos, Time: l.opts.Now(), Duplicate: duplicate}, true
	}
	if !held.is(e, dedupKey) {
		return eventlog.Receipt{}, false
	}
	return eventlog.Receipt{Position: held.Position, Time: held.Time, Duplicate: duplicate}, true
}

// is reports whether the held entry is the event appended: by its key, or
// by its content when it has none.
func (h *entry) is(e eventlog.Event, dedupKey string) bool {
	if dedupKey != "" || h.msgID != "" {
		return h.msgID == dedupKey
	}
	return h.Type == e.Type && slices.Equal(h.UserIDs, e.UserIDs) && bytes.Equal(h.Data, e.Data)
}
