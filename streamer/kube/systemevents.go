package kube

import (
	"context"
	"fmt"
	"log/slog"
	"time"

	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/apimachinery/pkg/util/wait"
	"k8s.io/client-go/rest"
	toolscache "k8s.io/client-go/tools/cache"
	"k8s.io/client-go/util/retry"
	"sigs.k8s.io/controller-runtime/pkg/cache"
	"sigs.k8s.io/controller-runtime/pkg/client"

	notifyv1alpha1 "github.com/herald-notify/herald/api/v1alpha1"
	"github.com/herald-notify/herald/internal/sevstatus"
)

// SystemEventHandler receives the SystemEvents of a namespace.
type SystemEventHandler interface {
	Observe(sev *notifyv1alpha1.SystemEvent)
	Forget(sev *notifyv1alpha1.SystemEvent)
	// Synced is called once the initial list has been handed over.
	Synced()
}

// WatchSystemEvents hands every SystemEvent of namespace, and every change to
// one, to handler until ctx ends. It watches the namespace only, as the
// streamer's Role allows.
func WatchSystemEvents(ctx context.Context, cfg *rest.Config, namespace string, handler SystemEventHandler, logger *slog.Logger) error {
	scheme := runtime.NewScheme()
	if err := notifyv1alpha1.AddToScheme(scheme); err != nil {
		return err
	}
	c, err := cache.New(cfg, cache.Options{Scheme: scheme, DefaultNamespaces: map[string]cache.Config{namespace: {}}})
	if err != nil {
		return fmt.Errorf("failed to watch the SystemEvents of namespace %s: %w", namespace, err)
	}
	informer, err := c.GetInformer(ctx, &notifyv1alpha1.SystemEvent{})
	if err != nil {
		return fmt.Errorf("failed to watch the SystemEvents of namespace %s: %w", namespace, err)
	}
	if _, err := informer.AddEventHandler(toolscache.ResourceEventHandlerFuncs{
		AddFunc: func(obj any) {
			if sev, ok := obj.(*notifyv1alpha1.SystemEvent); ok {
				handler.Observe(sev)
			}
		},
		UpdateFunc: func(_, obj any) {
			if sev, ok := obj.(*notifyv1alpha1.SystemEvent); ok {
				handler.Observe(sev)
			}
		},
		DeleteFunc: func(obj any) {
			if tombstone, ok := obj.(toolscache.DeletedFinalStateUnknown); ok {
				obj = tombstone.Obj
			}
			if sev, ok := obj.(*notifyv1alpha1.SystemEvent); ok {
				handler.Forget(sev)
			}
		},
	}); err != nil {
		return err
	}
	started := make(chan error, 1)
	go func() { started <- c.Start(ctx) }()
	if !c.WaitForCacheSync(ctx) {
		return <-started
	}
	logger.Info("watching SystemEvents", "namespace", namespace)
	handler.Synced()
	return <-started
}

// SystemEventStatus writes the streamers' record of a SystemEvent (phase,
// eventId, deliveredAt, observedGeneration, the Ready condition) by
// server-side apply, under one field manager shared by every replica, leaving
// the operator's conditions alone.
//
// Replicas sharing a manager do not conflict with each other, so the order
// of their writes is kept here: each write reads the SystemEvent, leaves a
// record that is as new as its own in place, and applies with the
// resourceVersion it read as a precondition. A replica that lags behind
// (an older generation, or an earlier phase of the same one) therefore never
// replaces a newer record, and of several replicas recording the same
// revision the first one's record stands.
type SystemEventStatus struct {
	// Client reads from the API server itself, not a cache: a lagging read
	// would fail the precondition until the cache caught up.
	Client client.Client
	// FieldManager is the manager the record is applied as; empty means
	// sevstatus.StreamerManager.
	FieldManager string
}

// statusConflictBackoff paces the writes again after a Conflict: another
// writer changed the SystemEvent between the read and the apply, so the
// next attempt reads its newer state. Each conflict means another writer
// succeeded; the announcer retries a write that still fails.
var statusConflictBackoff = wait.Backoff{Steps: 10, Duration: 10 * time.Millisecond, Factor: 2, Jitter: 0.5, Cap: time.Second}

// WriteStatus applies status as the streamers' record of sev, unless the
// SystemEvent already holds a record as new (see SystemEventStatus).
func (w SystemEventStatus) WriteStatus(ctx context.Context, sev *notifyv1alpha1.SystemEvent, status notifyv1alpha1.SystemEventStatus) error {
	key := client.ObjectKeyFromObject(sev)
	// The errors name the SystemEvent and the step that failed.
	return retry.OnError(statusConflictBackoff, apierrors.IsConflict, func() error {
		return w.writeIfNewer(ctx, key, sev.UID, status)
	})
}

// writeIfNewer is one read and, when status is newer than the record read,
// one apply conditional on nothing having changed since.
func (w SystemEventStatus) writeIfNewer(ctx context.Context, key client.ObjectKey, uid types.UID, status notifyv1alpha1.SystemEventStatus) error {
	current := &notifyv1alpha1.SystemEvent{}
	if err := w.Client.Get(ctx, key, current); err != nil {
		return fmt.Errorf("failed to read SystemEvent %s: %w", key, err)
	}
	if current.UID != uid {
		// Deleted and created again: the record is not this object's.
		return nil
	}
	if !supersedes(status, current.Status) {
		return nil
	}
	manager := w.FieldManager
	if manager == "" {
		manager = sevstatus.StreamerManager
	}
	return sevstatus.Apply(ctx, w.Client, key, current.ResourceVersion, status, manager)
}

// supersedes reports whether the record next replaces current: it describes
// a later generation, or a later phase of the same one. A record as new as
// the current one changes nothing: for the same revision every replica
// writes the same values (the log de-duplicates the announcement and names
// the first one stored), so the first record written stands.
func supersedes(next, current notifyv1alpha1.SystemEventStatus) bool {
	if next.ObservedGeneration != current.ObservedGeneration {
		return next.ObservedGeneration > current.ObservedGeneration
	}
	return phaseOrder(next.Phase) > phaseOrder(current.Phase)
}

// phaseOrder ranks the phases one revision goes through: Scheduled, then
// Delivered (or Failed, which a revision's spec decides alike on every
// replica), then Expired.
func phaseOrder(phase notifyv1alpha1.SystemEventPhase) int {
	switch phase {
	case notifyv1alpha1.PhaseScheduled:
		return 1
	case notifyv1alpha1.PhaseDelivered, notifyv1alpha1.PhaseFailed:
		return 2
	case notifyv1alpha1.PhaseExpired:
		return 3
	default:
		return 0
	}
}
