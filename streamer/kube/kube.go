// Package kube is the streamer's view of the Kubernetes API in in-cluster mode
// (herald streamer --channel NAMESPACE/NAME): it reads the channel and its key
// Secret, and watches both so that a rotated key or a changed setting applies
// without dropping a stream (KeyWatcher, ChannelWatcher); it reports what only
// the pods see on the channel's status, conditions every pod shares
// (SecretsReporter, BrokerReporter). Every read names one object, as the
// streamer's Role grants access by resourceNames only.
package kube

import (
	"context"
	"fmt"
	"log/slog"
	"strings"
	"sync"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/fields"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/apimachinery/pkg/watch"
	"k8s.io/client-go/informers"
	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/tools/cache"
	watchtools "k8s.io/client-go/tools/watch"
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

// KeyWatcher keeps a verifier's keys equal to the channel's key Secret,
// parsed for the channel's algorithms. The keys depend on both the Secret and
// the channel's algorithm allow-list, which change apart: the watcher keeps
// the latest version of the Secret so that ChannelWatcher can parse it again
// for new algorithms (UseAlgorithms), and serializes both kinds of change so
// that keys parsed for old algorithms never replace newer ones.
type KeyWatcher struct {
	clientset kubernetes.Interface
	namespace string
	secret    string
	apply     func(*auth.KeySet)
	logger    *slog.Logger

	mu sync.Mutex
	// algorithms are the channel's latest allow-list, which every version of
	// the Secret is parsed for.
	algorithms []notifyv1alpha1.JWTAlgorithm
	// data is the latest version of the Secret, even one that holds no
	// usable keys: new algorithms may fit it.
	data map[string][]byte
	// inUse are the keys the server verifies with.
	inUse *auth.KeySet
	// pending, when set, is a spec change whose algorithms the Secret did not
	// fit: it is applied with the first version that does.
	pending func(*auth.KeySet) error
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
	w.mu.Lock()
	defer w.mu.Unlock()
	w.data = secret.Data
	keys, err := w.parse(w.algorithms)
	if err != nil {
		return nil, err
	}
	w.inUse = keys
	return keys, nil
}

// WaitForKeys blocks until the key Secret exists and holds keys usable for
// the channel's algorithms, and returns them: a streamer started before its
// Secret, or with a broken one, waits (alive, not ready) rather than exit
// into a crash loop. Each unusable version is logged with what is wrong.
func (w *KeyWatcher) WaitForKeys(ctx context.Context) (*auth.KeySet, error) {
	var keys *auth.KeySet
	_, err := watchtools.UntilWithSync(ctx, singleSecret(w.clientset, w.namespace, w.secret), &corev1.Secret{}, nil, func(event watch.Event) (bool, error) {
		secret, ok := event.Object.(*corev1.Secret)
		if !ok || event.Type == watch.Deleted {
			return false, nil
		}
		w.mu.Lock()
		defer w.mu.Unlock()
		w.data = secret.Data
		parsed, err := w.parse(w.algorithms)
		if err != nil {
			w.logger.Error("waiting for a usable version of the key Secret", "error", err.Error())
			return false, nil
		}
		keys, w.inUse = parsed, parsed
		return true, nil
	})
	if err != nil {
		return nil, fmt.Errorf("stopped waiting for the key Secret %s/%s: %w", w.namespace, w.secret, err)
	}
	return keys, nil
}

// parse parses the latest version of the Secret for algorithms.
func (w *KeyWatcher) parse(algorithms []notifyv1alpha1.JWTAlgorithm) (*auth.KeySet, error) {
	keys, err := auth.ParseKeys(algorithms, w.data)
	if err != nil {
		return nil, fmt.Errorf("the key Secret %s/%s holds no usable keys for the algorithms %v: %w", w.namespace, w.secret, algorithms, err)
	}
	return keys, nil
}

// UseAlgorithms parses the Secret for a new version of the channel's
// algorithm allow-list and hands the keys to apply, which applies that
// version of the channel with them; later versions of the Secret are parsed
// for these algorithms. When the Secret does not fit them (a change of key
// type edits both the channel and the Secret, in either order), nothing is
// applied and the error says so: apply is kept and called with the first
// version of the Secret that fits, unless a newer channel replaces it. An
// error of apply also keeps it for that retry. A broken latest version of the
// Secret, ignored when it came, does not hold back a channel whose algorithms
// did not change: the keys in use still fit those.
func (w *KeyWatcher) UseAlgorithms(algorithms []notifyv1alpha1.JWTAlgorithm, apply func(*auth.KeySet) error) error {
	w.mu.Lock()
	defer w.mu.Unlock()
	w.algorithms, w.pending = algorithms, nil
	keys, err := w.parse(algorithms)
	if err != nil && w.inUse != nil && w.inUse.ParsedFor(algorithms) {
		keys, err = w.inUse, nil
	}
	if err != nil {
		w.pending = apply
		return fmt.Errorf("%w; keeping the settings in use until the Secret fits spec.auth.algorithms", err)
	}
	if err := apply(keys); err != nil {
		w.pending = apply
		return err
	}
	w.inUse = keys
	return nil
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
	w.mu.Lock()
	defer w.mu.Unlock()
	w.data = secret.Data
	keys, err := w.parse(w.algorithms)
	if err != nil {
		w.logger.Error("ignoring an invalid version of the key Secret; keeping the keys in use", "error", err.Error())
		return
	}
	if w.pending != nil {
		// The channel change that waited for this Secret applies the keys.
		if err := w.pending(keys); err != nil {
			w.logger.Error("the channel's settings still cannot be applied; keeping the settings and keys in use", "error", err.Error())
			return
		}
		w.pending = nil
	} else {
		w.apply(keys)
	}
	w.inUse = keys
	w.logger.Info("keys loaded", "secret", w.namespace+"/"+w.secret, "keys", keys.KeyIDs(), "resourceVersion", secret.ResourceVersion)
}
