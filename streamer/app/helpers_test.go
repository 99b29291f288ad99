package app_test

import (
	"context"
	"encoding/json"
	"io"
	"log/slog"
	"net/http"
	"strings"
	"time"

	. "github.com/onsi/ginkgo/v2"
	. "github.com/onsi/gomega"

	notifyv1alpha1 "github.com/herald-notify/herald/api/v1alpha1"
	"github.com/herald-notify/herald/internal/testutil"
	"github.com/herald-notify/herald/streamer/app"
	"github.com/herald-notify/herald/streamer/auth"
	"github.com/herald-notify/herald/streamer/sse"
)

// runningStreamer is a `herald streamer --channel` serving on loopback.
type runningStreamer struct {
	addr string
	logs *testutil.Buffer
	stop func()
}

// startChannelStreamer runs the streamer of channel ns/app until the spec
// ends or stop is called, and waits until it has handled the SystemEvents
// that exist.
func startChannelStreamer(ns string) *runningStreamer {
	GinkgoHelper()
	return startChannelStreamerAs(ns, "")
}

// startChannelStreamerAs is startChannelStreamer for the pod named pod
// (empty: the host name).
func startChannelStreamerAs(ns, pod string) *runningStreamer {
	GinkgoHelper()
	logs := &testutil.Buffer{}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() {
		done <- app.Run(ctx, withLogger(app.Options{Channel: ns + "/app", Listen: "127.0.0.1:0", MetricsListen: "127.0.0.1:0", PodName: pod},
			slog.New(slog.NewJSONHandler(logs, nil))))
	}()
	stopped := false
	s := &runningStreamer{logs: logs, stop: func() {
		if !stopped {
			stopped = true
			cancel()
			Eventually(done, 30*time.Second).Should(Receive(BeNil()))
		}
	}}
	DeferCleanup(s.stop)
	Eventually(func() string { s.addr = logField(logs, "streamer started", "listen"); return s.addr }, 30*time.Second).ShouldNot(BeEmpty())
	Eventually(logs.String, 30*time.Second).Should(ContainSubstring(`"msg":"SystemEvents caught up"`))
	return s
}

// userStream is an open stream of one user.
type userStream struct {
	reader *sse.Reader
	// startID is the id of the connection event.
	startID string
}

// connect opens user's stream, signed with kid k1 and key, and reads the
// connection event.
func (s *runningStreamer) connect(key []byte, user string) *userStream {
	GinkgoHelper()
	return s.resume(key, user, "")
}

// resume is connect with a Last-Event-ID, unless lastEventID is empty.
func (s *runningStreamer) resume(key []byte, user, lastEventID string) *userStream {
	GinkgoHelper()
	token, err := auth.Sign(auth.TokenClaims{Subject: user, ExpiresAt: time.Now().Add(time.Hour)}, notifyv1alpha1.HS256, "k1", key)
	Expect(err).NotTo(HaveOccurred())
	req, err := http.NewRequest(http.MethodGet, "http://"+s.addr+"/api/v1/sse/notifications", nil)
	Expect(err).NotTo(HaveOccurred())
	req.Header.Set("Authorization", "Bearer "+token)
	if lastEventID != "" {
		req.Header.Set("Last-Event-ID", lastEventID)
	}
	resp, err := http.DefaultClient.Do(req)
	Expect(err).NotTo(HaveOccurred())
	DeferCleanup(resp.Body.Close)
	Expect(resp.StatusCode).To(Equal(http.StatusOK))
	stream := &userStream{reader: sse.NewReader(resp.Body)}
	hello := stream.next()
	Expect(hello).To(HaveKeyWithValue("type", "connection"))
	stream.startID = hello["_id"].(string)
	return stream
}

// next reads the stream's next event, decoded, with the stream's last event
// ID (what a browser would resume from) as "_id".
func (u *userStream) next() map[string]any {
	GinkgoHelper()
	for {
		frame, err := u.reader.Next()
		Expect(err).NotTo(HaveOccurred())
		if frame.IsComment {
			continue
		}
		event := map[string]any{}
		Expect(json.Unmarshal([]byte(frame.Data), &event)).To(Succeed())
		event["_id"] = frame.ID
		return event
	}
}

// publishCustom publishes a custom event to everyone, as a marker: what a
// stream reads before it came earlier in the log.
func (s *runningStreamer) publishCustom(key []byte, marker string) {
	GinkgoHelper()
	Expect(s.publishCustomStatus(key, marker)).To(Equal(http.StatusAccepted))
}

// publishCustomStatus is publishCustom, returning the answer's status.
func (s *runningStreamer) publishCustomStatus(key []byte, marker string) int {
	GinkgoHelper()
	token, err := auth.Sign(auth.TokenClaims{Subject: "backend", ExpiresAt: time.Now().Add(time.Hour), Publish: true,
		PublishGrant: notifyv1alpha1.PublishGrantSpec{Claim: "scope", Value: "notifications:publish"}}, notifyv1alpha1.HS256, "k1", key)
	Expect(err).NotTo(HaveOccurred())
	req, err := http.NewRequest(http.MethodPost, "http://"+s.addr+"/api/v1/custom-events",
		strings.NewReader(`{"eventType":"marker","data":{"marker":"`+marker+`"}}`))
	Expect(err).NotTo(HaveOccurred())
	req.Header.Set("Authorization", "Bearer "+token)
	resp, err := http.DefaultClient.Do(req)
	Expect(err).NotTo(HaveOccurred())
	Expect(resp.Body.Close()).To(Succeed())
	return resp.StatusCode
}

// publishNotification posts a notification for u1 with token and returns
// the status and the error message, if any.
func (s *runningStreamer) publishNotification(token string) (int, string) {
	GinkgoHelper()
	req, err := http.NewRequest(http.MethodPost, "http://"+s.addr+"/api/v1/notifications",
		strings.NewReader(`{"recipientUserIds":["u1"],"notificationType":"ORDER_SHIPPED","data":{"order":"o-17"}}`))
	Expect(err).NotTo(HaveOccurred())
	req.Header.Set("Authorization", "Bearer "+token)
	resp, err := http.DefaultClient.Do(req)
	Expect(err).NotTo(HaveOccurred())
	defer resp.Body.Close()
	body, err := io.ReadAll(resp.Body)
	Expect(err).NotTo(HaveOccurred())
	var answer struct {
		Error struct{ Message string } `json:"error"`
	}
	_ = json.Unmarshal(body, &answer)
	return resp.StatusCode, answer.Error.Message
}

// kubectl runs the real kubectl against the test API server and returns its
// output; it fails the spec when kubectl fails.
func kubectl(ctx context.Context, stdin string, args ...string) string {
	GinkgoHelper()
	result := cluster.Kubectl(ctx, stdin, args...)
	Expect(result.Err).NotTo(HaveOccurred(), result.Stderr)
	return result.Stdout
}

// sevColumns returns the `kubectl get sev NAME` row, split into columns.
func sevColumns(ctx context.Context, ns, name string) func() []string {
	return func() []string {
		out := kubectl(ctx, "", "-n", ns, "get", "sev", name, "--no-headers")
		return strings.Fields(out)
	}
}
