package app

import (
	"log/slog"

	notifyv1alpha1 "github.com/herald-notify/herald/api/v1alpha1"
	eventlog "github.com/herald-notify/herald/streamer/log"
	"github.com/herald-notify/herald/streamer/log/jetstreamlog"
	"github.com/herald-notify/herald/streamer/relay"
)

// openRelay opens this replica's end of the requests between the channel's
// replicas over the connection of a JetStream log (a token refresh reaching
// the replica that holds its stream); nil for any other log, whose one
// replica holds every stream. A relay that cannot be opened leaves refreshes
// to the replica they reach, logged: the streamer serves rather than
// crash-looping on it.
func openRelay(channel *notifyv1alpha1.NotificationChannel, log eventlog.Log, logger *slog.Logger) *relay.Relay {
	js, ok := log.(*jetstreamlog.Log)
	if !ok {
		return nil
	}
	namespace := channel.Namespace
	if namespace == "" {
		namespace = defaultNamespace
	}
	r, err := relay.Open(relay.Options{Conn: js.Conn(), Namespace: namespace, Channel: channel.Name})
	if err != nil {
		logger.Error("a token refresh reaching another replica than its stream's is answered 404: the relay between replicas cannot be opened",
			"reason", "RelayUnavailable", "error", err.Error())
		return nil
	}
	return r
}
