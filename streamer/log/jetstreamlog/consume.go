package jetstreamlog

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
	"github.com/nats-io/nuid"

	eventlog "github.com/herald-notify/herald/streamer/log"
)

// Bounds of the wait between two attempts at a consumer.
const (
	minRetry = 100 * time.Millisecond
	maxRetry = 5 * time.Second
)

var (
	errStreamRecreated = errors.New("the stream was deleted and created again")
	errDeliveryGap     = errors.New("the consumer skipped a delivery")
)

// run keeps one consumer on the stream until Close, recreating it whenever
// it breaks.
func (l *Log) run() {
	defer close(l.stopped)
	retry := minRetry
	for {
		consumed, err := l.consume()
		if l.ctx.Err() != nil {
			return
		}
		if errors.Is(err, errStreamRecreated) {
			l.logger.Info("the channel's stream was created again: moving to its new epoch")
		} else {
			l.setHealth(err)
		}
		if consumed {
			retry = minRetry
		}
		select {
		case <-l.ctx.Done():
			return
		case <-time.After(retry):
		}
		retry = min(2*retry, maxRetry)
	}
}

// consume creates a consumer after the last event held and feeds the
// window from it until it breaks (consumed: it delivered, or could have) or
// the log is closed.
func (l *Log) consume() (consumed bool, err error) {
	setup, cancel := context.WithTimeout(l.ctx, l.opts.RequestTimeout)
	defer cancel()
	info, err := l.streamInfo(setup)
	if err != nil {
		return false, err
	}
	epoch, start := l.adopt(info)
	cons, err := l.handle.CreateOrUpdateConsumer(setup, l.consumerConfig(start))
	if err != nil {
		return false, fmt.Errorf("failed to create a consumer on stream %s: %w", l.stream, err)
	}
	l.metrics.consumersCreated.Inc()
	defer l.deleteLater(cons)
	// The stream could have been recreated between the info and the
	// consumer: then the consumer reads another life of it.
	if info, err = l.handle.Info(setup); err != nil {
		return false, fmt.Errorf("failed to check stream %s: %w", l.stream, err)
	}
	if epochOf(info.Created) != epoch {
		return false, errStreamRecreated
	}

	broken := make(chan error, 1)
	gen := l.startConsumer()
	cc, err := cons.Consume(l.deliver(gen, broken),
		jetstream.PullHeartbeat(l.opts.Heartbeat),
		jetstream.PullExpiry(max(30*time.Second, 3*l.opts.Heartbeat)),
		jetstream.ConsumeErrHandler(func(_ jetstream.ConsumeContext, err error) { signal(broken, err) }))
	if err != nil {
		return false, fmt.Errorf("failed to consume stream %s: %w", l.stream, err)
	}
	defer cc.Stop()
	l.setHealth(nil)

	check := time.NewTicker(l.opts.Heartbeat)
	defer check.Stop()
	for {
		select {
		case <-l.ctx.Done():
			return true, nil
		case err := <-broken:
			return true, fmt.Errorf("the consumer of stream %s stopped: %w", l.stream, err)
		case <-check.C:
			if err := l.check(epoch); err != nil {
				if errors.Is(err, errStreamRecreated) || errors.Is(err, jetstream.ErrStreamNotFound) {
					return true, err
				}
				l.setHealth(err)
			} else {
				l.setHealth(nil)
			}
		}
	}
}

// signal passes err on without blocking: the first error is enough to
// recreate the consumer.
func signal(broken chan<- error, err error) {
	select {
	case broken <- err:
	default:
	}
}

// streamInfo reads the stream's state, creating the stream again if it was
// deleted: the channel must keep working.
func (l *Log) streamInfo(ctx context.Context) (*jetstream.StreamInfo, error) {
	info, err := l.handle.Info(ctx)
	if errors.Is(err, jetstream.ErrStreamNotFound) {
		l.logger.Warn("the channel's stream is gone: creating it again")
		// The handle goes by name, so it reaches the new stream too.
		s, err := l.ensureStream(ctx)
		if err != nil {
			return nil, err
		}
		return s.CachedInfo(), nil
	}
	if err != nil {
		return nil, fmt.Errorf("failed to read the state of stream %s: %w", l.stream, err)
	}
	return info, nil
}

// adopt takes in the stream's state before a consumer starts: a new epoch
// drops the window and starts at the oldest event to retain; the same epoch
// drops what the stream no longer has and resumes after the last event held.
func (l *Log) adopt(info *jetstream.StreamInfo) (epoch, start uint64) {
	l.mu.Lock()
	defer l.mu.Unlock()
	epoch = epochOf(info.Created)
	first, last := info.State.FirstSeq, info.State.LastSeq
	if epoch != l.epoch {
		l.epoch = epoch
		l.win.reset()
		start = max(first, 1)
		if last >= uint64(l.opts.MaxEvents) {
			start = max(start, last-uint64(l.opts.MaxEvents)+1)
		}
		l.heldAfter = eventlog.Position{Epoch: epoch, Seq: start - 1}
		l.last, l.known = start-1, last
		l.notifyLocked()
		l.markCaughtUpIfHeldLocked()
		return epoch, start
	}
	l.known = max(l.known, last)
	l.dropBeforeLocked(first)
	l.markCaughtUpIfHeldLocked()
	return epoch, l.last + 1
}

// check compares the stream with the epoch being consumed, and drops what
// the stream no longer has (a purge) from memory.
func (l *Log) check(epoch uint64) error {
	if !l.nc.IsConnected() {
		return nil // the connection reports itself; its reconnect resumes the consumer
	}
	ctx, cancel := context.WithTimeout(l.ctx, l.opts.RequestTimeout)
	defer cancel()
	info, err := l.handle.Info(ctx)
	if err != nil {
		return fmt.Errorf("failed to check stream %s: %w", l.stream, err)
	}
	if epochOf(info.Created) != epoch {
		return errStreamRecreated
	}
	l.mu.Lock()
	defer l.mu.Unlock()
	l.known = max(l.known, info.State.LastSeq)
	l.dropBeforeLocked(info.State.FirstSeq)
	l.markCaughtUpIfHeldLocked()
	return nil
}

// dropBeforeLocked forgets the events below first, which the stream no
// longer has, so that readers of them are told they are not recovered.
func (l *Log) dropBeforeLocked(first uint64) {
	gone := eventlog.Position{Epoch: l.epoch, Seq: first - 1} // and the events before
	if first == 0 || !gone.After(l.heldAfter) {
		return
	}
	l.win.dropBefore(first)
	l.heldAfter = gone
	l.last = max(l.last, first-1)
}

// evictExpiredLocked ages events out of memory as the stream ages them out.
func (l *Log) evictExpiredLocked() {
	oldest := l.opts.Now().Add(-l.opts.MaxAge)
	for l.win.len() > 0 && l.win.at(0).Time.Before(oldest) {
		l.heldAfter = l.win.at(0).Position
		l.win.popOldest()
	}
}

func (l *Log) consumerConfig(start uint64) jetstream.ConsumerConfig {
	return jetstream.ConsumerConfig{
		Name:          "herald_" + nuid.Next(),
		Description:   "Herald streamer's window of " + l.opts.Namespace + "/" + l.opts.Channel,
		DeliverPolicy: jetstream.DeliverByStartSequencePolicy,
		OptStartSeq:   start,
		AckPolicy:     jetstream.AckNonePolicy,
		// Nothing of it needs to survive: the log knows where it was.
		MemoryStorage: true,
		Replicas:      1,
		// A pod that died without deleting it leaves it behind this long.
		InactiveThreshold: max(time.Minute, 10*l.opts.Heartbeat),
	}
}

// startConsumer makes gen the consumer whose deliveries count.
func (l *Log) startConsumer() (gen int) {
	l.mu.Lock()
	defer l.mu.Unlock()
	l.gen++
	l.nextDelivery = 1
	return l.gen
}

// markCaughtUpIfHeldLocked lets Open return once the window holds every
// event the stream's leader reported. The consumer's own NumPending is not
// enough: a consumer placed on a replica still catching up after a leader
// change counts only what that replica has, and reports 0 too early.
func (l *Log) markCaughtUpIfHeldLocked() {
	if !l.isCaughtUp && l.last >= l.known {
		l.isCaughtUp = true
		close(l.caughtUp)
	}
}

// deleteLater deletes a consumer the log is done with in the background,
// so that the next one starts at once: JetStream answers a deletion from
// the consumer's node, and when that node is the one that just went away
// the request waits out its timeout (5 s by default), all that time without
// delivery to any stream of the pod. Close waits for these deletions before
// it closes the connection.
func (l *Log) deleteLater(cons jetstream.Consumer) {
	l.deleting.Add(1)
	go func() {
		defer l.deleting.Done()
		l.deleteConsumer(cons)
	}()
}

// deleteConsumer removes a consumer the log is done with; one left behind
// goes after its inactivity threshold.
func (l *Log) deleteConsumer(cons jetstream.Consumer) {
	if !l.nc.IsConnected() {
		return
	}
	ctx, cancel := context.WithTimeout(context.Background(), l.opts.RequestTimeout)
	defer cancel()
	if err := l.handle.DeleteConsumer(ctx, cons.CachedInfo().Name); err != nil && !errors.Is(err, jetstream.ErrConsumerNotFound) {
		l.logger.Debug("failed to delete a consumer", "consumer", cons.CachedInfo().Name, "error", err)
	}
}

// deliver is consumer gen's message handler: it adds each message's events
// to the window in stream order, and reports a skipped delivery (the
// consumer must then start again after the last event held).
func (l *Log) deliver(gen int, broken chan<- error) jetstream.MessageHandler {
	return func(msg jetstream.Msg) {
		if f := l.beforeDeliver.Load(); f != nil {
			(*f)()
		}
		meta, err := msg.Metadata()
		if err != nil {
			signal(broken, fmt.Errorf("failed to read a delivery's metadata: %w", err))
			return
		}
		l.mu.Lock()
		defer l.mu.Unlock()
		if gen != l.gen || l.closed {
			return
		}
		if meta.Sequence.Consumer != l.nextDelivery {
			signal(broken, fmt.Errorf("%w: got %d, want %d", errDeliveryGap, meta.Sequence.Consumer, l.nextDelivery))
			return
		}
		l.nextDelivery++
		seq := meta.Sequence.Stream
		if seq <= l.last {
			return // held already
		}
		l.last, l.known = seq, max(l.known, seq)
		defer l.markCaughtUpIfHeldLocked()
		events, err := decodeEvents(msg.Data())
		if err != nil {
			l.logger.Warn("skipped a message of the channel's stream", "seq", seq, "error", err)
			return
		}
		msgID := msg.Headers().Get(nats.MsgIdHdr) // only ever on a message of one event
		for i, event := range events {
			e := entry{Event: event, msgID: msgID}
			e.Position = eventlog.Position{Epoch: l.epoch, Seq: seq, Following: uint32(len(events) - 1 - i)}
			e.Time = meta.Timestamp
			if dropped, full := l.win.push(e); full {
				l.heldAfter = dropped
			}
		}
		l.notifyLocked()
	}
}
