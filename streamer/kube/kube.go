// Package kube is the streamer's view of the Kubernetes API in in-cluster mode
// (herald streamer --channel NAMESPACE/NAME): it reads the channel and its key
// Secret, and watches the Secret so that a rotated key applies without
// dropping a stream. Every read names one object, as the streamer's Role
// grants access by resourceNames only.
package kube

import (
	"context"
	"fmt"
	"log/slog"
	"strings"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/fields"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/client-go/informers"
	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/tools/cache"
	"sigs.k8s.io/controller-runtime/pkg/client"

	notifyv1alpha1 "github.com/herald-notify/herald/api/v1alpha1"
	"github.com/herald-notify/herald/streamer/auth"
)

// ParseChannelRef parses NAMESPACE/NAME.
func ParseChannelRef(ref string) (types.NamespacedName, error) {
	namespace, name, ok := strings.Cut(ref, "/")
	if !ok || namespace == "" || name == "" || strings.Contains(name, "/") {
		return types.NamespacedName{}, fmt.Errorf("channel %q must be NAMESPACE/NAME", ref)
	}
	return types.NamespacedName{Namespace: namespace, Name: name}, nil
}

// LoadChannel reads the channel, whose spec the API server has defaulted and validated.
func LoadChannel(ctx context.Context, c client.Reader, key types.NamespacedName) (*notifyv1alpha1.NotificationChannel, error) {
	channel := &notifyv1alpha1.NotificationChannel{}
	if err := c.Get(ctx, key, channel); err != nil {
		return nil, fmt.Errorf("failed to read NotificationChannel %s: %w", key, err)
	}
	return channel, nil
}

// KeyWatcher keeps a verifier's keys equal to the channel's key Secret.
type KeyWatcher struct {
	clientset  kubernetes.Interface
	namespace  string
	secret     string
	algorithms []notifyv1alpha1.JWTAlgorithm
	apply      func(*auth.KeySet)
	logger     *slog.Logger
}

// NewKeyWatcher returns a watcher of the key Secret of channel that hands
// every valid version of it to apply.
func NewKeyWatcher(clientset kubernetes.Interface, channel *notifyv1alpha1.NotificationChannel, apply func(*auth.KeySet), logger *slog.Logger) *KeyWatcher {
	return &KeyWatcher{
		clientset: clientset, namespace: channel.Namespace, secret: channel.Spec.Auth.KeySecretRef.Name,
		algorithms: channel.Spec.Auth.Algorithms, apply: apply, logger: logger,
	}
}

// LoadKeys reads the key Secret once, for the streamer's start.
func (w *KeyWatcher) LoadKeys(ctx context.Context) (*auth.KeySet, error) {
	secret, err := w.clientset.CoreV1().Secrets(w.namespace).Get(ctx, w.secret, metav1.GetOptions{})
	if err != nil {
		return nil, fmt.Errorf("failed to read the key Secret %s/%s named by spec.auth.keySecretRef: %w", w.namespace, w.secret, err)
	}
	return w.parse(secret)
}

func (w *KeyWatcher) parse(secret *corev1.Secret) (*auth.KeySet, error) {
	keys, err := auth.ParseKeys(w.algorithms, secret.Data)
	if err != nil {
		return nil, fmt.Errorf("the key Secret %s/%s holds no usable keys: %w", w.namespace, w.secret, err)
	}
	return keys, nil
}

// Run watches the Secret until ctx ends. A new version with valid keys
// replaces the keys (a removed kid stops admitting new streams at once); an
// invalid version is logged and the keys in use stay, so that a bad edit does
// not lock every user out; a deleted Secret keeps them too.
func (w *KeyWatcher) Run(ctx context.Context) error {
	factory := informers.NewSharedInformerFactoryWithOptions(w.clientset, 0,
		informers.WithNamespace(w.namespace),
		informers.WithTweakListOptions(func(o *metav1.ListOptions) {
			o.FieldSelector = fields.OneTermEqualSelector("metadata.name", w.secret).String()
		}))
	informer := factory.Core().V1().Secrets().Informer()
	if _, err := informer.AddEventHandler(cache.ResourceEventHandlerFuncs{
		AddFunc:    func(obj any) { w.update(obj) },
		UpdateFunc: func(_, obj any) { w.update(obj) },
		DeleteFunc: func(any) {
			w.logger.Error("the key Secret was deleted; keeping the keys in use", "secret", w.namespace+"/"+w.secret)
		},
	}); err != nil {
		return err
	}
	factory.Start(ctx.Done())
	<-ctx.Done()
	factory.Shutdown()
	return nil
}

func (w *KeyWatcher) update(obj any) {
	secret, ok := obj.(*corev1.Secret)
	if !ok {
		return
	}
	keys, err := w.parse(secret)
	if err != nil {
		w.logger.Error("ignoring an invalid version of the key Secret; keeping the keys in use", "error", err.Error())
		return
	}
	w.apply(keys)
	w.logger.Info("keys loaded", "secret", w.namespace+"/"+w.secret, "keys", keys.KeyIDs(), "resourceVersion", secret.ResourceVersion)
}
