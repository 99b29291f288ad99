// Package apiserver starts a real kube-apiserver and etcd (controller-runtime's
// envtest) with Herald's CRDs installed, for the test suites and the local
// platform. The binaries come from hack/envtest-assets.sh via KUBEBUILDER_ASSETS.
package apiserver

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"

	"k8s.io/apimachinery/pkg/runtime"
	clientgoscheme "k8s.io/client-go/kubernetes/scheme"
	"k8s.io/client-go/rest"
	"sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/controller-runtime/pkg/envtest"

	notifyv1alpha1 "github.com/herald-notify/herald/api/v1alpha1"
)

// AssetsEnv is the environment variable that names the directory holding the
// kube-apiserver and etcd binaries.
const AssetsEnv = "KUBEBUILDER_ASSETS"

// Server is a running API server with Herald's CRDs installed.
type Server struct {
	env *envtest.Environment

	// Config connects to the server as an administrator.
	Config *rest.Config
	// Client is an uncached client for Config, with Herald's types registered.
	Client client.Client
	// Scheme holds the built-in types and Herald's.
	Scheme *runtime.Scheme
	// Kubeconfig is the path of a kubeconfig file for Config (for kubectl).
	Kubeconfig string
}

// NewScheme returns a scheme with the built-in Kubernetes types and Herald's.
func NewScheme() (*runtime.Scheme, error) {
	s := runtime.NewScheme()
	if err := clientgoscheme.AddToScheme(s); err != nil {
		return nil, fmt.Errorf("failed to register the built-in types: %w", err)
	}
	if err := notifyv1alpha1.AddToScheme(s); err != nil {
		return nil, fmt.Errorf("failed to register the notify.herald.dev types: %w", err)
	}
	return s, nil
}

// Start starts etcd and kube-apiserver, installs the CRDs found in crdDir and
// writes an administrator kubeconfig into kubeconfigDir. Stop it with Stop.
func Start(crdDir, kubeconfigDir string) (*Server, error) {
	if os.Getenv(AssetsEnv) == "" {
		return nil, errors.New(AssetsEnv + " is not set: run 'make test', or export " +
			AssetsEnv + "=\"$(hack/envtest-assets.sh)\" first")
	}
	scheme, err := NewScheme()
	if err != nil {
		return nil, err
	}
	env := &envtest.Environment{
		CRDDirectoryPaths:     []string{crdDir},
		ErrorIfCRDPathMissing: true,
		Scheme:                scheme,
	}
	cfg, err := env.Start()
	if err != nil {
		// Start can fail after the processes are up (installing the CRDs):
		// stop them, or they outlive the test run.
		_ = env.Stop()
		return nil, fmt.Errorf("failed to start kube-apiserver and etcd from %s: %w", os.Getenv(AssetsEnv), err)
	}
	s := &Server{env: env, Config: cfg, Scheme: scheme}
	if err := s.init(kubeconfigDir); err != nil {
		_ = env.Stop()
		return nil, err
	}
	return s, nil
}

func (s *Server) init(kubeconfigDir string) error {
	c, err := client.New(s.Config, client.Options{Scheme: s.Scheme})
	if err != nil {
		return fmt.Errorf("failed to create a client: %w", err)
	}
	s.Client = c

	admin, err := s.env.AddUser(envtest.User{Name: "herald-admin", Groups: []string{"system:masters"}}, nil)
	if err != nil {
		return fmt.Errorf("failed to add the administrator user: %w", err)
	}
	kubeconfig, err := admin.KubeConfig()
	if err != nil {
		return fmt.Errorf("failed to render the administrator kubeconfig: %w", err)
	}
	if err := os.MkdirAll(kubeconfigDir, 0o700); err != nil {
		return fmt.Errorf("failed to create %s: %w", kubeconfigDir, err)
	}
	s.Kubeconfig = filepath.Join(kubeconfigDir, "kubeconfig")
	if err := os.WriteFile(s.Kubeconfig, kubeconfig, 0o600); err != nil {
		return fmt.Errorf("failed to write the kubeconfig: %w", err)
	}
	return nil
}

// ClientAs returns an uncached client acting as identity (a user name, or
// system:serviceaccount:<namespace>:<name>), which the administrator
// impersonates: the API server gives it the groups of that identity's token.
func (s *Server) ClientAs(identity string) (client.Client, error) {
	cfg := rest.CopyConfig(s.Config)
	cfg.Impersonate = rest.ImpersonationConfig{UserName: identity}
	c, err := client.New(cfg, client.Options{Scheme: s.Scheme})
	if err != nil {
		return nil, fmt.Errorf("failed to create a client acting as %s: %w", identity, err)
	}
	return c, nil
}

// Stop stops kube-apiserver and etcd and removes their data.
func (s *Server) Stop() error {
	return s.env.Stop()
}
