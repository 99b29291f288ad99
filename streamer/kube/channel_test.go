package kube_test

import (
	"context"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"strings"
	"time"

	. "github.com/onsi/ginkgo/v2"
	. "github.com/onsi/gomega"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/client-go/kubernetes"
	"sigs.k8s.io/controller-runtime/pkg/client"

	notifyv1alpha1 "github.com/herald-notify/herald/api/v1alpha1"
	"github.com/herald-notify/herald/internal/testutil"
	"github.com/herald-notify/herald/streamer/auth"
	"github.com/herald-notify/herald/streamer/kube"
	eventlog "github.com/herald-notify/herald/streamer/log"
	"github.com/herald-notify/herald/streamer/server"
)

// liveChannel is a streamer serving a channel of a fresh namespace, with
// both watches running, as herald streamer --channel runs it.
type liveChannel struct {
	key     types.NamespacedName
	secret  *corev1.Secret
	srv     *server.Server
	url     string
	logs    *testutil.Buffer
	initial *notifyv1alpha1.NotificationChannel
}

// startLiveChannel creates the key Secret with data and a channel whose spec
// is edited by edit, and serves it until the spec ends.
func startLiveChannel(ctx context.Context, data map[string][]byte, edit func(*notifyv1alpha1.NotificationChannelSpec)) *liveChannel {
	GinkgoHelper()
	ns := &corev1.Namespace{ObjectMeta: metav1.ObjectMeta{GenerateName: "live-"}}
	Expect(api.Client.Create(ctx, ns)).To(Succeed())
	secret := &corev1.Secret{ObjectMeta: metav1.ObjectMeta{Namespace: ns.Name, Name: "app-keys"}, Data: data}
	Expect(api.Client.Create(ctx, secret)).To(Succeed())
	channel := &notifyv1alpha1.NotificationChannel{
		ObjectMeta: metav1.ObjectMeta{Namespace: ns.Name, Name: "app"},
		Spec: notifyv1alpha1.NotificationChannelSpec{Auth: notifyv1alpha1.AuthSpec{
			KeySecretRef: notifyv1alpha1.LocalSecretReference{Name: "app-keys"},
		}},
	}
	if edit != nil {
		edit(&channel.Spec)
	}
	Expect(api.Client.Create(ctx, channel)).To(Succeed())

	l := &liveChannel{key: client.ObjectKeyFromObject(channel), secret: secret, logs: &testutil.Buffer{}}
	logger := slog.New(slog.NewJSONHandler(l.logs, nil))
	loaded, err := kube.LoadChannel(ctx, api.Client, l.key)
	Expect(err).NotTo(HaveOccurred())
	l.initial = loaded
	clientset, err := kubernetes.NewForConfig(api.Config)
	Expect(err).NotTo(HaveOccurred())
	watching, err := client.NewWithWatch(api.Config, client.Options{Scheme: api.Scheme})
	Expect(err).NotTo(HaveOccurred())

	keyWatcher := kube.NewKeyWatcher(clientset, loaded, func(k *auth.KeySet) { l.srv.SetKeys(k) }, logger)
	keys, err := keyWatcher.LoadKeys(ctx)
	Expect(err).NotTo(HaveOccurred())
	l.srv, err = server.New(server.Config{Channel: loaded, Keys: keys, Log: eventlog.NewEmbedded(eventlog.Options{})})
	Expect(err).NotTo(HaveOccurred())
	channelWatcher := kube.NewChannelWatcher(watching, loaded, keyWatcher, l.srv.SetSpec, logger)

	runCtx, stop := context.WithCancel(context.Background())
	stopped := make(chan struct{}, 3)
	for _, run := range []func(context.Context){
		l.srv.Run,
		func(ctx context.Context) { _ = keyWatcher.Run(ctx) },
		func(ctx context.Context) { _ = channelWatcher.Run(ctx) },
	} {
		go func() { run(runCtx); stopped <- struct{}{} }()
	}
	web := httptest.NewServer(l.srv.Handler())
	l.url = web.URL
	DeferCleanup(func() {
		web.CloseClientConnections()
		web.Close()
		stop()
		for range 3 {
			Eventually(stopped).Should(Receive())
		}
	})
	Eventually(l.logs.String).Should(ContainSubstring(`"msg":"keys loaded"`))
	return l
}

// editChannel updates the channel with its spec changed by edit, and returns
// its new resourceVersion.
func (l *liveChannel) editChannel(ctx context.Context, edit func(*notifyv1alpha1.NotificationChannelSpec)) string {
	GinkgoHelper()
	channel := &notifyv1alpha1.NotificationChannel{}
	Expect(api.Client.Get(ctx, l.key, channel)).To(Succeed())
	edit(&channel.Spec)
	Expect(api.Client.Update(ctx, channel)).To(Succeed())
	return channel.ResourceVersion
}

// announce publishes a system event with a token signed by alg and key, and
// expects it accepted.
func (l *liveChannel) announce(alg notifyv1alpha1.JWTAlgorithm, kid string, key []byte, eventType string) {
	GinkgoHelper()
	token, err := auth.Sign(auth.TokenClaims{
		Subject: "backend", ExpiresAt: time.Now().Add(time.Hour), Publish: true,
		PublishGrant: l.initial.Spec.Auth.PublishGrant,
	}, alg, kid, key)
	Expect(err).NotTo(HaveOccurred())
	req, err := http.NewRequest(http.MethodPost, l.url+"/api/v1/system-events", strings.NewReader(`{"eventType":"`+eventType+`"}`))
	Expect(err).NotTo(HaveOccurred())
	req.Header.Set("Authorization", "Bearer "+token)
	resp, err := http.DefaultClient.Do(req)
	Expect(err).NotTo(HaveOccurred())
	Expect(resp.StatusCode).To(Equal(http.StatusAccepted))
	Expect(resp.Body.Close()).To(Succeed())
}

// signWith signs a token for user with alg.
func signWith(alg notifyv1alpha1.JWTAlgorithm, kid string, key []byte, user string) string {
	token, err := auth.Sign(auth.TokenClaims{Subject: user, ExpiresAt: time.Now().Add(time.Hour)}, alg, kid, key)
	Expect(err).NotTo(HaveOccurred())
	return token
}

var _ = Describe("a streamer watching its channel", func() {
	It("applies changed settings while an old stream stays open and receiving", func(ctx SpecContext) {
		key := randomKey()
		l := startLiveChannel(ctx, map[string][]byte{"k1": key}, nil)
		status, old := open(l.url, sign("k1", key, "u1"))
		Expect(status).To(Equal(http.StatusOK))
		_, err := old.Next()
		Expect(err).NotTo(HaveOccurred())

		By("raising maxPerUser with the Reject policy, and allowing an origin")
		version := l.editChannel(ctx, func(spec *notifyv1alpha1.NotificationChannelSpec) {
			spec.Connections.MaxPerUser = 2
			spec.Connections.UserLimitPolicy = notifyv1alpha1.UserLimitReject
			spec.CORS.AllowedOrigins = []string{"https://app.example.com"}
		})
		Eventually(func() []string { return l.srv.Spec().CORS.AllowedOrigins }).Should(ConsistOf("https://app.example.com"))
		Eventually(l.logs.String).Should(MatchRegexp(`"msg":"channel settings applied".*"resourceVersion":"%s"`, version))
		Expect(l.srv.Spec().Connections.MaxPerUser).To(BeEquivalentTo(2))
		status, _ = open(l.url, sign("k1", key, "u1"))
		Expect(status).To(Equal(http.StatusOK), "the old stream and this one make two")
		status, _ = open(l.url, sign("k1", key, "u1"))
		Expect(status).To(Equal(http.StatusTooManyRequests))

		By("keeping the first stream: it receives the next broadcast")
		l.announce(notifyv1alpha1.HS256, "k1", key, "maintenance")
		ev, err := old.Next()
		Expect(err).NotTo(HaveOccurred())
		Expect(ev.Data).To(ContainSubstring(`"eventType":"maintenance"`))

		By("naming a start-only setting in the log, and applying the rest")
		l.editChannel(ctx, func(spec *notifyv1alpha1.NotificationChannelSpec) {
			spec.History.MaxEvents = 50
			spec.CORS.AllowedOrigins = []string{"https://other.example.com"}
		})
		Eventually(func() []string { return l.srv.Spec().CORS.AllowedOrigins }).Should(ConsistOf("https://other.example.com"))
		Eventually(l.logs.String).Should(ContainSubstring(`"needNewPods":["spec.history"]`))
		Expect(l.srv.Spec().History).To(Equal(l.initial.Spec.History))

		By("logging the channel's deletion, keeping its settings")
		Expect(api.Client.Delete(ctx, &notifyv1alpha1.NotificationChannel{
			ObjectMeta: metav1.ObjectMeta{Namespace: l.key.Namespace, Name: l.key.Name},
		})).To(Succeed())
		Eventually(l.logs.String).Should(ContainSubstring("the NotificationChannel was deleted"))
		l.announce(notifyv1alpha1.HS256, "k1", key, "after_delete")
		ev, err = old.Next()
		Expect(err).NotTo(HaveOccurred())
		Expect(ev.Data).To(ContainSubstring(`"eventType":"after_delete"`))
	})

	It("applies new algorithms once the key Secret fits them, keeping the settings in use until then", func(ctx SpecContext) {
		short, long := randomKey(), append(randomKey(), randomKey()...) // 32 bytes fit HS256 only, 64 bytes HS512 too
		l := startLiveChannel(ctx, map[string][]byte{"k1": short}, nil)
		status, old := open(l.url, sign("k1", short, "u1"))
		Expect(status).To(Equal(http.StatusOK))
		_, err := old.Next()
		Expect(err).NotTo(HaveOccurred())

		By("refusing HS512 while the Secret's key is too short for it")
		l.editChannel(ctx, func(spec *notifyv1alpha1.NotificationChannelSpec) {
			spec.Auth.Algorithms = []notifyv1alpha1.JWTAlgorithm{notifyv1alpha1.HS512}
			spec.CORS.AllowedOrigins = []string{"https://app.example.com"}
		})
		Eventually(l.logs.String).Should(ContainSubstring("cannot apply this version of the channel"))
		Expect(l.srv.Spec().CORS.AllowedOrigins).To(BeEmpty(), "nothing of that version applies")
		status, _ = open(l.url, sign("k1", short, "u2"))
		Expect(status).To(Equal(http.StatusOK), "the keys in use stay")

		By("applying that version with the first Secret that fits it")
		l.secret.Data = map[string][]byte{"k2": long}
		Expect(api.Client.Update(ctx, l.secret)).To(Succeed())
		Eventually(func() []string { return l.srv.Spec().CORS.AllowedOrigins }).Should(ConsistOf("https://app.example.com"))
		status, _ = open(l.url, signWith(notifyv1alpha1.HS512, "k2", long, "u3"))
		Expect(status).To(Equal(http.StatusOK))
		status, _ = open(l.url, signWith(notifyv1alpha1.HS256, "k2", long, "u4"))
		Expect(status).To(Equal(http.StatusUnauthorized), "HS256 is no longer allowed")

		By("still delivering to the stream opened before both changes")
		l.announce(notifyv1alpha1.HS512, "k2", long, "rotated")
		ev, err := old.Next()
		Expect(err).NotTo(HaveOccurred())
		Expect(ev.Data).To(ContainSubstring(`"eventType":"rotated"`))
	})

	It("applies a changed setting even while the latest Secret version is broken", func(ctx SpecContext) {
		key := randomKey()
		l := startLiveChannel(ctx, map[string][]byte{"k1": key}, nil)
		l.secret.Data = map[string][]byte{"k1": []byte("short")}
		Expect(api.Client.Update(ctx, l.secret)).To(Succeed())
		Eventually(l.logs.String).Should(ContainSubstring("ignoring an invalid version of the key Secret"))

		l.editChannel(ctx, func(spec *notifyv1alpha1.NotificationChannelSpec) {
			spec.CORS.AllowedOrigins = []string{"https://app.example.com"}
		})
		Eventually(func() []string { return l.srv.Spec().CORS.AllowedOrigins }).Should(ConsistOf("https://app.example.com"))
		status, _ := open(l.url, sign("k1", key, "u1"))
		Expect(status).To(Equal(http.StatusOK), "the keys in use stay")
	})
})
