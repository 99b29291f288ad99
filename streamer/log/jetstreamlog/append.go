package jetstreamlog

import (
	"bytes"
	"context"
	"fmt"
	"slices"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"

	eventlog "github.com/herald-notify/herald/streamer/log"
)

// Append implements log.Log. It publishes the event, waits for JetStream's
// acknowledgement, then for the consumer to deliver it to this log's window
// (so that Last and ReadAfter include it), all within ctx. While NATS is
// unreachable it fails at once with ErrNotConnected.
func (l *Log) Append(ctx context.Context, e eventlog.Event, dedupKey string) (eventlog.Receipt, error) {
	l.mu.Lock()
	closed := l.closed
	l.mu.Unlock()
	if closed {
		return eventlog.Receipt{}, eventlog.ErrClosed
	}
	if !l.nc.IsConnected() {
		return eventlog.Receipt{}, fmt.Errorf("failed to append to stream %s: %w", l.stream, ErrNotConnected)
	}
	opts := []jetstream.PublishOpt{jetstream.WithExpectStream(l.stream)}
	if dedupKey != "" {
		opts = append(opts, jetstream.WithMsgID(dedupKey))
	}
	ack, err := l.js.PublishMsg(ctx, &nats.Msg{Subject: l.subject, Data: encodeEvent(e)}, opts...)
	if err != nil {
		return eventlog.Receipt{}, fmt.Errorf("failed to append to stream %s: %w", l.stream, err)
	}
	return l.awaitDelivery(ctx, ack, e, dedupKey)
}

// awaitDelivery waits until the window holds the acknowledged event. The
// acknowledgement names a sequence but not the stream's life: if the event
// the window holds there is another one, the stream was recreated under the
// log and the position is only known in a later epoch.
func (l *Log) awaitDelivery(ctx context.Context, ack *jetstream.PubAck, e eventlog.Event, dedupKey string) (eventlog.Receipt, error) {
	var otherLife uint64 // the epoch whose event at ack.Sequence is not this one
	for {
		l.mu.Lock()
		if l.epoch != otherLife && l.last >= ack.Sequence {
			if r, ok := l.receiptLocked(ack, e, dedupKey); ok {
				l.mu.Unlock()
				return r, nil
			}
			otherLife = l.epoch
		}
		changed, closed := l.changed, l.closed
		l.mu.Unlock()
		if closed {
			return eventlog.Receipt{}, fmt.Errorf("failed to read back event %d of stream %s: %w", ack.Sequence, l.stream, eventlog.ErrClosed)
		}
		select {
		case <-changed:
		case <-ctx.Done():
			return eventlog.Receipt{}, fmt.Errorf("failed to read back event %d, stored in stream %s: %w", ack.Sequence, l.stream, ctx.Err())
		}
	}
}

// receiptLocked is the receipt for ack once the window reached its
// sequence; ok is false when the window holds another event there.
func (l *Log) receiptLocked(ack *jetstream.PubAck, e eventlog.Event, dedupKey string) (r eventlog.Receipt, ok bool) {
	held := l.win.find(ack.Sequence)
	if held == nil {
		// No longer in memory (a duplicate of an evicted event, or a
		// window outpaced by other writers): nothing to compare with.
		pos := eventlog.Position{Epoch: l.epoch, Seq: ack.Sequence}
		return eventlog.Receipt{Position: pos, Time: l.opts.Now(), Duplicate: ack.Duplicate}, true
	}
	if !held.is(e, dedupKey) {
		return eventlog.Receipt{}, false
	}
	return eventlog.Receipt{Position: held.Position, Time: held.Time, Duplicate: ack.Duplicate}, true
}

// is reports whether the held entry is the event appended: by its key, or
// by its content when it has none.
func (h *entry) is(e eventlog.Event, dedupKey string) bool {
	if dedupKey != "" || h.msgID != "" {
		return h.msgID == dedupKey
	}
	return h.Type == e.Type && slices.Equal(h.UserIDs, e.UserIDs) && bytes.Equal(h.Data, e.Data)
}
