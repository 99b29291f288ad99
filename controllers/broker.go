package controllers

import (
	"k8s.io/apimachinery/pkg/api/equality"
	"k8s.io/apimachinery/pkg/api/meta"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"sigs.k8s.io/controller-runtime/pkg/event"
	"sigs.k8s.io/controller-runtime/pkg/predicate"

	notifyv1alpha1 "github.com/herald-notify/herald/api/v1alpha1"
)

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

// brokerReported passes a change of the streamers' BrokerReachable
// condition: a status write the operator must fold into its own conditions.
var brokerReported = predicate.Funcs{
	CreateFunc:  func(event.CreateEvent) bool { return false },
	DeleteFunc:  func(event.DeleteEvent) bool { return false },
	GenericFunc: func(event.GenericEvent) bool { return false },
	UpdateFunc: func(e event.UpdateEvent) bool {
		before, ok1 := e.ObjectOld.(*notifyv1alpha1.NotificationChannel)
		after, ok2 := e.ObjectNew.(*notifyv1alpha1.NotificationChannel)
		if !ok1 || !ok2 {
			return false
		}
		return !equality.Semantic.DeepEqual(
			meta.FindStatusCondition(before.Status.Conditions, notifyv1alpha1.ConditionBrokerReachable),
			meta.FindStatusCondition(after.Status.Conditions, notifyv1alpha1.ConditionBrokerReachable))
	},
}
