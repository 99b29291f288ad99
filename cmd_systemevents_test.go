package main

import (
	"context"
	"encoding/json"
	"fmt"
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
	logs := &testutil.Buffer{}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() {
		done <- app.Run(ctx, withLogger(app.Options{Channel: ns + "/app", Listen: "127.0.0.1:0", MetricsListen: "127.0.0.1:0"}, slog.New(slog.NewJSONHandler(logs, nil))))
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
	token, err := auth.Sign(auth.TokenClaims{Subject: "backend", ExpiresAt: time.Now().Add(time.Hour), Publish: true,
		PublishGrant: notifyv1alpha1.PublishGrantSpec{Claim: "scope", Value: "notifications:publish"}}, notifyv1alpha1.HS256, "k1", key)
	Expect(err).NotTo(HaveOccurred())
	req, err := http.NewRequest(http.MethodPost, "http://"+s.addr+"/api/v1/custom-events",
		strings.NewReader(`{"eventType":"marker","data":{"marker":"`+marker+`"}}`))
	Expect(err).NotTo(HaveOccurred())
	req.Header.Set("Authorization", "Bearer "+token)
	resp, err := http.DefaultClient.Do(req)
	Expect(err).NotTo(HaveOccurred())
	Expect(resp.StatusCode).To(Equal(http.StatusAccepted))
	Expect(resp.Body.Close()).To(Succeed())
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

const maintenanceYAML = `apiVersion: notify.herald.dev/v1alpha1
kind: SystemEvent
metadata: {name: maintenance}
spec:
  channelRef: {name: app}
  eventType: maintenance
  priority: HIGH
  audience: {all: true}
  expiresAt: %q
  data: {message: %q}
`

const betaYAML = `apiVersion: notify.herald.dev/v1alpha1
kind: SystemEvent
metadata: {name: beta}
spec:
  channelRef: {name: app}
  eventType: feature_flag
  audience: {userIds: [u1]}
  data: {flag: new-editor}
`

var _ = Describe("SystemEvents announced with kubectl", func() {
	It("reach their audience once, late joiners while in force, edits and deletions, and survive a restart", func(ctx SpecContext) {
		ns := clusterNamespace(ctx)
		key := createChannelWithKey(ctx, ns)
		asStreamer(ctx, ns)
		streamer := startChannelStreamer(ns)
		u1, u2 := streamer.connect(key, "u1"), streamer.connect(key, "u2")
		expires := time.Now().Add(time.Hour).UTC().Format(time.RFC3339)

		By("applying a maintenance announcement for everyone and a flag for u1")
		kubectl(ctx, fmt.Sprintf(maintenanceYAML, expires, "Down at 02:00"), "-n", ns, "apply", "-f", "-")
		first := u1.next()
		Expect(first).To(And(HaveKeyWithValue("type", "system"), HaveKeyWithValue("eventType", "maintenance"),
			HaveKeyWithValue("data", map[string]any{"message": "Down at 02:00"}), HaveKeyWithValue("priority", "HIGH"),
			HaveKeyWithValue("action", "CREATE"), HaveKeyWithValue("name", "maintenance")))
		Expect(u2.next()).To(HaveKeyWithValue("_id", first["_id"]))
		Eventually(sevColumns(ctx, ns, "maintenance")).Should(HaveExactElements(
			"maintenance", "app", "maintenance", "Delivered", first["_id"], Not(BeEmpty()), Not(BeEmpty())))

		kubectl(ctx, betaYAML, "-n", ns, "apply", "-f", "-")
		Expect(u1.next()).To(And(HaveKeyWithValue("eventType", "feature_flag"), HaveKeyWithValue("data", map[string]any{"flag": "new-editor"})))
		streamer.publishCustom(key, "after-beta")
		Expect(u2.next()).To(HaveKeyWithValue("data", map[string]any{"marker": "after-beta"}), "u2 is outside the flag's audience")
		Expect(u1.next()).To(HaveKeyWithValue("type", "custom"))

		By("a user connecting later receives the announcement in force once, right after the connection event")
		u3 := streamer.connect(key, "u3")
		late := u3.next()
		Expect(late).To(And(HaveKeyWithValue("name", "maintenance"), HaveKeyWithValue("_id", u3.startID)),
			"without an id: of its own, the client's resume position stays where the connection event put it")
		streamer.publishCustom(key, "after-late-join")
		for _, u := range []*userStream{u1, u2, u3} {
			Expect(u.next()).To(HaveKeyWithValue("data", map[string]any{"marker": "after-late-join"}), "and nothing before it")
		}

		By("editing the announcement: its next revision")
		kubectl(ctx, fmt.Sprintf(maintenanceYAML, expires, "Moved to 03:00"), "-n", ns, "apply", "-f", "-")
		edited := u1.next()
		Expect(edited).To(And(HaveKeyWithValue("action", "UPDATE"), HaveKeyWithValue("revision", BeEquivalentTo(2)),
			HaveKeyWithValue("data", map[string]any{"message": "Moved to 03:00"})))
		Expect(u2.next()).To(HaveKeyWithValue("action", "UPDATE"))
		Eventually(sevColumns(ctx, ns, "maintenance")).Should(ContainElement(edited["_id"]))

		By("deleting the flag: u1 is told to take it down")
		kubectl(ctx, "", "-n", ns, "delete", "sev", "beta")
		Expect(u1.next()).To(And(HaveKeyWithValue("action", "DELETE"), HaveKeyWithValue("name", "beta")))

		By("restarting the streamer: nothing is announced again")
		streamer.stop()
		restarted := startChannelStreamer(ns)
		Expect(restarted.logs.String()).NotTo(ContainSubstring(`"msg":"SystemEvent announced"`))
		Expect(sevColumns(ctx, ns, "maintenance")()).To(ContainElement(edited["_id"]))
		rejoined := restarted.connect(key, "u1")
		Expect(rejoined.next()).To(And(HaveKeyWithValue("action", "UPDATE"), HaveKeyWithValue("data", map[string]any{"message": "Moved to 03:00"}),
			HaveKeyWithValue("_id", rejoined.startID)), "the announcement in force, to a user connecting to the new streamer")

		By("resuming across the restart: the announcement once, unless Last-Event-ID shows it was seen")
		behind := restarted.resume(key, "u2", first["_id"].(string))
		Expect(behind.next()).To(HaveKeyWithValue("action", "UPDATE"))
		seen := restarted.resume(key, "u3", edited["_id"].(string))
		restarted.publishCustom(key, "after-resume")
		Expect(seen.next()).To(HaveKeyWithValue("data", map[string]any{"marker": "after-resume"}), "nothing before the marker")
		Expect(behind.next()).To(HaveKeyWithValue("data", map[string]any{"marker": "after-resume"}), "and the announcement only once")
	})

	It("delivers a scheduled announcement on time, and records its expiry", func(ctx SpecContext) {
		ns := clusterNamespace(ctx)
		key := createChannelWithKey(ctx, ns)
		asStreamer(ctx, ns)
		streamer := startChannelStreamer(ns)
		u1 := streamer.connect(key, "u1")

		deliverAt := time.Now().Add(3 * time.Second).Truncate(time.Second)
		kubectl(ctx, fmt.Sprintf(`apiVersion: notify.herald.dev/v1alpha1
kind: SystemEvent
metadata: {name: upgrade}
spec:
  channelRef: {name: app}
  eventType: maintenance
  audience: {all: true}
  deliverAt: %q
  expiresAt: %q
  data: {message: Upgrade starts now}
`, deliverAt.UTC().Format(time.RFC3339), deliverAt.Add(2*time.Second).UTC().Format(time.RFC3339)), "-n", ns, "apply", "-f", "-")
		Eventually(sevColumns(ctx, ns, "upgrade")).Should(ContainElement("Scheduled"))
		Expect(time.Now()).To(BeTemporally("<", deliverAt), "seen as Scheduled before its time")

		event := u1.next()
		Expect(time.Now()).To(BeTemporally(">=", deliverAt))
		Expect(event).To(HaveKeyWithValue("data", map[string]any{"message": "Upgrade starts now"}))
		Eventually(sevColumns(ctx, ns, "upgrade"), 10*time.Second).Should(ContainElement("Expired"))
		Expect(sevColumns(ctx, ns, "upgrade")()).To(ContainElement(event["_id"]))
	})
})
