// Package presence holds a channel's per-user stream limit
// (connections.maxPerUser) across every streamer replica, in a JetStream
// key-value bucket shared by the replicas. It implements hub.Presence.
//
// # The record
//
// The bucket is jetstreamlog.BucketName("PRESENCE", namespace, channel),
// in memory, with the channel's stream replicas and one revision per key.
// Each user has a key, "u.<user>" (see escapeKey), whose value lists the
// user's open streams, oldest first: replica id, stream id, opening time.
// Every change is a compare-and-swap on the key's revision, so admissions of
// one user on any replicas are serialized: Reject refuses the stream beyond
// the limit wherever the others are, ReplaceOldest removes the oldest from
// the record. Each replica watches the users' keys (one watcher for the
// pod, never one per user) and closes, as replaced, the streams it holds
// that a newer revision no longer lists: within the watch's delivery time
// of the admission (milliseconds on a LAN; the tests measure it).
//
// # Replicas that die
//
// Each replica writes a heartbeat key, "r.<replica>", every Heartbeat, and
// watches the others'. A stream listed by a replica whose heartbeat this one
// has not seen change for TTL (checked against the bucket before it is
// counted out) or whose key is gone is no longer held: a replica that died
// keeps its users out under Reject for at most TTL after its last heartbeat.
// A replica that stops cleanly deletes its heartbeat (Close), which frees its
// users at once. Liveness is judged on each replica's own clock, never by
// comparing clocks.
//
// # Broker failures
//
// Admission fails open: when the bucket cannot be reached (NATS away, a
// timeout), Admit returns the error, the hub admits the stream within its
// own per-pod limit, herald_presence_failures_total{op="admit"} counts it and
// a warning is logged when the failures start and when they stop. Streams
// admitted so are not in the record. Ended streams are removed from the
// record in the background, retried until the bucket answers.
package presence

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"sync"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
	"github.com/prometheus/client_golang/prometheus"

	"github.com/herald-notify/herald/streamer/hub"
	"github.com/herald-notify/herald/streamer/log/jetstreamlog"
)

// Options configure a Presence. Zero values are the documented defaults.
type Options struct {
	// Conn is the NATS connection; required. Close leaves it open.
	Conn *nats.Conn
	// Namespace and Channel name the channel, and so its bucket; required.
	Namespace, Channel string
	// Replicas is the bucket's replica count; 0 means 1.
	Replicas int
	// ReplicaID names this replica in the record; empty means the host name
	// (the pod's name) and a random suffix, unique per process.
	ReplicaID string
	// Heartbeat is how often the replica says it is alive; 0 means
	// DefaultHeartbeat.
	Heartbeat time.Duration
	// TTL is how long after its last heartbeat a replica's streams stop
	// counting; 0 means DefaultTTL. It is at least twice Heartbeat.
	TTL time.Duration
	// RequestTimeout bounds one admission, and each other request; 0 means
	// DefaultRequestTimeout.
	RequestTimeout time.Duration
	// Logger receives the state changes; nil discards them.
	Logger *slog.Logger
	// Registry receives the metrics; nil registers none.
	Registry prometheus.Registerer
}

// Defaults of Options.
const (
	DefaultHeartbeat      = 3 * time.Second
	DefaultTTL            = 10 * time.Second
	DefaultRequestTimeout = 2 * time.Second
)

// bucketPurpose names the bucket among the channel's buckets.
const bucketPurpose = jetstreamlog.PresenceBucketPurpose

// maxAttempts bounds the compare-and-swap retries of one change of a key.
const maxAttempts = 8

// releaseRetryDelay is the wait before releases that failed are tried again.
const releaseRetryDelay = time.Second

// ErrUnavailable is what Admit returns while NATS is unreachable.
var ErrUnavailable = errors.New("the channel's presence record is unreachable")

var errContended = errors.New("too many concurrent changes of the user's presence record")

func (o Options) withDefaults() (Options, error) {
	if o.Conn == nil {
		return o, errors.New("a NATS connection is required")
	}
	if o.Namespace == "" || o.Channel == "" {
		return o, errors.New("a namespace and a channel are required")
	}
	if o.Replicas <= 0 {
		o.Replicas = 1
	}
	if o.ReplicaID == "" {
		o.ReplicaID = defaultReplicaID()
	}
	if o.Heartbeat <= 0 {
		o.Heartbeat = DefaultHeartbeat
	}
	if o.TTL <= 0 {
		o.TTL = DefaultTTL
	}
	o.TTL = max(o.TTL, 2*o.Heartbeat) // one late heartbeat is not a death
	if o.RequestTimeout <= 0 {
		o.RequestTimeout = DefaultRequestTimeout
	}
	if o.Logger == nil {
		o.Logger = slog.New(slog.DiscardHandler)
	}
	return o, nil
}

// defaultReplicaID is the host name, which is the pod's, and a random suffix:
// a pod restarted in place is a new replica, its former streams gone.
func defaultReplicaID() string {
	host, _ := os.Hostname()
	var b [4]byte
	_, _ = rand.Read(b[:])
	return host + "-" + hex.EncodeToString(b[:])
}

// Presence is one replica's view of, and share in, the channel's record of
// open streams. It implements hub.Presence.
type Presence struct {
	opts    Options
	self    string // this replica's id
	selfKey string // its heartbeat key
	nc      *nats.Conn
	kv      jetstream.KeyValue
	logger  *slog.Logger
	metrics *metrics

	ctx    context.Context
	cancel context.CancelFunc
	wg     sync.WaitGroup
	wake   chan struct{} // the releaser has dirty keys

	mu       sync.Mutex
	users    map[string]*userState    // by key: the users with local streams
	dirty    map[string]struct{}      // keys holding local streams that ended
	replicas map[string]heartbeatSeen // by heartbeat key
	replaced func(user string, id hub.StreamID)
	closed   bool
	failing  bool // admissions are failing (logged on change)
}

var _ hub.Presence = (*Presence)(nil)

// userState is what this replica knows of a user it holds streams of.
type userState struct {
	user string
	// pending are the streams being admitted; true once released meanwhile.
	pending map[hub.StreamID]bool
	// held are the admitted streams, with the revision that admitted them.
	held map[hub.StreamID]uint64
	// seenRev is the newest revision the watcher delivered, and seenOwn the
	// streams of this replica it lists.
	seenRev uint64
	seenOwn map[hub.StreamID]bool
}

func (st *userState) idle() bool { return len(st.pending) == 0 && len(st.held) == 0 }

// heartbeatSeen is a replica's last heartbeat revision, and when this replica
// saw it (its own clock).
type heartbeatSeen struct {
	rev uint64
	at  time.Time
}

// Open creates or updates the channel's bucket, writes the first heartbeat,
// and returns once the heartbeats of the other replicas are known. ctx
// bounds that, not the Presence's life: Close ends it.
func Open(ctx context.Context, opts Options) (*Presence, error) {
	opts, err := opts.withDefaults()
	if err != nil {
		return nil, fmt.Errorf("failed to open the channel's presence record: %w", err)
	}
	js, err := jetstream.New(opts.Conn, jetstream.WithDefaultTimeout(opts.RequestTimeout))
	if err != nil {
		return nil, fmt.Errorf("failed to use JetStream: %w", err)
	}
	bucket := jetstreamlog.BucketName(bucketPurpose, opts.Namespace, opts.Channel)
	kv, err := js.CreateOrUpdateKeyValue(ctx, jetstream.KeyValueConfig{
		Bucket:      bucket,
		Description: "Herald: open streams per user of channel " + opts.Namespace + "/" + opts.Channel,
		History:     1,
		// The record lives as long as the streams it lists: memory is enough,
		// and spares every connect an fsync.
		Storage:  jetstream.MemoryStorage,
		Replicas: opts.Replicas,
	})
	if err != nil {
		return nil, fmt.Errorf("failed to create or update key-value bucket %s: %w", bucket, err)
	}
	p := &Presence{
		opts: opts, self: opts.ReplicaID, selfKey: replicaKey(opts.ReplicaID),
		nc: opts.Conn, kv: kv, logger: opts.Logger.With("bucket", bucket, "replica", opts.ReplicaID),
		metrics: newMetrics(opts.Registry), wake: make(chan struct{}, 1),
		users: map[string]*userState{}, dirty: map[string]struct{}{}, replicas: map[string]heartbeatSeen{},
		replaced: func(string, hub.StreamID) {},
	}
	if err := p.beat(ctx); err != nil {
		return nil, fmt.Errorf("failed to write the replica's heartbeat in %s: %w", bucket, err)
	}
	p.ctx, p.cancel = context.WithCancel(context.Background())
	heartbeats, err := kv.Watch(p.ctx, replicaPrefix+"*")
	if err != nil {
		p.cancel()
		return nil, fmt.Errorf("failed to watch the heartbeats in %s: %w", bucket, err)
	}
	// Updates only: the streams this replica holds are all admitted later.
	users, err := kv.Watch(p.ctx, userPrefix+">", jetstream.UpdatesOnly())
	if err != nil {
		_ = heartbeats.Stop()
		p.cancel()
		return nil, fmt.Errorf("failed to watch the users in %s: %w", bucket, err)
	}
	known := make(chan struct{})
	p.start(func() { p.watchHeartbeats(heartbeats, known) })
	p.start(func() { p.watchUsers(users) })
	p.start(p.heartbeats)
	p.start(p.releaser)
	select {
	case <-known:
		return p, nil
	case <-ctx.Done():
		p.Close()
		return nil, fmt.Errorf("failed to read the heartbeats in %s: %w", bucket, ctx.Err())
	}
}

func (p *Presence) start(run func()) {
	p.wg.Add(1)
	go func() {
		defer p.wg.Done()
		run()
	}()
}

// ReplicaID is the id that names this replica in the record.
func (p *Presence) ReplicaID() string { return p.self }

// Close stops the watchers and heartbeats and deletes this replica's
// heartbeat, so that the other replicas stop counting its streams at once:
// call it when the replica starts draining, before the connection closes.
// Streams released afterwards are not removed from the record; they no
// longer count.
func (p *Presence) Close() {
	p.mu.Lock()
	if p.closed {
		p.mu.Unlock()
		return
	}
	p.closed = true
	p.mu.Unlock()
	p.cancel()
	p.wg.Wait()
	ctx, cancel := context.WithTimeout(context.Background(), p.opts.RequestTimeout)
	defer cancel()
	if err := p.kv.Delete(ctx, p.selfKey); err != nil {
		p.logger.Warn("failed to delete the replica's heartbeat; the other replicas count its streams until it expires",
			"ttl", p.opts.TTL.String(), "error", err.Error())
	}
}

// Bind implements hub.Presence.
func (p *Presence) Bind(replaced func(user string, id hub.StreamID)) {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.replaced = replaced
}

// Admit implements hub.Presence.
func (p *Presence) Admit(ctx context.Context, user string, id hub.StreamID, limit int, policy hub.UserLimitPolicy) ([]hub.StreamID, error) {
	start := time.Now()
	key := userKey(user)
	if err := p.track(key, user, id); err != nil {
		return nil, err
	}
	evicted, rev, err := p.admit(ctx, key, id, limit, policy)
	local, replacedMeanwhile := p.settle(key, id, rev, evicted, err)
	switch {
	case errors.Is(err, hub.ErrUserLimit):
		p.admitted(start)
		return nil, err
	case err != nil:
		p.metrics.failures.WithLabelValues(opAdmit).Inc()
		p.setFailing(err)
		return nil, fmt.Errorf("failed to admit a stream in the channel's presence record: %w", err)
	}
	p.admitted(start)
	if replacedMeanwhile {
		p.closeReplaced(user, []hub.StreamID{id})
	}
	return local, nil
}

func (p *Presence) admitted(start time.Time) {
	p.metrics.admit.Observe(time.Since(start).Seconds())
	p.setFailing(nil)
}

// track records stream id of user as being admitted.
func (p *Presence) track(key, user string, id hub.StreamID) error {
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.closed {
		return hub.ErrClosed
	}
	st := p.users[key]
	if st == nil {
		st = &userState{user: user, pending: map[hub.StreamID]bool{}, held: map[hub.StreamID]uint64{}}
		p.users[key] = st
	}
	st.pending[id] = false
	return nil
}

// admit writes stream id in the user's record at key, and returns the
// streams it replaced and the revision it wrote.
func (p *Presence) admit(ctx context.Context, key string, id hub.StreamID, limit int, policy hub.UserLimitPolicy) ([]entry, uint64, error) {
	if !p.nc.IsConnected() {
		return nil, 0, ErrUnavailable // fail at once, not after the timeout
	}
	ctx, cancel := context.WithTimeout(ctx, p.opts.RequestTimeout)
	defer cancel()
	next := entry{Replica: p.self, Stream: id, Opened: time.Now().UTC()}
	for range maxAttempts {
		current, rev, err := p.read(ctx, key)
		if err != nil {
			return nil, 0, err
		}
		kept, evicted, err := admit(current.Streams, p.liveness(ctx, key), limit, policy, next)
		if err != nil {
			return nil, 0, err
		}
		written, err := p.write(ctx, key, record{Streams: kept}, rev)
		if isConflict(err) {
			continue // another replica changed the record: decide again
		}
		if err != nil {
			return nil, 0, err
		}
		return evicted, written, nil
	}
	return nil, 0, errContended
}

// settle ends the admission of stream id: on success it is held from
// revision rev on, and the replaced streams of this replica are no longer
// held (returned, for the hub to close). replacedMeanwhile is set when the
// watcher already delivered a later revision without it.
func (p *Presence) settle(key string, id hub.StreamID, rev uint64, evicted []entry, err error) (local []hub.StreamID, replacedMeanwhile bool) {
	p.mu.Lock()
	defer p.mu.Unlock()
	st := p.users[key]
	released := st.pending[id]
	delete(st.pending, id)
	if err == nil {
		for _, e := range evicted {
			if e.Replica == p.self {
				delete(st.held, e.Stream)
				local = append(local, e.Stream)
			}
		}
		switch {
		case released:
			// The stream ended while it was admitted: out of the record.
			p.markDirtyLocked(key)
		case st.seenRev > rev && !st.seenOwn[id]:
			replacedMeanwhile = true
		default:
			st.held[id] = rev
		}
	}
	if st.idle() {
		delete(p.users, key)
	}
	return local, replacedMeanwhile
}

// Release implements hub.Presence: the stream leaves the record in the
// background (releaser).
func (p *Presence) Release(user string, id hub.StreamID) {
	key := userKey(user)
	p.mu.Lock()
	defer p.mu.Unlock()
	st := p.users[key]
	if st == nil {
		return
	}
	if _, ok := st.pending[id]; ok {
		st.pending[id] = true // settle takes it out
		return
	}
	if _, ok := st.held[id]; !ok {
		return // replaced, or admitted by the local limit only
	}
	delete(st.held, id)
	if st.idle() {
		delete(p.users, key)
	}
	p.markDirtyLocked(key)
}

func (p *Presence) markDirtyLocked(key string) {
	if p.closed {
		return
	}
	p.dirty[key] = struct{}{}
	select {
	case p.wake <- struct{}{}:
	default:
	}
}

// liveness tells which streams of the record at key are still held: this
// replica's that it holds or is admitting, and those of the replicas alive.
func (p *Presence) liveness(ctx context.Context, key string) func(entry) bool {
	return func(e entry) bool {
		if e.Replica != p.self {
			return p.alive(ctx, e.Replica)
		}
		p.mu.Lock()
		defer p.mu.Unlock()
		st := p.users[key]
		if st == nil {
			return false
		}
		_, pending := st.pending[e.Stream]
		_, held := st.held[e.Stream]
		return pending || held
	}
}

// read is the record at key and its revision (0: no key).
func (p *Presence) read(ctx context.Context, key string) (record, uint64, error) {
	e, err := p.kv.Get(ctx, key)
	if errors.Is(err, jetstream.ErrKeyNotFound) {
		return record{}, 0, nil
	}
	if err != nil {
		return record{}, 0, fmt.Errorf("failed to read %s: %w", key, err)
	}
	r, err := decodeRecord(e.Value())
	if err != nil {
		// A record no replica wrote: replaced by the next write.
		p.logger.Warn("ignoring an unreadable presence record", "key", key, "error", err.Error())
	}
	return r, e.Revision(), nil
}

// write replaces the record at key if it is still at revision rev (0: there
// is none) and returns the new revision. An emptied record stays, empty:
// a delete would leave a marker just as large.
func (p *Presence) write(ctx context.Context, key string, r record, rev uint64) (uint64, error) {
	var err error
	var written uint64
	if rev == 0 {
		written, err = p.kv.Create(ctx, key, r.encode())
	} else {
		written, err = p.kv.Update(ctx, key, r.encode(), rev)
	}
	if err != nil {
		return 0, fmt.Errorf("failed to write %s: %w", key, err)
	}
	return written, nil
}

// isConflict reports whether a write lost a compare-and-swap.
func isConflict(err error) bool {
	return errors.Is(err, jetstream.ErrKeyRevisionMismatch) || errors.Is(err, jetstream.ErrKeyExists)
}

// closeReplaced has the hub close local streams that other replicas replaced.
func (p *Presence) closeReplaced(user string, ids []hub.StreamID) {
	p.mu.Lock()
	replaced := p.replaced
	p.mu.Unlock()
	for _, id := range ids {
		replaced(user, id)
		p.metrics.replaced.Inc()
	}
}

// setFailing logs when admissions start and stop failing.
func (p *Presence) setFailing(err error) {
	p.mu.Lock()
	was := p.failing
	p.failing = err != nil
	p.mu.Unlock()
	switch {
	case err != nil && !was:
		p.logger.Warn("streams are admitted by this pod's per-user limit only: the channel's presence record cannot be reached",
			"reason", "PresenceUnavailable", "error", err.Error())
	case err == nil && was:
		p.logger.Info("streams are admitted by the channel's presence record again")
	}
}
