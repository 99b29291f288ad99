package kube

import (
	"context"
	"fmt"
	"log/slog"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/fields"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/watch"
	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/tools/cache"
	watchtools "k8s.io/client-go/tools/watch"
)

// singleSecret lists and watches one Secret by name: the only way the
// streamer's Role (resourceNames) lets it watch a Secret.
func singleSecret(clientset kubernetes.Interface, namespace, name string) *cache.ListWatch {
	selector := fields.OneTermEqualSelector("metadata.name", name).String()
	secrets := clientset.CoreV1().Secrets(namespace)
	return &cache.ListWatch{
		ListWithContextFunc: func(ctx context.Context, o metav1.ListOptions) (runtime.Object, error) {
			o.FieldSelector = selector
			return secrets.List(ctx, o)
		},
		WatchFuncWithContext: func(ctx context.Context, o metav1.ListOptions) (watch.Interface, error) {
			o.FieldSelector = selector
			return secrets.Watch(ctx, o)
		},
	}
}

// WaitForSecret returns the data of the Secret namespace/name once it exists
// and check accepts it. A streamer started before a Secret it needs, or with
// a broken one, waits (alive, not ready) rather than exit into a crash loop;
// what stops it is logged, naming field (the spec field that names the
// Secret). It returns an error only when ctx ends or the watch fails.
func WaitForSecret(ctx context.Context, clientset kubernetes.Interface, namespace, name, field string,
	check func(map[string][]byte) error, logger *slog.Logger) (map[string][]byte, error) {
	logger = logger.With("secret", namespace+"/"+name, "field", field)
	missing := func(store cache.Store) (bool, error) {
		if len(store.List()) == 0 {
			logger.Error("waiting for the Secret; not ready until it exists", "reason", "SecretNotFound")
		}
		return false, nil
	}
	var data map[string][]byte
	_, err := watchtools.UntilWithSync(ctx, singleSecret(clientset, namespace, name), &corev1.Secret{}, missing,
		func(event watch.Event) (bool, error) {
			secret, ok := event.Object.(*corev1.Secret)
			if !ok || event.Type == watch.Deleted {
				return false, nil
			}
			if err := check(secret.Data); err != nil {
				logger.Error("waiting for a usable version of the Secret", "reason", "SecretUnusable", "error", err.Error())
				return false, nil
			}
			data = secret.Data
			return true, nil
		})
	if err != nil {
		return nil, fmt.Errorf("stopped waiting for the Secret %s/%s named by %s: %w", namespace, name, field, err)
	}
	return data, nil
}

// WatchSecret hands every version of the Secret namespace/name to apply until
// ctx ends, with the first one listed when it starts. A version apply refuses
// is logged with why, naming field (the spec field that names the Secret),
// and what apply holds stays in use; so does it when the Secret is deleted.
func WatchSecret(ctx context.Context, clientset kubernetes.Interface, namespace, name, field string,
	apply func(map[string][]byte) error, logger *slog.Logger) error {
	logger = logger.With("secret", namespace+"/"+name, "field", field)
	update := func(obj any) {
		secret, ok := obj.(*corev1.Secret)
		if !ok {
			return
		}
		if err := apply(secret.Data); err != nil {
			logger.Error("ignoring an unusable version of the Secret; keeping the one in use", "reason", "SecretUnusable", "error", err.Error())
			return
		}
		logger.Info("Secret loaded", "resourceVersion", secret.ResourceVersion)
	}
	informer := cache.NewSharedIndexInformer(singleSecret(clientset, namespace, name), &corev1.Secret{}, 0, cache.Indexers{})
	if _, err := informer.AddEventHandler(cache.ResourceEventHandlerFuncs{
		AddFunc:    update,
		UpdateFunc: func(_, obj any) { update(obj) },
		DeleteFunc: func(any) { logger.Error("the Secret was deleted; keeping the one in use") },
	}); err != nil {
		return err
	}
	informer.RunWithContext(ctx)
	return nil
}
