package app_test

import (
	"context"
	"crypto/rand"
	"io"
	"log/slog"
	"net/http"
	"os"
	"path/filepath"
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

const streamerConfig = `# the channel the streamer serves
apiVersion: notify.herald.dev/v1alpha1
kind: NotificationChannel
metadata: {name: local}
spec:
  auth:
    keySecretRef: {name: dev-keys}
  drain:
    gracePeriod: 1s
    reconnectJitter: 500ms
`

var _ = Describe("herald streamer", func() {
	It("serves a channel from a manifest and a secrets folder, and drains on shutdown", func() {
		dir := GinkgoT().TempDir()
		config := filepath.Join(dir, "channel.yaml")
		Expect(os.WriteFile(config, []byte(streamerConfig), 0o600)).To(Succeed())
		secret := make([]byte, 32)
		_, _ = rand.Read(secret)
		Expect(os.MkdirAll(filepath.Join(dir, "secrets", "dev-keys"), 0o700)).To(Succeed())
		Expect(os.WriteFile(filepath.Join(dir, "secrets", "dev-keys", "local"), secret, 0o600)).To(Succeed())

		logs := &testutil.Buffer{}
		ctx, stop := context.WithCancel(context.Background())
		done := make(chan error, 1)
		go func() {
			// As the herald command runs it: what only the start used is
			// given back before it serves.
			done <- app.Run(ctx, withLogger(app.Options{Config: config, SecretsDir: filepath.Join(dir, "secrets"),
				Listen: "127.0.0.1:0", MetricsListen: "127.0.0.1:0", ReleaseMemory: true}, slog.New(slog.NewJSONHandler(logs, nil))))
		}()
		var api string
		Eventually(func() string { api = logField(logs, "streamer started", "listen"); return api }).ShouldNot(BeEmpty())
		Expect(logs.String()).NotTo(ContainSubstring("could not give back the memory of the start"))
		metricsAddr := logField(logs, "streamer started", "metricsListen")

		sign := func(user string, publish bool) string {
			token, err := auth.Sign(auth.TokenClaims{Subject: user, ExpiresAt: time.Now().Add(time.Hour), Publish: publish,
				PublishGrant: notifyv1alpha1.PublishGrantSpec{Claim: "scope", Value: "notifications:publish"}},
				notifyv1alpha1.HS256, "local", secret)
			Expect(err).NotTo(HaveOccurred())
			return token
		}
		req, _ := http.NewRequest(http.MethodGet, "http://"+api+"/api/v1/sse/notifications", nil)
		req.Header.Set("Authorization", "Bearer "+sign("u1", false))
		resp, err := http.DefaultClient.Do(req)
		Expect(err).NotTo(HaveOccurred())
		defer resp.Body.Close()
		reader := sse.NewReader(resp.Body)
		hello, err := reader.Next()
		Expect(err).NotTo(HaveOccurred())
		Expect(hello.Data).To(ContainSubstring(`"type":"connection"`))

		publish, _ := http.NewRequest(http.MethodPost, "http://"+api+"/api/v1/notifications",
			strings.NewReader(`{"recipientUserIds":["u1"],"notificationType":"VOCAB_TRAINER","data":{"message":"hi"}}`))
		publish.Header.Set("Authorization", "Bearer "+sign("backend", true))
		answer, err := http.DefaultClient.Do(publish)
		Expect(err).NotTo(HaveOccurred())
		Expect(answer.StatusCode).To(Equal(http.StatusAccepted))
		Expect(answer.Body.Close()).To(Succeed())
		notification, err := reader.Next()
		Expect(err).NotTo(HaveOccurred())
		Expect(notification.Data).To(ContainSubstring(`"message":"hi"`))

		metrics, err := http.Get("http://" + metricsAddr + "/metrics")
		Expect(err).NotTo(HaveOccurred())
		Expect(metrics.StatusCode).To(Equal(http.StatusOK))
		body, err := io.ReadAll(metrics.Body)
		Expect(err).NotTo(HaveOccurred())
		Expect(metrics.Body.Close()).To(Succeed())
		Expect(string(body)).To(ContainSubstring("herald_memory_released_bytes_total"), "it gives memory back once quiet")

		By("shutting down: the open stream ends and serveStreamer returns")
		stop()
		for {
			if _, err := reader.Next(); err != nil {
				break
			}
		}
		Eventually(done).Should(Receive(BeNil()))
		Expect(logField(logs, "draining", "gracePeriod")).To(Equal("1s"))
	})

	DescribeTable("refuses to start with an error naming what is wrong",
		func(setup func(dir string) app.Options, message string) {
			dir := GinkgoT().TempDir()
			err := app.Run(context.Background(), setup(dir))
			Expect(err).To(MatchError(ContainSubstring(message)))
		},
		Entry("an invalid manifest", func(dir string) app.Options {
			config := filepath.Join(dir, "channel.yaml")
			Expect(os.WriteFile(config, []byte(strings.Replace(streamerConfig, "spec:\n", "spec:\n  replicas: 2\n", 1)), 0o600)).To(Succeed())
			return app.Options{Config: config, SecretsDir: dir, Listen: "127.0.0.1:0", MetricsListen: "127.0.0.1:0"}
		}, "spec.replicas: Invalid value"),
		Entry("a missing key Secret", func(dir string) app.Options {
			config := filepath.Join(dir, "channel.yaml")
			Expect(os.WriteFile(config, []byte(streamerConfig), 0o600)).To(Succeed())
			return app.Options{Config: config, SecretsDir: dir, Listen: "127.0.0.1:0", MetricsListen: "127.0.0.1:0"}
		}, `failed to read the key Secret "dev-keys"`),
		Entry("a short HMAC key", func(dir string) app.Options {
			config := filepath.Join(dir, "channel.yaml")
			Expect(os.WriteFile(config, []byte(streamerConfig), 0o600)).To(Succeed())
			Expect(os.MkdirAll(filepath.Join(dir, "dev-keys"), 0o700)).To(Succeed())
			Expect(os.WriteFile(filepath.Join(dir, "dev-keys", "local"), []byte("short"), 0o600)).To(Succeed())
			return app.Options{Config: config, SecretsDir: dir, Listen: "127.0.0.1:0", MetricsListen: "127.0.0.1:0"}
		}, `the key Secret "dev-keys" holds no usable keys`),
		Entry("TLS and h2c together", func(dir string) app.Options {
			return withKeys(dir, "  http: {tls: {secretRef: {name: app-tls}}, h2c: true}\n")
		}, "spec.http.h2c: Invalid value"),
		Entry("a missing TLS Secret", func(dir string) app.Options {
			return withKeys(dir, "  http: {tls: {secretRef: {name: app-tls}}}\n")
		}, `failed to read the TLS Secret "app-tls" named by spec.http.tls.secretRef`),
		Entry("a TLS Secret without its key", func(dir string) app.Options {
			Expect(os.MkdirAll(filepath.Join(dir, "app-tls"), 0o700)).To(Succeed())
			Expect(os.WriteFile(filepath.Join(dir, "app-tls", "tls.crt"), []byte("not a certificate"), 0o600)).To(Succeed())
			return withKeys(dir, "  http: {tls: {secretRef: {name: app-tls}}}\n")
		}, `the TLS Secret "app-tls" named by spec.http.tls.secretRef is unusable: the entry "tls.key" is missing or empty`),
	)
})

// withKeys writes the manifest with the spec lines extra, and a usable key
// Secret, into dir, its secrets folder.
func withKeys(dir, extra string) app.Options {
	GinkgoHelper()
	config := filepath.Join(dir, "channel.yaml")
	Expect(os.WriteFile(config, []byte(streamerConfig+extra), 0o600)).To(Succeed())
	Expect(os.MkdirAll(filepath.Join(dir, "dev-keys"), 0o700)).To(Succeed())
	key := make([]byte, 32)
	_, _ = rand.Read(key)
	Expect(os.WriteFile(filepath.Join(dir, "dev-keys", "local"), key, 0o600)).To(Succeed())
	return app.Options{Config: config, SecretsDir: dir, Listen: "127.0.0.1:0", MetricsListen: "127.0.0.1:0"}
}
