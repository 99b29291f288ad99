package controllers

import (
	"context"
	"errors"
	"fmt"
	"strings"

	appsv1 "k8s.io/api/apps/v1"
	autoscalingv2 "k8s.io/api/autoscaling/v2"
	corev1 "k8s.io/api/core/v1"
	networkingv1 "k8s.io/api/networking/v1"
	policyv1 "k8s.io/api/policy/v1"
	rbacv1 "k8s.io/api/rbac/v1"
	"k8s.io/apimachinery/pkg/api/equality"
	"k8s.io/apimachinery/pkg/api/meta"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime"
	appsv1ac "k8s.io/client-go/applyconfigurations/apps/v1"
	"k8s.io/client-go/tools/events"
	"k8s.io/klog/v2"
	ctrl "sigs.k8s.io/controller-runtime"
	"sigs.k8s.io/controller-runtime/pkg/builder"
	"sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/controller-runtime/pkg/controller/controllerutil"
	"sigs.k8s.io/controller-runtime/pkg/handler"
	"sigs.k8s.io/controller-runtime/pkg/log"
	"sigs.k8s.io/controller-runtime/pkg/predicate"
	"sigs.k8s.io/controller-runtime/pkg/reconcile"

	notifyv1alpha1 "github.com/herald-notify/herald/api/v1alpha1"
	"github.com/herald-notify/herald/controllers/resources"
)

// ControllerName names the NotificationChannel controller in logs, metrics
// and as the reporting controller of its Events.
const ControllerName = "notificationchannel"

// Finalizer holds a channel until the operator deleted its cluster-scoped
// objects, which no owner reference can tie to a namespaced channel.
const Finalizer = "notify.herald.dev/cluster-objects"

// replicasHandoverOwner is the field manager that holds a Deployment's
// spec.replicas while it passes from the operator to an autoscaler.
const replicasHandoverOwner = "herald-operator-replicas-handover"

// NotificationChannelReconciler turns a NotificationChannel into its
// streamers: ServiceAccount, Role, RoleBinding, Deployment, Service, and when
// wanted a NetworkPolicy, a PodDisruptionBudget and a HorizontalPodAutoscaler,
// then reports how they are doing on the channel's status.
type NotificationChannelReconciler struct {
	// Client reads from the manager's cache and writes to the API server.
	Client client.Client
	// Recorder records Kubernetes Events on the channel.
	Recorder events.EventRecorder
	// StreamerImage is the image of the streamer pods when a channel sets no
	// spec.image.
	StreamerImage string
}

// reconciliation is the state of one reconcile of one channel.
type reconciliation struct {
	channel *notifyv1alpha1.NotificationChannel
	inputs  resources.Inputs
	// written names the owned objects this reconcile created, changed or
	// deleted, for the Event that reports them.
	written []string
	// deployment is the streamers' Deployment after ensureDeployment.
	deployment *appsv1.Deployment
}

// Reconcile applies the channel's owned objects one ensure step at a time,
// and records the outcome on its status, with what the streamers report. A
// step that fails stops the ones after it; the status then says which failed
// and the request is retried with backoff. A spec the objects cannot be built from
// is reported and not retried: only a change of the channel can fix it, and
// a change triggers a reconcile anyway.
func (r *NotificationChannelReconciler) Reconcile(ctx context.Context, req ctrl.Request) (ctrl.Result, error) {
	channel := &notifyv1alpha1.NotificationChannel{}
	if err := r.Client.Get(ctx, req.NamespacedName, channel); err != nil {
		return ctrl.Result{}, client.IgnoreNotFound(err)
	}
	if !channel.DeletionTimestamp.IsZero() {
		// The garbage collector deletes the namespaced objects; the
		// cluster-scoped binding goes through the finalizer.
		return ctrl.Result{}, r.finalize(ctx, channel)
	}
	rec := &reconciliation{channel: channel, inputs: resources.Inputs{Channel: channel, DefaultImage: r.StreamerImage}}
	if err := rec.inputs.Validate(); err != nil {
		return ctrl.Result{}, r.stall(ctx, rec, err)
	}

	applyErr := r.ensureOwnedObjects(ctx, rec,
		r.ensureFinalizer,
		r.ensureServiceAccount,
		r.ensureRole,
		r.ensureRoleBinding,
		r.ensureAuthDelegatorBinding,
		r.ensureDeployment,
		r.ensureService,
		r.ensureNetworkPolicy,
		r.ensurePodDisruptionBudget,
		r.ensureHorizontalPodAutoscaler,
	)
	misconfigured, reported := secretsProblem(channel)
	obs := observation{misconfigured: misconfigured, awaitingStreamer: !reported, broker: brokerProblem(channel),
		deployment: rec.deployment, endpoint: resources.Endpoint(rec.inputs)}
	if applyErr != nil {
		obs.failed = &problem{reason: notifyv1alpha1.ReasonReconcileFailed, message: oneLine(applyErr.Error())}
	}
	statusErr := r.ensureStatus(ctx, rec, obs)
	return ctrl.Result{}, errors.Join(applyErr, statusErr)
}

// stall reports a spec the streamer objects cannot be built from, and
// returns it as a terminal error: retrying would fail the same way.
func (r *NotificationChannelReconciler) stall(ctx context.Context, rec *reconciliation, invalid error) error {
	obs := observation{invalid: &problem{reason: notifyv1alpha1.ReasonInvalidSpec, message: oneLine(invalid.Error())}}
	if err := r.ensureStatus(ctx, rec, obs); err != nil {
		// The status must still be written: that is worth a retry.
		return err
	}
	return reconcile.TerminalError(invalid)
}

// ensureStep makes one kind of owned object match the channel.
type ensureStep func(ctx context.Context, rec *reconciliation) error

// ensureOwnedObjects runs the steps in order, stopping at the first failure,
// and reports what they wrote in one Event.
func (r *NotificationChannelReconciler) ensureOwnedObjects(ctx context.Context, rec *reconciliation, steps ...ensureStep) error {
	var err error
	for _, step := range steps {
		if err = step(ctx, rec); err != nil {
			break
		}
	}
	if len(rec.written) > 0 {
		r.Recorder.Eventf(rec.channel, nil, corev1.EventTypeNormal, "Applied", "Reconcile",
			"updated the streamer objects: %s", strings.Join(rec.written, ", "))
	}
	return err
}

// ensureFinalizer puts Finalizer on the channel before anything
// cluster-scoped is created for it, so that nothing outlives it.
func (r *NotificationChannelReconciler) ensureFinalizer(ctx context.Context, rec *reconciliation) error {
	patch := client.MergeFromWithOptions(rec.channel.DeepCopy(), client.MergeFromWithOptimisticLock{})
	if !controllerutil.AddFinalizer(rec.channel, Finalizer) {
		return nil
	}
	// A patch of the finalizers alone: an update would send the whole
	// typed spec back, and its empty blocks would be defaulted anew.
	log.FromContext(ctx).Info("Adding finalizer", "finalizer", Finalizer)
	if err := r.Client.Patch(ctx, rec.channel, patch); err != nil {
		return fmt.Errorf("failed to add finalizer %s: %w", Finalizer, err)
	}
	return nil
}

// ensureAuthDelegatorBinding lets the streamers review publishers'
// ServiceAccount tokens.
func (r *NotificationChannelReconciler) ensureAuthDelegatorBinding(ctx context.Context, rec *reconciliation) error {
	desired := resources.AuthDelegatorBinding(rec.inputs)
	_, written, err := applyChanged(ctx, r.Client, desired, clusterRoleBindingKind)
	if written {
		rec.written = append(rec.written, "ClusterRoleBinding "+desired.Name)
	}
	return err
}

// finalize deletes the channel's cluster-scoped binding, then lets the
// channel go.
func (r *NotificationChannelReconciler) finalize(ctx context.Context, channel *notifyv1alpha1.NotificationChannel) error {
	if !controllerutil.ContainsFinalizer(channel, Finalizer) {
		return nil
	}
	logger := log.FromContext(ctx)
	binding := &rbacv1.ClusterRoleBinding{}
	binding.Name = resources.AuthDelegatorBindingName(channel.Namespace, channel.Name)
	logger.Info("Deleting ClusterRoleBinding", "clusterRoleBinding", klog.KObj(binding), "reason", "the channel is being deleted")
	if err := r.Client.Delete(ctx, binding); client.IgnoreNotFound(err) != nil {
		return fmt.Errorf("failed to delete ClusterRoleBinding %s: %w", binding.Name, err)
	}
	patch := client.MergeFromWithOptions(channel.DeepCopy(), client.MergeFromWithOptimisticLock{})
	controllerutil.RemoveFinalizer(channel, Finalizer)
	logger.Info("Removing finalizer", "finalizer", Finalizer)
	if err := r.Client.Patch(ctx, channel, patch); err != nil {
		return fmt.Errorf("failed to remove finalizer %s: %w", Finalizer, err)
	}
	return nil
}

func (r *NotificationChannelReconciler) ensureServiceAccount(ctx context.Context, rec *reconciliation) error {
	return ensureApplied(ctx, r.Client, rec, resources.ServiceAccount(rec.inputs), serviceAccountKind)
}

func (r *NotificationChannelReconciler) ensureRole(ctx context.Context, rec *reconciliation) error {
	return ensureApplied(ctx, r.Client, rec, resources.Role(rec.inputs), roleKind)
}

func (r *NotificationChannelReconciler) ensureRoleBinding(ctx context.Context, rec *reconciliation) error {
	return ensureApplied(ctx, r.Client, rec, resources.RoleBinding(rec.inputs), roleBindingKind)
}

// ensureDeployment applies the streamers' Deployment. Under autoscaling the
// operator stops setting spec.replicas, and hands it to the autoscaler first.
func (r *NotificationChannelReconciler) ensureDeployment(ctx context.Context, rec *reconciliation) error {
	desired := resources.Deployment(rec.inputs)
	if desired.Spec.Replicas == nil {
		if err := r.handOverReplicas(ctx, desired); err != nil {
			return err
		}
	}
	deployment, written, err := applyOwned(ctx, r.Client, rec.channel, desired, deploymentKind)
	if err != nil {
		return err
	}
	rec.deployment = deployment
	if written {
		rec.written = append(rec.written, "Deployment "+desired.Name)
	}
	return nil
}

// handOverReplicas keeps a Deployment's replica count when the operator
// stops applying it. An apply that drops a field its manager alone owns
// removes the field, and the API server would reset spec.replicas to 1: every
// client of the other pods would reconnect at once. So, as the server-side
// apply documentation describes for handing replicas to an autoscaler, the
// current count is first applied under a second field manager; the
// operator's apply then releases the field without removing it, and the
// autoscaler takes it over when it scales.
func (r *NotificationChannelReconciler) handOverReplicas(ctx context.Context, desired *appsv1.Deployment) error {
	current := &appsv1.Deployment{}
	if err := r.Client.Get(ctx, client.ObjectKeyFromObject(desired), current); err != nil {
		return client.IgnoreNotFound(err)
	}
	applied, err := appsv1ac.ExtractDeployment(current, FieldOwner)
	if err != nil {
		return fmt.Errorf("failed to read the fields %s owns in Deployment %s: %w", FieldOwner, desired.Name, err)
	}
	if applied.Spec == nil || applied.Spec.Replicas == nil || current.Spec.Replicas == nil {
		return nil
	}
	handover := appsv1ac.Deployment(current.Name, current.Namespace).
		WithSpec(appsv1ac.DeploymentSpec().WithReplicas(*current.Spec.Replicas))
	log.FromContext(ctx).Info("Handing spec.replicas over to the autoscaler", "deployment", klog.KObj(current), "replicas", *current.Spec.Replicas)
	if err := r.Client.Apply(ctx, handover, client.FieldOwner(replicasHandoverOwner), client.ForceOwnership); err != nil {
		return fmt.Errorf("failed to hand spec.replicas of Deployment %s over to the autoscaler: %w", desired.Name, err)
	}
	return nil
}

func (r *NotificationChannelReconciler) ensureService(ctx context.Context, rec *reconciliation) error {
	return ensureApplied(ctx, r.Client, rec, resources.Service(rec.inputs), serviceKind)
}

// ensureNetworkPolicy applies the NetworkPolicy when spec.networkPolicy is
// enabled, and deletes it otherwise.
func (r *NotificationChannelReconciler) ensureNetworkPolicy(ctx context.Context, rec *reconciliation) error {
	if policy, wanted := resources.NetworkPolicy(rec.inputs); wanted {
		return ensureApplied(ctx, r.Client, rec, policy, networkPolicyKind)
	}
	return ensureDeleted(ctx, r.Client, rec, networkPolicyKind)
}

// ensurePodDisruptionBudget applies the PodDisruptionBudget when the channel
// can run more than one pod, and deletes it otherwise.
func (r *NotificationChannelReconciler) ensurePodDisruptionBudget(ctx context.Context, rec *reconciliation) error {
	if pdb, wanted := resources.PodDisruptionBudget(rec.inputs); wanted {
		return ensureApplied(ctx, r.Client, rec, pdb, podDisruptionBudgetKind)
	}
	return ensureDeleted(ctx, r.Client, rec, podDisruptionBudgetKind)
}

// ensureHorizontalPodAutoscaler applies the autoscaler when spec.autoscaling
// is set, and deletes it otherwise.
func (r *NotificationChannelReconciler) ensureHorizontalPodAutoscaler(ctx context.Context, rec *reconciliation) error {
	if hpa, wanted := resources.HorizontalPodAutoscaler(rec.inputs); wanted {
		return ensureApplied(ctx, r.Client, rec, hpa, horizontalPodAutoscalerKind)
	}
	return ensureDeleted(ctx, r.Client, rec, horizontalPodAutoscalerKind)
}

// ensureApplied applies desired when it differs from what is applied, and
// notes the write.
func ensureApplied[T client.Object, AC runtime.ApplyConfiguration](ctx context.Context, c client.Client, rec *reconciliation, desired T, kind ownedKind[T, AC]) error {
	_, written, err := applyOwned(ctx, c, rec.channel, desired, kind)
	if written {
		rec.written = append(rec.written, desired.GetObjectKind().GroupVersionKind().Kind+" "+desired.GetName())
	}
	return err
}

// ensureDeleted deletes the channel's object of the kind, if it has one.
func ensureDeleted[T client.Object, AC runtime.ApplyConfiguration](ctx context.Context, c client.Client, rec *reconciliation, kind ownedKind[T, AC]) error {
	key := client.ObjectKey{Namespace: rec.channel.Namespace, Name: resources.ObjectName(rec.channel.Name)}
	deleted, err := deleteOwned(ctx, c, rec.channel, key, kind)
	if deleted {
		rec.written = append(rec.written, "deleted "+kind.kind+" "+key.Name)
	}
	return err
}

// ensureStatus writes the operator's part of the channel's status when it
// differs from what the reconcile observed, and records an Event when the
// channel turns Degraded or Ready.
func (r *NotificationChannelReconciler) ensureStatus(ctx context.Context, rec *reconciliation, obs observation) error {
	channel := rec.channel
	status := desiredStatus(channel, obs)
	if equality.Semantic.DeepEqual(status, channel.Status) {
		return nil
	}
	r.recordTransitions(ctx, channel, channel.Status.Conditions, status.Conditions)

	log.FromContext(ctx).V(1).Info("Updating status", "observedGeneration", status.ObservedGeneration)
	return applyStatus(ctx, r.Client, channel, status)
}

// recordTransitions records an Event when the channel turns Degraded (or
// degrades for another reason), recovers, or becomes Ready: the moments a
// person watching `kubectl get events` needs. Each is logged too.
func (r *NotificationChannelReconciler) recordTransitions(ctx context.Context, channel *notifyv1alpha1.NotificationChannel, before, after []metav1.Condition) {
	logger := log.FromContext(ctx)
	wasDegraded := meta.FindStatusCondition(before, notifyv1alpha1.ConditionDegraded)
	degraded := meta.FindStatusCondition(after, notifyv1alpha1.ConditionDegraded)
	switch {
	case degraded.Status == metav1.ConditionTrue && (wasDegraded == nil || wasDegraded.Status != metav1.ConditionTrue || wasDegraded.Reason != degraded.Reason):
		logger.Info("Channel degraded", "reason", degraded.Reason)
		r.Recorder.Eventf(channel, nil, corev1.EventTypeWarning, degraded.Reason, "Reconcile", "%s", degraded.Message)
	case degraded.Status == metav1.ConditionFalse && wasDegraded != nil && wasDegraded.Status == metav1.ConditionTrue:
		logger.Info("Channel recovered", "previousReason", wasDegraded.Reason)
		r.Recorder.Eventf(channel, nil, corev1.EventTypeNormal, "Recovered", "Reconcile", "no longer degraded (was %s)", wasDegraded.Reason)
	}
	wasReady := meta.IsStatusConditionTrue(before, notifyv1alpha1.ConditionReady)
	if ready := meta.FindStatusCondition(after, notifyv1alpha1.ConditionReady); ready.Status == metav1.ConditionTrue && !wasReady {
		logger.Info("Channel ready", "generation", channel.Generation)
		r.Recorder.Eventf(channel, nil, corev1.EventTypeNormal, notifyv1alpha1.ReasonAvailable, "Reconcile", "%s", ready.Message)
	}
}

// SetupWithManager registers the reconciler: it watches channels, with the
// conditions their streamers report, and the objects they own. It watches no
// Secret: the streamers report on them.
func (r *NotificationChannelReconciler) SetupWithManager(mgr ctrl.Manager) error {
	return r.setupWithManager(mgr, r)
}

// setupWithManager registers reconciler, which is r or wraps it, with r's
// watches.
func (r *NotificationChannelReconciler) setupWithManager(mgr ctrl.Manager, reconciler reconcile.Reconciler) error {
	return ctrl.NewControllerManagedBy(mgr).
		Named(ControllerName).
		// Status-only changes are the operator's own writes, except the
		// streamers' reports: no reconcile for those.
		For(&notifyv1alpha1.NotificationChannel{}, builder.WithPredicates(predicate.Or(
			predicate.GenerationChangedPredicate{}, predicate.LabelChangedPredicate{}, predicate.AnnotationChangedPredicate{},
			streamersReported))).
		Owns(&corev1.ServiceAccount{}).
		Owns(&rbacv1.Role{}).
		Owns(&rbacv1.RoleBinding{}).
		Watches(&rbacv1.ClusterRoleBinding{}, handler.EnqueueRequestsFromMapFunc(channelOfClusterObject)).
		Owns(&appsv1.Deployment{}).
		Owns(&corev1.Service{}).
		Owns(&networkingv1.NetworkPolicy{}).
		Owns(&policyv1.PodDisruptionBudget{}).
		Owns(&autoscalingv2.HorizontalPodAutoscaler{}).
		Complete(reconciler)
}

// channelOfClusterObject maps a cluster-scoped object of a channel, found
// by its labels, to the channel.
func channelOfClusterObject(_ context.Context, obj client.Object) []ctrl.Request {
	labels := obj.GetLabels()
	namespace, name := labels[resources.LabelChannelNamespace], labels[resources.LabelChannel]
	if namespace == "" || name == "" || labels[resources.LabelManagedBy] != resources.ManagedBy {
		return nil
	}
	// The channel label holds the name unless it was too long for a label;
	// such a channel's binding is still restored on its next reconcile.
	return []ctrl.Request{{NamespacedName: client.ObjectKey{Namespace: namespace, Name: name}}}
}

// oneLine joins the lines of a joined error, for a condition message.
func oneLine(s string) string { return strings.ReplaceAll(s, "\n", "; ") }
