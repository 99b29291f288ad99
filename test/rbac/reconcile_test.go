package rbac_test

import (
	"context"

	. "github.com/onsi/ginkgo/v2"
	. "github.com/onsi/gomega"
	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"
	rbacv1 "k8s.io/api/rbac/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/rest"
	ctrl "sigs.k8s.io/controller-runtime"
	"sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/controller-runtime/pkg/config"
	metricsserver "sigs.k8s.io/controller-runtime/pkg/metrics/server"

	notifyv1alpha1 "github.com/herald-notify/herald/api/v1alpha1"
	"github.com/herald-notify/herald/controllers"
	"github.com/herald-notify/herald/controllers/resources"
)

var _ = Describe("the operator's reconcile as the operator's ServiceAccount", func() {
	It("builds a channel's objects with no right on Secrets, restores and deletes its ClusterRoleBinding, within the admission policies", func(ctx SpecContext) {
		const namespace = "team-live"
		Expect(server.Client.Create(ctx, &corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: namespace}})).To(Succeed())

		cfg := rest.CopyConfig(server.Config)
		cfg.Impersonate = rest.ImpersonationConfig{UserName: operatorSA}
		mgr, err := ctrl.NewManager(cfg, ctrl.Options{
			Scheme:                 server.Scheme,
			Cache:                  controllers.CacheOptions(),
			Metrics:                metricsserver.Options{BindAddress: "0"},
			HealthProbeBindAddress: "0",
			Controller:             config.Controller{SkipNameValidation: new(true)},
		})
		Expect(err).NotTo(HaveOccurred())
		Expect(controllers.Setup(mgr, "ghcr.io/herald-notify/herald:v0.0.0-test")).To(Succeed())
		mgrCtx, stop := context.WithCancel(context.Background())
		stopped := make(chan error, 1)
		go func() { stopped <- mgr.Start(mgrCtx) }()
		DeferCleanup(func() { stop(); Expect(<-stopped).To(Succeed()) })

		channel := channelReading("live", "live-keys", "live-nats", "live-tls")
		channel.Namespace = namespace
		Expect(server.Client.Create(ctx, channel)).To(Succeed())

		key := client.ObjectKey{Namespace: namespace, Name: "live-streamer"}
		bindingKey := client.ObjectKey{Name: resources.AuthDelegatorBindingName(namespace, "live")}
		binding := &rbacv1.ClusterRoleBinding{}
		Eventually(func(g Gomega, ctx context.Context) {
			role := &rbacv1.Role{}
			g.Expect(server.Client.Get(ctx, key, role)).To(Succeed())
			g.Expect(role.Rules).To(ContainElement(And(
				HaveField("Resources", ConsistOf("secrets")),
				HaveField("ResourceNames", ConsistOf("live-keys", "live-nats", "live-tls")),
			)))
			g.Expect(server.Client.Get(ctx, key, &rbacv1.RoleBinding{})).To(Succeed())
			g.Expect(server.Client.Get(ctx, key, &appsv1.Deployment{})).To(Succeed())
			g.Expect(server.Client.Get(ctx, bindingKey, binding)).To(Succeed())
			g.Expect(binding.Subjects).To(ConsistOf(HaveField("Name", "live-streamer")))
			current := &notifyv1alpha1.NotificationChannel{}
			g.Expect(server.Client.Get(ctx, client.ObjectKeyFromObject(channel), current)).To(Succeed())
			g.Expect(current.Status.ObservedGeneration).To(Equal(current.Generation))
		}).WithContext(ctx).Should(Succeed())

		By("deleting the binding: the operator restores it")
		Expect(server.Client.Delete(ctx, binding)).To(Succeed())
		Eventually(func(g Gomega, ctx context.Context) {
			restored := &rbacv1.ClusterRoleBinding{}
			g.Expect(server.Client.Get(ctx, bindingKey, restored)).To(Succeed())
			g.Expect(restored.UID).NotTo(Equal(binding.UID))
		}).WithContext(ctx).Should(Succeed())

		By("deleting the channel: the operator's finalizer deletes the binding, then lets the channel go")
		Expect(server.Client.Delete(ctx, channel)).To(Succeed())
		Eventually(func(g Gomega, ctx context.Context) {
			g.Expect(apierrors.IsNotFound(server.Client.Get(ctx, bindingKey, &rbacv1.ClusterRoleBinding{}))).To(BeTrue(), "the binding is deleted")
			g.Expect(apierrors.IsNotFound(server.Client.Get(ctx, client.ObjectKeyFromObject(channel), channel))).To(BeTrue(), "the channel is gone")
		}).WithContext(ctx).Should(Succeed())
	})
})
