package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"os"
	"os/signal"
	"syscall"

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
	envPodName      = "POD_NAME"
	envPodNamespace = "POD_NAMESPACE"
)

// operatorContainer is the operator's container name in its Pod, in config/
// and in the chart.
const operatorContainer = "operator"

// operatorFlags are the command line of "herald operator".
type operatorFlags struct {
	leaderElect             bool
	leaderElectionNamespace string
	healthProbeAddr         string
	metricsAddr             string
	metricsSecure           bool
	streamerImage           string
	logLevel                string
}

func runOperator(args []string, stdout, stderr io.Writer) error {
	fs := flag.NewFlagSet("operator", flag.ContinueOnError)
	var f operatorFlags
	fs.BoolVar(&f.leaderElect, "leader-elect", false, "elect one active replica through a Lease, so that several can run for availability")
	fs.StringVar(&f.leaderElectionNamespace, "leader-election-namespace", "", "namespace of the leader election Lease (default: the operator's own namespace in a cluster)")
	fs.StringVar(&f.healthProbeAddr, "health-probe-bind-address", ":8081", "address of /healthz and /readyz; 0 turns them off")
	fs.StringVar(&f.metricsAddr, "metrics-bind-address", ":8443", "address of /metrics; 0 turns it off")
	fs.BoolVar(&f.metricsSecure, "metrics-secure", true, "serve /metrics over HTTPS, to callers the API server authenticates and authorizes (get on the /metrics non-resource URL)")
	fs.StringVar(&f.streamerImage, "streamer-image", "", "image of the streamer pods of channels that set no spec.image (default: the operator's own image, read from its Pod)")
	fs.StringVar(&f.logLevel, "log-level", "info", "debug, info, warn or error")
	if err := parseFlags(fs, args, stdout); err != nil {
		return err
	}
	if fs.NArg() > 0 {
		return fmt.Errorf("%w: unexpected argument %q", errUsage, fs.Arg(0))
	}
	var level slog.Level
	if err := level.UnmarshalText([]byte(f.logLevel)); err != nil {
		return fmt.Errorf("%w: --log-level must be debug, info, warn or error, not %q", errUsage, f.logLevel)
	}
	logger := logr.FromSlogHandler(slog.NewJSONHandler(stderr, &slog.HandlerOptions{Level: level}))
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	return serveOperator(ctx, f, logger)
}

// serveOperator runs the operator's manager until ctx ends.
func serveOperator(ctx context.Context, f operatorFlags, logger logr.Logger) error {
	ctrl.SetLogger(logger)
	cfg, err := ctrlconfig.GetConfig()
	if err != nil {
		return fmt.Errorf("failed to find the Kubernetes API (KUBECONFIG or in-cluster): %w", err)
	}
	scheme, err := apiserver.NewScheme()
	if err != nil {
		return err
	}
	image := f.streamerImage
	if image == "" {
		if image, err = ownImage(ctx, cfg); err != nil {
			return err
		}
	}

	metrics := metricsserver.Options{BindAddress: f.metricsAddr, SecureServing: f.metricsSecure}
	if f.metricsSecure {
		metrics.FilterProvider = filters.WithAuthenticationAndAuthorization
	}
	mgr, err := ctrl.NewManager(cfg, ctrl.Options{
		Scheme:                  scheme,
		Cache:                   controllers.CacheOptions(),
		Metrics:                 metrics,
		HealthProbeBindAddress:  f.healthProbeAddr,
		LeaderElection:          f.leaderElect,
		LeaderElectionID:        leaderElectionID,
		LeaderElectionNamespace: f.leaderElectionNamespace,
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
	logger.Info("operator starting", "streamerImage", image, "leaderElection", f.leaderElect)
	return mgr.Start(ctx)
}

// ownImage reads the operator's own Pod, named by POD_NAME and POD_NAMESPACE,
// and returns the image of its operator container: the streamers then run the
// very image the operator runs, however it was set (kustomize, helm, kubectl
// set image).
func ownImage(ctx context.Context, cfg *rest.Config) (string, error) {
	name, namespace := os.Getenv(envPodName), os.Getenv(envPodNamespace)
	if name == "" || namespace == "" {
		return "", fmt.Errorf("%w: --streamer-image is required when %s and %s are not set (outside a pod)", errUsage, envPodName, envPodNamespace)
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
