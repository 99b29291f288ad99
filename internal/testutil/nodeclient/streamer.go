package nodeclient

import (
	"bytes"
	"context"
	"encoding/json"
	"io"
	"net/http"
	"net/http/httptest"
	"time"

	"github.com/onsi/ginkgo/v2"
	"github.com/onsi/gomega"

	notifyv1alpha1 "github.com/herald-notify/herald/api/v1alpha1"
	"github.com/herald-notify/herald/internal/testutil/streamertest"
	eventlog "github.com/herald-notify/herald/streamer/log"
	"github.com/herald-notify/herald/streamer/server"
)

// httpClient makes the test's own requests (publish, metrics, streams).
// Without keep-alive no idle connection outlives a spec, so the leak check
// at the end sees none.
var httpClient = &http.Client{Transport: &http.Transport{DisableKeepAlives: true}}

// Streamer is a running server, on loopback ports: Direct serves its API,
// to the test's own requests and to clients or a suite's fronts; Ops serves
// its metrics.
type Streamer struct {
	Server *server.Server
	Direct *httptest.Server
	Ops    *httptest.Server
	// Secret is the channel's HMAC key.
	Secret []byte
}

// StreamerOptions are what StartStreamer serves; zero fields are
// streamertest's defaults.
type StreamerOptions struct {
	// Log is the channel's log; nil means an embedded one.
	Log eventlog.Log
	// Edit adjusts the minimal channel's spec.
	Edit func(spec *notifyv1alpha1.NotificationChannelSpec)
	// WaitStreams makes the spec's end also expect every stream the
	// streamer served to have ended, once it stopped.
	WaitStreams bool
}

// StartStreamer serves a channel as opts say until the spec ends.
func StartStreamer(opts StreamerOptions) *Streamer {
	ginkgo.GinkgoHelper()
	srv, secret, err := streamertest.NewOver(opts.Log, opts.Edit, 0)
	gomega.Expect(err).NotTo(gomega.HaveOccurred())
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() { srv.Run(ctx); close(done) }()
	s := &Streamer{Server: srv, Direct: httptest.NewServer(srv.Handler()), Ops: httptest.NewServer(srv.OpsHandler()), Secret: secret}
	ginkgo.DeferCleanup(func() {
		s.Direct.CloseClientConnections()
		s.Direct.Close()
		s.Ops.Close()
		cancel()
		gomega.Eventually(done).Should(gomega.BeClosed())
		if opts.WaitStreams {
			ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
			defer cancel()
			gomega.Expect(srv.WaitStreams(ctx)).To(gomega.Succeed(), "every stream ended")
		}
	})
	return s
}

// Token signs a token for user valid for ttl, with the publish grant when
// publish is set.
func (s *Streamer) Token(user string, publish bool, ttl time.Duration) string {
	ginkgo.GinkgoHelper()
	return Token(s.Secret, user, publish, ttl)
}

// Token signs a token for user with secret, which need not be the
// channel's key, valid for ttl, with the publish grant when publish is set.
func Token(secret []byte, user string, publish bool, ttl time.Duration) string {
	ginkgo.GinkgoHelper()
	t, err := streamertest.Token(secret, user, publish, ttl)
	gomega.Expect(err).NotTo(gomega.HaveOccurred())
	return t
}

// Publish POSTs body to a publish endpoint with a publisher's token,
// expects 202 and returns the decoded answer.
func (s *Streamer) Publish(path string, body map[string]any) map[string]any {
	ginkgo.GinkgoHelper()
	payload, err := json.Marshal(body)
	gomega.Expect(err).NotTo(gomega.HaveOccurred())
	req, err := http.NewRequest(http.MethodPost, s.Direct.URL+path, bytes.NewReader(payload))
	gomega.Expect(err).NotTo(gomega.HaveOccurred())
	req.Header.Set("Content-Type", "application/json")
	req.Header.Set("Authorization", "Bearer "+s.Token("backend", true, time.Hour))
	resp, err := httpClient.Do(req)
	gomega.Expect(err).NotTo(gomega.HaveOccurred())
	defer resp.Body.Close()
	var answer map[string]any
	gomega.Expect(json.NewDecoder(resp.Body).Decode(&answer)).To(gomega.Succeed())
	gomega.Expect(resp.StatusCode).To(gomega.Equal(http.StatusAccepted), "%s answered %v", path, answer)
	return answer
}

// Metrics returns the text of the streamer's /metrics page.
func (s *Streamer) Metrics() string {
	ginkgo.GinkgoHelper()
	resp, err := httpClient.Get(s.Ops.URL + "/metrics")
	gomega.Expect(err).NotTo(gomega.HaveOccurred())
	defer resp.Body.Close()
	body, err := io.ReadAll(resp.Body)
	gomega.Expect(err).NotTo(gomega.HaveOccurred())
	return string(body)
}

// OpenStream opens a stream of user over the direct front, with a token
// valid for an hour, and expects it accepted. Its body closes when the spec
// ends, if not before.
func (s *Streamer) OpenStream(user string) *http.Response {
	ginkgo.GinkgoHelper()
	req, err := http.NewRequest(http.MethodGet, s.Direct.URL+server.StreamPath, nil)
	gomega.Expect(err).NotTo(gomega.HaveOccurred())
	req.Header.Set("Authorization", "Bearer "+s.Token(user, false, time.Hour))
	resp, err := httpClient.Do(req)
	gomega.Expect(err).NotTo(gomega.HaveOccurred())
	ginkgo.DeferCleanup(resp.Body.Close)
	gomega.Expect(resp.StatusCode).To(gomega.Equal(http.StatusOK))
	return resp
}
