package controllers

import (
	"context"
	"fmt"

	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"k8s.io/apimachinery/pkg/api/meta"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"
	ctrl "sigs.k8s.io/controller-runtime"
	"sigs.k8s.io/controller-runtime/pkg/builder"
	"sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/controller-runtime/pkg/event"
	"sigs.k8s.io/controller-runtime/pkg/handler"
	"sigs.k8s.io/controller-runtime/pkg/log"
	"sigs.k8s.io/controller-runtime/pkg/predicate"

	notifyv1alpha1 "github.com/herald-notify/herald/api/v1alpha1"
)

// SystemEventControllerName names the SystemEvent controller.
const SystemEventControllerName = "systemevent"

// channelRefIndex indexes SystemEvents by the name of their channel.
const channelRefIndex = "notify.herald.dev/channel-ref"

// SystemEventReconciler reports SystemEvents whose channel does not exist.
// Announcing is the streamers' work (they watch their channel's
// SystemEvents and record what they announced); without a channel there is
// no streamer, and nothing would tell the person who applied the
// SystemEvent why it stays silent.
type SystemEventReconciler struct {
	Client client.Client
}

// Reconcile sets the Ready condition to ChannelNotFound while the channel is
// missing, and removes it once the channel exists, leaving the status to the
// channel's streamers.
func (r *SystemEventReconciler) Reconcile(ctx context.Context, req ctrl.Request) (ctrl.Result, error) {
	sev := &notifyv1alpha1.SystemEvent{}
	if err := r.Client.Get(ctx, req.NamespacedName, sev); err != nil {
		return ctrl.Result{}, client.IgnoreNotFound(err)
	}
	channelName := sev.Spec.ChannelRef.Name
	err := r.Client.Get(ctx, types.NamespacedName{Namespace: sev.Namespace, Name: channelName}, &notifyv1alpha1.NotificationChannel{})
	if err != nil && !apierrors.IsNotFound(err) {
		return ctrl.Result{}, err
	}
	missing := apierrors.IsNotFound(err)

	status := sev.Status.DeepCopy()
	ready := meta.FindStatusCondition(status.Conditions, notifyv1alpha1.ConditionReady)
	reported := ready != nil && ready.Reason == notifyv1alpha1.ReasonChannelNotFound
	switch {
	case missing && reported && ready.ObservedGeneration == sev.Generation:
		return ctrl.Result{}, nil
	case missing:
		meta.SetStatusCondition(&status.Conditions, metav1.Condition{
			Type: notifyv1alpha1.ConditionReady, Status: metav1.ConditionFalse, Reason: notifyv1alpha1.ReasonChannelNotFound,
			ObservedGeneration: sev.Generation,
			Message: fmt.Sprintf("NotificationChannel %q named by spec.channelRef does not exist in namespace %q: nothing announces this SystemEvent until it does",
				channelName, sev.Namespace),
		})
	case reported:
		meta.RemoveStatusCondition(&status.Conditions, notifyv1alpha1.ConditionReady)
	default:
		return ctrl.Result{}, nil
	}
	patch := client.MergeFrom(sev.DeepCopy())
	sev.Status = *status
	if err := r.Client.Status().Patch(ctx, sev, patch); err != nil {
		return ctrl.Result{}, fmt.Errorf("failed to update the status of SystemEvent %s: %w", req.NamespacedName, err)
	}
	return ctrl.Result{}, nil
}

// SetupWithManager watches SystemEvents, and channels so that creating or
// deleting one revisits the SystemEvents naming it.
func (r *SystemEventReconciler) SetupWithManager(mgr ctrl.Manager) error {
	if err := mgr.GetFieldIndexer().IndexField(context.Background(), &notifyv1alpha1.SystemEvent{}, channelRefIndex,
		func(obj client.Object) []string {
			return []string{obj.(*notifyv1alpha1.SystemEvent).Spec.ChannelRef.Name}
		}); err != nil {
		return fmt.Errorf("failed to index SystemEvents by channel: %w", err)
	}
	return ctrl.NewControllerManagedBy(mgr).
		Named(SystemEventControllerName).
		For(&notifyv1alpha1.SystemEvent{}, builder.WithPredicates(predicate.GenerationChangedPredicate{})).
		Watches(&notifyv1alpha1.NotificationChannel{}, handler.EnqueueRequestsFromMapFunc(r.systemEventsOfChannel),
			builder.WithPredicates(channelCreatedOrDeleted())).
		Complete(r)
}

// channelCreatedOrDeleted passes the events that change whether a channel
// exists.
func channelCreatedOrDeleted() predicate.Predicate {
	return predicate.Funcs{
		UpdateFunc:  func(_ event.UpdateEvent) bool { return false },
		GenericFunc: func(_ event.GenericEvent) bool { return false },
	}
}

// systemEventsOfChannel maps a channel to the SystemEvents naming it.
func (r *SystemEventReconciler) systemEventsOfChannel(ctx context.Context, channel client.Object) []ctrl.Request {
	var list notifyv1alpha1.SystemEventList
	if err := r.Client.List(ctx, &list, client.InNamespace(channel.GetNamespace()),
		client.MatchingFields{channelRefIndex: channel.GetName()}); err != nil {
		log.FromContext(ctx).Error(err, "failed to list the SystemEvents of a channel", "channel", channel.GetName())
		return nil
	}
	requests := make([]ctrl.Request, len(list.Items))
	for i := range list.Items {
		requests[i] = ctrl.Request{NamespacedName: client.ObjectKeyFromObject(&list.Items[i])}
	}
	return requests
}
