package kube_test

import (
	"context"
	"errors"
	"fmt"
	"sync/atomic"
	"time"

	. "github.com/onsi/ginkgo/v2"
	. "github.com/onsi/gomega"
	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/api/meta"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"

	notifyv1alpha1 "github.com/herald-notify/herald/api/v1alpha1"
	"github.com/herald-notify/herald/internal/statusapply"
	"github.com/herald-notify/herald/streamer/kube"
)

// The reporters here stand for the pods of one NATS channel: each is told
// its broker's health by a switch the spec flips, and writes the channel's
// BrokerReachable condition on the real API server.

// brokerHealth is a pod's broker health as the spec sets it.
type brokerHealth struct{ err atomic.Pointer[error] }

func (h *brokerHealth) LastError() error {
	if p := h.err.Load(); p != nil {
		return *p
	}
	return nil
}

func (h *brokerHealth) set(err error) { h.err.Store(&err) }

const (
	reportGrace   = 100 * time.Millisecond
	reportRefresh = 300 * time.Millisecond
)

const natsURL = "nats://herald:s3cret@127.0.0.1:4222,nats://127.0.0.1:4223"

var errNoServers = errors.New("nats: no servers available for connection")

// natsChannel creates a NATS channel whose URL carries a password.
func natsChannel(ctx context.Context) types.NamespacedName {
	GinkgoHelper()
	ns := &corev1.Namespace{ObjectMeta: metav1.ObjectMeta{GenerateName: "broker-"}}
	Expect(api.Client.Create(ctx, ns)).To(Succeed())
	channel := &notifyv1alpha1.NotificationChannel{
		ObjectMeta: metav1.ObjectMeta{Namespace: ns.Name, Name: "app"},
		Spec: notifyv1alpha1.NotificationChannelSpec{
			Auth: notifyv1alpha1.AuthSpec{KeySecretRef: notifyv1alpha1.LocalSecretReference{Name: "app-keys"}},
			Broker: notifyv1alpha1.BrokerSpec{Type: notifyv1alpha1.BrokerNATS, NATS: &notifyv1alpha1.NATSBrokerSpec{
				URL: natsURL,
			}},
		},
	}
	Expect(api.Client.Create(ctx, channel)).To(Succeed())
	return types.NamespacedName{Namespace: ns.Name, Name: "app"}
}

// startReporter runs the reporter of pod, for generation, until the spec
// ends or the returned stop is called.
func startReporter(key types.NamespacedName, pod string, generation int64, health *brokerHealth) (stop func()) {
	r := kube.NewBrokerReporter(kube.BrokerReporterOptions{
		Client: api.Client, Channel: key, Pod: pod, Generation: generation,
		URL: natsURL, Health: health,
		Grace: reportGrace, Refresh: reportRefresh,
	})
	return runInBackground(r.Run)
}

// runInBackground runs run until the spec ends or the returned stop is
// called, which waits for it to return.
func runInBackground(run func(context.Context)) (stop func()) {
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() {
		defer close(done)
		run(ctx)
	}()
	stop = func() {
		cancel()
		<-done
	}
	DeferCleanup(stop)
	return stop
}

// unreachablePod starts the reporter of a pod that cannot reach NATS, and
// waits until the condition names it.
func unreachablePod(ctx context.Context, key types.NamespacedName, pod string, generation int64) (*brokerHealth, func()) {
	GinkgoHelper()
	health := &brokerHealth{}
	health.set(errNoServers)
	stop := startReporter(key, pod, generation, health)
	Eventually(brokerCondition(ctx, key)).Should(reportedBy(metav1.ConditionFalse, notifyv1alpha1.ReasonBrokerUnreachable, pod))
	return health, stop
}

// brokerCondition reads the channel's BrokerReachable condition.
func brokerCondition(ctx context.Context, key types.NamespacedName) func() *metav1.Condition {
	return func() *metav1.Condition {
		channel := &notifyv1alpha1.NotificationChannel{}
		Expect(api.Client.Get(ctx, key, channel)).To(Succeed())
		return meta.FindStatusCondition(channel.Status.Conditions, notifyv1alpha1.ConditionBrokerReachable)
	}
}

// reportedBy matches the condition at status with reason, written by pod.
func reportedBy(status metav1.ConditionStatus, reason, pod string) OmegaMatcher {
	return And(Not(BeNil()), HaveField("Status", status), HaveField("Reason", reason),
		HaveField("Message", HavePrefix("pod "+pod+" at ")))
}

var _ = Describe("BrokerReporter", func() {
	It("says False naming the pod that cannot reach NATS, which a pod that can does not hide, and True once it recovers", func(ctx SpecContext) {
		key := natsChannel(ctx)
		healthA, healthB := &brokerHealth{}, &brokerHealth{}
		startReporter(key, "app-streamer-a", 1, healthA)
		startReporter(key, "app-streamer-b", 1, healthB)
		Eventually(brokerCondition(ctx, key)).Should(And(
			HaveField("Status", metav1.ConditionTrue), HaveField("Reason", notifyv1alpha1.ReasonBrokerConnected),
			HaveField("ObservedGeneration", BeEquivalentTo(1))))

		By("pod a losing NATS")
		healthA.set(fmt.Errorf("failed to connect to NATS at %s: %w", natsURL, errNoServers))
		Eventually(brokerCondition(ctx, key)).Should(reportedBy(metav1.ConditionFalse, notifyv1alpha1.ReasonBrokerUnreachable, "app-streamer-a"))
		unreachable := brokerCondition(ctx, key)()
		Expect(unreachable.Message).To(SatisfyAll(
			ContainSubstring("cannot reach NATS at nats://127.0.0.1:4222,nats://127.0.0.1:4223 since "),
			ContainSubstring(errNoServers.Error()),
			ContainSubstring("JetStream enabled"),
			Not(ContainSubstring("s3cret"))))

		By("pod a refreshing its False, keeping the transition time, while pod b, which reaches NATS, leaves it")
		Eventually(brokerCondition(ctx, key)).Should(And(
			HaveField("Message", Not(Equal(unreachable.Message))), HaveField("LastTransitionTime", unreachable.LastTransitionTime)))
		Consistently(brokerCondition(ctx, key), 4*reportRefresh).Should(
			reportedBy(metav1.ConditionFalse, notifyv1alpha1.ReasonBrokerUnreachable, "app-streamer-a"))

		By("pod a reaching NATS again")
		healthA.set(nil)
		Eventually(brokerCondition(ctx, key)).Should(reportedBy(metav1.ConditionTrue, notifyv1alpha1.ReasonBrokerConnected, "app-streamer-a"))
	})

	It("takes a False for stale once its pod has not refreshed it for three refreshes: the pod is gone", func(ctx SpecContext) {
		key := natsChannel(ctx)
		_, stopA := unreachablePod(ctx, key, "app-streamer-a", 1)
		startReporter(key, "app-streamer-b", 1, &brokerHealth{})

		By("deleting pod a, which still could not reach NATS")
		stopA()
		gone := time.Now()
		Eventually(brokerCondition(ctx, key)).Should(reportedBy(metav1.ConditionTrue, notifyv1alpha1.ReasonBrokerConnected, "app-streamer-b"))
		Expect(time.Since(gone)).To(BeNumerically(">=", 2*reportRefresh), "a fresh False stands")
	})

	It("names the next pod that cannot reach NATS when the one named recovers", func(ctx SpecContext) {
		key := natsChannel(ctx)
		healthA, _ := unreachablePod(ctx, key, "app-streamer-a", 1)
		healthB := &brokerHealth{}
		healthB.set(errNoServers)
		startReporter(key, "app-streamer-b", 1, healthB)

		healthA.set(nil)
		Eventually(brokerCondition(ctx, key)).Should(reportedBy(metav1.ConditionFalse, notifyv1alpha1.ReasonBrokerUnreachable, "app-streamer-b"))
	})

	It("leaves the condition of a newer generation's pods to them", func(ctx SpecContext) {
		key := natsChannel(ctx)
		unreachablePod(ctx, key, "app-streamer-old", 1)

		By("a pod of generation 2 reaching NATS: an older generation's False does not stand in its way")
		startReporter(key, "app-streamer-new", 2, &brokerHealth{})
		Eventually(brokerCondition(ctx, key)).Should(And(
			reportedBy(metav1.ConditionTrue, notifyv1alpha1.ReasonBrokerConnected, "app-streamer-new"),
			HaveField("ObservedGeneration", BeEquivalentTo(2))))
		Consistently(brokerCondition(ctx, key), 4*reportRefresh).Should(HaveField("Status", metav1.ConditionTrue),
			"the old pod, still refreshing, does not overwrite it")
	})
})

var _ = Describe("RemoveBrokerReachable", func() {
	It("takes the condition the NATS streamers wrote off a channel, and what they owned with it", func(ctx SpecContext) {
		key := natsChannel(ctx)
		unreachablePod(ctx, key, "app-streamer-a", 1)
		Expect(kube.RemoveBrokerReachable(ctx, api.Client, key)).To(Succeed())
		Expect(brokerCondition(ctx, key)()).To(BeNil())
		channel := &notifyv1alpha1.NotificationChannel{}
		Expect(api.Client.Get(ctx, key, channel)).To(Succeed())
		Expect(channel.ManagedFields).NotTo(ContainElement(HaveField("Manager", statusapply.StreamerManager)))

		By("doing nothing on a channel without it")
		Expect(kube.RemoveBrokerReachable(ctx, api.Client, key)).To(Succeed())

		By("a pod of the channel's NATS days, still running, saying nothing once the channel is embedded")
		editSpec(ctx, channel, func(spec *notifyv1alpha1.NotificationChannelSpec) {
			spec.Broker = notifyv1alpha1.BrokerSpec{Type: notifyv1alpha1.BrokerEmbedded}
		})
		health := &brokerHealth{}
		health.set(errNoServers)
		startReporter(key, "app-streamer-b", 1, health)
		Consistently(brokerCondition(ctx, key), 4*reportRefresh).Should(BeNil())
	})
})
