// Command localplatform runs Herald's control plane locally for development:
// a real kube-apiserver and etcd with the CRDs installed, a key Secret for the
// sample channel, and the samples of config/samples applied. It prints how to
// point kubectl at it and runs until interrupted. Start it with `make run`.
package main

import (
	"context"
	"crypto/rand"
	"encoding/base64"
	"fmt"
	"io"
	"os"
	"os/signal"
	"path/filepath"
	"syscall"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	ctrl "sigs.k8s.io/controller-runtime"
	"sigs.k8s.io/controller-runtime/pkg/log/zap"

	"github.com/herald-notify/herald/internal/apiserver"
)

const (
	namespace  = "default"
	fieldOwner = "herald-localplatform"
	// sampleKeySecret is the key Secret the sample channel names.
	sampleKeySecret = "app-jwt-keys"
)

func main() {
	ctrl.SetLogger(zap.New(zap.UseDevMode(false)))
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	if err := run(ctx, ".", filepath.Join("bin", "local"), os.Stdout); err != nil {
		fmt.Fprintln(os.Stderr, "localplatform:", err)
		os.Exit(1)
	}
}

// run starts the platform from the repository at root, with its kubeconfig in
// stateDir, and blocks until ctx ends.
func run(ctx context.Context, root, stateDir string, out io.Writer) error {
	server, err := apiserver.Start(filepath.Join(root, "config", "crd", "bases"), stateDir)
	if err != nil {
		return err
	}
	defer func() {
		fmt.Fprintln(out, "stopping the API server")
		_ = server.Stop()
	}()

	if err := createSampleKey(ctx, server); err != nil {
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
	if err := apiserver.Apply(ctx, server.Client, namespace, fieldOwner, objs...); err != nil {
		return err
	}

	kubeconfig, err := filepath.Abs(server.Kubeconfig)
	if err != nil {
		return err
	}
	fmt.Fprintf(out, `Herald local platform is up: kube-apiserver %s with the CRDs and %d sample objects.

  export KUBECONFIG=%s
  kubectl get nch,sev
  kubectl explain notificationchannel.spec

Press Ctrl-C to stop; its data is discarded.
`, server.Config.Host, len(objs), kubeconfig)
	<-ctx.Done()
	return nil
}

// createSampleKey creates the HMAC key Secret the sample channel refers to,
// with a fresh random key: no key is ever shipped in the repository.
func createSampleKey(ctx context.Context, server *apiserver.Server) error {
	key := make([]byte, 48)
	if _, err := rand.Read(key); err != nil {
		return err
	}
	secret := &corev1.Secret{
		ObjectMeta: metav1.ObjectMeta{Namespace: namespace, Name: sampleKeySecret},
		StringData: map[string]string{"local": base64.RawURLEncoding.EncodeToString(key)},
	}
	if err := server.Client.Create(ctx, secret); err != nil {
		return fmt.Errorf("failed to create the sample key Secret: %w", err)
	}
	return nil
}
