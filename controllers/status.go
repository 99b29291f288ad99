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
	// invalid is set when the spec cannot be turned into the streamer
	// objects: nothing was applied, and nothing will be until it changes.
	invalid *problem
	// failed is set when applying the owned objects failed: the reconcile
	// is retried with backoff.
	failed *problem
	// misconfigured is set when the streamers report a Secret the channel
	// names missing or unusable (SecretsUsable False, for the current
	// generation): what stops its streamers from starting.
	misconfigured *problem
	// awaitingStreamer is set while no streamer pod has reported on the
	// channel's Secrets for its current generation: whether they are usable
	// is not known yet.
	awaitingStreamer bool
	// broker is set when the streamers report that they cannot use the
	// channel's NATS broker (BrokerReachable False).
	broker *problem
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

// serving reports whether the rollout completed and as many pods of the
// current template are ready as the channel asks for (at least one).
func (r rollout) serving() bool {
	return r.phase == rolloutComplete && r.desired > 0 && r.ready >= r.desired
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
// Every condition is computed for the channel's current generation, and says
// so in its observedGeneration. Conditions keep their last transition time
// when their status is unchanged. status.observedGeneration moves, as in
// Flux, when the reconcile is done with the generation: every object
// applied, or stalled on a spec that cannot be applied; never after a failure
// that is retried.
func desiredStatus(channel *notifyv1alpha1.NotificationChannel, obs observation) notifyv1alpha1.NotificationChannelStatus {
	status := *channel.Status.DeepCopy()
	if obs.failed == nil {
		status.ObservedGeneration = channel.Generation
	}
	status.Endpoint = obs.endpoint
	status.Replicas, status.ReadyReplicas = 0, 0
	if d := obs.deployment; d != nil {
		status.Replicas = d.Status.Replicas
		status.ReadyReplicas = d.Status.ReadyReplicas
	}

	r := rolloutOf(obs.deployment)
	conditions := []metav1.Condition{
		readyCondition(obs, r),
		progressingCondition(obs, r),
		degradedCondition(obs, r),
	}
	if stalled, ok := stalledCondition(obs); ok {
		conditions = append(conditions, stalled)
	} else {
		meta.RemoveStatusCondition(&status.Conditions, notifyv1alpha1.ConditionStalled)
	}
	for _, c := range conditions {
		c.ObservedGeneration = channel.Generation
		meta.SetStatusCondition(&status.Conditions, c)
	}
	return status
}

// readyCondition: True when this generation is applied and serving: every
// object applied, the Deployment's rollout of the current pod template
// complete, as many of its pods ready as the channel asks for, and none
// reporting that it cannot use the broker. Pods of an
// older template that are ready do not count, so a Ready that `kubectl wait`
// sees is never the previous generation's. When not, the reason is the first
// thing to fix, else what is awaited.
func readyCondition(obs observation, r rollout) metav1.Condition {
	c := metav1.Condition{Type: notifyv1alpha1.ConditionReady, Status: metav1.ConditionFalse}
	switch p := firstProblem(obs, r); {
	case obs.invalid == nil && obs.failed == nil && obs.broker == nil && r.serving():
		c.Status, c.Reason = metav1.ConditionTrue, notifyv1alpha1.ReasonAvailable
		c.Message = fmt.Sprintf("%d of %d streamer pods ready", r.ready, r.desired)
	case p != nil:
		c.Reason, c.Message = p.reason, p.message
	case obs.deployment == nil:
		c.Reason, c.Message = notifyv1alpha1.ReasonReplicasNotReady, r.message
	case r.desired == 0 || r.ready < r.desired:
		c.Reason = notifyv1alpha1.ReasonReplicasNotReady
		c.Message = fmt.Sprintf("%d of %d streamer pods ready", r.ready, r.desired)
		if obs.awaitingStreamer {
			c.Reason, c.Message = notifyv1alpha1.ReasonAwaitingStreamer, awaitingStreamerMessage+"; "+c.Message
		}
	default:
		c.Reason, c.Message = notifyv1alpha1.ReasonRollingOut, r.message
	}
	return c
}

// progressingCondition: True while the Deployment rolls out the current pod
// template; False once it completed or got stuck, or when the objects could
// not be applied.
func progressingCondition(obs observation, r rollout) metav1.Condition {
	c := metav1.Condition{Type: notifyv1alpha1.ConditionProgressing, Message: r.message}
	switch {
	case obs.invalid != nil:
		c.Status, c.Reason, c.Message = metav1.ConditionFalse, obs.invalid.reason, obs.invalid.message
	case obs.failed != nil:
		c.Status, c.Reason, c.Message = metav1.ConditionFalse, obs.failed.reason, obs.failed.message
	case r.phase == rolloutStuck:
		c.Status, c.Reason = metav1.ConditionFalse, notifyv1alpha1.ReasonRolloutStuck
	case r.phase == rolloutComplete:
		c.Status, c.Reason = metav1.ConditionFalse, notifyv1alpha1.ReasonRolloutComplete
	default:
		c.Status, c.Reason = metav1.ConditionTrue, notifyv1alpha1.ReasonReconciling
	}
	return c
}

// awaitingStreamerMessage says why the operator cannot tell yet whether the
// channel's Secrets are usable: only its streamer pods read them.
const awaitingStreamerMessage = "no streamer pod has reported on the channel's Secrets yet (for this generation): its pods have not started, or cannot reach the API server"

// degradedCondition: True when a person has to act, with the first thing to
// fix as its reason; Unknown while no problem is known and no streamer pod
// has reported on the channel's Secrets.
func degradedCondition(obs observation, r rollout) metav1.Condition {
	if p := firstProblem(obs, r); p != nil {
		return metav1.Condition{Type: notifyv1alpha1.ConditionDegraded, Status: metav1.ConditionTrue, Reason: p.reason, Message: p.message}
	}
	if obs.awaitingStreamer {
		return metav1.Condition{Type: notifyv1alpha1.ConditionDegraded, Status: metav1.ConditionUnknown,
			Reason: notifyv1alpha1.ReasonAwaitingStreamer, Message: awaitingStreamerMessage}
	}
	return metav1.Condition{Type: notifyv1alpha1.ConditionDegraded, Status: metav1.ConditionFalse,
		Reason: notifyv1alpha1.ReasonAsExpected, Message: "nothing needs attention"}
}

// stalledCondition: True when the operator cannot go on with this generation
// and does not retry it; ok is false otherwise, and the condition is removed
// (as Flux does: kstatus reads a missing Stalled as False).
func stalledCondition(obs observation) (c metav1.Condition, ok bool) {
	if obs.invalid == nil {
		return metav1.Condition{}, false
	}
	return metav1.Condition{Type: notifyv1alpha1.ConditionStalled, Status: metav1.ConditionTrue,
		Reason: obs.invalid.reason, Message: obs.invalid.message + "; not retried until the channel changes"}, true
}

// firstProblem is what a person must fix first, or nil. A spec that cannot
// be applied comes first, then a missing or unusable Secret (as the streamers
// report it): it is the cause of most other symptoms; then a broker the
// streamers cannot use.
func firstProblem(obs observation, r rollout) *problem {
	switch {
	case obs.invalid != nil:
		return obs.invalid
	case obs.misconfigured != nil:
		return obs.misconfigured
	case obs.broker != nil:
		return obs.broker
	case obs.failed != nil:
		return obs.failed
	case r.phase == rolloutStuck:
		return &problem{reason: notifyv1alpha1.ReasonRolloutStuck, message: r.message}
	}
	return nil
}
