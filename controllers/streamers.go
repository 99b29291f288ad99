package controllers

import (
	"k8s.io/apimachinery/pkg/api/equality"
	"k8s.io/apimachinery/pkg/api/meta"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"sigs.k8s.io/controller-runtime/pkg/event"
	"sigs.k8s.io/controller-runtime/pkg/predicate"

	notifyv1alpha1 "github.com/herald-notify/herald/api/v1alpha1"
)

// The streamer pods write conditions of their own on the channel, about
// what only they can see; the operator folds them into Ready and Degraded.

// brokerProblem is what the streamers of a NATS channel report about its
// broker (a False BrokerReachable, with their reason and message), or nil.
// The operator holds no NATS credentials: only the pods know whether NATS
// answers.
func brokerProblem(channel *notifyv1alpha1.NotificationChannel) *problem {
	if channel.Spec.Broker.Type != notifyv1alpha1.BrokerNATS {
		return nil
	}
	c := meta.FindStatusCondition(channel.Status.Conditions, notifyv1alpha1.ConditionBrokerReachable)
	if c == nil || c.Status != metav1.ConditionFalse {
		return nil
	}
	return &problem{reason: c.Reason, message: c.Message}
}

// secretsProblem is what the streamers report about the channel's Secrets
// for its current generation (a False SecretsUsable, with their reason and
// message), or nil; reported is false while no pod has reported for that
// generation. The operator reads no Secret: the pods read them anyway.
func secretsProblem(channel *notifyv1alpha1.NotificationChannel) (p *problem, reported bool) {
	c := meta.FindStatusCondition(channel.Status.Conditions, notifyv1alpha1.ConditionSecretsUsable)
	if c == nil || c.ObservedGeneration != channel.Generation || c.Status == metav1.ConditionUnknown {
		return nil, false
	}
	if c.Status == metav1.ConditionFalse {
		return &problem{reason: c.Reason, message: c.Message}, true
	}
	return nil, true
}

// streamerConditions are the conditions the streamers write.
var streamerConditions = []string{notifyv1alpha1.ConditionBrokerReachable, notifyv1alpha1.ConditionSecretsUsable}

// streamersReported passes a change of a condition the streamers write: a
// status write the operator must fold into its own conditions.
var streamersReported = predicate.Funcs{
	CreateFunc:  func(event.CreateEvent) bool { return false },
	DeleteFunc:  func(event.DeleteEvent) bool { return false },
	GenericFunc: func(event.GenericEvent) bool { return false },
	UpdateFunc: func(e event.UpdateEvent) bool {
		before, ok1 := e.ObjectOld.(*notifyv1alpha1.NotificationChannel)
		after, ok2 := e.ObjectNew.(*notifyv1alpha1.NotificationChannel)
		if !ok1 || !ok2 {
			return false
		}
		for _, typ := range streamerConditions {
			if !equality.Semantic.DeepEqual(meta.FindStatusCondition(before.Status.Conditions, typ), meta.FindStatusCondition(after.Status.Conditions, typ)) {
				return true
			}
		}
		return false
	},
}
