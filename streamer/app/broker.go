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
	stop     context.CancelFunc
	stopped  chan struct{}
}

// startBrokerReport starts reporting whether this pod reaches the channel's
// NATS broker on the channel's BrokerReachable condition; nil when the
// channel's broker is not NATS or the streamer has no API to write to.
// Stop it before Run returns.
func startBrokerReport(c client.Client, channel *notifyv1alpha1.NotificationChannel, pod string, logger *slog.Logger) *brokerReport {
	nats := channel.Spec.Broker.NATS
	if c == nil || channel.Spec.Broker.Type != notifyv1alpha1.BrokerNATS || nats == nil {
		return nil
	}
	if pod == "" {
		pod, _ = os.Hostname() // a pod's host name is its name
	}
	probe := newBrokerProbe()
	report := &brokerReport{
		probe: probe, logger: logger,
		reporter: kube.NewBrokerReporter(kube.BrokerReporterOptions{
			Client: c, Channel: client.ObjectKeyFromObject(channel), Pod: pod, Generation: channel.Generation,
			URL: nats.URL, Health: probe, Logger: logger,
		}),
		stopped: make(chan struct{}),
	}
	ctx, stop := context.WithCancel(context.Background())
	report.stop = stop
	go func() {
		defer close(report.stopped)
		report.reporter.Run(ctx)
	}()
	return report
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
	<-b.stopped
}
