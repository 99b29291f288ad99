// Package relay carries requests between the replicas of a channel over core
// NATS, on the connection the replica's log already holds: each replica
// answers on a subject of its own (jetstreamlog.ReplicaSubject), named by
// its replica id, which starts the ids of the streams it holds. A token
// refresh that reaches another replica than the stream's is forwarded so
// (server.Replicas). Requests and answers are opaque bytes to the relay.
package relay

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"sync"
	"time"

	"github.com/nats-io/nats.go"

	"github.com/herald-notify/herald/streamer/log/jetstreamlog"
)

// DefaultTimeout bounds one request when Options.Timeout is 0.
const DefaultTimeout = 2 * time.Second

// Options configure a Relay.
type Options struct {
	// Conn is the NATS connection; required. Close leaves it open.
	Conn *nats.Conn
	// Namespace and Channel name the channel; required.
	Namespace, Channel string
	// ReplicaID names this replica, [0-9a-z] only; empty means a random one,
	// unique per process (a pod restarted in place holds none of its former
	// streams).
	ReplicaID string
	// Timeout bounds one request; 0 means DefaultTimeout.
	Timeout time.Duration
}

// Relay is one replica's end of the channel's requests between replicas.
type Relay struct {
	opts Options
	sub  *nats.Subscription

	mu     sync.Mutex
	answer func(request []byte) []byte
}

// Open subscribes to the replica's subject and returns once the NATS server
// has the subscription.
func Open(opts Options) (*Relay, error) {
	if opts.Conn == nil || opts.Namespace == "" || opts.Channel == "" {
		return nil, errors.New("relay: a NATS connection, a namespace and a channel are required")
	}
	if opts.ReplicaID == "" {
		var b [6]byte
		_, _ = rand.Read(b[:])
		opts.ReplicaID = hex.EncodeToString(b[:])
	}
	for _, c := range opts.ReplicaID {
		if (c < '0' || c > '9') && (c < 'a' || c > 'z') {
			return nil, fmt.Errorf("relay: the replica id %q holds other characters than [0-9a-z]", opts.ReplicaID)
		}
	}
	if opts.Timeout <= 0 {
		opts.Timeout = DefaultTimeout
	}
	r := &Relay{opts: opts}
	sub, err := opts.Conn.Subscribe(jetstreamlog.ReplicaSubject(opts.Namespace, opts.Channel, opts.ReplicaID), r.serve)
	if err != nil {
		return nil, fmt.Errorf("relay: failed to subscribe to the replica's subject: %w", err)
	}
	// The other replicas find this one as soon as Open returns.
	if err := opts.Conn.FlushTimeout(opts.Timeout); err != nil {
		_ = sub.Unsubscribe()
		return nil, fmt.Errorf("relay: the NATS server did not confirm the replica's subscription: %w", err)
	}
	r.sub = sub
	return r, nil
}

// ID is this replica's id.
func (r *Relay) ID() string { return r.opts.ReplicaID }

// Bind sets the function that answers the other replicas' requests. Until
// it is called, requests get an empty answer.
func (r *Relay) Bind(answer func(request []byte) []byte) {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.answer = answer
}

func (r *Relay) serve(msg *nats.Msg) {
	r.mu.Lock()
	answer := r.answer
	r.mu.Unlock()
	var reply []byte
	if answer != nil {
		reply = answer(msg.Data)
	}
	_ = msg.Respond(reply)
}

// Request sends request to replica and returns its answer. found is false
// when no replica of that id listens on the channel; err is set when none
// answered within the timeout (or ctx ended first).
func (r *Relay) Request(ctx context.Context, replica string, request []byte) (answer []byte, found bool, err error) {
	ctx, cancel := context.WithTimeout(ctx, r.opts.Timeout)
	defer cancel()
	msg, err := r.opts.Conn.RequestWithContext(ctx, jetstreamlog.ReplicaSubject(r.opts.Namespace, r.opts.Channel, replica), request)
	switch {
	case errors.Is(err, nats.ErrNoResponders):
		return nil, false, nil
	case err != nil:
		return nil, true, fmt.Errorf("replica %s did not answer: %w", replica, err)
	}
	return msg.Data, true, nil
}

// Close stops answering the other replicas.
func (r *Relay) Close() { _ = r.sub.Unsubscribe() }
