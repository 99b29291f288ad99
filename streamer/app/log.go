package app

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"

	notifyv1alpha1 "github.com/herald-notify/herald/api/v1alpha1"
	"github.com/herald-notify/herald/streamer/auth"
	"github.com/herald-notify/herald/streamer/auth/jetstreamtickets"
	eventlog "github.com/herald-notify/herald/streamer/log"
	"github.com/herald-notify/herald/streamer/log/jetstreamlog"
)

// LogSettings are what OpenLog builds a channel's log from besides its spec.
type LogSettings struct {
	// BrokerCredentials are those of the NATS credentials Secret the channel
	// names (spec.broker.nats.credentialsSecretRef); nil when it names none.
	BrokerCredentials *jetstreamlog.Credentials
	// RetryInterval is the wait between attempts to reach NATS at start;
	// 0 means DefaultOpenRetryInterval.
	RetryInterval time.Duration
	// Attempted, when set, is told why each attempt to open the JetStream
	// log failed, and nil once it opened.
	Attempted func(err error)
}

// DefaultOpenRetryInterval is how long a streamer waits between attempts to
// open its JetStream log while NATS cannot be reached at start.
const DefaultOpenRetryInterval = 2 * time.Second

// defaultNamespace is the namespace of a channel served from a file whose
// manifest names none, as kubectl would apply it: its stream's name needs one.
const defaultNamespace = "default"

// OpenLog builds the channel's event log for its spec.broker, with the
// retention of its spec.history. With NATS it waits, retrying, until the
// broker can be reached or ctx ends: a streamer started during an outage
// stays alive and unready instead of exiting into a crash loop. A stream
// that exists with settings Herald cannot use is not retried.
func OpenLog(ctx context.Context, channel *notifyv1alpha1.NotificationChannel, settings LogSettings, logger *slog.Logger) (eventlog.Log, error) {
	spec := &channel.Spec
	switch spec.Broker.Type {
	case "", notifyv1alpha1.BrokerEmbedded:
		return eventlog.NewEmbedded(EmbeddedOptions(spec.History)), nil
	case notifyv1alpha1.BrokerNATS:
		opts, err := JetStreamOptions(channel, settings.BrokerCredentials, logger)
		if err != nil {
			return nil, err
		}
		return openJetStream(ctx, opts, settings, logger)
	default:
		return nil, fmt.Errorf("spec.broker.type %q is not available in this build of the streamer; use %s or %s",
			spec.Broker.Type, notifyv1alpha1.BrokerEmbedded, notifyv1alpha1.BrokerNATS)
	}
}

// EmbeddedOptions are the embedded log's bounds for a channel's history.
func EmbeddedOptions(history notifyv1alpha1.HistorySpec) eventlog.Options {
	var maxAge time.Duration
	if history.MaxAge != nil {
		maxAge = history.MaxAge.Duration
	}
	return eventlog.Options{MaxEvents: int(history.MaxEvents), MaxAge: maxAge}
}

// JetStreamOptions are the JetStream log's options for a channel with
// broker.type NATS: its stream named by namespace and name, the retention of
// its history, its stream replicas, and its credentials (nil: none).
func JetStreamOptions(channel *notifyv1alpha1.NotificationChannel, credentials *jetstreamlog.Credentials, logger *slog.Logger) (jetstreamlog.Options, error) {
	spec := channel.Spec.Broker.NATS
	if spec == nil {
		return jetstreamlog.Options{}, errors.New("spec.broker.nats is required with broker.type NATS")
	}
	var natsOptions []nats.Option
	if credentials != nil {
		natsOptions = credentials.Options()
	}
	namespace := channel.Namespace
	if namespace == "" {
		namespace = defaultNamespace
	}
	bounds := EmbeddedOptions(channel.Spec.History)
	return jetstreamlog.Options{
		URL:         spec.URL,
		NATSOptions: natsOptions,
		Namespace:   namespace,
		Channel:     channel.Name,
		MaxEvents:   bounds.MaxEvents,
		MaxAge:      bounds.MaxAge,
		Replicas:    int(spec.StreamReplicas),
		Logger:      logger,
	}, nil
}

// openJetStream opens the log, retrying every settings.RetryInterval while
// the broker cannot be reached, until ctx ends.
func openJetStream(ctx context.Context, opts jetstreamlog.Options, settings LogSettings, logger *slog.Logger) (eventlog.Log, error) {
	interval := settings.RetryInterval
	if interval <= 0 {
		interval = DefaultOpenRetryInterval
	}
	for attempt := 1; ; attempt++ {
		log, err := jetstreamlog.Open(ctx, opts)
		if settings.Attempted != nil {
			settings.Attempted(err)
		}
		if err == nil {
			logger.Info("the channel's JetStream log is open", "stream", log.StreamName())
			return log, nil
		}
		var incompatible *jetstreamlog.IncompatibleStreamError
		if errors.As(err, &incompatible) || ctx.Err() != nil {
			return nil, err
		}
		logger.Error("cannot open the channel's JetStream log yet; not ready until it opens",
			"reason", "BrokerUnreachable", "attempt", attempt, "error", err.Error())
		select {
		case <-ctx.Done():
			return nil, fmt.Errorf("stopped waiting for NATS: %w", err)
		case <-time.After(interval):
		}
	}
}

// ticketRequestTimeout bounds a ticket store request whose context has none.
const ticketRequestTimeout = 5 * time.Second

// OpenTickets is the ticket store of a channel served over log: nil (the
// server's in-memory store) for the embedded log of one replica, and for a
// JetStream log the channel's key-value bucket, over the log's connection,
// so that a ticket issued by one replica is redeemed on any other, once.
func OpenTickets(ctx context.Context, channel *notifyv1alpha1.NotificationChannel, log eventlog.Log) (auth.Tickets, error) {
	js, ok := log.(*jetstreamlog.Log)
	if !ok {
		return nil, nil
	}
	client, err := jetstream.New(js.Conn(), jetstream.WithDefaultTimeout(ticketRequestTimeout))
	if err != nil {
		return nil, fmt.Errorf("failed to open the channel's ticket bucket: %w", err)
	}
	namespace := channel.Namespace
	if namespace == "" {
		namespace = defaultNamespace
	}
	return jetstreamtickets.Open(ctx, jetstreamtickets.Options{
		JetStream: client, Namespace: namespace, Channel: channel.Name,
		Replicas: int(channel.Spec.Broker.NATS.StreamReplicas),
	})
}
