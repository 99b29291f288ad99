package app_test

import (
	"context"
	"net/http"

	. "github.com/onsi/ginkgo/v2"
	. "github.com/onsi/gomega"
	authenticationv1 "k8s.io/api/authentication/v1"
	corev1 "k8s.io/api/core/v1"
	rbacv1 "k8s.io/api/rbac/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/kubernetes"
)

// serviceAccountToken creates the ServiceAccount name in ns and returns a
// token of it for audiences (the API server's own when none), as a
// projected volume would hold it.
func serviceAccountToken(ctx context.Context, ns, name string, audiences ...string) string {
	GinkgoHelper()
	Expect(cluster.Client.Create(ctx, &corev1.ServiceAccount{ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: name}})).To(Succeed())
	clientset, err := kubernetes.NewForConfig(cluster.Config)
	Expect(err).NotTo(HaveOccurred())
	request, err := clientset.CoreV1().ServiceAccounts(ns).CreateToken(ctx, name, &authenticationv1.TokenRequest{
		Spec: authenticationv1.TokenRequestSpec{Audiences: audiences, ExpirationSeconds: new(int64(600))},
	}, metav1.CreateOptions{})
	Expect(err).NotTo(HaveOccurred())
	return request.Status.Token
}

var _ = Describe("publishing with a ServiceAccount token", func() {
	It("admits a backend that RBAC allows to publish to the channel, and names what the others lack", func(ctx SpecContext) {
		ns := cluster.Namespace(ctx)
		key := cluster.CreateChannelWithKey(ctx, ns)
		asStreamer(ctx, ns)
		streamer := startChannelStreamer(ns)
		u1 := streamer.connect(key, "u1")

		By("granting the backend create on notificationchannels/publish with an ordinary Role")
		Expect(cluster.Client.Create(ctx, &rbacv1.Role{
			ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: "publish-app"},
			Rules: []rbacv1.PolicyRule{{APIGroups: []string{"notify.herald.dev"}, Resources: []string{"notificationchannels/publish"},
				ResourceNames: []string{"app"}, Verbs: []string{"create"}}},
		})).To(Succeed())
		Expect(cluster.Client.Create(ctx, &rbacv1.RoleBinding{
			ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: "backend-publishes"},
			RoleRef:    rbacv1.RoleRef{APIGroup: rbacv1.GroupName, Kind: "Role", Name: "publish-app"},
			Subjects:   []rbacv1.Subject{{Kind: rbacv1.ServiceAccountKind, Name: "backend", Namespace: ns}},
		})).To(Succeed())
		backend := serviceAccountToken(ctx, ns, "backend", "notify.herald.dev")
		Expect(streamer.publishNotification(backend)).To(Equal(http.StatusAccepted))
		Expect(u1.next()).To(And(HaveKeyWithValue("notificationType", "ORDER_SHIPPED"), HaveKeyWithValue("data", map[string]any{"order": "o-17"})))

		By("refusing a ServiceAccount without the grant, naming it")
		status, message := streamer.publishNotification(serviceAccountToken(ctx, ns, "intruder", "notify.herald.dev"))
		Expect(status).To(Equal(http.StatusForbidden))
		Expect(message).To(And(ContainSubstring("system:serviceaccount:"+ns+":intruder may not publish to channel "+ns+"/app"),
			ContainSubstring("notificationchannels/publish")))

		By("refusing a token issued for the API server, which the streamer could replay")
		status, _ = streamer.publishNotification(serviceAccountToken(ctx, ns, "replayable"))
		Expect(status).To(Equal(http.StatusUnauthorized))
	})
})
