package kube_test

import (
	"context"
	"strings"
	"time"

	. "github.com/onsi/ginkgo/v2"
	. "github.com/onsi/gomega"
	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/api/meta"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/util/retry"
	"sigs.k8s.io/controller-runtime/pkg/client"

	notifyv1alpha1 "github.com/herald-notify/herald/api/v1alpha1"
	"github.com/herald-notify/herald/internal/statusapply"
	"github.com/herald-notify/herald/streamer/kube"
)

// The reporters here stand for the pods of one channel: each watches the
// channel's Secrets on the real API server and writes the channel's
// SecretsUsable condition.

// keyChannel creates a channel reading the key Secret "app-keys", which
// does not exist yet.
func keyChannel(ctx context.Context) *notifyv1alpha1.NotificationChannel {
	GinkgoHelper()
	ns := &corev1.Namespace{ObjectMeta: metav1.ObjectMeta{GenerateName: "secrets-"}}
	Expect(api.Client.Create(ctx, ns)).To(Succeed())
	channel := &notifyv1alpha1.NotificationChannel{
		ObjectMeta: metav1.ObjectMeta{Namespace: ns.Name, Name: "app"},
		Spec: notifyv1alpha1.NotificationChannelSpec{
			Auth: notifyv1alpha1.AuthSpec{KeySecretRef: notifyv1alpha1.LocalSecretReference{Name: "app-keys"}},
		},
	}
	Expect(api.Client.Create(ctx, channel)).To(Succeed())
	return channel
}

// startSecretsReporter runs the reporter of pod for channel (as the pod
// read it at its start) until the spec ends or the returned stop is called.
func startSecretsReporter(channel *notifyv1alpha1.NotificationChannel, pod string) (stop func()) {
	GinkgoHelper()
	c, err := client.NewWithWatch(api.Config, client.Options{Scheme: api.Scheme})
	Expect(err).NotTo(HaveOccurred())
	clientset, err := kubernetes.NewForConfig(api.Config)
	Expect(err).NotTo(HaveOccurred())
	r := kube.NewSecretsReporter(kube.SecretsReporterOptions{
		Client: c, Clientset: clientset, Channel: channel.DeepCopy(), Pod: pod, Refresh: reportRefresh,
	})
	return runInBackground(r.Run)
}

// secretsCondition reads the channel's SecretsUsable condition.
func secretsCondition(ctx context.Context, channel *notifyv1alpha1.NotificationChannel) func() *metav1.Condition {
	return func() *metav1.Condition {
		current := &notifyv1alpha1.NotificationChannel{}
		Expect(api.Client.Get(ctx, client.ObjectKeyFromObject(channel), current)).To(Succeed())
		return meta.FindStatusCondition(current.Status.Conditions, notifyv1alpha1.ConditionSecretsUsable)
	}
}

// reportedByOneOf matches the condition at status with reason, written by
// one of pods.
func reportedByOneOf(status metav1.ConditionStatus, reason string, pods ...string) OmegaMatcher {
	prefixes := make([]OmegaMatcher, len(pods))
	for i, pod := range pods {
		prefixes[i] = HavePrefix("pod " + pod + " at ")
	}
	return And(Not(BeNil()), HaveField("Status", status), HaveField("Reason", reason), HaveField("Message", SatisfyAny(prefixes...)))
}

// editSpec changes the channel's spec, reading it again when the pods'
// status writes changed it meanwhile, and returns it as changed.
func editSpec(ctx context.Context, channel *notifyv1alpha1.NotificationChannel, edit func(*notifyv1alpha1.NotificationChannelSpec)) *notifyv1alpha1.NotificationChannel {
	GinkgoHelper()
	Expect(retry.RetryOnConflict(retry.DefaultRetry, func() error {
		Expect(api.Client.Get(ctx, client.ObjectKeyFromObject(channel), channel)).To(Succeed())
		edit(&channel.Spec)
		return api.Client.Update(ctx, channel)
	})).To(Succeed())
	return channel
}

// writerOf is the pod a shared condition's message names.
func writerOf(c *metav1.Condition) string {
	pod, _, _ := strings.Cut(strings.TrimPrefix(c.Message, "pod "), " ")
	return pod
}

var _ = Describe("SecretsReporter", func() {
	It("has the pods of a channel say SecretNotFound, InvalidKey with the bad entry, then True, within seconds of each change, in one shared condition", func(ctx SpecContext) {
		channel := keyChannel(ctx)
		startSecretsReporter(channel, "app-streamer-a")
		startSecretsReporter(channel, "app-streamer-b")

		Eventually(secretsCondition(ctx, channel)).Should(And(
			reportedByOneOf(metav1.ConditionFalse, notifyv1alpha1.ReasonSecretNotFound, "app-streamer-a", "app-streamer-b"),
			HaveField("ObservedGeneration", channel.Generation),
			HaveField("Message", HaveSuffix(`: Secret "app-keys" named by spec.auth.keySecretRef does not exist in namespace "`+channel.Namespace+`": create it with one data entry per verification key, named by its key id (kid)`))))
		writer := writerOf(secretsCondition(ctx, channel)())

		By("creating the Secret with a key too short for HS256")
		secret := &corev1.Secret{ObjectMeta: metav1.ObjectMeta{Namespace: channel.Namespace, Name: "app-keys"},
			Data: map[string][]byte{"k1": []byte("short"), "k2": randomKey()}}
		Expect(api.Client.Create(ctx, secret)).To(Succeed())
		Eventually(secretsCondition(ctx, channel), 5*time.Second).Should(And(
			reportedByOneOf(metav1.ConditionFalse, notifyv1alpha1.ReasonInvalidKey, writer),
			HaveField("Message", And(ContainSubstring(`Secret "app-keys" named by spec.auth.keySecretRef holds no usable key for algorithms HS256: `),
				ContainSubstring(`key "k1"`), Not(ContainSubstring(`"k2"`))))))
		failed := secretsCondition(ctx, channel)()

		By("the pods refreshing the False, keeping its transition time, the other pod leaving it")
		Eventually(secretsCondition(ctx, channel)).Should(And(
			HaveField("Message", Not(Equal(failed.Message))), HaveField("LastTransitionTime", failed.LastTransitionTime)))
		Consistently(secretsCondition(ctx, channel), 4*reportRefresh).Should(reportedByOneOf(metav1.ConditionFalse, notifyv1alpha1.ReasonInvalidKey, writer))

		By("fixing the key")
		secret.Data = map[string][]byte{"k1": randomKey()}
		Expect(api.Client.Update(ctx, secret)).To(Succeed())
		Eventually(secretsCondition(ctx, channel), 5*time.Second).Should(And(
			reportedByOneOf(metav1.ConditionTrue, notifyv1alpha1.ReasonSecretsValid, writer),
			HaveField("Message", HaveSuffix(`: the Secrets "app-keys" are usable`))))

		By("deleting it: the pods keep the keys in use, and say the Secret is gone")
		Expect(api.Client.Delete(ctx, secret)).To(Succeed())
		Eventually(secretsCondition(ctx, channel), 5*time.Second).Should(
			reportedByOneOf(metav1.ConditionFalse, notifyv1alpha1.ReasonSecretNotFound, "app-streamer-a", "app-streamer-b"))
	})

	It("takes a False for stale once its pod has not refreshed it for three refreshes: the pod is gone", func(ctx SpecContext) {
		channel := keyChannel(ctx)
		stopA := startSecretsReporter(channel, "app-streamer-a")
		Eventually(secretsCondition(ctx, channel)).Should(reportedByOneOf(metav1.ConditionFalse, notifyv1alpha1.ReasonSecretNotFound, "app-streamer-a"))

		By("pod a going, then the Secret created, seen by pod b alone")
		stopA()
		secret := &corev1.Secret{ObjectMeta: metav1.ObjectMeta{Namespace: channel.Namespace, Name: "app-keys"}, Data: map[string][]byte{"k1": randomKey()}}
		Expect(api.Client.Create(ctx, secret)).To(Succeed())
		startSecretsReporter(channel, "app-streamer-b")
		started := time.Now()
		Eventually(secretsCondition(ctx, channel)).Should(reportedByOneOf(metav1.ConditionTrue, notifyv1alpha1.ReasonSecretsValid, "app-streamer-b"))
		Expect(time.Since(started)).To(BeNumerically(">=", reportRefresh), "a fresh False stands")
	})

	It("follows the generations the pod runs, and leaves a newer template's to its pods", func(ctx SpecContext) {
		channel := keyChannel(ctx)
		startSecretsReporter(channel, "app-streamer-a")
		Eventually(secretsCondition(ctx, channel)).Should(HaveField("ObservedGeneration", channel.Generation))

		By("a change of the algorithms, applied live: the Secret is checked for them")
		secret := &corev1.Secret{ObjectMeta: metav1.ObjectMeta{Namespace: channel.Namespace, Name: "app-keys"}, Data: map[string][]byte{"k1": randomKey()}}
		Expect(api.Client.Create(ctx, secret)).To(Succeed())
		Eventually(secretsCondition(ctx, channel)).Should(reportedByOneOf(metav1.ConditionTrue, notifyv1alpha1.ReasonSecretsValid, "app-streamer-a"))
		channel = editSpec(ctx, channel, func(spec *notifyv1alpha1.NotificationChannelSpec) {
			spec.Auth.Algorithms = []notifyv1alpha1.JWTAlgorithm{notifyv1alpha1.RS256}
		})
		Eventually(secretsCondition(ctx, channel)).Should(And(
			reportedByOneOf(metav1.ConditionFalse, notifyv1alpha1.ReasonInvalidKey, "app-streamer-a"),
			HaveField("ObservedGeneration", channel.Generation),
			HaveField("Message", ContainSubstring("for algorithms RS256"))))

		By("naming another key Secret, which needs new pods: the old pod stays at its generation")
		live := channel.Generation
		channel = editSpec(ctx, channel, func(spec *notifyv1alpha1.NotificationChannelSpec) { spec.Auth.KeySecretRef.Name = "app-keys-2" })
		Consistently(secretsCondition(ctx, channel), 4*reportRefresh).Should(HaveField("ObservedGeneration", live))
		startSecretsReporter(channel, "app-streamer-b")
		Eventually(secretsCondition(ctx, channel)).Should(And(
			reportedByOneOf(metav1.ConditionFalse, notifyv1alpha1.ReasonSecretNotFound, "app-streamer-b"),
			HaveField("ObservedGeneration", channel.Generation),
			HaveField("Message", ContainSubstring(`Secret "app-keys-2"`))))
		Consistently(secretsCondition(ctx, channel), 4*reportRefresh).Should(HaveField("ObservedGeneration", channel.Generation))
	})

	It("writes as a field manager of its own, leaving BrokerReachable alone", func(ctx SpecContext) {
		channel := keyChannel(ctx)
		Expect(statusapply.Apply(ctx, api.Client, channel.DeepCopy(), "NotificationChannel", "", map[string]any{"conditions": []metav1.Condition{{
			Type: notifyv1alpha1.ConditionBrokerReachable, Status: metav1.ConditionTrue, Reason: notifyv1alpha1.ReasonBrokerConnected,
			Message: "pod app-streamer-a at 2026-12-07T07:44:13.000Z: connected", LastTransitionTime: metav1.Now(),
		}}}, statusapply.StreamerManager)).To(Succeed())
		startSecretsReporter(channel, "app-streamer-a")
		Eventually(secretsCondition(ctx, channel)).ShouldNot(BeNil())
		current := &notifyv1alpha1.NotificationChannel{}
		Expect(api.Client.Get(ctx, client.ObjectKeyFromObject(channel), current)).To(Succeed())
		Expect(meta.FindStatusCondition(current.Status.Conditions, notifyv1alpha1.ConditionBrokerReachable)).NotTo(BeNil())
	})
})
