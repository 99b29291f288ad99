package kube

import (
	"context"
	"errors"
	"log/slog"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/fields"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/watch"
	"k8s.io/client-go/tools/cache"
	"sigs.k8s.io/controller-runtime/pkg/client"

	notifyv1alpha1 "github.com/herald-notify/herald/api/v1alpha1"
	"github.com/herald-notify/herald/streamer/auth"
	"github.com/herald-notify/herald/streamer/server"
)

// ChannelWatcher hands every new version of the channel's spec, with the
// keys parsed for its algorithms, to apply (the server's SetSpec), so that a
// changed setting applies without dropping a stream.
type ChannelWatcher struct {
	client    client.WithWatch
	namespace string
	name      string
	keys      *KeyWatcher
	apply     func(notifyv1alpha1.NotificationChannelSpec, *auth.KeySet) error
	logger    *slog.Logger

	// generation is that of the last spec handed on; the informer's handler
	// is its only user. The operator's status writes do not change it.
	generation int64
}

// NewChannelWatcher returns a watcher of channel, the version the streamer
// started with, whose new specs go to apply with keys parsed by the key
// Secret's watcher (which must run too, for rotated keys).
func NewChannelWatcher(c client.WithWatch, channel *notifyv1alpha1.NotificationChannel, keys *KeyWatcher,
	apply func(notifyv1alpha1.NotificationChannelSpec, *auth.KeySet) error, logger *slog.Logger) *ChannelWatcher {
	return &ChannelWatcher{
		client: c, namespace: channel.Namespace, name: channel.Name, keys: keys, apply: apply, logger: logger,
		generation: channel.Generation,
	}
}

// Run watches the channel until ctx ends. A deleted channel is logged and
// its settings stay: the streamer's pods go with it.
func (w *ChannelWatcher) Run(ctx context.Context) error {
	informer := cache.NewSharedIndexInformer(singleChannel(w.client, w.namespace, w.name), &notifyv1alpha1.NotificationChannel{}, 0, cache.Indexers{})
	if _, err := informer.AddEventHandler(cache.ResourceEventHandlerFuncs{
		AddFunc:    func(obj any) { w.update(obj) },
		UpdateFunc: func(_, obj any) { w.update(obj) },
		DeleteFunc: func(any) {
			w.logger.Error("the NotificationChannel was deleted; keeping its settings until this pod is removed with it",
				"channel", w.namespace+"/"+w.name)
		},
	}); err != nil {
		return err
	}
	informer.RunWithContext(ctx)
	return nil
}

// singleChannel lists and watches the channel namespace/name alone, by a
// field selector on its name: the streamer's Role grants list and watch for
// that name only.
func singleChannel(c client.WithWatch, namespace, name string) *cache.ListWatch {
	byName := func(o metav1.ListOptions) *client.ListOptions {
		o.FieldSelector = fields.OneTermEqualSelector("metadata.name", name).String()
		return &client.ListOptions{Namespace: namespace, Limit: o.Limit, Continue: o.Continue, Raw: &o}
	}
	return &cache.ListWatch{
		ListWithContextFunc: func(ctx context.Context, o metav1.ListOptions) (runtime.Object, error) {
			list := &notifyv1alpha1.NotificationChannelList{}
			return list, c.List(ctx, list, byName(o))
		},
		WatchFuncWithContext: func(ctx context.Context, o metav1.ListOptions) (watch.Interface, error) {
			return c.Watch(ctx, &notifyv1alpha1.NotificationChannelList{}, byName(o))
		},
	}
}

// update hands a new generation of the spec on.
func (w *ChannelWatcher) update(obj any) {
	channel, ok := obj.(*notifyv1alpha1.NotificationChannel)
	if !ok || channel.Generation == w.generation {
		return
	}
	w.generation = channel.Generation
	// The informer's object is shared with its cache: work on a copy.
	spec := *channel.Spec.DeepCopy()
	version := []any{"channel", w.namespace + "/" + w.name, "generation", channel.Generation, "resourceVersion", channel.ResourceVersion}
	err := w.keys.UseAlgorithms(spec.Auth.Algorithms, func(keys *auth.KeySet) error {
		err := w.apply(spec, keys)
		var restart *server.RestartError
		switch {
		case errors.As(err, &restart):
			// Expected: the operator rolls the pods for these, and until the
			// new pods take over, the other settings apply here.
			w.logger.Info("channel settings applied, except those that need new pods", append(version, "needNewPods", restart.Fields)...)
			return nil
		case err != nil:
			return err
		}
		w.logger.Info("channel settings applied", version...)
		return nil
	})
	if err != nil {
		w.logger.Error("cannot apply this version of the channel; keeping the settings in use", append(version, "error", err.Error())...)
	}
}
