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
	"github.com/herald-notify/herald/internal/sevstatus"
)

// SystemEventControllerName names the SystemEvent controller.
const SystemEventControllerName = "systemevent"

// channelRefIndex indexes SystemEvents by the name of their channel.
const channelRefIndex = "notify.herald.dev/channel-ref"

// SystemEventReconciler reports whether a SystemEvent's channel exists.
// Announcing is the streamers' work (they watch their channel's
// SystemEvents and record what they announced); without a channel there is
// no streamer, and nothing would tell the person who applied the
// SystemEvent why it stays silent.
type SystemEventReconciler struct {
	Client client.Client
}

// Reconcile sets the ChannelFound condition: False with reason
// ChannelNotFound while the channel is missing, True once it exists.
func (r *SystemEventReconciler) Reconcile(ctx context.Context, req ctrl.Request) (ctrl.Result, error) {
	sev := &notifyv1alpha1.SystemEvent{}
	if err := r.Client.Get(ctx, req.NamespacedName, sev); err != nil {
		return ctrl.Result{}, client.IgnoreNotFound(err)
	}
	channelName := sev.Spec.ChannelRef.Name
	err := r.Client.Get(ctx, types.NamespacedName{Namespace: sev.Namespace, Name: channelName}, &notifyv1alpha1.NotificationChannel{})
	if err != nil && !apierrors.IsNotFound(err) {
		return ctrl.Result{}, fmt.Errorf("failed to read the channel of SystemEvent %s: %w", req.NamespacedName, err)
	}
	return ctrl.Result{}, applyChannelFound(ctx, r.Client, sev, err == nil)
}

// applyChannelFound records on sev whether its channel exists, as the
// ChannelFound condition. It is the operator's whole part of the status,
// applied under the operator's field manager: the streamers' record and
// their Ready condition are theirs, and the API server merges the two. An
// unchanged condition costs no write.
func applyChannelFound(ctx context.Context, c client.Client, sev *notifyv1alpha1.SystemEvent, found bool) error {
	// Starting from the recorded condition keeps its transition time while
	// its status stays.
	var conditions []metav1.Condition
	if recorded := meta.FindStatusCondition(sev.Status.Conditions, notifyv1alpha1.ConditionChannelFound); recorded != nil {
		conditions = []metav1.Condition{*recorded}
	}
	if !meta.SetStatusCondition(&conditions, channelFoundCondition(sev, found)) {
		return nil
	}
	return sevstatus.Apply(ctx, c, client.ObjectKeyFromObject(sev), "",
		notifyv1alpha1.SystemEventStatus{Conditions: conditions}, FieldOwner)
}

// channelFoundCondition is the ChannelFound condition of sev's generation.
func channelFoundCondition(sev *notifyv1alpha1.SystemEvent, found bool) metav1.Condition {
	if found {
		return metav1.Condition{
			Type: notifyv1alpha1.ConditionChannelFound, Status: metav1.ConditionTrue, Reason: notifyv1alpha1.ReasonChannelExists,
			ObservedGeneration: sev.Generation,
			Message:            fmt.Sprintf("NotificationChannel %q exists: its streamers announce this SystemEvent", sev.Spec.ChannelRef.Name),
		}
	}
	return metav1.Condition{
		Type: notifyv1alpha1.ConditionChannelFound, Status: metav1.ConditionFalse, Reason: notifyv1alpha1.ReasonChannelNotFound,
		ObservedGeneration: sev.Generation,
		Message: fmt.Sprintf("NotificationChannel %q named by spec.channelRef does not exist in namespace %q: nothing announces this SystemEvent until it does",
			sev.Spec.ChannelRef.Name, sev.Namespace),
	}
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
