package controllers

import (
	"fmt"

	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/api/meta"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	notifyv1alpha1 "github.com/herald-notify/herald/api/v1alpha1"
)

// problem is something about a channel that a person has to fix: a condition
// reason and a message saying what to do.
type problem struct {
	reason  string
	message string
}

// observation is what one reconcile found out, from which the status follows.
type observation struct {
	// applyFailed is set when applying the owned objects failed.
	applyFailed *problem
	// misconfigured is set when a Secret the channel names is missing or unusable,
	// or its broker cannot be used: what stops its streamers from starting.
	misconfigured *problem
	// deployment is the streamers' Deployment, nil when it does not exist.
	deployment *appsv1.Deployment
	// endpoint is the in-cluster URL of the stream endpoint.
	endpoint string
}

// rolloutPhase is where the Deployment's rollout stands.
type rolloutPhase int

const (
	rolloutProgressing rolloutPhase = iota
	rolloutComplete
	rolloutStuck
)

// rollout is the state of the Deployment's rollout, as `kubectl rollout
// status` reads it.
type rollout struct {
	phase   rolloutPhase
	message string
	// desired and ready count pods.
	desired, ready int32
}

// rolloutOf reads the rollout from a Deployment's status, which the
// Deployment controller and kubelets write.
func rolloutOf(d *appsv1.Deployment) rollout {
	if d == nil {
		return rollout{phase: rolloutProgressing, message: "the streamer Deployment does not exist yet"}
	}
	r := rollout{desired: 1, ready: d.Status.ReadyReplicas}
	if d.Spec.Replicas != nil {
		r.desired = *d.Spec.Replicas
	}
	st := d.Status
	switch {
	case st.ObservedGeneration < d.Generation:
		r.message = "waiting for the Deployment controller to observe the new pod template"
	case deploymentCondition(d, appsv1.DeploymentProgressing, corev1.ConditionFalse, "ProgressDeadlineExceeded"):
		r.phase = rolloutStuck
		r.message = fmt.Sprintf("the rollout of Deployment %s made no progress within its deadline: %d of %d pods updated, %d available; see `kubectl describe deployment %s` and its pods' events",
			d.Name, st.UpdatedReplicas, r.desired, st.AvailableReplicas, d.Name)
	case st.UpdatedReplicas < r.desired:
		r.message = fmt.Sprintf("%d of %d streamer pods updated", st.UpdatedReplicas, r.desired)
	case st.Replicas > st.UpdatedReplicas:
		r.message = fmt.Sprintf("%d old streamer pods draining", st.Replicas-st.UpdatedReplicas)
	case st.AvailableReplicas < st.UpdatedReplicas:
		r.message = fmt.Sprintf("%d of %d updated streamer pods available", st.AvailableReplicas, st.UpdatedReplicas)
	default:
		r.phase = rolloutComplete
		r.message = fmt.Sprintf("%d streamer pods run the current pod template", st.UpdatedReplicas)
	}
	return r
}

// deploymentCondition reports whether d has condition typ with status and reason.
func deploymentCondition(d *appsv1.Deployment, typ appsv1.DeploymentConditionType, status corev1.ConditionStatus, reason string) bool {
	for _, c := range d.Status.Conditions {
		if c.Type == typ {
			return c.Status == status && c.Reason == reason
		}
	}
	return false
}

// desiredStatus is the channel's status given what the reconcile observed.
// Conditions keep their last transition time when their status is unchanged.
// observedGeneration moves only when every owned object was applied.
func desiredStatus(channel *notifyv1alpha1.NotificationChannel, obs observation) notifyv1alpha1.NotificationChannelStatus {
	status := *channel.Status.DeepCopy()
	if obs.applyFailed == nil {
		status.ObservedGeneration = channel.Generation
	}
	status.Endpoint = obs.endpoint
	status.Replicas, status.ReadyReplicas = 0, 0
	if d := obs.deployment; d != nil {
		status.Replicas = d.Status.Replicas
		status.ReadyReplicas = d.Status.ReadyReplicas
	}

	r := rolloutOf(obs.deployment)
	for _, c := range []metav1.Condition{
		readyCondition(obs, r),
		progressingCondition(obs, r),
		degradedCondition(obs, r),
	} {
		c.ObservedGeneration = channel.Generation
		meta.SetStatusCondition(&status.Conditions, c)
	}
	return status
}

// readyCondition: True when as many streamer pods are ready as the channel
// asks for. When not, the reason is the first thing to fix.
func readyCondition(obs observation, r rollout) metav1.Condition {
	c := metav1.Condition{Type: notifyv1alpha1.ConditionReady, Status: metav1.ConditionFalse}
	switch p := firstProblem(obs, r); {
	case obs.deployment != nil && r.desired > 0 && r.ready >= r.desired:
		c.Status, c.Reason = metav1.ConditionTrue, notifyv1alpha1.ReasonAvailable
		c.Message = fmt.Sprintf("%d of %d streamer pods ready", r.ready, r.desired)
	case p != nil:
		c.Reason, c.Message = p.reason, p.message
	default:
		c.Reason = notifyv1alpha1.ReasonReplicasNotReady
		c.Message = fmt.Sprintf("%d of %d streamer pods ready", r.ready, r.desired)
	}
	return c
}

// progressingCondition: True while the Deployment rolls out the current pod
// template; False once it completed or got stuck.
func progressingCondition(obs observation, r rollout) metav1.Condition {
	c := metav1.Condition{Type: notifyv1alpha1.ConditionProgressing, Message: r.message}
	switch {
	case obs.applyFailed != nil:
		c.Status, c.Reason, c.Message = metav1.ConditionFalse, obs.applyFailed.reason, obs.applyFailed.message
	case r.phase == rolloutStuck:
		c.Status, c.Reason = metav1.ConditionFalse, notifyv1alpha1.ReasonRolloutStuck
	case r.phase == rolloutComplete:
		c.Status, c.Reason = metav1.ConditionFalse, notifyv1alpha1.ReasonRolloutComplete
	default:
		c.Status, c.Reason = metav1.ConditionTrue, notifyv1alpha1.ReasonReconciling
	}
	return c
}

// degradedCondition: True when a person has to act, with the first thing to
// fix as its reason.
func degradedCondition(obs observation, r rollout) metav1.Condition {
	if p := firstProblem(obs, r); p != nil {
		return metav1.Condition{Type: notifyv1alpha1.ConditionDegraded, Status: metav1.ConditionTrue, Reason: p.reason, Message: p.message}
	}
	return metav1.Condition{Type: notifyv1alpha1.ConditionDegraded, Status: metav1.ConditionFalse,
		Reason: notifyv1alpha1.ReasonAsExpected, Message: "nothing needs attention"}
}

// firstProblem is what a person must fix first, or nil. A missing or
// unusable Secret comes first: it is the cause of most other symptoms.
func firstProblem(obs observation, r rollout) *problem {
	switch {
	case obs.misconfigured != nil:
		return obs.misconfigured
	case obs.applyFailed != nil:
		return obs.applyFailed
	case r.phase == rolloutStuck:
		return &problem{reason: notifyv1alpha1.ReasonRolloutStuck, message: r.message}
	}
	return nil
}
