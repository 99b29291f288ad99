package v1alpha1_test

import (
	"context"
	"path/filepath"
	"strings"

	. "github.com/onsi/ginkgo/v2"
	. "github.com/onsi/gomega"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"sigs.k8s.io/controller-runtime/pkg/client"

	notifyv1alpha1 "github.com/herald-notify/herald/api/v1alpha1"
	"github.com/herald-notify/herald/internal/apiserver"
)

// kubectl runs the real kubectl against the suite's API server.
func kubectl(ctx context.Context, stdin string, args ...string) apiserver.KubectlResult {
	return server.Kubectl(ctx, stdin, args...)
}

var _ = Describe("kubectl against the API server", func() {
	var namespace string

	BeforeEach(func(ctx SpecContext) {
		namespace = newNamespace(ctx)
	})

	It("applies the samples and lists them with the printer columns", func(ctx SpecContext) {
		applied := kubectl(ctx, "", "apply", "-n", namespace, "-f", filepath.Join(repoRoot, "config", "samples")+"/")
		Expect(applied.Err).NotTo(HaveOccurred(), applied.Stderr)
		Expect(applied.Stdout).To(ContainSubstring("notificationchannel.notify.herald.dev/app-notifications created"))
		Expect(applied.Stdout).To(ContainSubstring("systemevent.notify.herald.dev/maintenance created"))

		By("recording a delivery in the status, as a streamer does")
		sev := &notifyv1alpha1.SystemEvent{}
		Expect(k8s.Get(ctx, client.ObjectKey{Namespace: namespace, Name: "maintenance"}, sev)).To(Succeed())
		now := metav1.Now()
		sev.Status = notifyv1alpha1.SystemEventStatus{
			Phase: notifyv1alpha1.PhaseDelivered, EventID: "4711", DeliveredAt: &now, ObservedGeneration: sev.Generation,
		}
		Expect(k8s.Status().Update(ctx, sev)).To(Succeed())

		By("recording a ready fleet in the channel's status, as the operator does")
		nch := &notifyv1alpha1.NotificationChannel{}
		Expect(k8s.Get(ctx, client.ObjectKey{Namespace: namespace, Name: "app-notifications"}, nch)).To(Succeed())
		nch.Status = notifyv1alpha1.NotificationChannelStatus{
			ObservedGeneration: nch.Generation, Replicas: 1, ReadyReplicas: 1,
			Endpoint: "http://app-notifications." + namespace + ".svc/api/v1/sse/notifications",
			Conditions: []metav1.Condition{{
				Type: notifyv1alpha1.ConditionReady, Status: metav1.ConditionTrue, Reason: notifyv1alpha1.ReasonAvailable,
				Message: "1 of 1 replicas ready", LastTransitionTime: now, ObservedGeneration: nch.Generation,
			}},
		}
		Expect(k8s.Status().Update(ctx, nch)).To(Succeed())

		got := kubectl(ctx, "", "get", "nch,sev", "-n", namespace)
		Expect(got.Err).NotTo(HaveOccurred(), got.Stderr)
		lines := strings.Split(got.Stdout, "\n")
		Expect(lines).To(ContainElement(MatchRegexp(`^NAME\s+READY\s+REPLICAS\s+AVAILABLE\s+BROKER\s+AGE$`)))
		Expect(lines).To(ContainElement(MatchRegexp(`^notificationchannel.notify.herald.dev/app-notifications\s+True\s+1\s+1\s+Embedded\s+\S+$`)))
		Expect(lines).To(ContainElement(MatchRegexp(`^notificationchannel.notify.herald.dev/shop-notifications\s+NATS\s+\S+$`)))
		Expect(lines).To(ContainElement(MatchRegexp(`^NAME\s+CHANNEL\s+TYPE\s+PHASE\s+EVENT-ID\s+DELIVERED\s+AGE$`)))
		Expect(lines).To(ContainElement(MatchRegexp(`^systemevent.notify.herald.dev/maintenance\s+app-notifications\s+maintenance\s+Delivered\s+4711\s+\S+\s+\S+$`)))
		Expect(lines).To(ContainElement(MatchRegexp(`^systemevent.notify.herald.dev/beta-new-editor\s+app-notifications\s+feature_flag\s+\S+$`)))

		By("finding both kinds through the herald category and the wide columns")
		wide := kubectl(ctx, "", "get", "herald", "-n", namespace, "-o", "wide")
		Expect(wide.Err).NotTo(HaveOccurred(), wide.Stderr)
		Expect(wide.Stdout).To(MatchRegexp(`(?m)^NAME\s+READY\s+REPLICAS\s+AVAILABLE\s+BROKER\s+ENDPOINT\s+REASON\s+AGE$`))
		Expect(wide.Stdout).To(MatchRegexp(`(?m)^notificationchannel.notify.herald.dev/app-notifications\s+True\s+1\s+1\s+Embedded\s+http://app-notifications\.\S+\s+Available\s+\S+$`))
		Expect(wide.Stdout).To(MatchRegexp(`(?m)^systemevent.notify.herald.dev/maintenance\s+.*\s+HIGH\s+\S+$`))
	})

	It("explains the fields from their documentation", func(ctx SpecContext) {
		Eventually(func(g Gomega) {
			explained := kubectl(ctx, "", "explain", "notificationchannel.spec")
			g.Expect(explained.Err).NotTo(HaveOccurred(), explained.Stderr)
			g.Expect(explained.Stdout).To(ContainSubstring("KIND:       NotificationChannel"))
			g.Expect(explained.Stdout).To(MatchRegexp(`auth\s+<Object> -required-`))
			g.Expect(explained.Stdout).To(ContainSubstring("Auth says how clients and publishers prove who they are."))
			g.Expect(explained.Stdout).To(ContainSubstring("More than one requires the NATS"))
		}).WithContext(ctx).Should(Succeed())

		explained := kubectl(ctx, "", "explain", "sev.spec.audience")
		Expect(explained.Err).NotTo(HaveOccurred(), explained.Stderr)
		Expect(explained.Stdout).To(ContainSubstring("Audience is who receives the event"))
		Expect(explained.Stdout).To(MatchRegexp(`userIds\s+<\[\]string>`))
	})

	It("shows the API server's CEL message naming the field on a bad apply", func(ctx SpecContext) {
		bad := strings.Replace(validChannel, "spec:\n", "spec:\n  replicas: 3\n", 1)
		applied := kubectl(ctx, bad, "apply", "-n", namespace, "-f", "-")
		Expect(applied.Err).To(HaveOccurred())
		Expect(applied.Stderr).To(ContainSubstring("spec.replicas: Invalid value"))
		Expect(applied.Stderr).To(ContainSubstring("more than one replica requires broker.type NATS"))
	})
})
