package controllers

import (
	"time"

	. "github.com/onsi/ginkgo/v2"
	. "github.com/onsi/gomega"
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

	DescribeTable("follows the Deployment and the Secrets",
		func(obs observation, ready, progressing, degraded string) {
			Expect(reasons(desiredStatus(channel, obs))).To(Equal([]string{ready, progressing, degraded}))
		},
		Entry("no Deployment yet", observation{},
			"False/ReplicasNotReady", "True/Reconciling", "False/AsExpected"),
		Entry("a new template not yet observed", observation{deployment: deployment(2, appsv1.DeploymentStatus{ObservedGeneration: 1, ReadyReplicas: 2})},
			"True/Available", "True/Reconciling", "False/AsExpected"),
		Entry("pods being updated", observation{deployment: deployment(2, appsv1.DeploymentStatus{ObservedGeneration: 2, Replicas: 3, UpdatedReplicas: 1, ReadyReplicas: 2})},
			"True/Available", "True/Reconciling", "False/AsExpected"),
		Entry("old pods draining", observation{deployment: deployment(2, appsv1.DeploymentStatus{ObservedGeneration: 2, Replicas: 3, UpdatedReplicas: 2, ReadyReplicas: 3, AvailableReplicas: 2})},
			"True/Available", "True/Reconciling", "False/AsExpected"),
		Entry("updated pods not yet available", observation{deployment: deployment(2, appsv1.DeploymentStatus{ObservedGeneration: 2, Replicas: 2, UpdatedReplicas: 2, ReadyReplicas: 1, AvailableReplicas: 1})},
			"False/ReplicasNotReady", "True/Reconciling", "False/AsExpected"),
		Entry("a complete rollout", observation{deployment: deployment(2, appsv1.DeploymentStatus{ObservedGeneration: 2, Replicas: 2, UpdatedReplicas: 2, ReadyReplicas: 2, AvailableReplicas: 2})},
			"True/Available", "False/RolloutComplete", "False/AsExpected"),
		Entry("a stuck rollout", observation{deployment: deployment(2, appsv1.DeploymentStatus{ObservedGeneration: 2, Replicas: 2, UpdatedReplicas: 1, Conditions: []appsv1.DeploymentCondition{stuck}})},
			"False/RolloutStuck", "False/RolloutStuck", "True/RolloutStuck"),
		Entry("a missing Secret comes first", observation{
			misconfigured: &problem{reason: notifyv1alpha1.ReasonSecretNotFound},
			deployment:    deployment(1, appsv1.DeploymentStatus{ObservedGeneration: 2, Conditions: []appsv1.DeploymentCondition{stuck}}),
		}, "False/SecretNotFound", "False/RolloutStuck", "True/SecretNotFound"),
		Entry("a failed apply", observation{applyFailed: &problem{reason: notifyv1alpha1.ReasonReconcileFailed}},
			"False/ReconcileFailed", "False/ReconcileFailed", "True/ReconcileFailed"),
	)

	It("moves observedGeneration only when every object was applied", func() {
		Expect(desiredStatus(channel, observation{}).ObservedGeneration).To(BeEquivalentTo(7))
		failed := observation{applyFailed: &problem{reason: notifyv1alpha1.ReasonReconcileFailed}}
		Expect(desiredStatus(channel, failed).ObservedGeneration).To(BeZero())
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
