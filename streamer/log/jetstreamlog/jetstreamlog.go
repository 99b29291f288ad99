// Package jetstreamlog is the channel's event log (streamer/log.Log) over a
// NATS JetStream stream, shared by every replica of a channel.
//
// # Stream and subject
//
// One stream per channel, named "HERALD_<namespace>_<channel>", holding one
// subject, "herald.<namespace>.<channel>.events". Both parts are kept as they
// are when they are Kubernetes names ([a-z0-9-]); any other byte is written
// as '~' and two hex digits ("my.channel" gives "my~2echannel"), so that the
// names hold nothing JetStream forbids and two channels never share a stream
// or a subject (see StreamName).
//
// Herald owns the stream's retention (MaxMsgs = MaxEvents, MaxAge, discard
// old), Replicas and duplicate window: Open creates the stream with them
// (file storage, limits retention) and updates an existing stream whose owned
// settings differ. A stream with settings Herald does not own and cannot work
// with (other subjects, memory storage, another retention, a mirror…) is
// reported as an *IncompatibleStreamError naming the stream and the field,
// and never changed.
//
// # Events
//
// An event is one message, or a part of one: its body is a small binary
// envelope (see encodeEvent) carrying the type, the user ids and the JSON data
// exactly as appended, and appends without a key that wait for each other
// are stored as one message of several such envelopes (see encodeBatch and
// group.go), all or nothing. Event.Time is the time JetStream stored the
// message. A de-duplication key is the message's Nats-Msg-Id: JetStream stores one
// message per id within the stream's duplicate window, and acknowledges a
// repeat with the sequence of the first, which Append returns with
// Duplicate set. The window defaults to MaxAge, so a key is remembered as
// long as its event can be retained: a SystemEvent announced again after a
// streamer restart, or by every replica, is stored once. Only keyed messages
// cost JetStream memory for it.
//
// # Positions
//
// Seq is the stream sequence of the event's message, and Following the
// number of events stored after it in the same message (0 for the last, and
// for every event stored alone). Epoch is the stream's creation time
// (StreamInfo.Created) in microseconds, the scale of the embedded log's
// epochs: a stream deleted and recreated, or restored from a backup, is
// created anew and gets a later epoch, so ids of its former life are
// answered with recovered=false, never mapped onto new events. A purge keeps
// the epoch: JetStream never reuses a sequence after a purge, and the purged
// events are dropped from memory at the next stream check, so ids from
// before it are answered with recovered=false. (Creation times come from the
// meta leader's clock: a leader change with clocks apart could order a new
// epoch before the old one; it still differs from it.)
//
// # Reading
//
// Each Log (one per streamer pod) reads the stream with one consumer for the
// whole pod, ephemeral, in memory, without acknowledgements, from the
// sequence after the last it holds, and keeps the retained window (at most
// MaxEvents, for at most MaxAge) in memory: fan-out and resumes are served
// from there, and only what the window does not hold is read from JetStream
// (message by message, for a window smaller than the stream's after a
// change of MaxEvents). Events appended through other Logs reach this one
// through its consumer and wake Changed.
//
// The consumer is not nats.go's ordered consumer: that one resets itself at
// the next sequence on whatever stream then has the name, so a stream
// recreated meanwhile would map old positions onto new events. This one is
// recreated by the log, which checks the stream's identity before and after.
//
// # Broker outages
//
// While NATS is unreachable, Append fails at once (callers answer 503),
// ReadAfter serves the window from memory and Healthy is false with
// LastError saying why. The connection reconnects by itself (a connection
// Open dials retries forever; one handed in should be set up alike), and the
// consumer resumes after the last event held, delivering what was stored
// meanwhile; a consumer that does not come back is recreated.
package jetstreamlog

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net/url"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"

	eventlog "github.com/herald-notify/herald/streamer/log"
)

// Options configure a Log. Zero values are the documented defaults.
type Options struct {
	// Conn is the connection to use; Close leaves it open. When nil, Open
	// dials URL and Close closes that connection.
	Conn *nats.Conn
	// URL is one or more comma-separated NATS server URLs, dialled with the
	// credentials below and NATSOptions when Conn is nil.
	URL string
	// CredentialsFile is a NATS .creds file (JWT and nkey seed).
	CredentialsFile string
	// User and Password authenticate with a user name and password.
	User, Password string
	// Token authenticates with a token.
	Token string
	// CAFile is a PEM file of the CAs that sign the servers' certificates.
	CAFile string
	// NATSOptions are applied last, after the defaults (reconnect forever)
	// and the settings above, so they win.
	NATSOptions []nats.Option

	// Namespace and Channel name the channel, and so its stream; required.
	Namespace, Channel string
	// MaxEvents is the most events retained; 0 means log.DefaultMaxEvents.
	MaxEvents int
	// MaxAge is how long an event is retained; 0 means log.DefaultMaxAge.
	MaxAge time.Duration
	// Replicas is the stream's replica count; 0 means 1.
	Replicas int
	// DuplicateWindow is how long a de-duplication key is remembered; 0
	// means MaxAge, and it is at most MaxAge (JetStream requires it).
	DuplicateWindow time.Duration
	// Heartbeat is how soon a silent consumer is noticed (it is noticed
	// after twice this) and how often the stream's identity and first
	// sequence are checked; 0 means 5 s, and it is kept within 500 ms-30 s.
	Heartbeat time.Duration
	// RequestTimeout bounds each JetStream request the log makes on its own
	// (stream checks, consumer creation); 0 means 5 s.
	RequestTimeout time.Duration
	// Logger receives the log's state changes; nil means slog.Default().
	Logger *slog.Logger
	// Now is the clock that ages events out of memory; nil means time.Now.
	Now func() time.Time
}

// Defaults of Options.
const (
	DefaultHeartbeat      = 5 * time.Second
	DefaultRequestTimeout = 5 * time.Second
)

// ErrNotConnected is returned by Append while NATS is unreachable.
var ErrNotConnected = errors.New("not connected to NATS")

func (o Options) withDefaults() (Options, error) {
	if err := checkNames(o.Namespace, o.Channel); err != nil {
		return o, err
	}
	if o.Conn == nil && o.URL == "" {
		return o, errors.New("a NATS connection or URL is required")
	}
	if o.MaxEvents <= 0 {
		o.MaxEvents = eventlog.DefaultMaxEvents
	}
	if o.MaxAge <= 0 {
		o.MaxAge = eventlog.DefaultMaxAge
	}
	if o.Replicas <= 0 {
		o.Replicas = 1
	}
	if o.DuplicateWindow <= 0 || o.DuplicateWindow > o.MaxAge {
		o.DuplicateWindow = o.MaxAge
	}
	if o.Heartbeat <= 0 {
		o.Heartbeat = DefaultHeartbeat
	}
	o.Heartbeat = min(max(o.Heartbeat, 500*time.Millisecond), 30*time.Second) // the range JetStream accepts
	if o.RequestTimeout <= 0 {
		o.RequestTimeout = DefaultRequestTimeout
	}
	if o.Logger == nil {
		o.Logger = slog.Default()
	}
	if o.Now == nil {
		o.Now = time.Now
	}
	return o, nil
}

// dial connects to URL with the options' credentials.
func (o Options) dial() (*nats.Conn, error) {
	natsOpts := []nats.Option{
		nats.Name("herald streamer " + o.Namespace + "/" + o.Channel),
		nats.MaxReconnects(-1), // a streamer outlives any outage of the broker
		// and credentials refused for a while: nats.go would otherwise give
		// up on a server that refused them twice, before a rotated Secret
		// (Credentials.Update) brings the new ones.
		nats.IgnoreAuthErrorAbort(),
		nats.CustomInboxPrefix(InboxPrefix(o.Namespace, o.Channel)),
	}
	if o.CredentialsFile != "" {
		natsOpts = append(natsOpts, nats.UserCredentials(o.CredentialsFile))
	}
	if o.User != "" {
		natsOpts = append(natsOpts, nats.UserInfo(o.User, o.Password))
	}
	if o.Token != "" {
		natsOpts = append(natsOpts, nats.Token(o.Token))
	}
	if o.CAFile != "" {
		natsOpts = append(natsOpts, nats.RootCAs(o.CAFile))
	}
	nc, err := nats.Connect(o.URL, append(natsOpts, o.NATSOptions...)...)
	if err != nil {
		return nil, fmt.Errorf("failed to connect to NATS at %s: %w", RedactURLs(o.URL), err)
	}
	return nc, nil
}

// Log is a channel's event log over a JetStream stream. It implements
// log.Log; see the package documentation.
type Log struct {
	opts     Options
	stream   string
	subject  string
	nc       *nats.Conn
	ownsConn bool
	js       jetstream.JetStream
	handle   jetstream.Stream
	logger   *slog.Logger

	// ctx is cancelled by Close; the log's own requests derive from it.
	ctx     context.Context
	cancel  context.CancelFunc
	stopped chan struct{} // closed when the consuming goroutine returned
	// deleting counts the consumer deletions under way (deleteLater).
	deleting sync.WaitGroup

	// groupMu guards groups, the appends gathering to be published together.
	groupMu sync.Mutex
	groups  groups

	metrics metrics

	mu    sync.Mutex
	epoch uint64
	win   window
	// heldAfter is the position after which the window holds every event
	// the stream stored, up to last.
	heldAfter eventlog.Position
	// last is the sequence of the newest message the consumer delivered
	// (or the one before where it started).
	last uint64
	// known is the highest sequence the stream is known to have in this
	// epoch: a position up to it is not "from the future" even before the
	// consumer delivered it.
	known uint64
	// gen names the current consumer; deliveries of an older one are
	// ignored. nextDelivery is the consumer sequence it must deliver next.
	gen          int
	nextDelivery uint64
	caughtUp     chan struct{} // closed once the window first held all the stream had
	isCaughtUp   bool
	changed      chan struct{}
	closed       bool
	// health is why the log is not healthy (besides the connection), or nil.
	health error

	// beforeGroupPublish, when set (by tests), runs before each group's
	// publish.
	beforeGroupPublish func()
	// beforeDeliver, when set (by tests, while the consumer runs), runs
	// before each message the consumer delivers is read into the window.
	beforeDeliver atomic.Pointer[func()]
	// gatherLimit is gatherFor, or another limit set by tests.
	gatherLimit func(lastWait time.Duration) time.Duration
}

var _ eventlog.Log = (*Log)(nil)

// Open connects (unless given a connection), creates or checks the
// channel's stream, starts its consumer and returns once the log holds what
// the stream retains. ctx bounds all of that, not the log's life.
func Open(ctx context.Context, opts Options) (*Log, error) {
	opts, err := opts.withDefaults()
	if err != nil {
		return nil, fmt.Errorf("failed to open the channel's JetStream log: %w", err)
	}
	l := &Log{
		opts:     opts,
		stream:   StreamName(opts.Namespace, opts.Channel),
		subject:  Subject(opts.Namespace, opts.Channel),
		nc:       opts.Conn,
		win:      newWindow(opts.MaxEvents),
		stopped:  make(chan struct{}),
		caughtUp: make(chan struct{}),
		changed:  make(chan struct{}),

		metrics:     newMetrics(),
		gatherLimit: gatherFor,
	}
	l.logger = opts.Logger.With("stream", l.stream)
	if l.nc == nil {
		if l.nc, err = opts.dial(); err != nil {
			return nil, err
		}
		l.ownsConn = true
	}
	if l.js, err = jetstream.New(l.nc, jetstream.WithDefaultTimeout(opts.RequestTimeout)); err != nil {
		l.closeConn()
		return nil, fmt.Errorf("failed to use JetStream: %w", err)
	}
	if l.handle, err = l.ensureStream(ctx); err != nil {
		l.closeConn()
		return nil, err
	}
	l.ctx, l.cancel = context.WithCancel(context.Background())
	go l.run()
	select {
	case <-l.caughtUp:
		return l, nil
	case <-ctx.Done():
		cause := l.LastError()
		_ = l.Close()
		return nil, fmt.Errorf("failed to read stream %s (last error: %v): %w", l.stream, cause, ctx.Err())
	}
}

// StreamName is the name of the log's stream.
func (l *Log) StreamName() string { return l.stream }

// Conn is the log's NATS connection, for the channel's other shared state
// (tickets, package presence) to use rather than dialling again. The log
// closes it on Close if Open dialled it, so its users must be done by then.
func (l *Log) Conn() *nats.Conn { return l.nc }

// Last implements log.Log.
func (l *Log) Last() eventlog.Position {
	l.mu.Lock()
	defer l.mu.Unlock()
	return eventlog.Position{Epoch: l.epoch, Seq: l.last}
}

// Changed implements log.Log.
func (l *Log) Changed() <-chan struct{} {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.changed
}

// notifyLocked wakes the readers waiting on Changed.
func (l *Log) notifyLocked() {
	if l.closed {
		return // Close closed the channel for good
	}
	close(l.changed)
	l.changed = make(chan struct{})
}

// Healthy reports whether the log is connected and consuming its stream:
// what a readiness probe asks. While it is false, Append fails and readers
// get only what the log already holds.
func (l *Log) Healthy() bool {
	return l.LastError() == nil
}

// LastError is why the log is not Healthy, or nil.
func (l *Log) LastError() error {
	l.mu.Lock()
	closed, health := l.closed, l.health
	l.mu.Unlock()
	switch {
	case closed:
		return eventlog.ErrClosed
	case !l.nc.IsConnected():
		if err := l.nc.LastError(); err != nil {
			return fmt.Errorf("%w (%s): %w", ErrNotConnected, l.nc.Status(), err)
		}
		return fmt.Errorf("%w (%s)", ErrNotConnected, l.nc.Status())
	}
	return health
}

// setHealth records why the log is not healthy (nil: it is again), logging
// the changes.
func (l *Log) setHealth(err error) {
	l.mu.Lock()
	was := l.health
	l.health = err
	l.mu.Unlock()
	switch {
	case err != nil && (was == nil || was.Error() != err.Error()):
		l.logger.Warn("the channel's log is not consuming its stream", "error", err)
	case err == nil && was != nil:
		l.logger.Info("the channel's log is consuming its stream again")
	}
}

// Close implements log.Log: it stops and deletes the consumer, and closes
// the connection if Open dialled it.
func (l *Log) Close() error {
	l.mu.Lock()
	if l.closed {
		l.mu.Unlock()
		return nil
	}
	l.closed = true
	close(l.changed)
	l.mu.Unlock()
	l.cancel()
	<-l.stopped
	l.deleting.Wait() // each bounded by the request timeout
	l.closeConn()
	return nil
}

func (l *Log) closeConn() {
	if l.ownsConn {
		l.nc.Close()
	}
}

// epochOf is the epoch of a stream created at created.
func epochOf(created time.Time) uint64 {
	return uint64(max(created.UnixMicro(), 1))
}

// RedactURLs is a comma-separated list of NATS URLs without the user and
// password some of them carry: what logs, errors and conditions may quote.
func RedactURLs(urls string) string {
	parts := strings.Split(urls, ",")
	for i, part := range parts {
		part = strings.TrimSpace(part)
		if u, err := url.Parse(part); err == nil && u.User != nil {
			u.User = nil
			part = u.String()
		} else if err != nil && strings.Contains(part, "@") {
			part = "(a URL that cannot be parsed)"
		}
		parts[i] = part
	}
	return strings.Join(parts, ",")
}
