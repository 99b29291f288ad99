// Package nats_test runs three streamers of one channel (app.Run, from a
// manifest file with broker.type NATS) over a three-node NATS cluster inside
// the test process, and checks what a fleet must hold: the same ids on every
// replica, resume on any replica, nothing acknowledged that is not stored, a
// broker outage ridden out, and a recreated stream told to its clients.
package nats_test

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"os"
	"path/filepath"
	"sync/atomic"
	"testing"
	"time"

	"github.com/nats-io/nats-server/v2/server"
	natsgo "github.com/nats-io/nats.go"

	. "github.com/onsi/ginkgo/v2"
	. "github.com/onsi/gomega"

	"github.com/herald-notify/herald/internal/testutil"
	"github.com/herald-notify/herald/internal/testutil/fleettest"
	"github.com/herald-notify/herald/internal/testutil/natstest"
	"github.com/herald-notify/herald/streamer/log/jetstreamlog"
	"github.com/herald-notify/herald/streamer/sse"
)

func TestStreamersOverNATS(t *testing.T) {
	testutil.RunSuite(t, "streamers over NATS JetStream")
}

const (
	namespace = "nats-e2e"
	channel   = "app"
)

var (
	cluster *natstest.Cluster
	// fleet is the channel the three streamers serve: NATS with three
	// stream replicas, keep-alives every second so that an outage shows them.
	fleet *fleettest.Channel
)

var _ = BeforeSuite(func() {
	SetDefaultEventuallyTimeout(30 * time.Second)
	SetDefaultEventuallyPollingInterval(50 * time.Millisecond)
	var err error
	cluster, err = natstest.Start(natstest.Options{Dir: GinkgoT().TempDir(), Users: natsUsers()})
	Expect(err).NotTo(HaveOccurred())
	DeferCleanup(cluster.Shutdown)
	fleet, err = fleettest.WriteChannel(GinkgoT().TempDir(), fleettest.ChannelOptions{
		Namespace: namespace, Name: channel, NATSURL: cluster.URL(), NATSUser: streamerUser, NATSPassword: streamerPassword,
	})
	Expect(err).NotTo(HaveOccurred())
})

// The streamers' NATS user, limited to the channel's permissions, and the
// specs' own, who may do anything (delete the stream, pose as a replica).
const (
	streamerUser, streamerPassword = "herald", "streamer-password"
	adminUser, adminPassword       = "admin", "admin-password"
)

// natsUsers are the cluster's users, read by the NATS server's own parser
// from a configuration holding the block `herald nats-permissions` prints
// for the channel: what the README tells an operator of NATS to paste.
func natsUsers() []*server.User {
	GinkgoHelper()
	config := fmt.Sprintf("authorization {\n  users: [\n    {user: %q, password: %q, %s}\n    {user: %q, password: %q}\n  ]\n}\n",
		streamerUser, streamerPassword, jetstreamlog.ChannelPermissions(namespace, channel).ServerConfig(), adminUser, adminPassword)
	path := filepath.Join(GinkgoT().TempDir(), "nats.conf")
	Expect(os.WriteFile(path, []byte(config), 0o600)).To(Succeed())
	opts, err := server.ProcessConfigFile(path)
	Expect(err).NotTo(HaveOccurred(), config)
	Expect(opts.Users).To(HaveLen(2))
	return opts.Users
}

// connectAsAdmin connects to the cluster as the specs' own NATS user.
func connectAsAdmin() *natsgo.Conn {
	GinkgoHelper()
	nc, err := natsgo.Connect(cluster.URL(), natsgo.UserInfo(adminUser, adminPassword))
	Expect(err).NotTo(HaveOccurred())
	DeferCleanup(nc.Close)
	return nc
}

// replica is one running streamer.
type replica struct{ *fleettest.InProcess }

// startReplica runs a streamer (app.Run) on loopback ports until the spec
// ends.
func startReplica() *replica {
	GinkgoHelper()
	r, err := fleettest.StartInProcess(fleet.Path, GinkgoWriter)
	Expect(err).NotTo(HaveOccurred())
	DeferCleanup(func() { Expect(r.Stop(time.Minute)).To(Succeed()) })
	return &replica{r}
}

func token(user string, publish bool) string {
	GinkgoHelper()
	t, err := fleet.Token(user, publish)
	Expect(err).NotTo(HaveOccurred())
	return t
}

// notify publishes a notification to user through r.
func (r *replica) notify(user, id string) (fleettest.PublishResult, error) {
	return fleettest.Notify(context.Background(), http.DefaultClient, r.API, token("backend", true), fleettest.Notification{
		RecipientUserIDs: []string{user}, NotificationID: id, NotificationType: "info", Data: map[string]any{"n": id},
	})
}

// mustNotify publishes and expects 202 with one event id, which it returns.
func (r *replica) mustNotify(user, id string) string {
	GinkgoHelper()
	res, err := r.notify(user, id)
	Expect(err).NotTo(HaveOccurred())
	Expect(res.Status).To(Equal(http.StatusAccepted))
	Expect(res.EventIDs).To(HaveLen(1))
	return res.EventIDs[0]
}

// readyz is the status of r's readiness probe.
func (r *replica) readyz() (int, error) { return fleettest.Readyz(r.Ops) }

// client is an open stream, read in the background.
type client struct {
	events chan sse.Event
	ended  chan error
	bytes  atomic.Int64 // read so far, keep-alives included
	close  func()
}

// connect opens a stream for user on r, resuming after lastID when set.
func (r *replica) connect(user, lastID string) *client {
	GinkgoHelper()
	resp, err := fleettest.OpenStream(context.Background(), http.DefaultClient, r.API, token(user, false), lastID)
	Expect(err).NotTo(HaveOccurred())
	Expect(resp.StatusCode).To(Equal(http.StatusOK))
	c := &client{events: make(chan sse.Event, 1000), ended: make(chan error, 1), close: func() { _ = resp.Body.Close() }}
	go func() {
		reader := sse.NewReader(&countingReader{r: resp.Body, n: &c.bytes})
		for {
			ev, err := reader.Next()
			if err != nil {
				c.ended <- err
				return
			}
			c.events <- ev
		}
	}()
	DeferCleanup(c.close)
	return c
}

type countingReader struct {
	r io.Reader
	n *atomic.Int64
}

func (c *countingReader) Read(p []byte) (int, error) {
	n, err := c.r.Read(p)
	c.n.Add(int64(n))
	return n, err
}

// sseMessage is the JSON of an event's data, the fields the specs read.
type sseMessage struct {
	Type           string `json:"type"`
	NotificationID string `json:"notificationId"`
	Recovered      *bool  `json:"recovered"`
	// Reason is an end event's.
	Reason string `json:"reason"`
}

// next is the client's next event, decoded.
func (c *client) next() (sse.Event, sseMessage) {
	GinkgoHelper()
	var ev sse.Event
	// An event without data carries only a field such as retry:, no message.
	Eventually(c.events).Should(Receive(&ev, HaveField("Data", Not(BeEmpty()))))
	var msg sseMessage
	Expect(json.Unmarshal([]byte(ev.Data), &msg)).To(Succeed(), "event data %q", ev.Data)
	return ev, msg
}

// connected reads the connection event and returns its recovered field.
func (c *client) connected() *bool {
	GinkgoHelper()
	_, msg := c.next()
	Expect(msg.Type).To(Equal("connection"))
	return msg.Recovered
}

// notification reads the next event, a notification, and returns its SSE id
// and notification id.
func (c *client) notification() (string, string) {
	GinkgoHelper()
	ev, msg := c.next()
	Expect(msg.Type).To(Equal("notification"), "event %q", ev.Data)
	return ev.ID, msg.NotificationID
}
