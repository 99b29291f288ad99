package app_test

import (
	"bufio"
	"context"
	"encoding/json"
	"log/slog"
	"path/filepath"
	"strings"
	"testing"
	"time"

	. "github.com/onsi/ginkgo/v2"
	. "github.com/onsi/gomega"
	"k8s.io/client-go/tools/clientcmd"
	"sigs.k8s.io/controller-runtime/pkg/client"

	notifyv1alpha1 "github.com/herald-notify/herald/api/v1alpha1"
	"github.com/herald-notify/herald/controllers/resources"
	"github.com/herald-notify/herald/internal/testutil"
	"github.com/herald-notify/herald/internal/testutil/clustertest"
	"github.com/herald-notify/herald/streamer/app"
)

// The streamer runs here as "herald streamer" runs it: from a manifest and a
// secrets folder, or from a channel on a real kube-apiserver and etcd found
// through KUBECONFIG, with the rights the operator gives its pods.

func TestApp(t *testing.T) {
	testutil.RunSuite(t, "herald streamer")
}

var cluster *clustertest.Cluster

var _ = BeforeSuite(func() {
	// Starting and stopping a streamer against the API server takes seconds
	// when make test runs every package at once.
	SetDefaultEventuallyTimeout(20 * time.Second)
	cluster = clustertest.Start(filepath.Join("..", "..", "config", "crd", "bases"))
})

// asStreamer makes the rest of the spec reach the API server as the
// ServiceAccount of channel ns/app's streamers, with the Role and RoleBinding
// the operator gives them (built by controllers/resources, as the operator
// applies them): the streamer must do its work with those rights alone.
func asStreamer(ctx context.Context, ns string) {
	GinkgoHelper()
	channel := &notifyv1alpha1.NotificationChannel{}
	Expect(cluster.Client.Get(ctx, client.ObjectKey{Namespace: ns, Name: "app"}, channel)).To(Succeed())
	in := resources.Inputs{Channel: channel, DefaultImage: "example.com/herald:test"}
	for _, obj := range []client.Object{resources.ServiceAccount(in), resources.Role(in), resources.RoleBinding(in), resources.AuthDelegatorBinding(in)} {
		Expect(cluster.Client.Create(ctx, obj)).To(Succeed())
	}
	config, err := clientcmd.LoadFromFile(cluster.Kubeconfig)
	Expect(err).NotTo(HaveOccurred())
	for _, user := range config.AuthInfos {
		user.Impersonate = "system:serviceaccount:" + ns + ":" + resources.ObjectName("app")
		user.ImpersonateGroups = []string{"system:serviceaccounts", "system:serviceaccounts:" + ns, "system:authenticated"}
	}
	path := filepath.Join(GinkgoT().TempDir(), "kubeconfig")
	Expect(clientcmd.WriteToFile(*config, path)).To(Succeed())
	testutil.SetEnv("KUBECONFIG", path)
}

// logField is the value of key in the first JSON log line with message msg.
func logField(logs *testutil.Buffer, msg, key string) string {
	scanner := bufio.NewScanner(strings.NewReader(logs.String()))
	for scanner.Scan() {
		var line map[string]any
		if json.Unmarshal(scanner.Bytes(), &line) == nil && line["msg"] == msg {
			value, _ := line[key].(string)
			return value
		}
	}
	return ""
}

// withLogger is opts logging to logger.
func withLogger(opts app.Options, logger *slog.Logger) app.Options {
	opts.Logger = logger
	return opts
}
