package app

import (
	"context"
	"log/slog"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"

	notifyv1alpha1 "github.com/herald-notify/herald/api/v1alpha1"
	eventlog "github.com/herald-notify/herald/streamer/log"
	"github.com/herald-notify/herald/streamer/log/jetstreamlog"
	"github.com/herald-notify/herald/streamer/presence"
)

// newRegistry is the registry of a streamer's metrics: the server's and the
// presence record's, with the Go and process collectors.
func newRegistry() *prometheus.Registry {
	registry := prometheus.NewRegistry()
	registry.MustRegister(collectors.NewGoCollector(), collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}))
	return registry
}

// openPresence opens the channel-wide record of streams per user over the
// connection of a JetStream log; nil for any other log, whose one replica
// holds the limit alone. A record that cannot be opened leaves the limit per
// pod, logged: the streamer serves rather than crash-looping on it.
func openPresence(ctx context.Context, channel *notifyv1alpha1.NotificationChannel, log eventlog.Log, registry prometheus.Registerer, logger *slog.Logger) *presence.Presence {
	js, ok := log.(*jetstreamlog.Log)
	if !ok {
		return nil
	}
	namespace := channel.Namespace
	if namespace == "" {
		namespace = defaultNamespace
	}
	var replicas int
	if nats := channel.Spec.Broker.NATS; nats != nil {
		replicas = int(nats.StreamReplicas)
	}
	p, err := presence.Open(ctx, presence.Options{
		Conn: js.Conn(), Namespace: namespace, Channel: channel.Name, Replicas: replicas,
		Logger: logger, Registry: registry,
	})
	if err != nil {
		logger.Error("connections.maxPerUser holds per pod only: the channel's presence record cannot be opened",
			"reason", "PresenceUnavailable", "error", err.Error())
		return nil
	}
	logger.Info("connections.maxPerUser holds across the channel's replicas", "replica", p.ReplicaID())
	return p
}
