package app

import (
	"context"
	"fmt"
	"log/slog"
	"time"

	notifyv1alpha1 "github.com/herald-notify/herald/api/v1alpha1"
	eventlog "github.com/herald-notify/herald/streamer/log"
)

// OpenLog builds the channel's event log for its spec.broker, with the
// retention of its spec.history.
func OpenLog(_ context.Context, channel *notifyv1alpha1.NotificationChannel, logger *slog.Logger) (eventlog.Log, error) {
	spec := &channel.Spec
	switch spec.Broker.Type {
	case "", notifyv1alpha1.BrokerEmbedded:
		return eventlog.NewEmbedded(EmbeddedOptions(spec.History)), nil
	default:
		return nil, fmt.Errorf("spec.broker.type %q is not available in this build of the streamer; use %s", spec.Broker.Type, notifyv1alpha1.BrokerEmbedded)
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
