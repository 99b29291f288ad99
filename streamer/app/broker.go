package app

import (
	"context"
	"errors"
	"log/slog"
	"os"
	"sync"

	"sigs.k8s.io/controller-runtime/pkg/client"

	notifyv1alpha1 "github.com/herald-notify/herald/api/v1alpha1"
	"github.com/herald-notify/herald/streamer/kube"
	eventlog "github.com/herald-notify/herald/streamer/log"
	"github.com/herald-notify/herald/streamer/log/jetstreamlog"
	"github.com/herald-notify/herald/streamer/server"
)

// errNotConnectedYet is the broker's state before the first attempt to open
// the log has ended.
var errNotConnectedYet = errors.New("not connected to NATS yet")

// brokerProbe is the JetStream log's health as the broker reporter sees it:
// while the log opens, why the last attempt failed; then the log's own.
type brokerProbe struct {
	mu      sync.Mutex
	opening error
	log     server.HealthReporter
}

func newBrokerProbe() *brokerProbe { return &brokerProbe{opening: errNotConnectedYet} }

// attempted records the outcome of an attempt to open the log.
func (p *brokerProbe) attempted(err error) {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.opening = err
}

// opened hands the open log over: its health is the broker's from now on.
func (p *brokerProbe) opened(log eventlog.Log) {
	reporter, ok := log.(server.HealthReporter)
	if !ok {
		return
	}
	p.mu.Lock()
	defer p.mu.Unlock()
	p.log = reporter
}

// LastError implements server.HealthReporter.
func (p *brokerProbe) LastError() error {
	p.mu.Lock()
	log, opening := p.log, p.opening
	p.mu.Unlock()
	if log != nil {
		return log.LastError()
	}
	return opening
}

// brokerReport is a running BrokerReporter of a NATS channel's pod.
type brokerReport struct {
	reporter *kube.BrokerReporter
	probe    *brokerProbe
	logger   *slog.Logger
	stop     func()
}

// startBrokerReport starts reporting whether this pod reaches the channel's
// NATS broker on the channel's BrokerReachable condition; nil when the
// channel's broker is not NATS or the streamer has no API to write to.
// Stop it before Run returns. The pod of a channel that is not on NATS takes
// off the BrokerReachable condition left from the channel's NATS days.
func startBrokerReport(c client.Client, channel *notifyv1alpha1.NotificationChannel, pod string, logger *slog.Logger) *brokerReport {
	nats := channel.Spec.Broker.NATS
	if c == nil {
		return nil
	}
	if channel.Spec.Broker.Type != notifyv1alpha1.BrokerNATS || nats == nil {
		if err := kube.RemoveBrokerReachable(context.Background(), c, client.ObjectKeyFromObject(channel)); err != nil {
			logger.Warn("cannot take the channel's former BrokerReachable condition off", "reason", "StatusWriteFailed", "error", err.Error())
		}
		return nil
	}
	probe := newBrokerProbe()
	report := &brokerReport{
		probe: probe, logger: logger,
		reporter: kube.NewBrokerReporter(kube.BrokerReporterOptions{
			Client: c, Channel: client.ObjectKeyFromObject(channel), Pod: pod, Generation: channel.Generation,
			URL: nats.URL, Health: probe, Logger: logger,
		}),
	}
	report.stop = goUntilStopped(report.reporter.Run)
	return report
}

// goUntilStopped runs run in a goroutine until the returned stop is called,
// which waits for it; calling stop again does nothing.
func goUntilStopped(run func(context.Context)) (stop func()) {
	ctx, cancel := context.WithCancel(context.Background())
	stopped := make(chan struct{})
	go func() {
		defer close(stopped)
		run(ctx)
	}()
	return func() {
		cancel()
		<-stopped
	}
}

// failed reports that the channel's stream cannot be used, when the log
// failed to open for that reason, before the streamer exits on it. The
// reporter stops first.
func (b *brokerReport) failed(err error) {
	var incompatible *jetstreamlog.IncompatibleStreamError
	if b == nil || !errors.As(err, &incompatible) {
		return
	}
	b.Stop()
	if werr := b.reporter.ReportIncompatible(context.Background(), incompatible); werr != nil {
		b.logger.Warn("cannot write the channel's BrokerReachable condition", "reason", "StatusWriteFailed", "error", werr.Error())
	}
}

// Stop stops the reporter and waits for it; calling it again does nothing.
func (b *brokerReport) Stop() {
	if b == nil {
		return
	}
	b.stop()
}

// podName is the name of this pod: given, or the host name, which is a
// pod's name.
func podName(given string) string {
	if given == "" {
		given, _ = os.Hostname()
	}
	return given
}
