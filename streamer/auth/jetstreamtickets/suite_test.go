package jetstreamtickets_test

import (
	"context"
	"fmt"
	"sync/atomic"
	"testing"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
	. "github.com/onsi/ginkgo/v2"
	. "github.com/onsi/gomega"

	"github.com/herald-notify/herald/internal/testutil"
	"github.com/herald-notify/herald/internal/testutil/natstest"
	"github.com/herald-notify/herald/streamer/auth/jetstreamtickets"
)

func TestJetStreamTickets(t *testing.T) {
	testutil.RunSuite(t, "JetStream ticket store")
}

var (
	// cluster is the three-node cluster every spec uses, each on a bucket
	// of its own.
	cluster *natstest.Cluster
	// admin is a client acting as the NATS cluster's operator.
	admin jetstream.JetStream
)

var _ = BeforeSuite(func() {
	SetDefaultEventuallyTimeout(30 * time.Second)
	var err error
	cluster, err = natstest.Start(natstest.Options{Dir: GinkgoT().TempDir()})
	Expect(err).NotTo(HaveOccurred())
	DeferCleanup(cluster.Shutdown)
	admin = connect(cluster)
})

// connect is a JetStream client on a connection of its own to c, as each
// replica of a channel has, closed when the spec or suite ends.
func connect(c *natstest.Cluster) jetstream.JetStream {
	GinkgoHelper()
	nc, err := nats.Connect(c.URL(), nats.MaxReconnects(-1), nats.ReconnectWait(50*time.Millisecond))
	Expect(err).NotTo(HaveOccurred())
	DeferCleanup(nc.Close)
	js, err := jetstream.New(nc, jetstream.WithDefaultTimeout(10*time.Second))
	Expect(err).NotTo(HaveOccurred())
	return js
}

var channelCount atomic.Int64

// newChannel is a channel name no other spec uses.
func newChannel() string {
	return fmt.Sprintf("ch-%d", channelCount.Add(1))
}

// open opens a store on channel in namespace "test", replicated on all three
// nodes, over a connection of its own; edit adjusts its options.
func open(channel string, edit func(*jetstreamtickets.Options)) *jetstreamtickets.Store {
	GinkgoHelper()
	opts := jetstreamtickets.Options{JetStream: connect(cluster), Namespace: "test", Channel: channel, Replicas: 3}
	if edit != nil {
		edit(&opts)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	store, err := jetstreamtickets.Open(ctx, opts)
	Expect(err).NotTo(HaveOccurred())
	return store
}
