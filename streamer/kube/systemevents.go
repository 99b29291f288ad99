package kube

import (
	"context"
	"encoding/json"
	"fmt"
	"log/slog"

	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/client-go/rest"
	toolscache "k8s.io/client-go/tools/cache"
	"sigs.k8s.io/controller-runtime/pkg/cache"
	"sigs.k8s.io/controller-runtime/pkg/client"

	notifyv1alpha1 "github.com/herald-notify/herald/api/v1alpha1"
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

// SystemEventStatus writes SystemEvent status through the API server.
type SystemEventStatus struct {
	Client client.Client
}

// WriteStatus replaces the SystemEvent's status. It is a merge patch of the
// whole status, with cleared fields sent as null, so it needs no prior read
// and holds no stale resourceVersion.
func (w SystemEventStatus) WriteStatus(ctx context.Context, sev *notifyv1alpha1.SystemEvent, status notifyv1alpha1.SystemEventStatus) error {
	fields := map[string]any{}
	encoded, err := json.Marshal(status)
	if err != nil {
		return err
	}
	if err := json.Unmarshal(encoded, &fields); err != nil {
		return err
	}
	for _, name := range []string{"phase", "eventId", "deliveredAt", "observedGeneration", "conditions"} {
		if _, set := fields[name]; !set {
			fields[name] = nil
		}
	}
	patch, err := json.Marshal(map[string]any{"status": fields})
	if err != nil {
		return err
	}
	target := &notifyv1alpha1.SystemEvent{}
	target.Namespace, target.Name = sev.Namespace, sev.Name
	if err := w.Client.Status().Patch(ctx, target, client.RawPatch(types.MergePatchType, patch)); err != nil {
		return fmt.Errorf("failed to write the status of SystemEvent %s/%s: %w", sev.Namespace, sev.Name, err)
	}
	return nil
}
