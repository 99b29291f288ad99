package controllers

import (
	"time"

	. "github.com/onsi/ginkgo/v2"
	. "github.com/onsi/gomega"
	. "github.com/onsi/gomega/gstruct"
	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/api/meta"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	notifyv1alpha1 "github.com/herald-notify/herald/api/v1alpha1"
)

// deployment is a Deployment of generation 2 asking for want pods, with status.
func deployment(want int32, status appsv1.DeploymentStatus) *appsv1.Deployment {
	return &appsv1.Deployment{
		ObjectMeta: metav1.ObjectMeta{Name: "app-streamer", Generation: 2},
		Spec:       appsv1.DeploymentSpec{Replicas: &want},
		Status:     status,
	}
}

var _ = Describe("the channel status", func() {
	// reasons reads Ready, Progressing and Degraded off a status, as
	// "Status/Reason" each.
	reasons := func(status notifyv1alpha1.NotificationChannelStatus) []string {
		out := make([]string, 0, 3)
		for _, typ := range []string{notifyv1alpha1.ConditionReady, notifyv1alpha1.ConditionProgressing, notifyv1alpha1.ConditionDegraded} {
			c := meta.FindStatusCondition(status.Conditions, typ)
			Expect(c).NotTo(BeNil(), typ)
			out = append(out, string(c.Status)+"/"+c.Reason)
		}
		return out
	}
	channel := &notifyv1alpha1.NotificationChannel{ObjectMeta: metav1.ObjectMeta{Generation: 7}}
	stuck := appsv1.DeploymentCondition{Type: appsv1.DeploymentProgressing, Status: corev1.ConditionFalse, Reason: "ProgressDeadlineExceeded"}
	// complete is the status of two ready pods of the current template.
	complete := appsv1.DeploymentStatus{ObservedGeneration: 2, Replicas: 2, UpdatedReplicas: 2, ReadyReplicas: 2, AvailableReplicas: 2}

	DescribeTable("follows the Deployment and the streamers' report on the Secrets",
		func(obs observation, ready, progressing, degraded string) {
			Expect(reasons(desiredStatus(channel, obs))).To(Equal([]string{ready, progressing, degraded}))
		},
		Entry("no Deployment yet", observation{},
			"False/ReplicasNotReady", "True/Reconciling", "False/AsExpected"),
		Entry("a new pod template not yet observed, the old pods ready", observation{deployment: deployment(2, appsv1.DeploymentStatus{ObservedGeneration: 1, Replicas: 2, UpdatedReplicas: 2, ReadyReplicas: 2, AvailableReplicas: 2})},
			"False/RollingOut", "True/Reconciling", "False/AsExpected"),
		Entry("the new generation rolling out, the old pods ready", observation{deployment: deployment(2, appsv1.DeploymentStatus{ObservedGeneration: 2, Replicas: 3, UpdatedReplicas: 1, ReadyReplicas: 2})},
			"False/RollingOut", "True/Reconciling", "False/AsExpected"),
		Entry("old pods draining", observation{deployment: deployment(2, appsv1.DeploymentStatus{ObservedGeneration: 2, Replicas: 3, UpdatedReplicas: 2, ReadyReplicas: 3, AvailableReplicas: 2})},
			"False/RollingOut", "True/Reconciling", "False/AsExpected"),
		Entry("updated pods not yet available", observation{deployment: deployment(2, appsv1.DeploymentStatus{ObservedGeneration: 2, Replicas: 2, UpdatedReplicas: 2, ReadyReplicas: 1, AvailableReplicas: 1})},
			"False/ReplicasNotReady", "True/Reconciling", "False/AsExpected"),
		Entry("a complete rollout", observation{deployment: deployment(2, complete)},
			"True/Available", "False/RolloutComplete", "False/AsExpected"),
		Entry("a complete rollout of no pods", observation{deployment: deployment(0, appsv1.DeploymentStatus{ObservedGeneration: 2})},
			"False/ReplicasNotReady", "False/RolloutComplete", "False/AsExpected"),
		Entry("a stuck rollout", observation{deployment: deployment(2, appsv1.DeploymentStatus{ObservedGeneration: 2, Replicas: 2, UpdatedReplicas: 1, Conditions: []appsv1.DeploymentCondition{stuck}})},
			"False/RolloutStuck", "False/RolloutStuck", "True/RolloutStuck"),
		Entry("a missing Secret comes first", observation{
			misconfigured: &problem{reason: notifyv1alpha1.ReasonSecretNotFound},
			deployment:    deployment(1, appsv1.DeploymentStatus{ObservedGeneration: 2, Conditions: []appsv1.DeploymentCondition{stuck}}),
		}, "False/SecretNotFound", "False/RolloutStuck", "True/SecretNotFound"),
		Entry("a Secret gone while the pods serve with the keys they read", observation{
			misconfigured: &problem{reason: notifyv1alpha1.ReasonSecretNotFound}, deployment: deployment(2, complete),
		}, "True/Available", "False/RolloutComplete", "True/SecretNotFound"),
		Entry("no streamer pod reported on the Secrets yet, none ready", observation{awaitingStreamer: true, deployment: deployment(1, appsv1.DeploymentStatus{ObservedGeneration: 2, Replicas: 1, UpdatedReplicas: 1})},
			"False/AwaitingStreamer", "True/Reconciling", "Unknown/AwaitingStreamer"),
		Entry("no streamer pod reported for this generation, the pods ready", observation{awaitingStreamer: true, deployment: deployment(2, complete)},
			"True/Available", "False/RolloutComplete", "Unknown/AwaitingStreamer"),
		Entry("a problem known while no pod reported on the Secrets", observation{awaitingStreamer: true, deployment: deployment(1, appsv1.DeploymentStatus{ObservedGeneration: 2, Conditions: []appsv1.DeploymentCondition{stuck}})},
			"False/RolloutStuck", "False/RolloutStuck", "True/RolloutStuck"),
		Entry("a failed apply", observation{failed: &problem{reason: notifyv1alpha1.ReasonReconcileFailed}},
			"False/ReconcileFailed", "False/ReconcileFailed", "True/ReconcileFailed"),
		Entry("a failed apply while the old pods are ready", observation{failed: &problem{reason: notifyv1alpha1.ReasonReconcileFailed}, deployment: deployment(2, complete)},
			"False/ReconcileFailed", "False/ReconcileFailed", "True/ReconcileFailed"),
		Entry("an invalid spec", observation{invalid: &problem{reason: notifyv1alpha1.ReasonInvalidSpec}},
			"False/InvalidSpec", "False/InvalidSpec", "True/InvalidSpec"),
	)

	DescribeTable("computes every condition for the channel's generation",
		func(obs observation) {
			before := notifyv1alpha1.NotificationChannel{ObjectMeta: metav1.ObjectMeta{Generation: 6}}
			before.Status = desiredStatus(&before, observation{deployment: deployment(2, complete)})
			Expect(meta.IsStatusConditionTrue(before.Status.Conditions, notifyv1alpha1.ConditionReady)).To(BeTrue())

			next := before.DeepCopy()
			next.Generation = 7
			for _, c := range desiredStatus(next, obs).Conditions {
				Expect(c.ObservedGeneration).To(BeEquivalentTo(7), c.Type)
				if c.Type == notifyv1alpha1.ConditionReady {
					Expect(c.Status).To(Equal(metav1.ConditionFalse), "the Ready of generation 6 does not pass for 7's")
				}
			}
		},
		Entry("when its apply failed", observation{failed: &problem{reason: notifyv1alpha1.ReasonReconcileFailed}, deployment: deployment(2, complete)}),
		Entry("while it rolls out", observation{deployment: deployment(2, appsv1.DeploymentStatus{ObservedGeneration: 1, Replicas: 2, UpdatedReplicas: 2, ReadyReplicas: 2, AvailableReplicas: 2})}),
		Entry("when it is invalid", observation{invalid: &problem{reason: notifyv1alpha1.ReasonInvalidSpec}, deployment: deployment(2, complete)}),
	)

	It("moves observedGeneration when the reconcile is done with the generation, not after a failure", func() {
		Expect(desiredStatus(channel, observation{}).ObservedGeneration).To(BeEquivalentTo(7))
		failed := observation{failed: &problem{reason: notifyv1alpha1.ReasonReconcileFailed}}
		Expect(desiredStatus(channel, failed).ObservedGeneration).To(BeZero())
		invalid := observation{invalid: &problem{reason: notifyv1alpha1.ReasonInvalidSpec}}
		Expect(desiredStatus(channel, invalid).ObservedGeneration).To(BeEquivalentTo(7), "stalled on it, as Flux")
	})

	It("sets Stalled on an invalid spec only, and removes it once the spec is usable", func() {
		invalid := observation{invalid: &problem{reason: notifyv1alpha1.ReasonInvalidSpec, message: "no streamer image"}}
		stalled := desiredStatus(channel, invalid)
		Expect(meta.FindStatusCondition(stalled.Conditions, notifyv1alpha1.ConditionStalled)).To(PointTo(MatchFields(IgnoreExtras, Fields{
			"Status": Equal(metav1.ConditionTrue), "Reason": Equal(notifyv1alpha1.ReasonInvalidSpec),
			"Message": ContainSubstring("no streamer image"), "ObservedGeneration": BeEquivalentTo(7),
		})))
		Expect(meta.FindStatusCondition(desiredStatus(channel, observation{}).Conditions, notifyv1alpha1.ConditionStalled)).To(BeNil())

		fixed := &notifyv1alpha1.NotificationChannel{ObjectMeta: metav1.ObjectMeta{Generation: 8}, Status: stalled}
		Expect(meta.FindStatusCondition(desiredStatus(fixed, observation{}).Conditions, notifyv1alpha1.ConditionStalled)).To(BeNil())
		failed := observation{failed: &problem{reason: notifyv1alpha1.ReasonReconcileFailed}}
		Expect(meta.FindStatusCondition(desiredStatus(fixed, failed).Conditions, notifyv1alpha1.ConditionStalled)).To(BeNil(),
			"a failure that is retried is not a stall")
	})

	It("keeps a condition's transition time while its status holds", func() {
		first := desiredStatus(channel, observation{})
		then := metav1.NewTime(first.Conditions[0].LastTransitionTime.Add(-time.Hour))
		for i := range first.Conditions {
			first.Conditions[i].LastTransitionTime = then
		}
		again := desiredStatus(&notifyv1alpha1.NotificationChannel{ObjectMeta: channel.ObjectMeta, Status: first}, observation{})
		Expect(meta.FindStatusCondition(again.Conditions, notifyv1alpha1.ConditionReady).LastTransitionTime).To(Equal(then))
	})
})
