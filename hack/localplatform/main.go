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
	_ "embed"
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
	"sigs.k8s.io/controller-runtime/pkg/config"
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
	// fleetChannel is the NATS channel of fleet-notifications.yaml, three
	// pods over the local NATS server.
	fleetChannel = "fleet-notifications"
	// fleetCredentialsSecret is the NATS credentials Secret it names.
	fleetCredentialsSecret = "fleet-nats-credentials"
	// streamerImage is what the local operator stamps into streamer
	// Deployments; no pod ever pulls it here.
	streamerImage = "ghcr.io/herald-notify/herald:local"
)

// fleetManifest is the local NATS channel, applied with the samples.
//
//go:embed fleet-notifications.yaml
var fleetManifest []byte

func main() {
	herald := flag.String("herald", filepath.Join("bin", "herald"), "the herald binary the streamer pods run (make build)")
	flag.Parse()
	if err := mainErr(*herald); err != nil {
		fmt.Fprintln(os.Stderr, "localplatform:", err)
		os.Exit(1)
	}
}

// mainErr runs the platform in bin/local until SIGINT or SIGTERM, its
// operator's and runner's logs in a file so that the terminal shows the
// commands.
func mainErr(herald string) error {
	stateDir := filepath.Join("bin", "local")
	if err := os.MkdirAll(stateDir, 0o755); err != nil {
		return err
	}
	logPath := filepath.Join(stateDir, "platform.log")
	logFile, err := os.Create(logPath)
	if err != nil {
		return err
	}
	defer logFile.Close()
	ctrl.SetLogger(zap.New(zap.UseDevMode(false), zap.WriteTo(logFile)))
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	return run(ctx, ".", stateDir, herald, os.Stdout, logFile)
}

// run starts the platform from the repository at root, with its kubeconfig
// and the pods' folders in stateDir, its streamer pods running the herald
// binary and the runner logging to logs, prints the commands that use it,
// and blocks until ctx ends.
func run(ctx context.Context, root, stateDir, herald string, out, logs io.Writer) error {
	p, err := startPlatform(ctx, platformOptions{Root: root, StateDir: stateDir, Herald: herald, Log: logs})
	if err != nil {
		return err
	}
	defer p.Stop(out)

	sample, err := p.channelCommands(ctx, sampleChannel)
	if err != nil {
		return err
	}
	fleet, err := p.channelCommands(ctx, fleetChannel)
	if err != nil {
		return err
	}
	if err := p.servePage(ctx); err != nil {
		return err
	}
	fmt.Fprintf(out, "Herald local platform is up: kube-apiserver %s with the CRDs and %d sample objects, NATS %s.\n\n",
		p.Server.Config.Host, p.Objects, p.NATS.URL())
	printCommands(out, sample, fleet)
	fmt.Fprintf(out, "\nOpen the browser page, which streams as user %s:\n  %s\n", sampleUser, p.Page.URL())
	fmt.Fprintf(out, `
The operator runs in this process, and so do NATS and a runner that starts the
streamer pods the operator asks for as local processes. Logs: %s (the
operator and the runner), %s/<namespace>/<pod>/log (each streamer pod).
Press Ctrl-C to stop; its data is discarded.
`, filepath.Join(stateDir, "platform.log"), filepath.Join(stateDir, "pods"))
	<-ctx.Done()
	return nil
}

// platformOptions say where a platform's parts come from and go.
type platformOptions struct {
	// Root is the repository (config/crd, config/samples).
	Root string
	// StateDir holds the kubeconfig, the sample key, NATS's store and the
	// pods' folders.
	StateDir string
	// Herald is the binary the streamer pods run.
	Herald string
	// Log receives the runner's log lines.
	Log io.Writer
}

// platform is a running local platform: the API server with the CRDs, NATS,
// the operator and the runner, with the samples applied.
type platform struct {
	Server *apiserver.Server
	NATS   *localNATS
	Runner *Runner
	// Page is the browser page's server, serving once servePage has run.
	Page *pageServer
	// Kubeconfig is the absolute path of the admin kubeconfig.
	Kubeconfig string
	// KeyFile holds the sample key, as `herald token --key` reads it.
	KeyFile string
	// Objects is the number of sample objects applied.
	Objects int
	herald  string
	root    string

	// stops run in reverse order of their adding: the runner first (the
	// streamers drain while NATS, the operator and the API server run).
	stops []func()
}

// startPlatform starts every part and applies the samples. The platform runs
// until ctx ends or Stop; on an error, what was started is stopped.
func startPlatform(ctx context.Context, opts platformOptions) (_ *platform, err error) {
	p := &platform{herald: opts.Herald, root: opts.Root, KeyFile: filepath.Join(opts.StateDir, "sample-key")}
	defer func() {
		if err != nil {
			p.Stop(io.Discard)
		}
	}()
	if p.Server, err = apiserver.Start(filepath.Join(opts.Root, "config", "crd", "bases"), opts.StateDir); err != nil {
		return nil, err
	}
	p.stops = append(p.stops, func() { _ = p.Server.Stop() })
	if p.Kubeconfig, err = filepath.Abs(p.Server.Kubeconfig); err != nil {
		return nil, err
	}

	if p.NATS, err = startNATS(filepath.Join(opts.StateDir, "nats")); err != nil {
		return nil, err
	}
	p.stops = append(p.stops, p.NATS.Stop)

	operatorCtx, stopOperator := context.WithCancel(ctx)
	operatorDone, err := startOperator(operatorCtx, p.Server)
	p.stops = append(p.stops, func() {
		stopOperator()
		if operatorDone != nil {
			<-operatorDone
		}
	})
	if err != nil {
		return nil, err
	}

	if p.Runner, err = NewRunner(RunnerOptions{
		Config: p.Server.Config, Scheme: p.Server.Scheme, Kubeconfig: p.Server.Kubeconfig,
		Herald: opts.Herald, Dir: filepath.Join(opts.StateDir, "pods"),
		Logger: slog.New(slog.NewTextHandler(opts.Log, nil)),
	}); err != nil {
		return nil, err
	}
	runnerCtx, stopRunner := context.WithCancel(ctx)
	runnerDone := make(chan error, 1)
	go func() { runnerDone <- p.Runner.Run(runnerCtx) }()
	p.stops = append(p.stops, func() {
		stopRunner()
		if err := <-runnerDone; err != nil {
			fmt.Fprintln(opts.Log, "the runner stopped:", err)
		}
	})

	if err := createSampleKey(ctx, p.Server, p.KeyFile); err != nil {
		return nil, err
	}
	if err := createNATSCredentials(ctx, p.Server, p.NATS); err != nil {
		return nil, err
	}
	objs, err := sampleObjects(opts.Root, p.NATS.URL())
	if err != nil {
		return nil, err
	}
	// The page's origin is known before the samples are applied, so that
	// the sample channel allows it.
	if p.Page, err = listenPage(); err != nil {
		return nil, err
	}
	p.stops = append(p.stops, func() { _ = p.Page.Close() })
	if err := allowOrigin(objs, sampleChannel, p.Page.Origin()); err != nil {
		return nil, err
	}
	if err := apiserver.Apply(ctx, p.Server.Client, namespace, fieldOwner, objs...); err != nil {
		return nil, err
	}
	p.Objects = len(objs)
	return p, nil
}

// Stop stops the parts in reverse order of their start, saying so on out.
func (p *platform) Stop(out io.Writer) {
	for i := len(p.stops) - 1; i >= 0; i-- {
		if i == 0 {
			fmt.Fprintln(out, "stopping the API server")
		}
		p.stops[i]()
	}
	p.stops = nil
}

// sampleObjects are config/samples' objects and the local NATS channel,
// pointed at natsURL.
func sampleObjects(root, natsURL string) ([]*unstructured.Unstructured, error) {
	files, err := filepath.Glob(filepath.Join(root, "config", "samples", "*.yaml"))
	if err != nil {
		return nil, err
	}
	var objs []*unstructured.Unstructured
	for _, file := range files {
		fileObjs, err := apiserver.ReadManifests(file)
		if err != nil {
			return nil, err
		}
		objs = append(objs, fileObjs...)
	}
	fleet, err := apiserver.ReadManifestsFrom(fleetManifest)
	if err != nil {
		return nil, err
	}
	for _, obj := range fleet {
		if err := unstructured.SetNestedField(obj.Object, natsURL, "spec", "broker", "nats", "url"); err != nil {
			return nil, err
		}
	}
	return append(objs, fleet...), nil
}

// channelCommands are the printed commands for a channel, once the runner
// serves its Service.
func (p *platform) channelCommands(ctx context.Context, name string) (commands, error) {
	addr, channel, err := p.servedChannel(ctx, name)
	if err != nil {
		return commands{}, err
	}
	return commandsFor(p.Kubeconfig, p.herald, p.KeyFile, addr, channel), nil
}

// servedChannel is a channel and its Service's address, once the runner
// serves it.
func (p *platform) servedChannel(ctx context.Context, name string) (string, *notifyv1alpha1.NotificationChannel, error) {
	service := client.ObjectKey{Namespace: namespace, Name: resources.ObjectName(name)}
	addr, err := waitServiceAddr(ctx, p.Runner, service, resources.PortNameHTTP)
	if err != nil {
		return "", nil, err
	}
	channel := &notifyv1alpha1.NotificationChannel{}
	if err := p.Server.Client.Get(ctx, client.ObjectKey{Namespace: namespace, Name: name}, channel); err != nil {
		return "", nil, err
	}
	return addr, channel, nil
}

// startOperator runs the operator's controllers against server until ctx
// ends; the returned channel closes once it has stopped.
func startOperator(ctx context.Context, server *apiserver.Server) (<-chan struct{}, error) {
	mgr, err := ctrl.NewManager(server.Config, ctrl.Options{
		Scheme:                 server.Scheme,
		Cache:                  controllers.CacheOptions(),
		Metrics:                metricsserver.Options{BindAddress: "0"},
		HealthProbeBindAddress: "0",
		// Tests start several platforms in one process, each with its own
		// operator; controller-runtime refuses a second controller of a
		// name unless told.
		Controller: config.Controller{SkipNameValidation: new(true)},
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

// createNATSCredentials creates the credentials Secret of the NATS channel:
// the local server's token.
func createNATSCredentials(ctx context.Context, server *apiserver.Server, nats *localNATS) error {
	secret := &corev1.Secret{
		ObjectMeta: metav1.ObjectMeta{Namespace: namespace, Name: fleetCredentialsSecret},
		StringData: map[string]string{notifyv1alpha1.NATSTokenKey: nats.Token},
	}
	if err := server.Client.Create(ctx, secret); err != nil {
		return fmt.Errorf("failed to create the NATS credentials Secret: %w", err)
	}
	return nil
}
