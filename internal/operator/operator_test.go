package operator_test

import (
	"context"
	"crypto/tls"
	"errors"
	"log/slog"
	"net/http"
	"time"

	"github.com/go-logr/logr"
	. "github.com/onsi/ginkgo/v2"
	. "github.com/onsi/gomega"
	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"sigs.k8s.io/controller-runtime/pkg/client"

	"github.com/herald-notify/herald/internal/operator"
	"github.com/herald-notify/herald/internal/testutil"
)

var _ = Describe("herald operator", func() {
	It("reconciles channels and serves probes, with /metrics for authorized callers only", func(ctx SpecContext) {
		ns := cluster.Namespace(ctx)
		cluster.CreateChannelWithKey(ctx, ns)
		probes, metrics := freeAddress(), freeAddress()
		logs := &testutil.Buffer{}
		runCtx, stop := context.WithCancel(context.Background())
		done := make(chan error, 1)
		go func() {
			done <- operator.Run(runCtx, operator.Options{
				HealthProbeAddr: probes, MetricsAddr: metrics, MetricsSecure: true,
				StreamerImage: "example.com/herald:test",
				Logger:        logr.FromSlogHandler(slog.NewJSONHandler(logs, nil)),
			})
		}()
		DeferCleanup(func() {
			stop()
			Eventually(done).Should(Receive(BeNil()))
		})

		deployment := &appsv1.Deployment{ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: "app-streamer"}}
		Eventually(func() error { return cluster.Client.Get(ctx, client.ObjectKeyFromObject(deployment), deployment) }).
			WithTimeout(30 * time.Second).Should(Succeed())
		Expect(deployment.Spec.Template.Spec.Containers[0].Image).To(Equal("example.com/herald:test"))

		for _, path := range []string{"/healthz", "/readyz"} {
			Eventually(func() (int, error) {
				resp, err := http.Get("http://" + probes + path)
				if err != nil {
					return 0, err
				}
				return resp.StatusCode, resp.Body.Close()
			}).Should(Equal(http.StatusOK), path)
		}

		By("refusing /metrics to an anonymous caller")
		insecure := &http.Client{Transport: &http.Transport{TLSClientConfig: &tls.Config{InsecureSkipVerify: true}}} //nolint:gosec // the operator's self-signed test certificate
		Eventually(func() (int, error) {
			resp, err := insecure.Get("https://" + metrics + "/metrics")
			if err != nil {
				return 0, err
			}
			return resp.StatusCode, resp.Body.Close()
		}).Should(BeElementOf(http.StatusUnauthorized, http.StatusForbidden))
	})

	It("takes the streamer image from its own Pod", func(ctx SpecContext) {
		ns := cluster.Namespace(ctx)
		pod := &corev1.Pod{
			ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: "herald-operator-0"},
			Spec: corev1.PodSpec{Containers: []corev1.Container{
				{Name: "proxy", Image: "example.com/proxy:1"},
				{Name: "operator", Image: "example.com/herald:v9.9.9"},
			}},
		}
		Expect(cluster.Client.Create(ctx, pod)).To(Succeed())
		testutil.SetEnv(operator.EnvPodName, pod.Name)
		testutil.SetEnv(operator.EnvPodNamespace, ns)
		image, err := operator.OwnImage(ctx, cluster.Config)
		Expect(err).NotTo(HaveOccurred())
		Expect(image).To(Equal("example.com/herald:v9.9.9"))

		By("naming the flag to set outside a pod")
		testutil.SetEnv(operator.EnvPodName, "")
		_, err = operator.OwnImage(ctx, cluster.Config)
		Expect(err).To(MatchError(ContainSubstring("--streamer-image is required")))
		Expect(errors.Is(err, operator.ErrNoImage)).To(BeTrue())
	})
})
