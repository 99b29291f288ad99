package controllers_test

import (
	"context"
	"time"

	. "github.com/onsi/ginkgo/v2"
	. "github.com/onsi/gomega"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/kubernetes"
	"sigs.k8s.io/controller-runtime/pkg/client"

	notifyv1alpha1 "github.com/herald-notify/herald/api/v1alpha1"
	"github.com/herald-notify/herald/streamer/kube"
)

// The channel's SecretsUsable condition is written here by the streamers'
// own reporter (streamer/kube.SecretsReporter), which reads the Secrets as a
// streamer pod does; no pod runs in envtest. streamer/app's suite runs real
// streamers with the streamer's Role.

// startSecretsReport runs, until the spec ends, the report on channel's
// Secrets that its streamer pod named pod writes.
func startSecretsReport(channel *notifyv1alpha1.NotificationChannel, pod string) {
	GinkgoHelper()
	c, err := client.NewWithWatch(api.Config, client.Options{Scheme: api.Scheme})
	Expect(err).NotTo(HaveOccurred())
	clientset, err := kubernetes.NewForConfig(api.Config)
	Expect(err).NotTo(HaveOccurred())
	reporter := kube.NewSecretsReporter(kube.SecretsReporterOptions{
		Client: c, Clientset: clientset, Channel: channel.DeepCopy(), Pod: pod, Refresh: 2 * time.Second,
	})
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() {
		defer close(done)
		reporter.Run(ctx)
	}()
	DeferCleanup(func() {
		cancel()
		Eventually(done).Should(BeClosed())
	})
}

var _ = Describe("a channel's Secrets, as its streamers report them", func() {
	It("says AwaitingStreamer until a pod has reported for the current generation, then what the pod found, with an Event", func(ctx SpecContext) {
		ns := newNamespace(ctx, nil)
		channel := createChannelOnly(ctx, ns, nil)

		By("no pod having reported yet")
		Eventually(channelStatus(ctx, channel)).Should(And(
			haveConditionFor(notifyv1alpha1.ConditionReady, metav1.ConditionFalse, notifyv1alpha1.ReasonAwaitingStreamer, channel.Generation),
			haveConditionFor(notifyv1alpha1.ConditionDegraded, metav1.ConditionUnknown, notifyv1alpha1.ReasonAwaitingStreamer, channel.Generation),
		))
		Expect(condition(get(ctx, channel), notifyv1alpha1.ConditionReady).Message).To(And(
			ContainSubstring("no streamer pod has reported on the channel's Secrets yet"), HaveSuffix("0 of 1 streamer pods ready")))
		Expect(eventReasons(ctx, channel)()).NotTo(ContainElement(notifyv1alpha1.ReasonAwaitingStreamer), "waiting needs nobody")

		By("its pod starting, alive and not ready, without its key Secret")
		startSecretsReport(channel, "app-streamer-0")
		Eventually(channelStatus(ctx, channel)).Should(And(
			haveConditionFor(notifyv1alpha1.ConditionSecretsUsable, metav1.ConditionFalse, notifyv1alpha1.ReasonSecretNotFound, channel.Generation),
			haveConditionFor(notifyv1alpha1.ConditionDegraded, metav1.ConditionTrue, notifyv1alpha1.ReasonSecretNotFound, channel.Generation),
			haveConditionFor(notifyv1alpha1.ConditionReady, metav1.ConditionFalse, notifyv1alpha1.ReasonSecretNotFound, channel.Generation),
			HaveField("ReadyReplicas", BeEquivalentTo(0)),
		))
		reported := condition(get(ctx, channel), notifyv1alpha1.ConditionSecretsUsable)
		Expect(reported.Message).To(And(HavePrefix("pod app-streamer-0 at "),
			HaveSuffix(`: Secret "app-keys" named by spec.auth.keySecretRef does not exist in namespace "`+ns+`": create it with one data entry per verification key, named by its key id (kid)`)))
		Expect(condition(get(ctx, channel), notifyv1alpha1.ConditionDegraded).Message).To(Equal(reported.Message), "Degraded says what the pod said")
		Eventually(eventReasons(ctx, channel)).Should(ContainElement(notifyv1alpha1.ReasonSecretNotFound))

		By("a change the pods apply live: the pod speaks for the new generation")
		channel = editChannel(ctx, channel, func(c *notifyv1alpha1.NotificationChannel) { c.Spec.Connections.MaxPerUser = 5 })
		Eventually(channelStatus(ctx, channel)).Should(And(
			haveConditionFor(notifyv1alpha1.ConditionSecretsUsable, metav1.ConditionFalse, notifyv1alpha1.ReasonSecretNotFound, channel.Generation),
			haveConditionFor(notifyv1alpha1.ConditionDegraded, metav1.ConditionTrue, notifyv1alpha1.ReasonSecretNotFound, channel.Generation),
		))

		By("naming another key Secret, which rolls the pods: the old pod does not speak for the new generation")
		old := channel.Generation
		channel = editChannel(ctx, channel, func(c *notifyv1alpha1.NotificationChannel) { c.Spec.Auth.KeySecretRef.Name = "app-keys-2" })
		Eventually(channelStatus(ctx, channel)).Should(
			haveConditionFor(notifyv1alpha1.ConditionDegraded, metav1.ConditionUnknown, notifyv1alpha1.ReasonAwaitingStreamer, channel.Generation))
		Consistently(func() int64 {
			return condition(get(ctx, channel), notifyv1alpha1.ConditionSecretsUsable).ObservedGeneration
		}, 3*time.Second).
			Should(Equal(old), "the old pod refreshes its report for its own generation only")

		By("a pod of the new template finding the new Secret usable")
		secret := &corev1.Secret{ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: "app-keys-2"}, Data: map[string][]byte{"k1": hmacKey()}}
		Expect(api.Client.Create(ctx, secret)).To(Succeed())
		startSecretsReport(get(ctx, channel), "app-streamer-1")
		Eventually(channelStatus(ctx, channel)).Should(And(
			haveConditionFor(notifyv1alpha1.ConditionSecretsUsable, metav1.ConditionTrue, notifyv1alpha1.ReasonSecretsValid, channel.Generation),
			haveConditionFor(notifyv1alpha1.ConditionDegraded, metav1.ConditionFalse, notifyv1alpha1.ReasonAsExpected, channel.Generation),
			haveConditionFor(notifyv1alpha1.ConditionReady, metav1.ConditionFalse, notifyv1alpha1.ReasonReplicasNotReady, channel.Generation),
		))
		Expect(condition(get(ctx, channel), notifyv1alpha1.ConditionSecretsUsable).Message).To(HavePrefix("pod app-streamer-1 at "))
		Consistently(channelStatus(ctx, channel), 3*time.Second).Should(
			haveConditionFor(notifyv1alpha1.ConditionSecretsUsable, metav1.ConditionTrue, notifyv1alpha1.ReasonSecretsValid, channel.Generation),
			"the old pod, still refreshing its False, leaves the newer generation's report alone")
	})
})
