package operator_test

import (
	"net"
	"path/filepath"
	"testing"
	"time"

	. "github.com/onsi/ginkgo/v2"
	. "github.com/onsi/gomega"

	"github.com/herald-notify/herald/internal/testutil"
	"github.com/herald-notify/herald/internal/testutil/clustertest"
)

// The operator runs here as "herald operator" runs it, against a real
// kube-apiserver and etcd found through KUBECONFIG.

func TestOperator(t *testing.T) {
	testutil.RunSuite(t, "herald operator on a real API server")
}

var cluster *clustertest.Cluster

var _ = BeforeSuite(func() {
	// Starting and stopping a manager against the API server takes seconds
	// when make test runs every package at once.
	SetDefaultEventuallyTimeout(20 * time.Second)
	cluster = clustertest.Start(filepath.Join("..", "..", "config", "crd", "bases"))
})

// freeAddress returns a loopback address with a port free at the time.
func freeAddress() string {
	GinkgoHelper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	Expect(err).NotTo(HaveOccurred())
	defer ln.Close()
	return ln.Addr().String()
}
