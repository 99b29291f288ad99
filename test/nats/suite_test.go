// Package nats_test runs three streamers of one channel (app.Run, from a
// manifest file with broker.type NATS) over a three-node NATS cluster inside
// the test process, and checks what a fleet must hold: the same ids on every
// replica, resume on any replica, nothing acknowledged that is not stored, a
// broker outage ridden out, and a recreated stream told to its clients.
package nats_test

import (
	"bytes"
	"context"
	"crypto/rand"
	"encoding/json"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"os"
	"path/filepath"
	"sync/atomic"
	"testing"
	"time"

	. "github.com/onsi/ginkgo/v2"
	. "github.com/onsi/gomega"

	"github.com/herald-notify/herald/internal/testutil"
	"github.com/herald-notify/herald/internal/testutil/natstest"
	"github.com/herald-notify/herald/internal/testutil/streamertest"
	"github.com/herald-notify/herald/streamer/app"
	"github.com/herald-notify/herald/streamer/paths"
	"github.com/herald-notify/herald/streamer/sse"
)

func TestStreamersOverNATS(t *testing.T) {
	testutil.RunSuite(t, "streamers over NATS JetStream")
}

const (
	namespace = "nats-e2e"
	channel   = "app"
)

// manifest is the channel the three streamers serve: NATS with three stream
// replicas, keep-alives every second so that an outage shows them.
const manifest = `
apiVersion: notify.herald.dev/v1alpha1
kind: NotificationChannel
metadata: {namespace: %s, name: %s}
spec:
  replicas: 3
  auth:
    keySecretRef: {name: keys}
  connections:
    maxPerUser: 10
    keepAliveInterval: 1s
  history:
    maxEvents: 1000
  broker:
    type: NATS
    nats:
      url: %s
      streamReplicas: 3
`

var (
	cluster *natstest.Cluster
	key     []byte
)

var _ = BeforeSuite(func() {
	SetDefaultEventuallyTimeout(30 * time.Second)
	SetDefaultEventuallyPollingInterval(50 * time.Millisecond)
	var err error
	cluster, err = natstest.Start(natstest.Options{Dir: GinkgoT().TempDir()})
	Expect(err).NotTo(HaveOccurred())
	DeferCleanup(cluster.Shutdown)
	key = make([]byte, 32)
	_, _ = rand.Read(key)
})

// writeChannel writes the manifest and its key Secret's folder, and returns
// the manifest's path.
func writeChannel() string {
	dir := GinkgoT().TempDir()
	Expect(os.MkdirAll(filepath.Join(dir, "secrets", "keys"), 0o700)).To(Succeed())
	Expect(os.WriteFile(filepath.Join(dir, "secrets", "keys", streamertest.KeyID), key, 0o600)).To(Succeed())
	path := filepath.Join(dir, "channel.yaml")
	Expect(os.WriteFile(path, fmt.Appendf(nil, manifest, namespace, channel, cluster.URL()), 0o600)).To(Succeed())
	return path
}

// replica is one running streamer.
type replica struct {
	api, ops string // base URLs
	stop     context.CancelFunc
	done     chan error
}

// startReplica runs app.Run on loopback ports until the spec ends.
func startReplica(manifestPath string) *replica {
	GinkgoHelper()
	started := &startedHandler{addrs: make(chan [2]string, 1)}
	ctx, cancel := context.WithCancel(context.Background())
	r := &replica{stop: cancel, done: make(chan error, 1)}
	go func() {
		r.done <- app.Run(ctx, app.Options{
			Config: manifestPath, Listen: "127.0.0.1:0", MetricsListen: "127.0.0.1:0", Logger: slog.New(started),
		})
	}()
	var addrs [2]string
	Eventually(started.addrs).Should(Receive(&addrs), "the streamer did not start")
	r.api, r.ops = "http://"+addrs[0], "http://"+addrs[1]
	DeferCleanup(func() {
		cancel()
		Eventually(r.done).WithTimeout(time.Minute).Should(Receive(Not(HaveOccurred())))
	})
	return r
}

// startedHandler is a slog handler that hands over the addresses of the
// "streamer started" record, and writes every record to GinkgoWriter.
type startedHandler struct {
	addrs chan [2]string
	attrs []slog.Attr
}

func (h *startedHandler) Enabled(_ context.Context, level slog.Level) bool {
	return level >= slog.LevelInfo
}

func (h *startedHandler) Handle(ctx context.Context, rec slog.Record) error {
	if rec.Message == "streamer started" {
		var listen, metrics string
		rec.Attrs(func(a slog.Attr) bool {
			switch a.Key {
			case "listen":
				listen = a.Value.String()
			case "metricsListen":
				metrics = a.Value.String()
			}
			return true
		})
		h.addrs <- [2]string{listen, metrics}
	}
	return slog.NewTextHandler(GinkgoWriter, nil).WithAttrs(h.attrs).Handle(ctx, rec)
}

func (h *startedHandler) WithAttrs(attrs []slog.Attr) slog.Handler {
	return &startedHandler{addrs: h.addrs, attrs: append(append([]slog.Attr{}, h.attrs...), attrs...)}
}

func (h *startedHandler) WithGroup(string) slog.Handler { return h }

func token(user string, publish bool) string {
	GinkgoHelper()
	t, err := streamertest.Token(key, user, publish, time.Hour)
	Expect(err).NotTo(HaveOccurred())
	return t
}

// publishResult is a publish request's answer.
type publishResult struct {
	status     int
	retryAfter string
	eventIDs   []string
}

// notify publishes a notification to user through r.
func (r *replica) notify(user, id string) (publishResult, error) {
	body, _ := json.Marshal(map[string]any{
		"recipientUserIds": []string{user}, "notificationId": id, "notificationType": "info", "data": map[string]any{"n": id},
	})
	req, err := http.NewRequest(http.MethodPost, r.api+paths.Notifications, bytes.NewReader(body))
	if err != nil {
		return publishResult{}, err
	}
	req.Header.Set("Content-Type", "application/json")
	req.Header.Set("Authorization", "Bearer "+token("backend", true))
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		return publishResult{}, err
	}
	defer func() { _ = resp.Body.Close() }()
	var answer struct {
		EventIDs []string `json:"eventIds"`
	}
	raw, _ := io.ReadAll(resp.Body)
	_ = json.Unmarshal(raw, &answer)
	return publishResult{status: resp.StatusCode, retryAfter: resp.Header.Get("Retry-After"), eventIDs: answer.EventIDs}, nil
}

// mustNotify publishes and expects 202 with one event id, which it returns.
func (r *replica) mustNotify(user, id string) string {
	GinkgoHelper()
	res, err := r.notify(user, id)
	Expect(err).NotTo(HaveOccurred())
	Expect(res.status).To(Equal(http.StatusAccepted))
	Expect(res.eventIDs).To(HaveLen(1))
	return res.eventIDs[0]
}

// readyz is the status of r's readiness probe.
func (r *replica) readyz() (int, error) {
	resp, err := http.Get(r.ops + paths.Readyz)
	if err != nil {
		return 0, err
	}
	_ = resp.Body.Close()
	return resp.StatusCode, nil
}

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
	req, err := http.NewRequest(http.MethodGet, r.api+paths.Stream, nil)
	Expect(err).NotTo(HaveOccurred())
	req.Header.Set("Authorization", "Bearer "+token(user, false))
	if lastID != "" {
		req.Header.Set("Last-Event-ID", lastID)
	}
	resp, err := http.DefaultClient.Do(req)
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
