package controllers

import (
	"context"
	"encoding/json"
	"fmt"
	"strings"

	appsv1 "k8s.io/api/apps/v1"
	autoscalingv2 "k8s.io/api/autoscaling/v2"
	corev1 "k8s.io/api/core/v1"
	networkingv1 "k8s.io/api/networking/v1"
	policyv1 "k8s.io/api/policy/v1"
	rbacv1 "k8s.io/api/rbac/v1"
	"k8s.io/apimachinery/pkg/api/equality"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime"
	appsv1ac "k8s.io/client-go/applyconfigurations/apps/v1"
	autoscalingv2ac "k8s.io/client-go/applyconfigurations/autoscaling/v2"
	corev1ac "k8s.io/client-go/applyconfigurations/core/v1"
	networkingv1ac "k8s.io/client-go/applyconfigurations/networking/v1"
	policyv1ac "k8s.io/client-go/applyconfigurations/policy/v1"
	rbacv1ac "k8s.io/client-go/applyconfigurations/rbac/v1"
	"k8s.io/klog/v2"
	"sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/controller-runtime/pkg/controller/controllerutil"
	"sigs.k8s.io/controller-runtime/pkg/log"

	notifyv1alpha1 "github.com/herald-notify/herald/api/v1alpha1"
)

// FieldOwner is the server-side apply field manager of every object the
// operator applies. One owner: the operator's desired state is one document
// per object, and anything another manager sets is left alone.
const FieldOwner = "herald-operator"

// ownedKind is one kind of object the operator applies for a channel: its
// name, how to make an empty one (to read into) and how to extract the fields
// FieldOwner owns in it, which is what an apply would change.
type ownedKind[T client.Object, AC runtime.ApplyConfiguration] struct {
	kind    string
	empty   func() T
	extract func(T, string) (AC, error)
}

// logKey is the key naming an object of the kind in a log line: the kind in
// lowerCamelCase, as Kubernetes components log them ("deployment").
func (k ownedKind[T, AC]) logKey() string {
	return strings.ToLower(k.kind[:1]) + k.kind[1:]
}

var (
	serviceAccountKind = ownedKind[*corev1.ServiceAccount, *corev1ac.ServiceAccountApplyConfiguration]{
		kind:  "ServiceAccount",
		empty: func() *corev1.ServiceAccount { return &corev1.ServiceAccount{} }, extract: corev1ac.ExtractServiceAccount,
	}
	roleKind = ownedKind[*rbacv1.Role, *rbacv1ac.RoleApplyConfiguration]{
		kind:  "Role",
		empty: func() *rbacv1.Role { return &rbacv1.Role{} }, extract: rbacv1ac.ExtractRole,
	}
	roleBindingKind = ownedKind[*rbacv1.RoleBinding, *rbacv1ac.RoleBindingApplyConfiguration]{
		kind:  "RoleBinding",
		empty: func() *rbacv1.RoleBinding { return &rbacv1.RoleBinding{} }, extract: rbacv1ac.ExtractRoleBinding,
	}
	deploymentKind = ownedKind[*appsv1.Deployment, *appsv1ac.DeploymentApplyConfiguration]{
		kind:  "Deployment",
		empty: func() *appsv1.Deployment { return &appsv1.Deployment{} }, extract: appsv1ac.ExtractDeployment,
	}
	serviceKind = ownedKind[*corev1.Service, *corev1ac.ServiceApplyConfiguration]{
		kind:  "Service",
		empty: func() *corev1.Service { return &corev1.Service{} }, extract: corev1ac.ExtractService,
	}
	podDisruptionBudgetKind = ownedKind[*policyv1.PodDisruptionBudget, *policyv1ac.PodDisruptionBudgetApplyConfiguration]{
		kind:    "PodDisruptionBudget",
		empty:   func() *policyv1.PodDisruptionBudget { return &policyv1.PodDisruptionBudget{} },
		extract: policyv1ac.ExtractPodDisruptionBudget,
	}
	networkPolicyKind = ownedKind[*networkingv1.NetworkPolicy, *networkingv1ac.NetworkPolicyApplyConfiguration]{
		kind:    "NetworkPolicy",
		empty:   func() *networkingv1.NetworkPolicy { return &networkingv1.NetworkPolicy{} },
		extract: networkingv1ac.ExtractNetworkPolicy,
	}
	clusterRoleBindingKind = ownedKind[*rbacv1.ClusterRoleBinding, *rbacv1ac.ClusterRoleBindingApplyConfiguration]{
		kind:  "ClusterRoleBinding",
		empty: func() *rbacv1.ClusterRoleBinding { return &rbacv1.ClusterRoleBinding{} }, extract: rbacv1ac.ExtractClusterRoleBinding,
	}
	horizontalPodAutoscalerKind = ownedKind[*autoscalingv2.HorizontalPodAutoscaler, *autoscalingv2ac.HorizontalPodAutoscalerApplyConfiguration]{
		kind:    "HorizontalPodAutoscaler",
		empty:   func() *autoscalingv2.HorizontalPodAutoscaler { return &autoscalingv2.HorizontalPodAutoscaler{} },
		extract: autoscalingv2ac.ExtractHorizontalPodAutoscaler,
	}
)

// applyOwned makes the object named like desired match desired, with the
// channel as its controller. It reads the object from the cache first and
// applies only when the fields FieldOwner owns differ from desired: an
// unchanged channel costs no write, while a field someone edited by hand
// (which moves its ownership to them) or a deleted object is restored, with
// ownership forced back. It returns the object as it is after the call (the
// cached one when nothing was written), and whether it wrote.
func applyOwned[T client.Object, AC runtime.ApplyConfiguration](
	ctx context.Context, c client.Client, channel *notifyv1alpha1.NotificationChannel, desired T, kind ownedKind[T, AC],
) (T, bool, error) {
	if err := controllerutil.SetControllerReference(channel, desired, c.Scheme()); err != nil {
		return desired, false, fmt.Errorf("failed to set the owner of %s: %w", describe(desired), err)
	}
	return applyChanged(ctx, c, desired, kind)
}

// applyChanged applies desired when the fields FieldOwner owns in the
// object differ from it; see applyOwned.
func applyChanged[T client.Object, AC runtime.ApplyConfiguration](ctx context.Context, c client.Client, desired T, kind ownedKind[T, AC]) (T, bool, error) {
	want, err := applyConfiguration[AC](desired)
	if err != nil {
		return desired, false, err
	}

	verb := "Updating"
	current := kind.empty()
	err = c.Get(ctx, client.ObjectKeyFromObject(desired), current)
	switch {
	case apierrors.IsNotFound(err):
		verb = "Creating"
	case err != nil:
		return desired, false, fmt.Errorf("failed to read %s: %w", describe(desired), err)
	default:
		applied, err := kind.extract(current, FieldOwner)
		if err != nil {
			return desired, false, fmt.Errorf("failed to read the fields %s owns in %s: %w", FieldOwner, describe(desired), err)
		}
		if sameApplied(want, applied) {
			return current, false, nil
		}
	}

	log.FromContext(ctx).V(1).Info(verb+" "+kind.kind, kind.logKey(), klog.KObj(desired))
	if err := c.Apply(ctx, want, client.FieldOwner(FieldOwner), client.ForceOwnership); err != nil {
		return desired, false, fmt.Errorf("failed to apply %s: %w", describe(desired), err)
	}
	// Apply decodes the API server's answer, the whole object, into want.
	applied := kind.empty()
	data, err := json.Marshal(want)
	if err == nil {
		err = json.Unmarshal(data, applied)
	}
	if err != nil {
		return desired, true, fmt.Errorf("failed to decode the applied %s: %w", describe(desired), err)
	}
	return applied, true, nil
}

// applyConfiguration turns a typed object into the apply configuration of
// the same kind. The JSON of a typed object carries an empty status and a
// null creation time; those are not part of the desired state and dropped.
func applyConfiguration[AC runtime.ApplyConfiguration](obj client.Object) (AC, error) {
	var ac AC
	data, err := json.Marshal(obj)
	if err != nil {
		return ac, fmt.Errorf("failed to encode %s: %w", describe(obj), err)
	}
	var fields map[string]any
	if err := json.Unmarshal(data, &fields); err != nil {
		return ac, fmt.Errorf("failed to encode %s: %w", describe(obj), err)
	}
	delete(fields, "status")
	if data, err = json.Marshal(fields); err != nil {
		return ac, fmt.Errorf("failed to encode %s: %w", describe(obj), err)
	}
	if err := json.Unmarshal(data, &ac); err != nil {
		return ac, fmt.Errorf("failed to convert %s into an apply configuration: %w", describe(obj), err)
	}
	return ac, nil
}

// sameApplied reports whether applying want would change nothing that is
// already applied. The extracted configuration lacks the type, which the
// cache does not keep, so both are compared without it; Semantic equality
// treats quantities by value ("0.5" and "500m" CPU) and nil and empty lists
// and maps alike.
func sameApplied[AC runtime.ApplyConfiguration](want, applied AC) bool {
	w, err1 := withoutType(want)
	a, err2 := withoutType(applied)
	if err1 != nil || err2 != nil {
		return false
	}
	return equality.Semantic.DeepEqual(w, a)
}

// withoutType is a copy of the configuration without apiVersion and kind.
func withoutType[AC runtime.ApplyConfiguration](ac AC) (AC, error) {
	var out AC
	data, err := json.Marshal(ac)
	if err != nil {
		return out, err
	}
	var fields map[string]any
	if err := json.Unmarshal(data, &fields); err != nil {
		return out, err
	}
	delete(fields, "apiVersion")
	delete(fields, "kind")
	if data, err = json.Marshal(fields); err != nil {
		return out, err
	}
	err = json.Unmarshal(data, &out)
	return out, err
}

// deleteOwned deletes the object named like obj when it exists and the
// channel controls it: an object of that name the operator did not create is
// left alone. It reports whether it deleted.
func deleteOwned[T client.Object, AC runtime.ApplyConfiguration](
	ctx context.Context, c client.Client, channel *notifyv1alpha1.NotificationChannel, key client.ObjectKey, kind ownedKind[T, AC],
) (bool, error) {
	current := kind.empty()
	if err := c.Get(ctx, key, current); err != nil {
		if apierrors.IsNotFound(err) {
			return false, nil
		}
		return false, fmt.Errorf("failed to read %s: %w", key, err)
	}
	if !metav1.IsControlledBy(current, channel) {
		return false, nil
	}
	log.FromContext(ctx).Info("Deleting "+kind.kind, kind.logKey(), klog.KObj(current), "reason", "no longer wanted by the spec")
	err := c.Delete(ctx, current, client.Preconditions{UID: new(current.GetUID())})
	if err != nil && !apierrors.IsNotFound(err) {
		return false, fmt.Errorf("failed to delete %s: %w", describe(current), err)
	}
	return err == nil, nil
}

// describe names an object for an error message: "Deployment ns/name".
func describe(obj client.Object) string {
	kind := obj.GetObjectKind().GroupVersionKind().Kind
	if kind == "" {
		kind = fmt.Sprintf("%T", obj)
	}
	return kind + " " + client.ObjectKeyFromObject(obj).String()
}
