// Command localplatform runs Herald's control plane locally for development:
// a real kube-apiserver and etcd with the CRDs installed, the operator
// reconciling channels, a key Secret for the sample channel, and the samples
// of config/samples applied. It prints how to point kubectl at it and runs
// until interrupted. Start it with `make run`.
//
// No kubelet runs there, so the runner (runner.go) plays its part and the
// deployment controller's and kube-proxy's: the streamer Deployments the
// operator creates run as local `herald streamer` processes, and each
// channel's Service is a loopback port over its ready pods.
package main

import (
	"context"
	"crypto/rand"
	"encoding/base64"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"os"
	"os/signal"
	"path/filepath"
	"syscall"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	ctrl "sigs.k8s.io/controller-runtime"
	"sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/controller-runtime/pkg/log/zap"
	metricsserver "sigs.k8s.io/controller-runtime/pkg/metrics/server"

	notifyv1alpha1 "github.com/herald-notify/herald/api/v1alpha1"
	"github.com/herald-notify/herald/controllers"
	"github.com/herald-notify/herald/controllers/resources"
	"github.com/herald-notify/herald/internal/apiserver"
)

const (
	namespace  = "default"
	fieldOwner = "herald-localplatform"
	// sampleKeySecret is the key Secret the sample channel names.
	sampleKeySecret = "app-jwt-keys"
	// sampleKeyID is the kid of the sample key in that Secret.
	sampleKeyID = "local"
	// sampleChannel is the channel the printed commands use.
	sampleChannel = "app-notifications"
	// streamerImage is what the local operator stamps into streamer
	// Deployments; no pod ever pulls it here.
	streamerImage = "ghcr.io/herald-notify/herald:local"
)

func main() {
	herald := flag.String("herald", filepath.Join("bin", "herald"), "the herald binary the streamer pods run (make build)")
	flag.Parse()
	ctrl.SetLogger(zap.New(zap.UseDevMode(false)))
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	if err := run(ctx, ".", filepath.Join("bin", "local"), *herald, os.Stdout); err != nil {
		fmt.Fprintln(os.Stderr, "localplatform:", err)
		os.Exit(1)
	}
}

// run starts the platform from the repository at root, with its kubeconfig
// and the pods' folders in stateDir, its streamer pods running the herald
// binary, and blocks until ctx ends.
func run(ctx context.Context, root, stateDir, herald string, out io.Writer) error {
	server, err := apiserver.Start(filepath.Join(root, "config", "crd", "bases"), stateDir)
	if err != nil {
		return err
	}
	defer func() {
		fmt.Fprintln(out, "stopping the API server")
		_ = server.Stop()
	}()

	// The operator stops before the API server, also when run fails.
	operatorCtx, stopOperator := context.WithCancel(ctx)
	operatorDone, err := startOperator(operatorCtx, server)
	if err != nil {
		stopOperator()
		return err
	}
	defer func() {
		stopOperator()
		<-operatorDone
	}()

	// The runner stops first (deferred last): the streamers drain while the
	// operator and the API server still run.
	runner, err := NewRunner(RunnerOptions{
		Config: server.Config, Scheme: server.Scheme, Kubeconfig: server.Kubeconfig,
		Herald: herald, Dir: filepath.Join(stateDir, "pods"),
		Logger: slog.New(slog.NewTextHandler(out, nil)),
	})
	if err != nil {
		return err
	}
	runnerCtx, stopRunner := context.WithCancel(ctx)
	runnerDone := make(chan error, 1)
	go func() { runnerDone <- runner.Run(runnerCtx) }()
	defer func() {
		stopRunner()
		if err := <-runnerDone; err != nil {
			fmt.Fprintln(out, "the runner stopped:", err)
		}
	}()

	// The page's origin is known before the samples are applied, so that
	// the sample channel allows it.
	page, err := listenPage()
	if err != nil {
		return err
	}
	defer page.Close()

	keyFile := filepath.Join(stateDir, "sample-key")
	if err := createSampleKey(ctx, server, keyFile); err != nil {
		return err
	}
	samples, err := filepath.Glob(filepath.Join(root, "config", "samples", "*.yaml"))
	if err != nil {
		return err
	}
	var objs []*unstructured.Unstructured
	for _, file := range samples {
		fileObjs, err := apiserver.ReadManifests(file)
		if err != nil {
			return err
		}
		objs = append(objs, fileObjs...)
	}
	if err := allowOrigin(objs, sampleChannel, page.Origin()); err != nil {
		return err
	}
	if err := apiserver.Apply(ctx, server.Client, namespace, fieldOwner, objs...); err != nil {
		return err
	}

	kubeconfig, err := filepath.Abs(server.Kubeconfig)
	if err != nil {
		return err
	}
	service := client.ObjectKey{Namespace: namespace, Name: resources.ObjectName(sampleChannel)}
	addr, err := waitServiceAddr(ctx, runner, service, resources.PortNameHTTP)
	if err != nil {
		return err
	}
	channel := &notifyv1alpha1.NotificationChannel{}
	if err := server.Client.Get(ctx, client.ObjectKey{Namespace: namespace, Name: sampleChannel}, channel); err != nil {
		return err
	}
	if err := servePage(page, root, keyFile, addr, channel); err != nil {
		return err
	}
	fmt.Fprintf(out, "Herald local platform is up: kube-apiserver %s with the CRDs and %d sample objects.\n\n", server.Config.Host, len(objs))
	printCommands(out, commandsFor(kubeconfig, herald, keyFile, addr, channel))
	fmt.Fprintf(out, "\nOpen the browser page, which streams as user %s:\n  %s\n", sampleUser, page.URL())
	fmt.Fprintf(out, `
The operator runs in this process, and so does a runner that starts the streamer
pods it asks for as local processes (their logs in %s).
Press Ctrl-C to stop; its data is discarded.
`, filepath.Join(stateDir, "pods"))
	<-ctx.Done()
	return nil
}

// startOperator runs the operator's controllers against server until ctx
// ends; the returned channel closes once it has stopped.
func startOperator(ctx context.Context, server *apiserver.Server) (<-chan struct{}, error) {
	mgr, err := ctrl.NewManager(server.Config, ctrl.Options{
		Scheme:                 server.Scheme,
		Cache:                  controllers.CacheOptions(),
		Metrics:                metricsserver.Options{BindAddress: "0"},
		HealthProbeBindAddress: "0",
	})
	if err != nil {
		return nil, fmt.Errorf("failed to create the operator: %w", err)
	}
	if err := controllers.Setup(mgr, streamerImage); err != nil {
		return nil, err
	}
	done := make(chan struct{})
	go func() {
		defer close(done)
		if err := mgr.Start(ctx); err != nil {
			ctrl.Log.Error(err, "the operator stopped")
		}
	}()
	return done, nil
}

// createSampleKey creates the HMAC key Secret the sample channel refers to,
// with a fresh random key: no key is ever shipped in the repository.
// The key is also written to keyFile, byte for byte as the Secret holds it,
// for `herald token --key`.
func createSampleKey(ctx context.Context, server *apiserver.Server, keyFile string) error {
	raw := make([]byte, 48)
	if _, err := rand.Read(raw); err != nil {
		return err
	}
	key := base64.RawURLEncoding.EncodeToString(raw)
	if err := os.WriteFile(keyFile, []byte(key), 0o600); err != nil {
		return err
	}
	secret := &corev1.Secret{
		ObjectMeta: metav1.ObjectMeta{Namespace: namespace, Name: sampleKeySecret},
		StringData: map[string]string{sampleKeyID: key},
	}
	if err := server.Client.Create(ctx, secret); err != nil {
		return fmt.Errorf("failed to create the sample key Secret: %w", err)
	}
	return nil
}
