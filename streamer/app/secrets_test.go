package app_test

import (
	"regexp"
	"time"

	. "github.com/onsi/ginkgo/v2"
	. "github.com/onsi/gomega"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"sigs.k8s.io/controller-runtime/pkg/client"

	notifyv1alpha1 "github.com/herald-notify/herald/api/v1alpha1"
	"github.com/herald-notify/herald/internal/statusapply"
	"github.com/herald-notify/herald/internal/testutil"
	"github.com/herald-notify/herald/internal/testutil/certtest"
	"github.com/herald-notify/herald/internal/testutil/natstest"
	"github.com/herald-notify/herald/streamer/app"
)

// reportedAs matches the message of a condition the streamers share, written
// by pod app-streamer-0, saying body.
func reportedAs(body string) OmegaMatcher {
	return MatchRegexp(`^pod app-streamer-0 at [0-9TZ:.-]+: ` + regexp.QuoteMeta(body) + `$`)
}

var _ = Describe("herald streamer --channel, on the channel's Secrets", func() {
	It("says on the channel what is wrong with the NATS credentials Secret, then the TLS Secret, while it waits for them", func(ctx SpecContext) {
		ns := cluster.Namespace(ctx)
		nats, err := natstest.Start(natstest.Options{Nodes: 1, Dir: GinkgoT().TempDir()})
		Expect(err).NotTo(HaveOccurred())
		DeferCleanup(nats.Shutdown)
		cluster.CreateChannelWithKey(ctx, ns)
		channel := &notifyv1alpha1.NotificationChannel{}
		Expect(cluster.Client.Get(ctx, client.ObjectKey{Namespace: ns, Name: "app"}, channel)).To(Succeed())
		channel.Spec.Broker = notifyv1alpha1.BrokerSpec{Type: notifyv1alpha1.BrokerNATS, NATS: &notifyv1alpha1.NATSBrokerSpec{
			URL: nats.URL(), StreamReplicas: 1, CredentialsSecretRef: &notifyv1alpha1.LocalSecretReference{Name: "app-nats"},
		}}
		channel.Spec.HTTP.TLS = &notifyv1alpha1.HTTPTLSSpec{SecretRef: notifyv1alpha1.LocalSecretReference{Name: "app-tls"}}
		Expect(cluster.Client.Update(ctx, channel)).To(Succeed())
		asStreamer(ctx, ns)
		startOperator(ns)
		logs := &testutil.Buffer{}
		run(app.Options{Channel: ns + "/app", Listen: "127.0.0.1:0", MetricsListen: "127.0.0.1:0", PodName: "app-streamer-0"}, logs)

		secretsUsable := channelCondition(ctx, ns, notifyv1alpha1.ConditionSecretsUsable)
		Eventually(secretsUsable).Should(And(conditionOf(metav1.ConditionFalse, notifyv1alpha1.ReasonSecretNotFound),
			HaveField("Message", reportedAs(`Secret "app-nats" named by spec.broker.nats.credentialsSecretRef does not exist in namespace "`+ns+
				`": create it with an entry "nats.creds" (a NATS credentials file), "token", or "username" and "password", and optionally "ca.crt"; the streamers wait for it`))))
		Eventually(channelCondition(ctx, ns, notifyv1alpha1.ConditionDegraded)).Should(conditionOf(metav1.ConditionTrue, notifyv1alpha1.ReasonSecretNotFound))

		By("creating it with two ways to authenticate")
		natsSecret := &corev1.Secret{ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: "app-nats"},
			Data: map[string][]byte{"token": []byte("t"), "username": []byte("u"), "password": []byte("p")}}
		Expect(cluster.Client.Create(ctx, natsSecret)).To(Succeed())
		Eventually(secretsUsable).Should(And(conditionOf(metav1.ConditionFalse, notifyv1alpha1.ReasonInvalidBrokerCredentials),
			HaveField("Message", ContainSubstring(`Secret "app-nats" named by spec.broker.nats.credentialsSecretRef is unusable: `)),
			HaveField("Message", ContainSubstring("each name a way to authenticate"))))
		Eventually(channelCondition(ctx, ns, notifyv1alpha1.ConditionDegraded)).Should(conditionOf(metav1.ConditionTrue, notifyv1alpha1.ReasonInvalidBrokerCredentials))

		By("fixing it: the TLS Secret is missing next")
		natsSecret.Data = map[string][]byte{"token": []byte("t")}
		Expect(cluster.Client.Update(ctx, natsSecret)).To(Succeed())
		Eventually(secretsUsable).Should(And(conditionOf(metav1.ConditionFalse, notifyv1alpha1.ReasonSecretNotFound),
			HaveField("Message", reportedAs(`Secret "app-tls" named by spec.http.tls.secretRef does not exist in namespace "`+ns+
				`": create it as a kubernetes.io/tls Secret with "tls.crt" and "tls.key" (kubectl create secret tls); the streamers wait for it`))))

		By("creating it with a certificate without its key")
		issued := certtest.NewCA().Issue("app")
		tlsSecret := &corev1.Secret{ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: "app-tls"}, Data: map[string][]byte{corev1.TLSCertKey: issued[corev1.TLSCertKey]}}
		Expect(cluster.Client.Create(ctx, tlsSecret)).To(Succeed())
		Eventually(secretsUsable).Should(And(conditionOf(metav1.ConditionFalse, notifyv1alpha1.ReasonInvalidCertificate),
			HaveField("Message", ContainSubstring(`Secret "app-tls" named by spec.http.tls.secretRef is unusable: the entry "tls.key" is missing`))))
		Eventually(channelCondition(ctx, ns, notifyv1alpha1.ConditionDegraded)).Should(conditionOf(metav1.ConditionTrue, notifyv1alpha1.ReasonInvalidCertificate))

		By("fixing it")
		tlsSecret.Data = issued
		Expect(cluster.Client.Update(ctx, tlsSecret)).To(Succeed())
		Eventually(secretsUsable).Should(And(conditionOf(metav1.ConditionTrue, notifyv1alpha1.ReasonSecretsValid),
			HaveField("Message", reportedAs(`the Secrets "app-keys", "app-nats", "app-tls" are usable`))))
		Eventually(channelCondition(ctx, ns, notifyv1alpha1.ConditionDegraded)).ShouldNot(
			HaveField("Reason", BeElementOf(notifyv1alpha1.ReasonSecretNotFound, notifyv1alpha1.ReasonInvalidCertificate)))
		Eventually(func() string { return logField(logs, "streamer started", "listen") }, 30*time.Second).ShouldNot(BeEmpty(), "and it serves")
	})

	It("takes off, on a channel no longer on NATS, the BrokerReachable condition its NATS streamers of an earlier version left", func(ctx SpecContext) {
		ns := cluster.Namespace(ctx)
		cluster.CreateChannelWithKey(ctx, ns)
		channel := &notifyv1alpha1.NotificationChannel{}
		Expect(cluster.Client.Get(ctx, client.ObjectKey{Namespace: ns, Name: "app"}, channel)).To(Succeed())

		By("writing BrokerReachable as the NATS streamers of the previous version did")
		Expect(statusapply.Apply(ctx, cluster.Client, channel.DeepCopy(), "NotificationChannel", "", map[string]any{"conditions": []metav1.Condition{{
			Type: notifyv1alpha1.ConditionBrokerReachable, Status: metav1.ConditionFalse, Reason: notifyv1alpha1.ReasonBrokerUnreachable,
			Message: "pod app-streamer-old at 2026-12-07T07:44:13.000Z: cannot reach NATS", ObservedGeneration: channel.Generation, LastTransitionTime: metav1.Now(),
		}}}, "herald-streamer")).To(Succeed())
		Expect(channelCondition(ctx, ns, notifyv1alpha1.ConditionBrokerReachable)()).NotTo(BeNil())

		By("an embedded streamer of this version starting")
		asStreamer(ctx, ns)
		startChannelStreamerAs(ns, "app-streamer-0")
		Eventually(channelCondition(ctx, ns, notifyv1alpha1.ConditionBrokerReachable)).Should(BeNil())
		Eventually(channelCondition(ctx, ns, notifyv1alpha1.ConditionSecretsUsable)).Should(conditionOf(metav1.ConditionTrue, notifyv1alpha1.ReasonSecretsValid))
		Expect(cluster.Client.Get(ctx, client.ObjectKeyFromObject(channel), channel)).To(Succeed())
		managers := make([]string, 0, len(channel.ManagedFields))
		for _, m := range channel.ManagedFields {
			managers = append(managers, m.Manager)
		}
		Expect(managers).NotTo(ContainElement("herald-streamer"), "the former writer owns nothing any more")
	})
})
