package app_test

import (
	"context"
	"crypto/rand"
	"log/slog"
	"net/http"
	"time"

	. "github.com/onsi/ginkgo/v2"
	. "github.com/onsi/gomega"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"sigs.k8s.io/controller-runtime/pkg/client"

	notifyv1alpha1 "github.com/herald-notify/herald/api/v1alpha1"
	"github.com/herald-notify/herald/internal/testutil"
	"github.com/herald-notify/herald/streamer/app"
	"github.com/herald-notify/herald/streamer/auth"
)

var _ = Describe("herald streamer --channel", func() {
	It("serves the channel from the API and applies a rotated key while an old stream stays open", func(ctx SpecContext) {
		ns := cluster.Namespace(ctx)
		oldKey := cluster.CreateChannelWithKey(ctx, ns)
		asStreamer(ctx, ns)
		streamer := startChannelStreamer(ns)
		addr := streamer.addr

		sign := func(kid string, key []byte, user string, publish bool) string {
			token, err := auth.Sign(auth.TokenClaims{Subject: user, ExpiresAt: time.Now().Add(time.Hour), Publish: publish,
				PublishGrant: notifyv1alpha1.PublishGrantSpec{Claim: "scope", Value: "notifications:publish"}},
				notifyv1alpha1.HS256, kid, key)
			Expect(err).NotTo(HaveOccurred())
			return token
		}
		openStream := func(token string) (*http.Response, error) {
			req, err := http.NewRequest(http.MethodGet, "http://"+addr+"/api/v1/sse/notifications", nil)
			Expect(err).NotTo(HaveOccurred())
			req.Header.Set("Authorization", "Bearer "+token)
			return http.DefaultClient.Do(req)
		}
		u1 := streamer.connect(oldKey, "u1")

		By("replacing kid k1 with k2 in the Secret")
		newKey := make([]byte, 32)
		_, _ = rand.Read(newKey)
		secret := &corev1.Secret{ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: "app-keys"}}
		Expect(cluster.Client.Get(ctx, client.ObjectKeyFromObject(secret), secret)).To(Succeed())
		secret.Data = map[string][]byte{"k2": newKey}
		Expect(cluster.Client.Update(ctx, secret)).To(Succeed())

		status := func(token string) func() (int, error) {
			return func() (int, error) {
				resp, err := openStream(token)
				if err != nil {
					return 0, err
				}
				return resp.StatusCode, resp.Body.Close()
			}
		}
		Eventually(status(sign("k1", oldKey, "u2", false))).Should(Equal(http.StatusUnauthorized))
		Expect(status(sign("k2", newKey, "u2", false))()).To(Equal(http.StatusOK))

		By("still delivering to the stream opened with the old key")
		Expect(streamer.publishNotification(sign("k2", newKey, "backend", true))).To(Equal(http.StatusAccepted))
		Expect(u1.next()).To(HaveKeyWithValue("notificationType", "ORDER_SHIPPED"))
	})
})

var _ = Describe("herald streamer --channel, before its key Secret", func() {
	It("waits alive and unready instead of exiting, saying why on the channel, and serves once the Secret holds a usable key", func(ctx SpecContext) {
		ns := cluster.Namespace(ctx)
		Expect(cluster.Client.Create(ctx, &notifyv1alpha1.NotificationChannel{
			ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: "app"},
			Spec:       notifyv1alpha1.NotificationChannelSpec{Auth: notifyv1alpha1.AuthSpec{KeySecretRef: notifyv1alpha1.LocalSecretReference{Name: "app-keys"}}},
		})).To(Succeed())
		asStreamer(ctx, ns)
		startOperator(ns)
		logs := &testutil.Buffer{}
		runCtx, stop := context.WithCancel(context.Background())
		done := make(chan error, 1)
		go func() {
			done <- app.Run(runCtx, withLogger(app.Options{Channel: ns + "/app", Listen: "127.0.0.1:0", MetricsListen: "127.0.0.1:0", PodName: "app-streamer-0"},
				slog.New(slog.NewJSONHandler(logs, nil))))
		}()
		DeferCleanup(func() {
			stop()
			Eventually(done).Should(Receive(BeNil()))
		})
		var metrics string
		Eventually(func() string { metrics = logField(logs, "metrics listening", "metricsListen"); return metrics }).ShouldNot(BeEmpty())
		probe := func(path string) func() (int, error) {
			return func() (int, error) {
				resp, err := http.Get("http://" + metrics + path)
				if err != nil {
					return 0, err
				}
				return resp.StatusCode, resp.Body.Close()
			}
		}
		Eventually(logs.String).Should(ContainSubstring("waiting for the key Secret"))
		Expect(probe("/healthz")()).To(Equal(http.StatusOK), "alive: the kubelet leaves it running")
		Expect(probe("/readyz")()).To(Equal(http.StatusServiceUnavailable))
		Eventually(channelCondition(ctx, ns, notifyv1alpha1.ConditionSecretsUsable)).Should(And(
			conditionOf(metav1.ConditionFalse, notifyv1alpha1.ReasonSecretNotFound),
			HaveField("Message", reportedAs(`Secret "app-keys" named by spec.auth.keySecretRef does not exist in namespace "`+ns+`": create it with one data entry per verification key, named by its key id (kid)`))))
		Eventually(channelCondition(ctx, ns, notifyv1alpha1.ConditionDegraded)).Should(conditionOf(metav1.ConditionTrue, notifyv1alpha1.ReasonSecretNotFound))
		Expect(channelCondition(ctx, ns, notifyv1alpha1.ConditionReady)()).To(conditionOf(metav1.ConditionFalse, notifyv1alpha1.ReasonSecretNotFound))

		By("creating the Secret with a key too short, then a usable one")
		secret := &corev1.Secret{ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: "app-keys"}, Data: map[string][]byte{"k1": []byte("short")}}
		Expect(cluster.Client.Create(ctx, secret)).To(Succeed())
		Eventually(logs.String).Should(ContainSubstring("waiting for a usable version of the key Secret"))
		Expect(probe("/readyz")()).To(Equal(http.StatusServiceUnavailable))
		Eventually(channelCondition(ctx, ns, notifyv1alpha1.ConditionDegraded), 5*time.Second).Should(And(
			conditionOf(metav1.ConditionTrue, notifyv1alpha1.ReasonInvalidKey),
			HaveField("Message", And(ContainSubstring(`Secret "app-keys" named by spec.auth.keySecretRef holds no usable key for algorithms HS256: key "k1": `),
				ContainSubstring("HS256 needs at least 32 bytes")))))
		key := make([]byte, 32)
		_, _ = rand.Read(key)
		secret.Data = map[string][]byte{"k1": key}
		Expect(cluster.Client.Update(ctx, secret)).To(Succeed())
		Eventually(probe("/readyz")).Should(Equal(http.StatusOK))
		Eventually(channelCondition(ctx, ns, notifyv1alpha1.ConditionSecretsUsable), 5*time.Second).Should(
			conditionOf(metav1.ConditionTrue, notifyv1alpha1.ReasonSecretsValid))
		Eventually(channelCondition(ctx, ns, notifyv1alpha1.ConditionDegraded)).Should(conditionOf(metav1.ConditionFalse, notifyv1alpha1.ReasonAsExpected))
		streamer := &runningStreamer{addr: logField(logs, "streamer started", "listen"), logs: logs}
		Expect(streamer.addr).NotTo(BeEmpty())
		streamer.connect(key, "u1")
	})
})
