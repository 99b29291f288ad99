package kube

import (
	"context"
	"fmt"
	"log/slog"
	"strings"
	"sync"
	"time"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/tools/cache"
	"sigs.k8s.io/controller-runtime/pkg/client"

	notifyv1alpha1 "github.com/herald-notify/herald/api/v1alpha1"
	"github.com/herald-notify/herald/internal/statusapply"
	"github.com/herald-notify/herald/streamer/auth"
	"github.com/herald-notify/herald/streamer/log/jetstreamlog"
	"github.com/herald-notify/herald/streamer/tlscert"
)

// SecretsReporterOptions configure a SecretsReporter. Zero values are the
// documented defaults.
type SecretsReporterOptions struct {
	// Client watches the channel and applies its status.
	Client client.WithWatch
	// Clientset watches the Secrets, one by name each.
	Clientset kubernetes.Interface
	// Channel is the channel as the pod started with it: its Secret names
	// and broker are the pod's for its life (start-only settings).
	Channel *notifyv1alpha1.NotificationChannel
	// Pod is the name of this pod, which the condition names.
	Pod string
	// BrokerCredentials, when set, returns the NATS credentials the pod
	// connects with, or nil before it has them. A version of the Secret they
	// would refuse (a change of the way to authenticate or of the CA, which
	// applies only at a pod's start) is then reported unusable: the pod keeps
	// the version it holds.
	BrokerCredentials func() *jetstreamlog.Credentials
	// Refresh is how often a pod whose Secrets are unusable refreshes its
	// False, and how often every pod looks at the condition again; 0 means
	// DefaultReportRefresh.
	Refresh time.Duration
	// Now is the clock; nil means time.Now.
	Now    func() time.Time
	Logger *slog.Logger
}

// SecretsReporter writes one pod's view of the channel's Secrets (the key
// Secret, the NATS credentials Secret and the TLS Secret, each parsed with
// the code that serves it) into the channel's SecretsUsable condition, as
// field manager herald-streamer-secrets, shared by every pod of the channel
// (sharedCondition). It watches the Secrets and the channel from the pod's
// start, also while the pod waits for a Secret, alive and not ready: a
// created, fixed, broken or deleted Secret is reported within seconds. It
// speaks for the newest generation of the channel whose start-only settings
// (the Secret names among them) the pod runs; pods of a later template
// speak for theirs.
type SecretsReporter struct {
	opts    SecretsReporterOptions
	shared  *sharedCondition
	running notifyv1alpha1.NotificationChannelSpec
	names   []string
	changed chan struct{}

	mu sync.Mutex
	// generation and algorithms are the channel's newest that the pod
	// speaks for.
	generation int64
	algorithms []notifyv1alpha1.JWTAlgorithm
	// secrets holds the latest version of each Secret; a name without an
	// entry does not exist.
	secrets map[string]map[string][]byte
}

// NewSecretsReporter returns a reporter; Run starts it.
func NewSecretsReporter(opts SecretsReporterOptions) *SecretsReporter {
	channel := opts.Channel
	shared := newSharedCondition(opts.Client, client.ObjectKeyFromObject(channel), opts.Pod, notifyv1alpha1.ConditionSecretsUsable,
		statusapply.StreamerSecretsManager, opts.Refresh, opts.Now, opts.Logger)
	return &SecretsReporter{
		opts: opts, shared: shared, running: channel.Spec.StartOnly(), names: channel.Spec.SecretNames(),
		changed: make(chan struct{}, 1), generation: channel.Generation, algorithms: channel.Spec.Auth.Algorithms,
		secrets: map[string]map[string][]byte{},
	}
}

// Run watches the channel and its Secrets, and writes the condition once
// every watch has listed, then on every change and every Refresh, until ctx
// ends.
func (r *SecretsReporter) Run(ctx context.Context) {
	ctx, stop := context.WithCancel(ctx)
	var wg sync.WaitGroup
	defer wg.Wait()
	defer stop()
	informers := make([]cache.SharedIndexInformer, 0, 1+len(r.names))
	informers = append(informers, cache.NewSharedIndexInformer(
		singleChannel(r.opts.Client, r.opts.Channel.Namespace, r.opts.Channel.Name), &notifyv1alpha1.NotificationChannel{}, 0, cache.Indexers{}))
	r.handle(informers[0], r.channelChanged)
	for _, name := range r.names {
		informer := cache.NewSharedIndexInformer(singleSecret(r.opts.Clientset, r.opts.Channel.Namespace, name), &corev1.Secret{}, 0, cache.Indexers{})
		r.handle(informer, func(obj any, deleted bool) { r.secretChanged(name, obj, deleted) })
		informers = append(informers, informer)
	}
	synced := make([]cache.InformerSynced, len(informers))
	for i, informer := range informers {
		synced[i] = informer.HasSynced
		wg.Go(func() { informer.RunWithContext(ctx) })
	}
	if !cache.WaitForCacheSync(ctx.Done(), synced...) {
		return
	}
	refresh := time.NewTicker(r.shared.refresh)
	defer refresh.Stop()
	retry := time.NewTicker(reportRetryInterval)
	defer retry.Stop()
	r.shared.offer(ctx, r.report(), false)
	for {
		select {
		case <-ctx.Done():
			return
		case <-r.changed:
			r.shared.offer(ctx, r.report(), false)
		case <-retry.C:
			r.shared.offer(ctx, r.report(), false) // writes only when a failed write is due again
		case <-refresh.C:
			r.shared.offer(ctx, r.report(), true)
		}
	}
}

// handle sends the informer's events to changed (deleted is true for a
// deletion).
func (r *SecretsReporter) handle(informer cache.SharedIndexInformer, changed func(obj any, deleted bool)) {
	_, _ = informer.AddEventHandler(cache.ResourceEventHandlerFuncs{
		AddFunc:    func(obj any) { changed(obj, false) },
		UpdateFunc: func(_, obj any) { changed(obj, false) },
		DeleteFunc: func(obj any) { changed(obj, true) },
	})
}

// channelChanged follows a new generation of the channel whose start-only
// settings are the pod's.
func (r *SecretsReporter) channelChanged(obj any, deleted bool) {
	channel, ok := obj.(*notifyv1alpha1.NotificationChannel)
	if !ok || deleted || len(r.running.StartOnlyChanges(&channel.Spec)) > 0 {
		return
	}
	r.mu.Lock()
	if channel.Generation > r.generation {
		r.generation = channel.Generation
		r.algorithms = append([]notifyv1alpha1.JWTAlgorithm(nil), channel.Spec.Auth.Algorithms...)
	}
	r.mu.Unlock()
	r.signal()
}

// secretChanged records the latest version of Secret name.
func (r *SecretsReporter) secretChanged(name string, obj any, deleted bool) {
	r.mu.Lock()
	if secret, ok := obj.(*corev1.Secret); ok && !deleted {
		r.secrets[name] = secret.Data
	} else {
		delete(r.secrets, name)
	}
	r.mu.Unlock()
	r.signal()
}

func (r *SecretsReporter) signal() {
	select {
	case r.changed <- struct{}{}:
	default:
	}
}

// report is the condition for the Secrets as last seen: the first problem
// in the order key Secret, NATS credentials Secret, TLS Secret.
func (r *SecretsReporter) report() conditionReport {
	r.mu.Lock()
	defer r.mu.Unlock()
	report := conditionReport{generation: r.generation, status: metav1.ConditionFalse}
	if reason, body := r.problem(); reason != "" {
		report.reason, report.body = reason, body
		return report
	}
	report.status, report.reason = metav1.ConditionTrue, notifyv1alpha1.ReasonSecretsValid
	quoted := make([]string, len(r.names))
	for i, name := range r.names {
		quoted[i] = fmt.Sprintf("%q", name)
	}
	report.body = "the Secrets " + strings.Join(quoted, ", ") + " are usable"
	return report
}

// problem is the reason and message of the first thing that stops the
// channel's Secrets from serving, or "" when nothing does. The messages say
// what to do.
func (r *SecretsReporter) problem() (reason, message string) {
	spec, namespace := &r.opts.Channel.Spec, r.opts.Channel.Namespace
	keyRef := spec.Auth.KeySecretRef.Name
	data, found := r.secrets[keyRef]
	if !found {
		return notifyv1alpha1.ReasonSecretNotFound, fmt.Sprintf(
			"Secret %q named by spec.auth.keySecretRef does not exist in namespace %q: create it with one data entry per verification key, named by its key id (kid)",
			keyRef, namespace)
	}
	if _, err := auth.ParseKeys(r.algorithms, data); err != nil {
		return notifyv1alpha1.ReasonInvalidKey, fmt.Sprintf(
			"Secret %q named by spec.auth.keySecretRef holds no usable key for algorithms %s: %s",
			keyRef, algorithmList(r.algorithms), oneLine(err))
	}
	if name := spec.BrokerSecretName(); name != "" {
		data, found := r.secrets[name]
		if !found {
			return notifyv1alpha1.ReasonSecretNotFound, fmt.Sprintf(
				"Secret %q named by spec.broker.nats.credentialsSecretRef does not exist in namespace %q: create it with an entry %q (a NATS credentials file), %q, or %q and %q, and optionally %q; the streamers wait for it",
				name, namespace, notifyv1alpha1.NATSCredsKey, notifyv1alpha1.NATSTokenKey,
				notifyv1alpha1.NATSUsernameKey, notifyv1alpha1.NATSPasswordKey, notifyv1alpha1.NATSCAKey)
		}
		if err := r.checkBrokerSecret(data); err != nil {
			return notifyv1alpha1.ReasonInvalidBrokerCredentials, fmt.Sprintf(
				"Secret %q named by spec.broker.nats.credentialsSecretRef is unusable: %s", name, oneLine(err))
		}
	}
	if name := spec.TLSSecretName(); name != "" {
		data, found := r.secrets[name]
		if !found {
			return notifyv1alpha1.ReasonSecretNotFound, fmt.Sprintf(
				"Secret %q named by spec.http.tls.secretRef does not exist in namespace %q: create it as a kubernetes.io/tls Secret with %q and %q (kubectl create secret tls); the streamers wait for it",
				name, namespace, corev1.TLSCertKey, corev1.TLSPrivateKeyKey)
		}
		if _, err := tlscert.Parse(data); err != nil {
			return notifyv1alpha1.ReasonInvalidCertificate, fmt.Sprintf(
				"Secret %q named by spec.http.tls.secretRef is unusable: %s", name, oneLine(err))
		}
	}
	return "", ""
}

// algorithmList is the allow-list for a message: the API default when empty.
func algorithmList(algorithms []notifyv1alpha1.JWTAlgorithm) string {
	if len(algorithms) == 0 {
		algorithms = notifyv1alpha1.DefaultAlgorithms
	}
	names := make([]string, len(algorithms))
	for i, a := range algorithms {
		names[i] = string(a)
	}
	return strings.Join(names, ", ")
}

// checkBrokerSecret checks a version of the NATS credentials Secret: against
// the credentials the pod holds once it has them, as a rotation would.
func (r *SecretsReporter) checkBrokerSecret(data map[string][]byte) error {
	if r.opts.BrokerCredentials != nil {
		if held := r.opts.BrokerCredentials(); held != nil {
			return held.Check(data)
		}
	}
	_, err := jetstreamlog.NewCredentials(data)
	return err
}
