package jetstreamlog_test

import (
	"context"
	"fmt"
	"io"
	"log/slog"
	"sync/atomic"
	"testing"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
	. "github.com/onsi/ginkgo/v2"
	. "github.com/onsi/gomega"
	"github.com/prometheus/client_golang/prometheus"
	dto "github.com/prometheus/client_model/go"

	"github.com/herald-notify/herald/internal/testutil"
	"github.com/herald-notify/herald/internal/testutil/natstest"
	"github.com/herald-notify/herald/streamer/log/jetstreamlog"
)

func TestJetStreamLog(t *testing.T) {
	testutil.RunSuite(t, "JetStream event log")
}

var (
	// cluster is the three-node cluster every spec uses, each on streams
	// of its own.
	cluster *natstest.Cluster
	// admin is a client acting as the NATS cluster's operator.
	admin jetstream.JetStream
)

var _ = BeforeSuite(func() {
	SetDefaultEventuallyTimeout(30 * time.Second)
	SetDefaultEventuallyPollingInterval(20 * time.Millisecond)
	var err error
	cluster, err = natstest.Start(natstest.Options{Dir: GinkgoT().TempDir()})
	Expect(err).NotTo(HaveOccurred())
	DeferCleanup(cluster.Shutdown)
	nc, err := nats.Connect(cluster.URL(), fastReconnect()...)
	Expect(err).NotTo(HaveOccurred())
	DeferCleanup(nc.Close)
	admin, err = jetstream.New(nc)
	Expect(err).NotTo(HaveOccurred())
})

func fastReconnect() []nats.Option {
	return []nats.Option{nats.MaxReconnects(-1), nats.ReconnectWait(50 * time.Millisecond), nats.ReconnectJitter(0, 0)}
}

var channelCount atomic.Int64

// newChannel is a channel name no other spec uses.
func newChannel() string {
	return fmt.Sprintf("ch-%d", channelCount.Add(1))
}

// testOptions are the options of a log on channel in namespace "test",
// replicated on all three nodes, quick to notice a silent consumer.
func testOptions(channel string, maxEvents int) jetstreamlog.Options {
	return jetstreamlog.Options{
		URL:         cluster.URL(),
		NATSOptions: fastReconnect(),
		Namespace:   "test",
		Channel:     channel,
		MaxEvents:   maxEvents,
		MaxAge:      time.Hour,
		Replicas:    3,
		Heartbeat:   500 * time.Millisecond,
		Logger:      slog.New(slog.NewTextHandler(io.Discard, nil)),
	}
}

// open opens a log that the spec closes.
func open(opts jetstreamlog.Options) *jetstreamlog.Log {
	GinkgoHelper()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	l, err := jetstreamlog.Open(ctx, opts)
	Expect(err).NotTo(HaveOccurred())
	DeferCleanup(l.Close)
	return l
}

// metricOf is l's metric of that name, as a server registering l would
// serve it.
func metricOf(l *jetstreamlog.Log, name string) *dto.Metric {
	GinkgoHelper()
	registry := prometheus.NewRegistry()
	Expect(registry.Register(l)).To(Succeed())
	families, err := registry.Gather()
	Expect(err).NotTo(HaveOccurred())
	for _, f := range families {
		if f.GetName() == name {
			Expect(f.GetMetric()).To(HaveLen(1))
			return f.GetMetric()[0]
		}
	}
	Fail("no metric " + name)
	return nil
}
