package controllers_test

import (
	. "github.com/onsi/ginkgo/v2"
	. "github.com/onsi/gomega"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	notifyv1alpha1 "github.com/herald-notify/herald/api/v1alpha1"
)

var _ = Describe("SystemEvent reconciler", func() {
	It("says whether a SystemEvent's channel exists", func(ctx SpecContext) {
		ns := newNamespace(ctx, nil)
		sev := &notifyv1alpha1.SystemEvent{
			ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: "maintenance"},
			Spec: notifyv1alpha1.SystemEventSpec{ChannelRef: notifyv1alpha1.ChannelReference{Name: "app"}, EventType: "maintenance",
				Audience: notifyv1alpha1.Audience{All: new(true)}},
		}
		Expect(api.Client.Create(ctx, sev)).To(Succeed())
		Eventually(func() []metav1.Condition { return get(ctx, sev).Status.Conditions }).Should(ContainElement(And(
			HaveField("Type", notifyv1alpha1.ConditionChannelFound), HaveField("Status", metav1.ConditionFalse),
			HaveField("Reason", notifyv1alpha1.ReasonChannelNotFound),
			HaveField("Message", ContainSubstring(`NotificationChannel "app" named by spec.channelRef does not exist in namespace "`+ns+`"`)),
		)))

		By("creating the channel")
		createKeySecret(ctx, ns, map[string][]byte{"k1": hmacKey()})
		createChannel(ctx, ns, nil)
		Eventually(func() []metav1.Condition { return get(ctx, sev).Status.Conditions }).Should(ConsistOf(And(
			HaveField("Type", notifyv1alpha1.ConditionChannelFound), HaveField("Status", metav1.ConditionTrue),
			HaveField("Reason", notifyv1alpha1.ReasonChannelExists), HaveField("ObservedGeneration", sev.Generation),
		)))
	})
})
