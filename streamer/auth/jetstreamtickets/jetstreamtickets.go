// Package jetstreamtickets is a ticket store (auth.Tickets) shared by every
// replica of a channel, over a NATS JetStream key-value bucket: a ticket
// issued by one replica is redeemed on any other, once.
//
// # Bucket
//
// One bucket per channel, "HERALD_TICKETS_<namespace>_<channel>"
// (jetstreamlog.BucketName: the stream names' escaping, so two channels never
// share a bucket). Herald owns its settings and sets them on Open:
//
//   - a key is the hex SHA-256 digest of a ticket, never the ticket (a
//     bucket's reader cannot redeem what it reads), and its value is the
//     identity the ticket stands for (see record);
//   - every key has a per-message TTL, the ticket's lifetime rounded up to
//     the second (JetStream counts message TTLs in seconds, at least one), so
//     the broker drops unredeemed tickets by itself; the expiry kept in the
//     value is exact, and checked on redeem against the redeemer's clock (a
//     skew between replicas moves it by that much);
//   - reads go to the stream leader (AllowDirect off): a direct get may be
//     answered by a follower a write behind, which would call a ticket issued
//     a millisecond earlier on another replica unknown;
//   - the total of outstanding tickets is the stream's MaxMsgs with discard
//     new, so it holds across replicas: a full bucket refuses new tickets
//     (ErrTooManyTickets) and never drops outstanding ones.
//
// # Single use
//
// Redeem reads the key and deletes that message by its sequence (its
// revision). The leader applies deletes in log order, so of two replicas
// redeeming one ticket exactly one deletes it; the other is refused, checks
// that the ticket is gone, and reports it unknown. Deleting the message,
// rather than writing a KV delete or purge marker, leaves nothing behind:
// markers would linger in the bucket and count against its MaxMsgs.
//
// # Per-user limit
//
// auth.MaxTicketsPerUser holds per store, that is per pod: each store counts
// the tickets it issued that are neither expired nor redeemed through it (a
// ticket redeemed on another replica stops counting when it expires). Counting
// a user's tickets across replicas would cost a read of the bucket before
// every issue and still race; the limit is there so that one user cannot fill
// the store, which the shared MaxMsgs bounds anyway.
//
// # Broker outages
//
// While JetStream cannot answer, Issue and Redeem fail with an error that is
// neither auth.ErrTooManyTickets nor an unknown ticket, and the server answers
// 503 with Retry-After. A redeem whose delete reached the broker but whose
// answer was lost reports an error too; the client's retry then finds the
// ticket used and starts over with a new one.
package jetstreamtickets

import (
	"context"
	"encoding/hex"
	"errors"
	"fmt"
	"strings"
	"time"

	"github.com/nats-io/nats.go/jetstream"

	"github.com/herald-notify/herald/streamer/auth"
	"github.com/herald-notify/herald/streamer/log/jetstreamlog"
)

// DefaultMaxOutstanding is the bucket's default capacity, as the in-memory
// store's (server.DefaultMaxTickets).
const DefaultMaxOutstanding = 100000

// bucketPurpose names the channel's ticket bucket among its buckets.
const bucketPurpose = jetstreamlog.TicketsBucketPurpose

// maxStreamName is JetStream's limit on a stream name, which a bucket's
// stream ("KV_<bucket>") must respect.
const maxStreamName = 255

// codeStoreFailed is the JetStream API error code of a write the stream
// refused to store (JSStreamStoreFailedF), which a full bucket answers.
const codeStoreFailed jetstream.ErrorCode = 10077

// Options configure a Store.
type Options struct {
	// JetStream is the client to use, over a connection the caller owns
	// (the channel's log's: jetstreamlog.Log.Conn). Requests whose context
	// has no deadline take its default timeout. Required.
	JetStream jetstream.JetStream
	// Namespace and Channel name the channel, and so its bucket; required.
	Namespace, Channel string
	// Replicas is the bucket's replica count; 0 means 1. Use the channel's
	// stream replicas: tickets are lost with the bucket's quorum.
	Replicas int
	// MaxOutstanding is the most tickets outstanding in the whole channel;
	// 0 means DefaultMaxOutstanding.
	MaxOutstanding int
	// Now is the clock; nil means time.Now.
	Now func() time.Time
}

// BucketName is the key-value bucket of a channel's tickets.
func BucketName(namespace, channel string) string {
	return jetstreamlog.BucketName(bucketPurpose, namespace, channel)
}

// Store is a channel's ticket store over its JetStream bucket; it implements
// auth.Tickets. It is safe for concurrent use, and holds no resource of its
// own: there is nothing to close.
type Store struct {
	bucket string
	kv     jetstream.KeyValue
	// stream is the bucket's stream, whose messages Redeem deletes.
	stream jetstream.Stream
	now    func() time.Time
	quota  userQuota
}

var _ auth.Tickets = (*Store)(nil)

// Open creates the channel's bucket, or updates its settings to the
// options', and returns a store over it. ctx bounds only that.
func Open(ctx context.Context, opts Options) (*Store, error) {
	opts, err := opts.withDefaults()
	if err != nil {
		return nil, fmt.Errorf("failed to open the channel's ticket bucket: %w", err)
	}
	bucket := BucketName(opts.Namespace, opts.Channel)
	stream, err := opts.JetStream.CreateOrUpdateStream(ctx, streamConfig(bucket, opts))
	if err != nil {
		return nil, fmt.Errorf("failed to create or update ticket bucket %s: %w", bucket, err)
	}
	kv, err := opts.JetStream.KeyValue(ctx, bucket)
	if err != nil {
		return nil, fmt.Errorf("failed to bind ticket bucket %s: %w", bucket, err)
	}
	return &Store{bucket: bucket, kv: kv, stream: stream, now: opts.Now, quota: newUserQuota()}, nil
}

func (o Options) withDefaults() (Options, error) {
	if o.JetStream == nil {
		return o, errors.New("a JetStream client is required")
	}
	if o.Namespace == "" || o.Channel == "" {
		return o, errors.New("a namespace and a channel are required")
	}
	if name := "KV_" + BucketName(o.Namespace, o.Channel); len(name) > maxStreamName {
		return o, fmt.Errorf("stream name %q is longer than JetStream's %d characters", name, maxStreamName)
	}
	if o.Replicas <= 0 {
		o.Replicas = 1
	}
	if o.MaxOutstanding <= 0 {
		o.MaxOutstanding = DefaultMaxOutstanding
	}
	if o.Now == nil {
		o.Now = time.Now
	}
	return o, nil
}

// streamConfig is the bucket's stream: the layout nats.go gives a key-value
// bucket (so that `nats kv` tools read it), with the settings the package
// documentation explains.
func streamConfig(bucket string, opts Options) jetstream.StreamConfig {
	return jetstream.StreamConfig{
		Name:              "KV_" + bucket,
		Description:       "Herald tickets of channel " + opts.Namespace + "/" + opts.Channel,
		Subjects:          []string{"$KV." + bucket + ".>"},
		MaxMsgsPerSubject: 1,
		MaxMsgs:           int64(opts.MaxOutstanding),
		MaxBytes:          -1,
		MaxMsgSize:        -1,
		MaxConsumers:      -1,
		Discard:           jetstream.DiscardNew,
		Storage:           jetstream.FileStorage,
		Replicas:          opts.Replicas,
		AllowRollup:       true,
		AllowDirect:       false,
		AllowMsgTTL:       true,
	}
}

// Bucket is the name of the store's bucket.
func (s *Store) Bucket() string { return s.bucket }

// Issue implements auth.Tickets: it stores a new ticket's record under its
// digest, create-only, with the ticket's TTL.
func (s *Store) Issue(ctx context.Context, id auth.Identity, ttl time.Duration) (string, error) {
	now := s.now()
	expires, err := auth.TicketExpiry(id, ttl, now)
	if err != nil {
		return "", err
	}
	if !s.quota.take(id.UserID, expires, now) {
		return "", fmt.Errorf("%w: the user has %d outstanding; redeem one or let them expire", auth.ErrTooManyTickets, auth.MaxTicketsPerUser)
	}
	text, digest := auth.NewTicket()
	value, err := encodeRecord(id, expires)
	if err == nil {
		_, err = s.kv.Create(ctx, hex.EncodeToString(digest[:]), value, jetstream.KeyTTL(messageTTL(expires.Sub(now))))
	}
	if err != nil {
		s.quota.release(id.UserID, expires)
		if isFull(err) {
			return "", fmt.Errorf("%w: ticket bucket %s is full", auth.ErrTooManyTickets, s.bucket)
		}
		return "", fmt.Errorf("failed to store a ticket in bucket %s: %w", s.bucket, err)
	}
	return text, nil
}

// Redeem implements auth.Tickets.
func (s *Store) Redeem(ctx context.Context, text string) (auth.Identity, bool, error) {
	digest, ok := auth.TicketDigest(text)
	if !ok {
		return auth.Identity{}, false, nil
	}
	key := hex.EncodeToString(digest[:])
	entry, err := s.kv.Get(ctx, key)
	if errors.Is(err, jetstream.ErrKeyNotFound) {
		return auth.Identity{}, false, nil
	}
	if err != nil {
		return auth.Identity{}, false, fmt.Errorf("failed to read a ticket from bucket %s: %w", s.bucket, err)
	}
	rec, err := decodeRecord(entry.Value())
	if err != nil {
		// Not consumed, and not called unknown: a newer Herald may have
		// written it, and the client's retry may reach one.
		return auth.Identity{}, false, fmt.Errorf("ticket record in bucket %s: %w", s.bucket, err)
	}
	if !rec.expires().After(s.now()) {
		return auth.Identity{}, false, nil // its TTL drops it
	}
	won, err := s.consume(ctx, key, entry.Revision())
	if err != nil || !won {
		return auth.Identity{}, false, err
	}
	s.quota.release(rec.UserID, rec.expires())
	return rec.identity(), true, nil
}

// consume deletes revision rev of key, and reports whether this call did.
func (s *Store) consume(ctx context.Context, key string, rev uint64) (bool, error) {
	err := s.stream.DeleteMsg(ctx, rev)
	if err == nil {
		return true, nil
	}
	if !errors.Is(err, jetstream.ErrMsgDeleteUnsuccessful) {
		return false, fmt.Errorf("failed to consume a ticket in bucket %s: %w", s.bucket, err)
	}
	// The leader refused the delete, most likely because another replica
	// consumed the ticket first (or it just expired); nats.go does not keep
	// the reason's code, so check that it is gone before saying so.
	switch _, getErr := s.kv.Get(ctx, key); {
	case errors.Is(getErr, jetstream.ErrKeyNotFound):
		return false, nil
	case getErr != nil:
		return false, fmt.Errorf("failed to check a ticket in bucket %s after %w: %w", s.bucket, err, getErr)
	default:
		return false, fmt.Errorf("failed to consume a ticket in bucket %s: %w", s.bucket, err)
	}
}

// messageTTL is the broker's TTL for a ticket valid for d: whole seconds,
// rounded up so the broker never drops a ticket before it expires.
func messageTTL(d time.Duration) time.Duration {
	return max(time.Second, (d + time.Second - 1).Truncate(time.Second))
}

// isFull reports whether err is the bucket refusing a ticket because it
// holds MaxMsgs already.
func isFull(err error) bool {
	var apiErr *jetstream.APIError
	return errors.As(err, &apiErr) && apiErr.ErrorCode == codeStoreFailed &&
		strings.Contains(apiErr.Description, "maximum messages")
}
