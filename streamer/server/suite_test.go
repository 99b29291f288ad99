package server_test

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	. "github.com/onsi/ginkgo/v2"
	. "github.com/onsi/gomega"
	"go.uber.org/goleak"

	notifyv1alpha1 "github.com/herald-notify/herald/api/v1alpha1"
	"github.com/herald-notify/herald/internal/testutil/streamertest"
	eventlog "github.com/herald-notify/herald/streamer/log"
	"github.com/herald-notify/herald/streamer/server"
	"github.com/herald-notify/herald/streamer/sse"

	"github.com/herald-notify/herald/internal/testutil"
)

func TestServer(t *testing.T) {
	testutil.RunSuite(t, "streamer over loopback HTTP")
}

var leaksBefore goleak.Option

var _ = BeforeSuite(func() {
	SetDefaultEventuallyTimeout(10 * time.Second)
	leaksBefore = goleak.IgnoreCurrent()
})

var _ = AfterSuite(func() {
	// Every stream, hub and HTTP connection of the suite has ended.
	http.DefaultClient.CloseIdleConnections()
	Eventually(func() error { return goleak.Find(leaksBefore) }).Should(Succeed())
})

// streamer is a running server on a loopback port.
type streamer struct {
	srv  *server.Server
	http *httptest.Server
	// client reaches http over the streamer's transport.
	client *http.Client
	ops    *httptest.Server
	secret []byte
	cancel context.CancelFunc
}

// transport is how the clients of a test reach the streamer.
type transport string

const (
	// overHTTP1 is plain HTTP/1.1, whose streams are detached from net/http.
	overHTTP1 transport = "HTTP/1.1"
	// overHTTP2 is HTTP/2 over TLS, whose streams stay on net/http's path.
	overHTTP2 transport = "HTTP/2"
	// overTLSHTTP1 is HTTP/1.1 over TLS, whose streams are detached too.
	overTLSHTTP1 transport = "HTTP/1.1 over TLS"
)

// startStreamer serves a channel, its spec adjusted by edit, until the spec ends.
func startStreamer(edit func(spec *notifyv1alpha1.NotificationChannelSpec)) *streamer {
	return startStreamerOver(nil, edit)
}

// startStreamerOver is startStreamer over log (nil: an embedded log).
func startStreamerOver(log eventlog.Log, edit func(spec *notifyv1alpha1.NotificationChannelSpec)) *streamer {
	return startStreamerOn(overHTTP1, log, edit)
}

// startStreamerOn is startStreamerOver, its clients reaching it over t. The
// HTTP server reads heads as the streamer's listeners do.
func startStreamerOn(t transport, log eventlog.Log, edit func(spec *notifyv1alpha1.NotificationChannelSpec)) *streamer {
	return startStreamerTimeout(t, log, edit, 2*time.Second)
}

// startStreamerTimeout is startStreamerOn with writeTimeout bounding each
// write to a client.
func startStreamerTimeout(t transport, log eventlog.Log, edit func(spec *notifyv1alpha1.NotificationChannelSpec), writeTimeout time.Duration) *streamer {
	srv, secret, err := streamertest.NewOver(log, edit, writeTimeout)
	Expect(err).NotTo(HaveOccurred())

	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() { srv.Run(ctx); close(done) }()
	api := httptest.NewUnstartedServer(srv.Handler())
	api.Config.MaxHeaderBytes = server.ReadHeaderBytes
	client := http.DefaultClient
	switch t {
	case overHTTP2:
		api.EnableHTTP2 = true
		api.StartTLS()
		client = api.Client()
	case overTLSHTTP1:
		api.StartTLS()
		client = api.Client()
	default:
		api.Start()
	}
	s := &streamer{srv: srv, http: api, client: client, ops: httptest.NewServer(srv.OpsHandler()), secret: secret, cancel: cancel}
	DeferCleanup(func() {
		s.http.CloseClientConnections()
		s.http.Close()
		s.ops.Close()
		client.CloseIdleConnections()
		cancel()
		Eventually(done).Should(BeClosed())
	})
	return s
}

// token signs a token for user, valid for ttl.
func (s *streamer) token(user string, publish bool, ttl time.Duration) string {
	t, err := streamertest.Token(s.secret, user, publish, ttl)
	Expect(err).NotTo(HaveOccurred())
	return t
}

// client is one open stream, read in the background.
type client struct {
	resp   *http.Response
	events chan sse.Event
	ended  chan streamEnd
}

// streamEnd is how a stream ended: the read error and the reconnect delay
// the client was told last.
type streamEnd struct {
	err   error
	retry time.Duration
}

// connect opens a stream with the request adjusted by edit and expects 200.
func (s *streamer) connect(edit func(r *http.Request)) *client {
	resp := s.request(edit)
	Expect(resp.StatusCode).To(Equal(http.StatusOK))
	c := &client{resp: resp, events: make(chan sse.Event, 1000), ended: make(chan streamEnd, 1)}
	go func() {
		reader := sse.NewReader(resp.Body)
		for {
			ev, err := reader.Next()
			if err != nil {
				retry, _ := reader.Retry()
				c.ended <- streamEnd{err: err, retry: retry}
				return
			}
			c.events <- ev
		}
	}()
	DeferCleanup(func() { _ = resp.Body.Close() })
	return c
}

// connectAs opens a stream for user with a bearer token.
func (s *streamer) connectAs(user string) *client {
	token := s.token(user, false, time.Hour)
	return s.connect(func(r *http.Request) { r.Header.Set("Authorization", "Bearer "+token) })
}

func (s *streamer) request(edit func(r *http.Request)) *http.Response {
	req, err := http.NewRequest(http.MethodGet, s.http.URL+server.StreamPath, nil)
	Expect(err).NotTo(HaveOccurred())
	if edit != nil {
		edit(req)
	}
	resp, err := s.client.Do(req)
	Expect(err).NotTo(HaveOccurred())
	return resp
}

// overwhelm publishes large events to user, who reads none, until the server
// disconnects that user's stream as a slow consumer.
func (s *streamer) overwhelm(user string) {
	GinkgoHelper()
	backend := s.token("backend", true, time.Hour)
	pad := strings.Repeat("x", 30000)
	Eventually(func() string {
		status, _ := s.publish("/api/v1/custom-events", backend, map[string]any{
			"eventType": "bulk", "userIds": []string{user}, "data": map[string]any{"pad": pad},
		})
		Expect(status).To(Equal(http.StatusAccepted))
		return s.metrics()
	}, 30*time.Second).Should(ContainSubstring(`herald_disconnects_total{reason="slow_consumer"} 1`))
}

// next is the client's next event, skipping keep-alive comments.
func (c *client) next() sse.Event {
	GinkgoHelper()
	var ev sse.Event
	for {
		Eventually(c.events).Should(Receive(&ev))
		if !ev.IsComment {
			return ev
		}
	}
}

// nextJSON is the data of the client's next event.
func (c *client) nextJSON() (sse.Event, map[string]any) {
	GinkgoHelper()
	ev := c.next()
	var data map[string]any
	Expect(json.Unmarshal([]byte(ev.Data), &data)).To(Succeed())
	return ev, data
}

// expectEnd waits until the server ends the stream and returns the
// reconnect delay the client was told last.
func (c *client) expectEnd() time.Duration {
	GinkgoHelper()
	var end streamEnd
	Eventually(c.ended).Should(Receive(&end))
	Expect(errors.Is(end.err, io.EOF)).To(BeTrue(), "the server ends the stream between events, not with %v", end.err)
	return end.retry
}

// publish POSTs body to a publish endpoint and decodes the JSON answer.
func (s *streamer) publish(path, token string, body any) (int, map[string]any) {
	GinkgoHelper()
	var payload []byte
	switch b := body.(type) {
	case string:
		payload = []byte(b)
	default:
		var err error
		payload, err = json.Marshal(b)
		Expect(err).NotTo(HaveOccurred())
	}
	req, err := http.NewRequest(http.MethodPost, s.http.URL+path, bytes.NewReader(payload))
	Expect(err).NotTo(HaveOccurred())
	req.Header.Set("Content-Type", "application/json")
	if token != "" {
		req.Header.Set("Authorization", "Bearer "+token)
	}
	resp, err := s.client.Do(req)
	Expect(err).NotTo(HaveOccurred())
	defer resp.Body.Close()
	var answer map[string]any
	Expect(json.NewDecoder(resp.Body).Decode(&answer)).To(Succeed())
	return resp.StatusCode, answer
}

// notify publishes a notification to users and returns its event ids.
func (s *streamer) notify(users ...string) []string {
	GinkgoHelper()
	status, answer := s.publish("/api/v1/notifications", s.token("backend", true, time.Hour), map[string]any{
		"recipientUserIds": users, "notificationType": "VOCAB_TRAINER", "action": "CREATE", "priority": "LOW",
		"data": map[string]any{"message": "New vocab trainer available"},
	})
	Expect(status).To(Equal(http.StatusAccepted), "%v", answer)
	eventIDs := answer["eventIds"].([]any)
	ids := make([]string, 0, len(eventIDs))
	for _, id := range eventIDs {
		ids = append(ids, id.(string))
	}
	return ids
}

// custom publishes a custom event to users (everyone when none) and returns its id.
func (s *streamer) custom(eventType string, users ...string) string {
	GinkgoHelper()
	body := map[string]any{"eventType": eventType, "data": map[string]any{"action": "login"}}
	if len(users) > 0 {
		body["userIds"] = users
	}
	status, answer := s.publish("/api/v1/custom-events", s.token("backend", true, time.Hour), body)
	Expect(status).To(Equal(http.StatusAccepted), "%v", answer)
	return answer["eventId"].(string)
}

// metrics returns the text of the /metrics page.
func (s *streamer) metrics() string {
	resp, err := http.Get(s.ops.URL + "/metrics")
	Expect(err).NotTo(HaveOccurred())
	defer resp.Body.Close()
	body, err := io.ReadAll(resp.Body)
	Expect(err).NotTo(HaveOccurred())
	return string(body)
}

func errorCode(answer map[string]any) string {
	e, _ := answer["error"].(map[string]any)
	code, _ := e["code"].(string)
	return code
}

func jsonDecode(resp *http.Response, v any) error {
	defer resp.Body.Close()
	return json.NewDecoder(resp.Body).Decode(v)
}

func httpGetStatus(url string) int {
	resp, err := http.Get(url)
	if err != nil {
		return 0
	}
	_ = resp.Body.Close()
	return resp.StatusCode
}

// channelSpec is the spec a test adjusts.
type channelSpec = notifyv1alpha1.NotificationChannelSpec
