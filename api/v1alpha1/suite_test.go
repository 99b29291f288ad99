package v1alpha1_test

import (
	"context"
	"path/filepath"
	"testing"
	"time"

	. "github.com/onsi/ginkgo/v2"
	. "github.com/onsi/gomega"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"sigs.k8s.io/controller-runtime/pkg/client"

	"github.com/herald-notify/herald/internal/apiserver"

	"github.com/herald-notify/herald/internal/testutil"
)

// The suite runs against a real kube-apiserver and etcd with the generated CRDs
// installed, so what it asserts is what a cluster would do.

var (
	server *apiserver.Server
	k8s    client.Client
	// repoRoot is where config/ lives, relative to this package.
	repoRoot = filepath.Join("..", "..")
)

func TestAPI(t *testing.T) {
	testutil.RunSuite(t, "notify.herald.dev/v1alpha1 on a real API server")
}

var _ = BeforeSuite(func() {
	SetDefaultEventuallyTimeout(30 * time.Second)
	var err error
	server, err = apiserver.Start(filepath.Join(repoRoot, "config", "crd", "bases"), GinkgoT().TempDir())
	Expect(err).NotTo(HaveOccurred())
	k8s = server.Client
	DeferCleanup(func() { Expect(server.Stop()).To(Succeed()) })
})

// newNamespace creates a namespace for one spec and deletes it afterwards
// (envtest runs no namespace controller, so its objects stay; each spec uses
// its own namespace and never looks at another's).
func newNamespace(ctx context.Context) string {
	ns := &corev1.Namespace{ObjectMeta: metav1.ObjectMeta{GenerateName: "herald-test-"}}
	Expect(k8s.Create(ctx, ns)).To(Succeed())
	DeferCleanup(func(ctx SpecContext) { Expect(k8s.Delete(ctx, ns)).To(Succeed()) })
	return ns.Name
}
