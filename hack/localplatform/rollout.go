package main

import (
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"

	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
)

// The rollout strategy the runner follows, whatever the Deployment says: the
// operator's (controllers/resources rollingUpdate), which never takes a ready
// pod away before its replacement is ready.
const (
	maxSurge = 1
)

// Deployment condition reasons, as the deployment controller writes them.
const (
	reasonMinimumReplicasAvailable   = "MinimumReplicasAvailable"
	reasonMinimumReplicasUnavailable = "MinimumReplicasUnavailable"
	reasonNewReplicaSetAvailable     = "NewReplicaSetAvailable"
	reasonReplicaSetUpdated          = "ReplicaSetUpdated"
)

// templateHash names a pod template revision, as pod-template-hash does.
func templateHash(template *corev1.PodTemplateSpec) string {
	data, _ := json.Marshal(template)
	sum := sha256.Sum256(data)
	return hex.EncodeToString(sum[:])[:10]
}

// desiredReplicas is spec.replicas, 1 when unset (the API's default).
func desiredReplicas(d *appsv1.Deployment) int {
	if d.Spec.Replicas == nil {
		return 1
	}
	return int(*d.Spec.Replicas)
}

// podView is what the rollout decisions look at in a running pod.
type podView struct {
	revision string
	ready    bool
}

// rolloutStep is what to do next: start a pod of the current revision, and
// which pods (by index) to stop.
type rolloutStep struct {
	start bool
	stop  []int
}

// planRollout decides the next step of a rolling update with maxUnavailable 0
// and maxSurge 1, and of scaling, given the pods that run (none stopping):
//   - a pod of the current revision is started while fewer than desired run
//     and the surge allows one more;
//   - an old pod is stopped when the ready pods left without it are still at
//     least desired, not-ready old pods first (they serve nobody);
//   - once no old pod is left, pods beyond desired are stopped, not-ready
//     ones first, then the newest.
//
// Called again after every change, it converges one pod at a time.
func planRollout(pods []podView, current string, desired int) rolloutStep {
	var step rolloutStep
	var updated, ready int
	var old []int
	for i, p := range pods {
		if p.ready {
			ready++
		}
		if p.revision == current {
			updated++
		} else {
			old = append(old, i)
		}
	}
	if updated < desired && len(pods) < desired+maxSurge {
		step.start = true
	}
	if len(old) > 0 {
		if i, ok := stoppable(pods, old, ready, desired); ok {
			step.stop = append(step.stop, i)
		}
		return step
	}
	if extra := updated - desired; extra > 0 {
		step.stop = scaleInVictims(pods, extra)
	}
	return step
}

// stoppable is an old pod that can go without fewer than desired ready pods
// being left: a not-ready one, or a ready one when there is a ready spare.
func stoppable(pods []podView, old []int, ready, desired int) (int, bool) {
	for _, i := range old {
		if !pods[i].ready {
			return i, true
		}
	}
	if ready-1 >= desired {
		return old[0], true
	}
	return 0, false
}

// scaleInVictims picks n pods to stop on scale-in: not-ready ones first, then
// the newest, which have the fewest streams to move.
func scaleInVictims(pods []podView, n int) []int {
	var victims []int
	for i := len(pods) - 1; i >= 0 && len(victims) < n; i-- {
		if !pods[i].ready {
			victims = append(victims, i)
		}
	}
	for i := len(pods) - 1; i >= 0 && len(victims) < n; i-- {
		if pods[i].ready {
			victims = append(victims, i)
		}
	}
	return victims
}

// deploymentStatus is the status the deployment controller would write for
// pods (those not stopping) at generation, keeping the transition times of
// conditions whose status did not change.
func deploymentStatus(previous appsv1.DeploymentStatus, pods []podView, current string, desired int, generation int64, now metav1.Time) appsv1.DeploymentStatus {
	status := appsv1.DeploymentStatus{ObservedGeneration: generation, Replicas: int32(len(pods))}
	for _, p := range pods {
		if p.revision == current {
			status.UpdatedReplicas++
		}
		if p.ready {
			status.ReadyReplicas++
		}
	}
	// minReadySeconds is 0: a ready pod is available.
	status.AvailableReplicas = status.ReadyReplicas
	status.UnavailableReplicas = max(0, int32(desired)-status.AvailableReplicas)

	available := condition(appsv1.DeploymentAvailable, corev1.ConditionFalse, reasonMinimumReplicasUnavailable,
		"Deployment does not have minimum availability.")
	if int(status.AvailableReplicas) >= desired {
		available = condition(appsv1.DeploymentAvailable, corev1.ConditionTrue, reasonMinimumReplicasAvailable,
			"Deployment has minimum availability.")
	}
	progressing := condition(appsv1.DeploymentProgressing, corev1.ConditionTrue, reasonReplicaSetUpdated,
		"The local runner is rolling out the pod template.")
	if int(status.UpdatedReplicas) == desired && int(status.Replicas) == desired && int(status.AvailableReplicas) == desired {
		progressing = condition(appsv1.DeploymentProgressing, corev1.ConditionTrue, reasonNewReplicaSetAvailable,
			"The pod template has successfully progressed.")
	}
	for _, c := range []appsv1.DeploymentCondition{available, progressing} {
		c.LastUpdateTime, c.LastTransitionTime = now, now
		if prev := findCondition(previous, c.Type); prev != nil && prev.Status == c.Status {
			c.LastTransitionTime = prev.LastTransitionTime
			if prev.Reason == c.Reason && prev.Message == c.Message {
				c.LastUpdateTime = prev.LastUpdateTime
			}
		}
		status.Conditions = append(status.Conditions, c)
	}
	return status
}

func condition(typ appsv1.DeploymentConditionType, status corev1.ConditionStatus, reason, message string) appsv1.DeploymentCondition {
	return appsv1.DeploymentCondition{Type: typ, Status: status, Reason: reason, Message: message}
}

func findCondition(status appsv1.DeploymentStatus, typ appsv1.DeploymentConditionType) *appsv1.DeploymentCondition {
	for i := range status.Conditions {
		if status.Conditions[i].Type == typ {
			return &status.Conditions[i]
		}
	}
	return nil
}
