package controllers_test

import (
	"context"
	"crypto/rand"
	"net/http"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	. "github.com/onsi/ginkgo/v2"
	. "github.com/onsi/gomega"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/client-go/rest"
	"k8s.io/client-go/util/retry"
	ctrl "sigs.k8s.io/controller-runtime"
	"sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/controller-runtime/pkg/config"
	"sigs.k8s.io/controller-runtime/pkg/log/zap"
	metricsserver "sigs.k8s.io/controller-runtime/pkg/metrics/server"
	"sigs.k8s.io/controller-runtime/pkg/reconcile"

	notifyv1alpha1 "github.com/herald-notify/herald/api/v1alpha1"
	"github.com/herald-notify/herald/controllers"
	"github.com/herald-notify/herald/internal/apiserver"
	"github.com/herald-notify/herald/internal/testutil"
)

// The operator runs in the suite as it runs in a cluster: a manager with the
// operator's cache options and reconciler, against a real kube-apiserver and
// etcd. envtest runs no other controllers: no pods start, no garbage
// collector deletes, and Deployment status is written by the tests.

func TestControllers(t *testing.T) {
	testutil.RunSuite(t, "operator on a real API server")
}

const streamerImage = "ghcr.io/herald-notify/herald:v0.0.0-test"

var (
	api      *apiserver.Server
	writes   *writeLog
	reconcil *reconcileLog
)

var _ = BeforeSuite(func() {
	ctrl.SetLogger(zap.New(zap.WriteTo(GinkgoWriter), zap.UseDevMode(true)))
	SetDefaultEventuallyTimeout(30 * time.Second)
	SetDefaultEventuallyPollingInterval(50 * time.Millisecond)
	var err error
	api, err = apiserver.Start(filepath.Join("..", "config", "crd", "bases"), GinkgoT().TempDir())
	Expect(err).NotTo(HaveOccurred())
	DeferCleanup(func() { Expect(api.Stop()).To(Succeed()) })

	// The operator's requests go through writeLog, which records every write,
	// and every request for a Secret: the operator must make none.
	cfg := rest.CopyConfig(api.Config)
	writes = &writeLog{}
	cfg.Wrap(func(rt http.RoundTripper) http.RoundTripper { return writes.wrap(rt) })
	DeferCleanup(func() {
		Expect(writes.secretRequests()).To(BeEmpty(), "the operator reads, lists or watches no Secret")
	})

	mgr, err := ctrl.NewManager(cfg, ctrl.Options{
		Scheme:                 api.Scheme,
		Cache:                  controllers.CacheOptions(),
		Metrics:                metricsserver.Options{BindAddress: "0"},
		HealthProbeBindAddress: "0",
		Controller:             config.Controller{SkipNameValidation: new(true)},
	})
	Expect(err).NotTo(HaveOccurred())
	r := &controllers.NotificationChannelReconciler{
		Client:        mgr.GetClient(),
		Recorder:      mgr.GetEventRecorder(controllers.FieldOwner),
		StreamerImage: streamerImage,
	}
	// Channels in the namespaces a spec marks with withoutDefaultImage are
	// reconciled as by an operator started without a streamer image.
	imageless := *r
	imageless.StreamerImage = ""
	reconcil = &reconcileLog{next: r, imageless: &imageless, done: map[types.NamespacedName]int{}, withoutImage: map[string]bool{}}
	Expect(r.SetupWithReconciler(mgr, reconcil)).To(Succeed())
	Expect((&controllers.SystemEventReconciler{Client: mgr.GetClient()}).SetupWithManager(mgr)).To(Succeed())

	ctx, cancel := context.WithCancel(context.Background())
	stopped := make(chan error)
	go func() { stopped <- mgr.Start(ctx) }()
	DeferCleanup(func() {
		cancel()
		Eventually(stopped).Should(Receive(BeNil()))
	})
})

// writeLog records the paths of the write requests (every method but GET,
// HEAD and OPTIONS) sent through it, and of every request for Secrets.
type writeLog struct {
	mu      sync.Mutex
	paths   []string
	secrets []string
}

func (w *writeLog) wrap(next http.RoundTripper) http.RoundTripper {
	return roundTripper(func(req *http.Request) (*http.Response, error) {
		w.mu.Lock()
		switch req.Method {
		case http.MethodGet, http.MethodHead, http.MethodOptions:
		default:
			w.paths = append(w.paths, req.Method+" "+req.URL.Path)
		}
		if strings.HasSuffix(req.URL.Path, "/secrets") || strings.Contains(req.URL.Path, "/secrets/") {
			w.secrets = append(w.secrets, req.Method+" "+req.URL.String())
		}
		w.mu.Unlock()
		return next.RoundTrip(req)
	})
}

// secretRequests are the requests for Secrets recorded so far.
func (w *writeLog) secretRequests() []string {
	w.mu.Lock()
	defer w.mu.Unlock()
	return slices.Clone(w.secrets)
}

// in returns the writes recorded so far into namespace, and to the
// cluster-scoped objects of its channels (named "herald:<namespace>:…").
func (w *writeLog) in(namespace string) []string {
	w.mu.Lock()
	defer w.mu.Unlock()
	var found []string
	for _, p := range w.paths {
		if strings.Contains(p, "/namespaces/"+namespace+"/") || strings.Contains(p, ":"+namespace+":") {
			found = append(found, p)
		}
	}
	return found
}

type roundTripper func(*http.Request) (*http.Response, error)

func (f roundTripper) RoundTrip(req *http.Request) (*http.Response, error) { return f(req) }

// reconcileLog counts the finished reconciles of each channel. It hands the
// channels of the namespaces marked withoutDefaultImage to imageless.
type reconcileLog struct {
	next, imageless reconcile.Reconciler
	mu              sync.Mutex
	done            map[types.NamespacedName]int
	withoutImage    map[string]bool
}

func (l *reconcileLog) Reconcile(ctx context.Context, req reconcile.Request) (reconcile.Result, error) {
	l.mu.Lock()
	next := l.next
	if l.withoutImage[req.Namespace] {
		next = l.imageless
	}
	l.mu.Unlock()
	result, err := next.Reconcile(ctx, req)
	l.mu.Lock()
	l.done[req.NamespacedName]++
	l.mu.Unlock()
	return result, err
}

// withoutDefaultImage has the channels of namespace reconciled as by an
// operator without a default streamer image. Mark the namespace before
// creating its channels.
func (l *reconcileLog) withoutDefaultImage(namespace string) {
	l.mu.Lock()
	defer l.mu.Unlock()
	l.withoutImage[namespace] = true
}

// count is how many reconciles of the channel have finished.
func (l *reconcileLog) count(key types.NamespacedName) int {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.done[key]
}

// newNamespace creates a namespace for one spec, with labels.
func newNamespace(ctx context.Context, labels map[string]string) string {
	GinkgoHelper()
	ns := &corev1.Namespace{ObjectMeta: metav1.ObjectMeta{GenerateName: "nch-", Labels: labels}}
	Expect(api.Client.Create(ctx, ns)).To(Succeed())
	return ns.Name
}

// hmacKey is a random key long enough for HS256.
func hmacKey() []byte {
	key := make([]byte, 32)
	_, _ = rand.Read(key)
	return key
}

// createKeySecret creates the key Secret "app-keys" with one entry per kid.
func createKeySecret(ctx context.Context, namespace string, data map[string][]byte) *corev1.Secret {
	GinkgoHelper()
	secret := &corev1.Secret{ObjectMeta: metav1.ObjectMeta{Namespace: namespace, Name: "app-keys"}, Data: data}
	Expect(api.Client.Create(ctx, secret)).To(Succeed())
	return secret
}

// createChannel creates the channel "app" reading the key Secret "app-keys",
// after edit has changed its spec, and runs the report on its Secrets that
// its streamer pod writes (startSecretsReport).
func createChannel(ctx context.Context, namespace string, edit func(*notifyv1alpha1.NotificationChannelSpec)) *notifyv1alpha1.NotificationChannel {
	GinkgoHelper()
	channel := createChannelOnly(ctx, namespace, edit)
	startSecretsReport(channel, "app-streamer-0")
	return channel
}

// createChannelOnly is createChannel without a streamer reporting on the
// channel's Secrets: as before its pods run.
func createChannelOnly(ctx context.Context, namespace string, edit func(*notifyv1alpha1.NotificationChannelSpec)) *notifyv1alpha1.NotificationChannel {
	GinkgoHelper()
	channel := &notifyv1alpha1.NotificationChannel{
		ObjectMeta: metav1.ObjectMeta{Namespace: namespace, Name: "app"},
		Spec: notifyv1alpha1.NotificationChannelSpec{Auth: notifyv1alpha1.AuthSpec{
			KeySecretRef: notifyv1alpha1.LocalSecretReference{Name: "app-keys"},
		}},
	}
	if edit != nil {
		edit(&channel.Spec)
	}
	Expect(api.Client.Create(ctx, channel)).To(Succeed())
	return channel
}

// get reads obj (named like it) from the API server; it fails the spec when
// the object does not exist.
func get[T client.Object](ctx context.Context, obj T) T {
	GinkgoHelper()
	Expect(api.Client.Get(ctx, client.ObjectKeyFromObject(obj), obj)).To(Succeed())
	return obj
}

// editChannel changes the channel as a person with kubectl edit would, and
// returns it as changed. The operator writes the status meanwhile, so an
// update that conflicts with it reads the channel again and retries.
func editChannel(ctx context.Context, channel *notifyv1alpha1.NotificationChannel, edit func(*notifyv1alpha1.NotificationChannel)) *notifyv1alpha1.NotificationChannel {
	GinkgoHelper()
	Expect(retry.RetryOnConflict(retry.DefaultRetry, func() error {
		channel = get(ctx, channel)
		edit(channel)
		return api.Client.Update(ctx, channel)
	})).To(Succeed())
	return channel
}

// condition returns the channel's condition of type typ, or nil.
func condition(channel *notifyv1alpha1.NotificationChannel, typ string) *metav1.Condition {
	for i := range channel.Status.Conditions {
		if channel.Status.Conditions[i].Type == typ {
			return &channel.Status.Conditions[i]
		}
	}
	return nil
}
