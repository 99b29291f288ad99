package app_test

import (
	"context"
	"log/slog"
	"net/http"
	"sync"

	natsgo "github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
	. "github.com/onsi/ginkgo/v2"
	. "github.com/onsi/gomega"
	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	ctrl "sigs.k8s.io/controller-runtime"
	"sigs.k8s.io/controller-runtime/pkg/cache"
	"sigs.k8s.io/controller-runtime/pkg/client"
	ctrlconfig "sigs.k8s.io/controller-runtime/pkg/client/config"
	"sigs.k8s.io/controller-runtime/pkg/config"
	"sigs.k8s.io/controller-runtime/pkg/log/zap"
	metricsserver "sigs.k8s.io/controller-runtime/pkg/metrics/server"

	notifyv1alpha1 "github.com/herald-notify/herald/api/v1alpha1"
	"github.com/herald-notify/herald/controllers"
	"github.com/herald-notify/herald/internal/apiserver"
	"github.com/herald-notify/herald/internal/statusapply"
	"github.com/herald-notify/herald/internal/testutil"
	"github.com/herald-notify/herald/internal/testutil/natstest"
	"github.com/herald-notify/herald/streamer/app"
	"github.com/herald-notify/herald/streamer/log/jetstreamlog"
)

var operatorLogger sync.Once

// startOperator runs the operator (its reconcilers, as `herald operator`
// runs them, as the API server's administrator) for the channels of ns
// alone, until the spec ends.
func startOperator(ns string) {
	GinkgoHelper()
	operatorLogger.Do(func() { ctrl.SetLogger(zap.New(zap.WriteTo(GinkgoWriter))) })
	scheme, err := apiserver.NewScheme()
	Expect(err).NotTo(HaveOccurred())
	opts := controllers.CacheOptions()
	opts.DefaultNamespaces = map[string]cache.Config{ns: {}}
	mgr, err := ctrl.NewManager(cluster.Config, ctrl.Options{
		Scheme: scheme, Cache: opts,
		Metrics: metricsserver.Options{BindAddress: "0"}, HealthProbeBindAddress: "0",
		Controller: config.Controller{SkipNameValidation: new(true)},
	})
	Expect(err).NotTo(HaveOccurred())
	Expect(controllers.Setup(mgr, "example.com/herald:test")).To(Succeed())
	ctx, cancel := context.WithCancel(context.Background())
	stopped := make(chan error, 1)
	go func() { stopped <- mgr.Start(ctx) }()
	DeferCleanup(func() {
		cancel()
		Eventually(stopped).Should(Receive(BeNil()))
	})
}

// channelCondition polls the condition typ of channel ns/app.
func channelCondition(ctx context.Context, ns, typ string) func() *metav1.Condition {
	return func() *metav1.Condition {
		channel := &notifyv1alpha1.NotificationChannel{}
		Expect(cluster.Client.Get(ctx, client.ObjectKey{Namespace: ns, Name: "app"}, channel)).To(Succeed())
		for _, c := range channel.Status.Conditions {
			if c.Type == typ {
				return &c
			}
		}
		return nil
	}
}

// conditionOf matches a condition at status with reason.
func conditionOf(status metav1.ConditionStatus, reason string) OmegaMatcher {
	return And(Not(BeNil()), HaveField("Status", status), HaveField("Reason", reason))
}

// natsChannel starts a one-node NATS and turns channel ns/app, created
// with its key, into a channel on it, served by the Role of its streamers.
func natsChannel(ctx context.Context, ns string) (*natstest.Cluster, *notifyv1alpha1.NotificationChannel) {
	GinkgoHelper()
	nats, channel, _ := natsChannelWithToken(ctx, ns, "")
	return nats, channel
}

// natsCredentialsSecret is the NATS credentials Secret of
// natsChannelWithToken's channel.
const natsCredentialsSecret = "app-nats"

// natsChannelWithToken is natsChannel on a NATS that requires token (none
// when empty), which the channel's credentials Secret holds. It also returns
// the channel's key.
func natsChannelWithToken(ctx context.Context, ns, token string) (*natstest.Cluster, *notifyv1alpha1.NotificationChannel, []byte) {
	GinkgoHelper()
	nats, err := natstest.Start(natstest.Options{Nodes: 1, Dir: GinkgoT().TempDir(), Token: token})
	Expect(err).NotTo(HaveOccurred())
	DeferCleanup(nats.Shutdown)
	key := cluster.CreateChannelWithKey(ctx, ns)
	channel := &notifyv1alpha1.NotificationChannel{}
	Expect(cluster.Client.Get(ctx, client.ObjectKey{Namespace: ns, Name: "app"}, channel)).To(Succeed())
	channel.Spec.Broker = notifyv1alpha1.BrokerSpec{Type: notifyv1alpha1.BrokerNATS,
		NATS: &notifyv1alpha1.NATSBrokerSpec{URL: nats.URL(), StreamReplicas: 1}}
	if token != "" {
		Expect(cluster.Client.Create(ctx, &corev1.Secret{ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: natsCredentialsSecret},
			Data: map[string][]byte{notifyv1alpha1.NATSTokenKey: []byte(token)}})).To(Succeed())
		channel.Spec.Broker.NATS.CredentialsSecretRef = &notifyv1alpha1.LocalSecretReference{Name: natsCredentialsSecret}
	}
	Expect(cluster.Client.Update(ctx, channel)).To(Succeed())
	asStreamer(ctx, ns)
	return nats, channel, key
}

var _ = Describe("herald streamer --channel, on a NATS channel", func() {
	It("says on the channel when NATS cannot be reached, which the operator folds into Degraded, and when it can again", func(ctx SpecContext) {
		ns := cluster.Namespace(ctx)
		nats, channel := natsChannel(ctx, ns)
		startOperator(ns)
		startChannelStreamerAs(ns, "app-streamer-0")

		Eventually(channelCondition(ctx, ns, notifyv1alpha1.ConditionBrokerReachable)).Should(And(
			conditionOf(metav1.ConditionTrue, notifyv1alpha1.ReasonBrokerConnected),
			HaveField("Message", HavePrefix("pod app-streamer-0 at ")),
			HaveField("ObservedGeneration", channel.Generation)))

		By("the streamer's identity patching another channel's status")
		other := &notifyv1alpha1.NotificationChannel{
			ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: "other"},
			Spec:       *channel.Spec.DeepCopy(),
		}
		Expect(cluster.Client.Create(ctx, other)).To(Succeed())
		streamerConfig, err := ctrlconfig.GetConfig() // KUBECONFIG impersonates the streamer (asStreamer)
		Expect(err).NotTo(HaveOccurred())
		asStreamerClient, err := client.New(streamerConfig, client.Options{Scheme: cluster.Scheme})
		Expect(err).NotTo(HaveOccurred())
		report := map[string]any{"conditions": []metav1.Condition{{Type: notifyv1alpha1.ConditionBrokerReachable, Status: metav1.ConditionFalse,
			Reason: notifyv1alpha1.ReasonBrokerUnreachable, Message: "forged", LastTransitionTime: metav1.Now()}}}
		err = statusapply.Apply(ctx, asStreamerClient, other, "NotificationChannel", "", report, statusapply.StreamerManager)
		Expect(apierrors.IsForbidden(err)).To(BeTrue(), "got %v", err)

		By("stopping NATS")
		nats.StopAll()
		DeferCleanup(func() { Expect(nats.RestartAll()).To(Succeed()) }) // no-op once restarted below
		Eventually(channelCondition(ctx, ns, notifyv1alpha1.ConditionBrokerReachable)).Should(And(
			conditionOf(metav1.ConditionFalse, notifyv1alpha1.ReasonBrokerUnreachable),
			HaveField("Message", And(HavePrefix("pod app-streamer-0 at "), ContainSubstring("cannot reach NATS at "+nats.URL()))),
		))
		AddReportEntry("BrokerReachable while NATS is stopped", channelCondition(ctx, ns, notifyv1alpha1.ConditionBrokerReachable)().Message)
		Eventually(func() []string {
			reported := channelCondition(ctx, ns, notifyv1alpha1.ConditionBrokerReachable)()
			degraded := channelCondition(ctx, ns, notifyv1alpha1.ConditionDegraded)()
			return []string{string(degraded.Status), degraded.Reason, degraded.Message, reported.Message}
		}).Should(Satisfy(func(s []string) bool {
			return s[0] == string(metav1.ConditionTrue) && s[1] == notifyv1alpha1.ReasonBrokerUnreachable && s[2] == s[3]
		}), "Degraded says BrokerUnreachable with the streamer's message")

		By("starting NATS again")
		Expect(nats.RestartAll()).To(Succeed())
		Eventually(channelCondition(ctx, ns, notifyv1alpha1.ConditionBrokerReachable)).Should(
			conditionOf(metav1.ConditionTrue, notifyv1alpha1.ReasonBrokerConnected))
		Eventually(channelCondition(ctx, ns, notifyv1alpha1.ConditionDegraded)).Should(
			conditionOf(metav1.ConditionFalse, notifyv1alpha1.ReasonAsExpected))
	})

	It("takes a rotated credentials Secret on its next connection to NATS, without a restart", func(ctx SpecContext) {
		ns := cluster.Namespace(ctx)
		nats, _, key := natsChannelWithToken(ctx, ns, "first")
		streamer := startChannelStreamerAs(ns, "app-streamer-0")
		user := streamer.connect(key, "u1")
		streamer.publishCustom(key, "before")
		Expect(user.next()).To(HaveKeyWithValue("data", HaveKeyWithValue("marker", "before")))

		By("NATS accepting only a new token, which the Secret then holds")
		nats.SetToken("second")
		nats.Stop(0)
		Expect(nats.Restart(0)).To(Succeed())
		secret := &corev1.Secret{}
		Expect(cluster.Client.Get(ctx, client.ObjectKey{Namespace: ns, Name: natsCredentialsSecret}, secret)).To(Succeed())
		secret.Data[notifyv1alpha1.NATSTokenKey] = []byte("second")
		Expect(cluster.Client.Update(ctx, secret)).To(Succeed())

		Eventually(func() int { return streamer.publishCustomStatus(key, "after") }).Should(Equal(http.StatusAccepted))
		Expect(user.next()).To(HaveKeyWithValue("data", HaveKeyWithValue("marker", "after")), "the same stream, no restart")
	})

	It("says a credentials Secret that changes the way to authenticate needs a restart, and keeps the credentials it holds", func(ctx SpecContext) {
		ns := cluster.Namespace(ctx)
		_, _, key := natsChannelWithToken(ctx, ns, "first")
		startOperator(ns)
		streamer := startChannelStreamerAs(ns, "app-streamer-0")
		Eventually(channelCondition(ctx, ns, notifyv1alpha1.ConditionSecretsUsable)).Should(
			conditionOf(metav1.ConditionTrue, notifyv1alpha1.ReasonSecretsValid))

		secret := &corev1.Secret{}
		Expect(cluster.Client.Get(ctx, client.ObjectKey{Namespace: ns, Name: natsCredentialsSecret}, secret)).To(Succeed())
		secret.Data = map[string][]byte{notifyv1alpha1.NATSUsernameKey: []byte("herald"), notifyv1alpha1.NATSPasswordKey: []byte("pw")}
		Expect(cluster.Client.Update(ctx, secret)).To(Succeed())

		Eventually(channelCondition(ctx, ns, notifyv1alpha1.ConditionSecretsUsable)).Should(And(
			conditionOf(metav1.ConditionFalse, notifyv1alpha1.ReasonInvalidBrokerCredentials),
			HaveField("Message", ContainSubstring(`Secret "`+natsCredentialsSecret+`" named by spec.broker.nats.credentialsSecretRef is unusable: `+
				`the Secret now names a user and password (entries "username" and "password") instead of a token (entry "token"): `+
				`the way to authenticate is set when a pod starts; restart the channel's pods to apply it`))))
		Eventually(channelCondition(ctx, ns, notifyv1alpha1.ConditionDegraded)).Should(
			conditionOf(metav1.ConditionTrue, notifyv1alpha1.ReasonInvalidBrokerCredentials))
		streamer.publishCustom(key, "still connected with the token")
	})

	It("says IncompatibleStream, naming the stream and the field, before it exits on a stream it cannot use", func(ctx SpecContext) {
		ns := cluster.Namespace(ctx)
		nats, _ := natsChannel(ctx, ns)
		nc, err := natsgo.Connect(nats.URL())
		Expect(err).NotTo(HaveOccurred())
		DeferCleanup(nc.Close)
		js, err := jetstream.New(nc)
		Expect(err).NotTo(HaveOccurred())
		stream := jetstreamlog.StreamName(ns, "app")
		_, err = js.CreateStream(ctx, jetstream.StreamConfig{Name: stream, Subjects: []string{"orders.>"}, Storage: jetstream.FileStorage})
		Expect(err).NotTo(HaveOccurred())

		logs := &testutil.Buffer{}
		done := make(chan error, 1)
		go func() {
			done <- app.Run(context.Background(), withLogger(app.Options{Channel: ns + "/app", Listen: "127.0.0.1:0", MetricsListen: "127.0.0.1:0",
				PodName: "app-streamer-0"}, slog.New(slog.NewJSONHandler(logs, nil))))
		}()
		Eventually(done).Should(Receive(MatchError(ContainSubstring("subjects"))))
		Expect(channelCondition(ctx, ns, notifyv1alpha1.ConditionBrokerReachable)()).To(And(
			conditionOf(metav1.ConditionFalse, notifyv1alpha1.ReasonIncompatibleStream),
			HaveField("Message", And(HavePrefix("pod app-streamer-0 at "), ContainSubstring(stream), ContainSubstring("subjects")))))
	})
})
