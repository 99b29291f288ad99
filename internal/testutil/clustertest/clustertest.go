// Package clustertest runs a real kube-apiserver and etcd for the suites that
// drive the operator or a streamer as their commands run them: found through
// KUBECONFIG, as in a developer's shell.
package clustertest

import (
	"context"
	"crypto/rand"
	"time"

	"github.com/onsi/ginkgo/v2"
	"github.com/onsi/gomega"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	notifyv1alpha1 "github.com/herald-notify/herald/api/v1alpha1"
	"github.com/herald-notify/herald/internal/apiserver"
	"github.com/herald-notify/herald/internal/testutil"
)

// Cluster is a running kube-apiserver with the CRDs installed.
type Cluster struct {
	*apiserver.Server
}

// Start starts the API server with the CRDs of crdDir and points KUBECONFIG
// at it as its administrator. Call it in a BeforeSuite: the server stops and
// KUBECONFIG is restored when the suite ends.
func Start(crdDir string) *Cluster {
	ginkgo.GinkgoHelper()
	server, err := apiserver.Start(crdDir, ginkgo.GinkgoT().TempDir())
	gomega.Expect(err).NotTo(gomega.HaveOccurred())
	ginkgo.DeferCleanup(func() { gomega.Expect(server.Stop()).To(gomega.Succeed()) })
	testutil.SetEnv("KUBECONFIG", server.Kubeconfig)
	return &Cluster{Server: server}
}

// Namespace creates a namespace for one spec.
func (c *Cluster) Namespace(ctx context.Context) string {
	ginkgo.GinkgoHelper()
	ns := &corev1.Namespace{ObjectMeta: metav1.ObjectMeta{GenerateName: "cmd-"}}
	gomega.Expect(c.Client.Create(ctx, ns)).To(gomega.Succeed())
	return ns.Name
}

// CreateChannelWithKey creates the key Secret "app-keys" (kid "k1") and the
// channel "app" in namespace, and returns the key.
func (c *Cluster) CreateChannelWithKey(ctx context.Context, namespace string) []byte {
	ginkgo.GinkgoHelper()
	key := make([]byte, 32)
	_, _ = rand.Read(key)
	gomega.Expect(c.Client.Create(ctx, &corev1.Secret{
		ObjectMeta: metav1.ObjectMeta{Namespace: namespace, Name: "app-keys"},
		Data:       map[string][]byte{"k1": key},
	})).To(gomega.Succeed())
	gomega.Expect(c.Client.Create(ctx, &notifyv1alpha1.NotificationChannel{
		ObjectMeta: metav1.ObjectMeta{Namespace: namespace, Name: "app"},
		Spec: notifyv1alpha1.NotificationChannelSpec{
			Auth:  notifyv1alpha1.AuthSpec{KeySecretRef: notifyv1alpha1.LocalSecretReference{Name: "app-keys"}},
			Drain: notifyv1alpha1.DrainSpec{GracePeriod: &metav1.Duration{Duration: time.Second}, ReconnectJitter: &metav1.Duration{Duration: 500 * time.Millisecond}},
		},
	})).To(gomega.Succeed())
	return key
}
