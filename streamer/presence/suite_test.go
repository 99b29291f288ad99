package presence_test

import (
	"context"
	"fmt"
	"net/http"
	"net/http/httptest"
	"sync/atomic"
	"testing"
	"time"

	. "github.com/onsi/ginkgo/v2"
	. "github.com/onsi/gomega"
	"github.com/prometheus/client_golang/prometheus"
	"go.uber.org/goleak"

	notifyv1alpha1 "github.com/herald-notify/herald/api/v1alpha1"
	"github.com/herald-notify/herald/internal/testutil"
	"github.com/herald-notify/herald/internal/testutil/natstest"
	"github.com/herald-notify/herald/internal/testutil/streamertest"
	"github.com/herald-notify/herald/streamer/log/jetstreamlog"
	"github.com/herald-notify/herald/streamer/presence"
	"github.com/herald-notify/herald/streamer/server"
	"github.com/herald-notify/herald/streamer/sse"
)

func TestPresence(t *testing.T) {
	testutil.RunSuite(t, "per-user stream limits across replicas over NATS")
}

const namespace = "presence-test"

var cluster *natstest.Cluster

var _ = BeforeSuite(func() {
	leaksBefore := goleak.IgnoreCurrent()
	// Registered first, so run last: after the cluster's shutdown, every
	// watcher, heartbeat, stream and connection of the suite has ended.
	DeferCleanup(func() {
		http.DefaultClient.CloseIdleConnections()
		Eventually(func() error { return goleak.Find(leaksBefore) }).Should(Succeed())
	})
	SetDefaultEventuallyTimeout(20 * time.Second)
	SetDefaultEventuallyPollingInterval(20 * time.Millisecond)
	var err error
	cluster, err = natstest.Start(natstest.Options{Dir: GinkgoT().TempDir()})
	Expect(err).NotTo(HaveOccurred())
	DeferCleanup(cluster.Shutdown)
})

// channels numbers the specs' channels: each spec has its own stream and
// bucket.
var channels atomic.Int32

func newChannel() string { return fmt.Sprintf("c%d", channels.Add(1)) }

// timing is the heartbeat and TTL of the replicas: short, so that a dead
// replica's streams stop counting within the spec.
const (
	heartbeat = 200 * time.Millisecond
	ttl       = time.Second
)

// replica is one streamer of a channel: its own NATS connection (the log's),
// its presence, a server over loopback HTTP.
type replica struct {
	log      *jetstreamlog.Log
	presence *presence.Presence
	srv      *server.Server
	http     *httptest.Server
	secret   []byte
	registry *prometheus.Registry
}

// startReplica runs a streamer of channel with maxPerUser and policy.
func startReplica(channel string, maxPerUser int32, policy notifyv1alpha1.UserLimitPolicy) *replica {
	GinkgoHelper()
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	log, err := jetstreamlog.Open(ctx, jetstreamlog.Options{URL: cluster.URL(), Namespace: namespace, Channel: channel})
	Expect(err).NotTo(HaveOccurred())
	registry := prometheus.NewRegistry()
	p, err := presence.Open(ctx, presence.Options{
		Conn: log.Conn(), Namespace: namespace, Channel: channel, Replicas: 3,
		Heartbeat: heartbeat, TTL: ttl, Registry: registry,
	})
	Expect(err).NotTo(HaveOccurred())
	srv, secret, err := streamertest.NewWith(streamertest.Options{Log: log, Edit: func(spec *notifyv1alpha1.NotificationChannelSpec) {
		spec.Connections.MaxPerUser = maxPerUser
		spec.Connections.UserLimitPolicy = policy
	}, WriteTimeout: 2 * time.Second, Presence: p})
	Expect(err).NotTo(HaveOccurred())
	runCtx, stop := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() { srv.Run(runCtx); close(done) }()
	r := &replica{log: log, presence: p, srv: srv, http: httptest.NewServer(srv.Handler()), secret: secret, registry: registry}
	DeferCleanup(func() {
		r.http.CloseClientConnections()
		r.http.Close()
		p.Close()
		stop()
		Eventually(done).Should(BeClosed())
		_ = log.Close()
	})
	return r
}

// request asks r for user's stream.
func (r *replica) request(user string) *http.Response {
	GinkgoHelper()
	token, err := streamertest.Token(r.secret, user, false, time.Hour)
	Expect(err).NotTo(HaveOccurred())
	req, err := http.NewRequest(http.MethodGet, r.http.URL+server.StreamPath, nil)
	Expect(err).NotTo(HaveOccurred())
	req.Header.Set("Authorization", "Bearer "+token)
	resp, err := http.DefaultClient.Do(req)
	Expect(err).NotTo(HaveOccurred())
	return resp
}

// client is one open stream, read in the background.
type client struct {
	resp   *http.Response
	events chan sse.Event
	ended  chan time.Time // when the stream ended
}

// connect opens user's stream on r and expects 200 and the connection event.
func (r *replica) connect(user string) *client {
	GinkgoHelper()
	resp := r.request(user)
	Expect(resp.StatusCode).To(Equal(http.StatusOK))
	c := &client{resp: resp, events: make(chan sse.Event, 100), ended: make(chan time.Time, 1)}
	go func() {
		reader := sse.NewReader(resp.Body)
		for {
			ev, err := reader.Next()
			if err != nil {
				c.ended <- time.Now()
				return
			}
			c.events <- ev
		}
	}()
	DeferCleanup(func() { _ = resp.Body.Close() })
	Eventually(c.events).Should(Receive(), "no connection event")
	return c
}

// close ends the client's stream from its side.
func (c *client) close() { _ = c.resp.Body.Close() }

// admitFailures is herald_presence_failures_total{op="admit"} of r.
func (r *replica) admitFailures() float64 {
	GinkgoHelper()
	families, err := r.registry.Gather()
	Expect(err).NotTo(HaveOccurred())
	for _, f := range families {
		if f.GetName() != "herald_presence_failures_total" {
			continue
		}
		for _, m := range f.GetMetric() {
			for _, l := range m.GetLabel() {
				if l.GetName() == "op" && l.GetValue() == "admit" {
					return m.GetCounter().GetValue()
				}
			}
		}
	}
	return 0
}
