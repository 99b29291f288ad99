package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"os"
	"os/signal"
	"syscall"

	"github.com/go-logr/logr"

	"github.com/herald-notify/herald/internal/operator"
)

// runOperator is "herald operator": flags over operator.Run.
func runOperator(args []string, stdout, stderr io.Writer) error {
	fs := flag.NewFlagSet("operator", flag.ContinueOnError)
	var opts operator.Options
	var logLevel string
	fs.BoolVar(&opts.LeaderElect, "leader-elect", false, "elect one active replica through a Lease, so that several can run for availability")
	fs.StringVar(&opts.LeaderElectionNamespace, "leader-election-namespace", "", "namespace of the leader election Lease (default: the operator's own namespace in a cluster)")
	fs.StringVar(&opts.HealthProbeAddr, "health-probe-bind-address", ":8081", "address of /healthz and /readyz; 0 turns them off")
	fs.StringVar(&opts.MetricsAddr, "metrics-bind-address", ":8443", "address of /metrics; 0 turns it off")
	fs.BoolVar(&opts.MetricsSecure, "metrics-secure", true, "serve /metrics over HTTPS, to callers the API server authenticates and authorizes (get on the /metrics non-resource URL)")
	fs.StringVar(&opts.StreamerImage, "streamer-image", "", "image of the streamer pods of channels that set no spec.image (default: the operator's own image, read from its Pod)")
	fs.StringVar(&logLevel, "log-level", "info", "debug, info, warn or error")
	if err := parseFlags(fs, args, stdout); err != nil {
		return err
	}
	if fs.NArg() > 0 {
		return fmt.Errorf("%w: unexpected argument %q", errUsage, fs.Arg(0))
	}
	var level slog.Level
	if err := level.UnmarshalText([]byte(logLevel)); err != nil {
		return fmt.Errorf("%w: --log-level must be debug, info, warn or error, not %q", errUsage, logLevel)
	}
	opts.Logger = logr.FromSlogHandler(slog.NewJSONHandler(stderr, &slog.HandlerOptions{Level: level}))
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	err := operator.Run(ctx, opts)
	if errors.Is(err, operator.ErrNoImage) {
		return fmt.Errorf("%w: %w", errUsage, err)
	}
	return err
}
