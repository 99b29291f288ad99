package app_test

import (
	"net/http"

	. "github.com/onsi/ginkgo/v2"
	. "github.com/onsi/gomega"
	"sigs.k8s.io/controller-runtime/pkg/client"

	notifyv1alpha1 "github.com/herald-notify/herald/api/v1alpha1"
)

var _ = Describe("herald streamer --channel, with a changed channel", func() {
	It("applies the setting with the streamer's own rights, keeping an open stream", func(ctx SpecContext) {
		ns := cluster.Namespace(ctx)
		key := cluster.CreateChannelWithKey(ctx, ns)
		asStreamer(ctx, ns)
		streamer := startChannelStreamer(ns)
		u1 := streamer.connect(key, "u1")

		By("allowing an origin on the channel, as its owner (the API server's admin)")
		channel := &notifyv1alpha1.NotificationChannel{}
		Expect(cluster.Client.Get(ctx, client.ObjectKey{Namespace: ns, Name: "app"}, channel)).To(Succeed())
		channel.Spec.CORS.AllowedOrigins = []string{"https://app.example.com"}
		Expect(cluster.Client.Update(ctx, channel)).To(Succeed())
		Eventually(func() string { return logField(streamer.logs, "channel settings applied", "resourceVersion") }).
			Should(Equal(channel.ResourceVersion))
		preflight, err := http.NewRequest(http.MethodOptions, "http://"+streamer.addr+"/api/v1/sse/tickets", nil)
		Expect(err).NotTo(HaveOccurred())
		preflight.Header.Set("Origin", "https://app.example.com")
		preflight.Header.Set("Access-Control-Request-Method", http.MethodPost)
		answer, err := http.DefaultClient.Do(preflight)
		Expect(err).NotTo(HaveOccurred())
		Expect(answer.Body.Close()).To(Succeed())
		Expect(answer.Header.Get("Access-Control-Allow-Origin")).To(Equal("https://app.example.com"))

		By("still delivering to the stream opened before the change")
		streamer.publishCustom(key, "after-change")
		Expect(u1.next()).To(HaveKeyWithValue("data", map[string]any{"marker": "after-change"}))
	})
})
