package controllers

import (
	ctrl "sigs.k8s.io/controller-runtime"
	"sigs.k8s.io/controller-runtime/pkg/reconcile"
)

// SetupWithReconciler registers reconciler, which wraps r (to observe its
// reconciles in tests), with r's watches.
func (r *NotificationChannelReconciler) SetupWithReconciler(mgr ctrl.Manager, reconciler reconcile.Reconciler) error {
	return r.setupWithManager(mgr, reconciler)
}

// ApplyChannelFound is the operator's condition writer, for tests that race
// it against the streamers' status writes.
var ApplyChannelFound = applyChannelFound
