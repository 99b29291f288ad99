package controllers_test

import (
	"context"
	"time"

	. "github.com/onsi/ginkgo/v2"
	. "github.com/onsi/gomega"
	"k8s.io/client-go/kubernetes"
	"sigs.k8s.io/controller-runtime/pkg/client"

	notifyv1alpha1 "github.com/herald-notify/herald/api/v1alpha1"
	"github.com/herald-notify/herald/streamer/kube"
)

// The channel's SecretsUsable condition is written here by the streamers'
// own reporter (streamer/kube.SecretsReporter), which reads the Secrets as a
// streamer pod does; no pod runs in envtest. streamer/app's suite runs real
// streamers with the streamer's Role.

// startSecretsReport runs, until the spec ends, the report on channel's
// Secrets that its streamer pod named pod writes.
func startSecretsReport(channel *notifyv1alpha1.NotificationChannel, pod string) {
	GinkgoHelper()
	c, err := client.NewWithWatch(api.Config, client.Options{Scheme: api.Scheme})
	Expect(err).NotTo(HaveOccurred())
	clientset, err := kubernetes.NewForConfig(api.Config)
	Expect(err).NotTo(HaveOccurred())
	reporter := kube.NewSecretsReporter(kube.SecretsReporterOptions{
		Client: c, Clientset: clientset, Channel: channel.DeepCopy(), Pod: pod, Refresh: 2 * time.Second,
	})
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() {
		defer close(done)
		reporter.Run(ctx)
	}()
	DeferCleanup(func() {
		cancel()
		Eventually(done).Should(BeClosed())
	})
}
