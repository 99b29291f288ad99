package controllers

import (
	"fmt"

	appsv1 "k8s.io/api/apps/v1"
	autoscalingv2 "k8s.io/api/autoscaling/v2"
	corev1 "k8s.io/api/core/v1"
	networkingv1 "k8s.io/api/networking/v1"
	policyv1 "k8s.io/api/policy/v1"
	rbacv1 "k8s.io/api/rbac/v1"
	"k8s.io/apimachinery/pkg/labels"
	ctrl "sigs.k8s.io/controller-runtime"
	"sigs.k8s.io/controller-runtime/pkg/cache"
	"sigs.k8s.io/controller-runtime/pkg/client"

	"github.com/herald-notify/herald/controllers/resources"
)

// CacheOptions keep the operator's memory proportional to its channels, not
// to the cluster: of the kinds it owns, it caches only objects labelled as
// managed by it. It caches no Secret: it reads none.
func CacheOptions() cache.Options {
	managed := cache.ByObject{Label: labels.SelectorFromSet(labels.Set{resources.LabelManagedBy: resources.ManagedBy})}
	byObject := map[client.Object]cache.ByObject{}
	for _, obj := range []client.Object{
		&corev1.ServiceAccount{}, &rbacv1.Role{}, &rbacv1.RoleBinding{}, &appsv1.Deployment{},
		&corev1.Service{}, &networkingv1.NetworkPolicy{}, &policyv1.PodDisruptionBudget{}, &autoscalingv2.HorizontalPodAutoscaler{},
		&rbacv1.ClusterRoleBinding{},
	} {
		byObject[obj] = managed
	}
	return cache.Options{ByObject: byObject}
}

// Setup registers every reconciler of the operator with mgr. streamerImage
// is the image of streamer pods whose channel sets no spec.image.
func Setup(mgr ctrl.Manager, streamerImage string) error {
	if err := (&NotificationChannelReconciler{
		Client:        mgr.GetClient(),
		Recorder:      mgr.GetEventRecorder(FieldOwner),
		StreamerImage: streamerImage,
	}).SetupWithManager(mgr); err != nil {
		return fmt.Errorf("failed to set up the %s controller: %w", ControllerName, err)
	}
	if err := (&SystemEventReconciler{Client: mgr.GetClient()}).SetupWithManager(mgr); err != nil {
		return fmt.Errorf("failed to set up the %s controller: %w", SystemEventControllerName, err)
	}
	return nil
}
