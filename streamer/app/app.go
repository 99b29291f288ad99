// Package app assembles and runs a channel's streamer: it loads the channel
// and its keys (from a file or the Kubernetes API), builds the channel's log
// first, hands it to the server and the SystemEvent announcer, serves the
// stream, publish and metrics addresses, and drains on shutdown. The herald
// command's "streamer" is a thin layer of flags over Run.
package app

import (
	"cmp"
	"context"
	"errors"
	"fmt"
	"log/slog"
	"sync"
	"time"

	"github.com/herald-notify/herald/internal/memrelease"
	"github.com/herald-notify/herald/streamer/announce"
	"github.com/herald-notify/herald/streamer/server"
)

// Options configure a streamer. Exactly one of Config and Channel is set.
type Options struct {
	// Config is a NotificationChannel manifest to serve, outside Kubernetes.
	Config string
	// SecretsDir holds one folder per Secret the channel names, one file per
	// entry, as Kubernetes mounts them. Empty means "secrets" beside Config.
	SecretsDir string
	// SecretsPoll is how often, with Config, the Secrets' folders are read
	// again (rotated keys, a renewed certificate, new NATS credentials);
	// 0 means DefaultSecretsPoll.
	SecretsPoll time.Duration
	// Channel is the NAMESPACE/NAME of the NotificationChannel to serve,
	// read from the API (KUBECONFIG, or in-cluster).
	Channel string
	// Listen is the address of the stream and publish API.
	Listen string
	// MetricsListen is the address of /metrics, /healthz and /readyz.
	MetricsListen string
	// Pprof also serves the Go runtime profiles on the metrics address.
	Pprof bool
	// PodName names this pod in what it reports on the channel's status
	// (with Channel and broker.type NATS); empty means the host name, which
	// is a pod's name.
	PodName string
	// Logger receives structured logs; nil discards them.
	Logger *slog.Logger
	// ReleaseMemory gives back, once the streamer serves, the memory only
	// its start used (memrelease.Release), and then what it grew to for a
	// burst once it is quiet again (memrelease.WhenQuiet): for the herald
	// command, whose every process runs the inits of the operator's
	// packages too, and which is alone in its process.
	ReleaseMemory bool
}

// shutdownTimeout bounds the wait, after the drain, for handlers and streams
// to finish.
const shutdownTimeout = 5 * time.Second

// Run serves the streamer until ctx ends, then drains it. It returns nil
// when it stopped because ctx ended, including while it waited for the
// channel's key Secret.
func Run(ctx context.Context, opts Options) error {
	if (opts.Config == "") == (opts.Channel == "") {
		return errors.New("give exactly one of a channel manifest (Config) or a channel reference (Channel)")
	}
	logger := opts.Logger
	if logger == nil {
		logger = slog.New(slog.DiscardHandler)
	}
	// The metrics address answers first: alive, not ready, while the channel
	// and its keys load (which may mean waiting for the key Secret).
	opsHandler := &switchHandler{}
	opsHandler.set(startingHandler())
	ops, err := listen(opts.MetricsListen, opsHandler, logger)
	if err != nil {
		return err
	}
	defer func() { _ = ops.server.Close() }()
	logger.Info("metrics listening", "metricsListen", ops.addr)

	var source *channelSource
	if opts.Channel != "" {
		source, err = loadFromAPI(ctx, opts.Channel, podName(opts.PodName), logger)
	} else {
		source, err = loadFromFile(ctx, opts.Config, opts.SecretsDir, cmp.Or(opts.SecretsPoll, DefaultSecretsPoll), logger)
	}
	if err != nil {
		if ctx.Err() != nil {
			return nil // stopped while waiting
		}
		return err
	}
	defer source.stopSecretsReport()
	channel := source.channel

	// The log first: the server and the announcer are handed the same one.
	// Whether NATS answers is reported on the channel from the first attempt.
	broker := startBrokerReport(source.statusClient, channel, podName(opts.PodName), logger)
	defer broker.Stop()
	settings := LogSettings{BrokerCredentials: source.brokerCredentials}
	if broker != nil {
		settings.Attempted = broker.probe.attempted
	}
	log, err := OpenLog(ctx, channel, settings, logger)
	if err != nil {
		if ctx.Err() != nil {
			return nil // stopped while waiting for the broker
		}
		broker.failed(err)
		return err
	}
	if broker != nil {
		broker.probe.opened(log)
	}
	tickets, err := OpenTickets(ctx, channel, log)
	if err != nil {
		_ = log.Close()
		if ctx.Err() != nil {
			return nil // stopped while opening the tickets' bucket
		}
		return err
	}
	cfg := server.Config{Channel: channel, Keys: source.keys, Log: log, Tickets: tickets, Logger: logger, Registry: newRegistry()}
	pres := openPresence(ctx, channel, log, cfg.Registry, logger)
	if pres != nil {
		defer pres.Close() // on the paths that do not drain
		cfg.Presence = pres
	}
	if rl := openRelay(channel, log, logger); rl != nil {
		defer rl.Close()
		cfg.Replicas = rl
	}
	var announcer *announce.Announcer
	if source.systemEvents != nil {
		announcer = announce.New(announce.Options{
			Channel: channel.Name, Log: log, Status: source.systemEvents, Logger: logger,
		})
		cfg.Announcements = announcer
	}
	if source.publishers != nil {
		cfg.ServiceAccountPublishers = source.publishers
	}
	srv, err := server.New(cfg)
	if err != nil {
		_ = log.Close()
		return err
	}
	api, err := listenWith(opts.Listen, srv.Handler(), apiServing(channel.Spec.HTTP, source.certificate), logger)
	if err != nil {
		_ = log.Close()
		return err
	}
	serverOps := srv.OpsHandler()
	if opts.Pprof {
		serverOps = withPprof(serverOps)
	}
	opsHandler.set(serverOps)
	if opts.ReleaseMemory {
		if err := memrelease.Release(); err != nil {
			logger.Warn("could not give back the memory of the start; serving on", "error", err.Error())
		}
	}

	logger.Info("streamer started", "channel", channel.Namespace+"/"+channel.Name, "listen", api.addr,
		"protocols", apiServing(channel.Spec.HTTP, source.certificate).String(), "metricsListen", ops.addr, "keys", source.keys.KeyIDs())

	var releasing sync.WaitGroup
	defer releasing.Wait()
	runCtx, stopRun := context.WithCancel(context.Background())
	defer stopRun()
	go srv.Run(runCtx)
	if opts.ReleaseMemory {
		releasing.Go(func() { memrelease.WhenQuiet(runCtx, memrelease.QuietOptions{Registry: cfg.Registry, Logger: logger}) })
	}
	if source.watch != nil {
		go func() {
			if err := source.watch(runCtx, srv, announcer); err != nil {
				logger.Error("the watch of the channel or its key Secret failed; settings and keys stay as they are",
					"reason", "WatchFailed", "error", err.Error())
			}
		}()
	}

	select {
	case <-ctx.Done():
	case err := <-api.failed:
		return fmt.Errorf("the API listener failed: %w", err)
	case err := <-ops.failed:
		return fmt.Errorf("the metrics listener failed: %w", err)
	}
	if pres != nil {
		// Before the drain closes the log and its connection: the other
		// replicas stop counting this pod's streams at once.
		pres.Close()
	}
	return drain(srv, api, ops, logger)
}

// drain stops the streamer without losing what it accepted (server.Drain),
// then waits for its handlers and streams to finish.
func drain(srv *server.Server, api, ops *listener, logger *slog.Logger) error {
	grace := srv.Spec().Drain.GracePeriod.Duration
	logger.Info("draining", "streams", srv.Streams(), "gracePeriod", grace.String())
	drainCtx, cancel := context.WithTimeout(context.Background(), grace)
	defer cancel()
	srv.Drain(drainCtx)
	// Streams are closed; let their handlers and publish requests finish, and
	// the streams taken off net/http (HTTP/1.1) write their last frames.
	shutdownCtx, cancelShutdown := context.WithTimeout(context.Background(), shutdownTimeout)
	defer cancelShutdown()
	err := errors.Join(api.server.Shutdown(shutdownCtx), srv.WaitStreams(shutdownCtx), ops.server.Shutdown(shutdownCtx))
	logger.Info("stopped")
	return err
}
