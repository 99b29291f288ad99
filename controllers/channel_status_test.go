package controllers_test

import (
	"time"

	. "github.com/onsi/ginkgo/v2"
	. "github.com/onsi/gomega"
	. "github.com/onsi/gomega/gstruct"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"sigs.k8s.io/controller-runtime/pkg/client"

	notifyv1alpha1 "github.com/herald-notify/herald/api/v1alpha1"
)

// haveConditionFor matches a status with the condition typ at status and
// reason, computed for generation.
func haveConditionFor(typ string, status metav1.ConditionStatus, reason string, generation int64) OmegaMatcher {
	return HaveField("Conditions", ContainElement(MatchFields(IgnoreExtras, Fields{
		"Type": Equal(typ), "Status": Equal(status), "Reason": Equal(reason), "ObservedGeneration": Equal(generation),
	})))
}

// readyFor matches a status that is Ready for generation: what a client that
// waits for the channel, as Flux's tests do, asks for.
func readyFor(generation int64) OmegaMatcher {
	return And(
		HaveField("ObservedGeneration", generation),
		haveConditionFor(notifyv1alpha1.ConditionReady, metav1.ConditionTrue, notifyv1alpha1.ReasonAvailable, generation),
	)
}

// readyChannel creates a channel and reports its one pod ready, as the
// Deployment controller and kubelet would.
func readyChannel(ctx SpecContext, ns string) *notifyv1alpha1.NotificationChannel {
	GinkgoHelper()
	createKeySecret(ctx, ns, map[string][]byte{"k1": hmacKey()})
	channel := createChannel(ctx, ns, nil)
	settled(ctx, channel)
	setDeploymentStatus(ctx, ns, 1)
	Eventually(channelStatus(ctx, channel)).Should(And(readyFor(channel.Generation),
		haveConditionFor(notifyv1alpha1.ConditionDegraded, metav1.ConditionFalse, notifyv1alpha1.ReasonAsExpected, channel.Generation)),
		"ready, and its streamer's report on the Secrets folded in")
	return channel
}

var _ = Describe("NotificationChannel status", func() {
	It("is not Ready for a generation it could not apply, while the old pods are ready", func(ctx SpecContext) {
		ns := newNamespace(ctx, nil)
		channel := readyChannel(ctx, ns)
		applied := channel.Generation

		By("giving the Service another controller, so that the operator's apply of it fails")
		foreign := &corev1.ConfigMap{ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: "foreign"}}
		Expect(api.Client.Create(ctx, foreign)).To(Succeed())
		svc := get(ctx, &corev1.Service{ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: objectName}})
		svc.OwnerReferences = []metav1.OwnerReference{{
			APIVersion: "v1", Kind: "ConfigMap", Name: foreign.Name, UID: foreign.UID, Controller: new(true),
		}}
		Expect(api.Client.Update(ctx, svc)).To(Succeed())

		By("changing a setting the streamers apply live: the Deployment and its ready pod stay")
		channel = editChannel(ctx, channel, func(c *notifyv1alpha1.NotificationChannel) { c.Spec.Connections.MaxPerUser = 2 })
		Eventually(channelStatus(ctx, channel)).Should(And(
			haveConditionFor(notifyv1alpha1.ConditionReady, metav1.ConditionFalse, notifyv1alpha1.ReasonReconcileFailed, channel.Generation),
			haveConditionFor(notifyv1alpha1.ConditionDegraded, metav1.ConditionTrue, notifyv1alpha1.ReasonReconcileFailed, channel.Generation),
		))
		status := get(ctx, channel).Status
		Expect(status.ObservedGeneration).To(Equal(applied), "the new generation was not applied")
		Expect(status.ReadyReplicas).To(BeEquivalentTo(1), "the old pod still serves")
		Expect(condition(get(ctx, channel), notifyv1alpha1.ConditionReady).Message).To(ContainSubstring("Service"))

		By("letting the operator have the Service back")
		svc = get(ctx, svc)
		svc.OwnerReferences = nil
		Expect(api.Client.Update(ctx, svc)).To(Succeed())
		Eventually(channelStatus(ctx, channel)).Should(readyFor(channel.Generation))
		Expect(get(ctx, svc).OwnerReferences).To(ContainElement(HaveField("UID", channel.UID)))
	})

	It("is not Ready while a new generation rolls out, and Ready for it once its pods are", func(ctx SpecContext) {
		ns := newNamespace(ctx, nil)
		channel := readyChannel(ctx, ns)

		By("changing a setting the streamer reads at start, which rolls the pods")
		channel = editChannel(ctx, channel, func(c *notifyv1alpha1.NotificationChannel) { c.Spec.History.MaxEvents = 777 })
		Eventually(channelStatus(ctx, channel)).Should(And(
			HaveField("ObservedGeneration", channel.Generation),
			HaveField("ReadyReplicas", BeEquivalentTo(1)),
			haveConditionFor(notifyv1alpha1.ConditionReady, metav1.ConditionFalse, notifyv1alpha1.ReasonRollingOut, channel.Generation),
			haveConditionFor(notifyv1alpha1.ConditionProgressing, metav1.ConditionTrue, notifyv1alpha1.ReasonReconciling, channel.Generation),
		))

		By("the pod of the new template becoming ready")
		setDeploymentStatus(ctx, ns, 1)
		Eventually(channelStatus(ctx, channel)).Should(And(
			readyFor(channel.Generation),
			haveConditionFor(notifyv1alpha1.ConditionProgressing, metav1.ConditionFalse, notifyv1alpha1.ReasonRolloutComplete, channel.Generation),
		))
	})

	It("stalls on a spec it cannot build objects from, without retrying, and goes on once the channel changes", func(ctx SpecContext) {
		ns := newNamespace(ctx, nil)
		reconcil.withoutDefaultImage(ns)
		// No key Secret, and no streamer reporting on it: no pod runs, and
		// its reports would reconcile the channel again.
		channel := createChannelOnly(ctx, ns, nil)

		Eventually(channelStatus(ctx, channel)).Should(And(
			HaveField("ObservedGeneration", channel.Generation),
			haveConditionFor(notifyv1alpha1.ConditionStalled, metav1.ConditionTrue, notifyv1alpha1.ReasonInvalidSpec, channel.Generation),
			haveConditionFor(notifyv1alpha1.ConditionReady, metav1.ConditionFalse, notifyv1alpha1.ReasonInvalidSpec, channel.Generation),
			haveConditionFor(notifyv1alpha1.ConditionDegraded, metav1.ConditionTrue, notifyv1alpha1.ReasonInvalidSpec, channel.Generation),
		))
		Expect(condition(get(ctx, channel), notifyv1alpha1.ConditionReady).Message).To(ContainSubstring("no streamer image"))
		Eventually(eventReasons(ctx, channel)).Should(ContainElement(notifyv1alpha1.ReasonInvalidSpec))
		// A retried error would be reconciled again within milliseconds.
		Consistently(func() int { return reconcil.count(client.ObjectKeyFromObject(channel)) }, 2*time.Second).Should(Equal(1))
		Expect(deploymentOf(ctx, ns)()).To(BeNil())

		By("setting spec.image")
		channel = editChannel(ctx, channel, func(c *notifyv1alpha1.NotificationChannel) { c.Spec.Image = "registry.example.com/herald:v9" })
		Eventually(deploymentOf(ctx, ns)).Should(HaveField("Spec.Template.Spec.Containers", ContainElement(HaveField("Image", "registry.example.com/herald:v9"))))
		startSecretsReport(channel, "app-streamer-0") // its pod runs
		Eventually(channelStatus(ctx, channel)).Should(And(
			HaveField("ObservedGeneration", channel.Generation),
			haveConditionFor(notifyv1alpha1.ConditionReady, metav1.ConditionFalse, notifyv1alpha1.ReasonSecretNotFound, channel.Generation),
			HaveField("Conditions", Not(ContainElement(HaveField("Type", notifyv1alpha1.ConditionStalled)))),
		))
	})
})
