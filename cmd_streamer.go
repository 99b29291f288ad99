package main

import (
	"context"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"os"
	"os/signal"
	"syscall"

	"github.com/herald-notify/herald/controllers/resources"
	"github.com/herald-notify/herald/streamer/app"
	"github.com/herald-notify/herald/streamer/kube"
)

// runStreamer is "herald streamer": flags over app.Run.
func runStreamer(args []string, stdout, stderr io.Writer) error {
	fs := flag.NewFlagSet("streamer", flag.ContinueOnError)
	var opts app.Options
	var logLevel string
	fs.StringVar(&opts.Config, "config", "", "NotificationChannel manifest to serve, outside Kubernetes")
	fs.StringVar(&opts.Channel, "channel", "", "NAMESPACE/NAME of the NotificationChannel to serve, read from the API (KUBECONFIG, or in-cluster)")
	fs.StringVar(&opts.SecretsDir, "secrets-dir", "", "directory with one folder per Secret the channel names, one file per entry, as Kubernetes mounts them (default: \"secrets\" beside --config)")
	fs.DurationVar(&opts.SecretsPoll, "secrets-poll", app.DefaultSecretsPoll, "with --config: how often the Secrets' folders are read again, so that rotated keys, a renewed certificate and new NATS credentials apply without a restart")
	fs.StringVar(&opts.Listen, "listen", ":8080", "address of the stream and publish API")
	fs.StringVar(&opts.MetricsListen, "metrics-listen", ":9090", "address of /metrics, /healthz and /readyz")
	fs.StringVar(&logLevel, "log-level", "info", "debug, info, warn or error")
	fs.BoolVar(&opts.Pprof, "pprof", false, "also serve the Go runtime profiles (net/http/pprof) under /debug/pprof/ on the metrics address; for benchmarks and investigations, not for an address others can reach")
	if err := parseFlags(fs, args, stdout); err != nil {
		return err
	}
	if fs.NArg() > 0 {
		return fmt.Errorf("%w: unexpected argument %q", errUsage, fs.Arg(0))
	}
	// The Deployment gives a pod its name; outside one, the host name
	// stands in.
	opts.PodName = os.Getenv(resources.EnvPodName)
	if (opts.Config == "") == (opts.Channel == "") {
		return fmt.Errorf("%w: give exactly one of --config FILE or --channel NAMESPACE/NAME", errUsage)
	}
	if opts.Channel != "" {
		if _, err := kube.ParseChannelRef(opts.Channel); err != nil {
			return fmt.Errorf("%w: --channel: %v", errUsage, err)
		}
	}
	if opts.SecretsPoll <= 0 {
		return fmt.Errorf("%w: --secrets-poll must be a positive duration (such as 5s), not %s", errUsage, opts.SecretsPoll)
	}
	var level slog.Level
	if err := level.UnmarshalText([]byte(logLevel)); err != nil {
		return fmt.Errorf("%w: --log-level must be debug, info, warn or error, not %q", errUsage, logLevel)
	}
	opts.ReleaseMemory = true
	opts.Logger = slog.New(slog.NewJSONHandler(stderr, &slog.HandlerOptions{Level: level}))
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	return app.Run(ctx, opts)
}
