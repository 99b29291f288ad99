// Package operator assembles and runs the Herald operator: a controller-runtime
// manager with the channel and SystemEvent reconcilers, probes, metrics and
// leader election, and the streamer image it puts in the channels' pods. The
// herald command's "operator" is a thin layer of flags over Run.
package operator

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"os"

	"github.com/go-logr/logr"
	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/client-go/rest"
	ctrl "sigs.k8s.io/controller-runtime"
	"sigs.k8s.io/controller-runtime/pkg/client"
	ctrlconfig "sigs.k8s.io/controller-runtime/pkg/client/config"
	"sigs.k8s.io/controller-runtime/pkg/healthz"
	"sigs.k8s.io/controller-runtime/pkg/metrics/filters"
	metricsserver "sigs.k8s.io/controller-runtime/pkg/metrics/server"

	"github.com/herald-notify/herald/controllers"
	"github.com/herald-notify/herald/internal/apiserver"
)

// leaderElectionID names the Lease the operator replicas compete for.
const leaderElectionID = "herald-operator.notify.herald.dev"

// The environment variables the operator's Deployment sets from the downward
// API, so that the operator can read its own Pod and learn its image.
const (
	EnvPodName      = "POD_NAME"
	EnvPodNamespace = "POD_NAMESPACE"
)

// operatorContainer is the operator's container name in its Pod, in config/
// and in the chart.
const operatorContainer = "operator"

// ErrNoImage is returned when no streamer image is given and the operator
// runs outside a pod, so that it cannot take its own image: the caller's
// mistake, not the cluster's.
var ErrNoImage = fmt.Errorf("--streamer-image is required when %s and %s are not set (outside a pod)", EnvPodName, EnvPodNamespace)

// Options configure the operator.
type Options struct {
	// LeaderElect elects one active replica through a Lease, so that several
	// can run for availability. False: this replica reconciles at once.
	LeaderElect bool
	// LeaderElectionNamespace is the namespace of the Lease. Empty: the
	// operator's own namespace in a cluster.
	LeaderElectionNamespace string
	// HealthProbeAddr is the address of /healthz and /readyz. Empty or "0"
	// turns them off.
	HealthProbeAddr string
	// MetricsAddr is the address of /metrics. "0" turns it off; empty is
	// controller-runtime's default, ":8080".
	MetricsAddr string
	// MetricsSecure serves /metrics over HTTPS, to callers the API server
	// authenticates and authorizes (get on the /metrics non-resource URL).
	// False: plain HTTP, to anyone.
	MetricsSecure bool
	// StreamerImage is the image of the streamer pods of channels that set
	// no spec.image. Empty: the operator's own image, read from its Pod (see
	// OwnImage).
	StreamerImage string
	// Logger receives the operator's and controller-runtime's logs. The zero
	// Logger discards them.
	Logger logr.Logger
}

// Run runs the operator's manager against the API server of KUBECONFIG (or
// in-cluster) until ctx ends. It returns an error wrapping ErrNoImage when
// opts name no streamer image outside a pod.
func Run(ctx context.Context, opts Options) error {
	logger := opts.Logger
	if logger.GetSink() == nil {
		logger = logr.Discard()
	}
	ctrl.SetLogger(logger)
	cfg, err := ctrlconfig.GetConfig()
	if err != nil {
		return fmt.Errorf("failed to find the Kubernetes API (KUBECONFIG or in-cluster): %w", err)
	}
	scheme, err := apiserver.NewScheme()
	if err != nil {
		return err
	}
	image := opts.StreamerImage
	if image == "" {
		if image, err = OwnImage(ctx, cfg); err != nil {
			return err
		}
	}

	metrics := metricsserver.Options{BindAddress: opts.MetricsAddr, SecureServing: opts.MetricsSecure}
	if opts.MetricsSecure {
		metrics.FilterProvider = filters.WithAuthenticationAndAuthorization
	}
	mgr, err := ctrl.NewManager(cfg, ctrl.Options{
		Scheme:                  scheme,
		Cache:                   controllers.CacheOptions(),
		Metrics:                 metrics,
		HealthProbeBindAddress:  opts.HealthProbeAddr,
		LeaderElection:          opts.LeaderElect,
		LeaderElectionID:        leaderElectionID,
		LeaderElectionNamespace: opts.LeaderElectionNamespace,
		// A leader that is stopping gives the Lease up at once, so that a
		// rollout of the operator does not leave channels unreconciled for
		// a lease duration.
		LeaderElectionReleaseOnCancel: true,
	})
	if err != nil {
		return fmt.Errorf("failed to create the manager: %w", err)
	}
	if err := controllers.Setup(mgr, image); err != nil {
		return err
	}
	if err := mgr.AddHealthzCheck("ping", healthz.Ping); err != nil {
		return err
	}
	// Ready once the caches are filled: before that, the operator would
	// take every owned object for missing.
	if err := mgr.AddReadyzCheck("caches", func(req *http.Request) error {
		if !mgr.GetCache().WaitForCacheSync(req.Context()) {
			return errors.New("the caches are not synced yet")
		}
		return nil
	}); err != nil {
		return err
	}
	logger.Info("operator starting", "streamerImage", image, "leaderElection", opts.LeaderElect)
	return mgr.Start(ctx)
}

// OwnImage reads the operator's own Pod, named by POD_NAME and POD_NAMESPACE,
// and returns the image of its operator container: the streamers then run the
// very image the operator runs, however it was set (kustomize, helm, kubectl
// set image). Outside a pod (either variable unset) it returns ErrNoImage.
func OwnImage(ctx context.Context, cfg *rest.Config) (string, error) {
	name, namespace := os.Getenv(EnvPodName), os.Getenv(EnvPodNamespace)
	if name == "" || namespace == "" {
		return "", ErrNoImage
	}
	c, err := client.New(cfg, client.Options{})
	if err != nil {
		return "", err
	}
	pod := &corev1.Pod{}
	if err := c.Get(ctx, types.NamespacedName{Namespace: namespace, Name: name}, pod); err != nil {
		return "", fmt.Errorf("failed to read the operator's own Pod %s/%s to learn its image (or set --streamer-image): %w", namespace, name, err)
	}
	return containerImage(pod)
}

// containerImage is the image of the Pod's operator container, or of its only
// container.
func containerImage(pod *corev1.Pod) (string, error) {
	for _, c := range pod.Spec.Containers {
		if c.Name == operatorContainer || len(pod.Spec.Containers) == 1 {
			return c.Image, nil
		}
	}
	return "", fmt.Errorf("the operator's Pod %s/%s has no container named %q to take the streamer image from: set --streamer-image",
		pod.Namespace, pod.Name, operatorContainer)
}
