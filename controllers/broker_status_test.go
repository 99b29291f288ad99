package controllers_test

import (
	"context"
	"fmt"
	"sync"
	"time"

	. "github.com/onsi/ginkgo/v2"
	. "github.com/onsi/gomega"
	"k8s.io/apimachinery/pkg/api/meta"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"sigs.k8s.io/controller-runtime/pkg/client"

	notifyv1alpha1 "github.com/herald-notify/herald/api/v1alpha1"
	"github.com/herald-notify/herald/controllers"
	"github.com/herald-notify/herald/internal/statusapply"
)

// The streamers' BrokerReachable condition is written here as the
// streamers write it (streamer/kube.BrokerReporter: server-side apply of
// that one condition as herald-streamer); streamer/app's suite runs real
// streamers against a real NATS.

// applyBrokerCondition applies BrokerReachable as the streamers do.
func applyBrokerCondition(ctx context.Context, channel *notifyv1alpha1.NotificationChannel, status metav1.ConditionStatus, reason, message string) error {
	target := &notifyv1alpha1.NotificationChannel{}
	target.Namespace, target.Name = channel.Namespace, channel.Name
	return statusapply.Apply(ctx, api.Client, target, "NotificationChannel", "", map[string]any{"conditions": []metav1.Condition{{
		Type: notifyv1alpha1.ConditionBrokerReachable, Status: status, Reason: reason, Message: message,
		ObservedGeneration: channel.Generation, LastTransitionTime: metav1.Now(),
	}}}, statusapply.StreamerManager)
}

// readyNATSChannel creates a one-replica NATS channel and reports its pod
// ready.
func readyNATSChannel(ctx context.Context, ns string) *notifyv1alpha1.NotificationChannel {
	GinkgoHelper()
	createKeySecret(ctx, ns, map[string][]byte{"k1": hmacKey()})
	channel := createChannel(ctx, ns, func(spec *notifyv1alpha1.NotificationChannelSpec) {
		spec.Broker = notifyv1alpha1.BrokerSpec{Type: notifyv1alpha1.BrokerNATS, NATS: &notifyv1alpha1.NATSBrokerSpec{URL: "nats://nats.nats:4222"}}
	})
	settled(ctx, channel)
	setDeploymentStatus(ctx, ns, 1)
	Eventually(channelStatus(ctx, channel)).Should(And(readyFor(channel.Generation),
		haveConditionFor(notifyv1alpha1.ConditionDegraded, metav1.ConditionFalse, notifyv1alpha1.ReasonAsExpected, channel.Generation)),
		"ready, and its streamer's report on the Secrets folded in")
	return channel
}

// owners are the managers of the channel's status, by operation.
func statusOwners(ctx context.Context, channel *notifyv1alpha1.NotificationChannel) func() []string {
	return func() []string {
		var owners []string
		for _, m := range get(ctx, channel).ManagedFields {
			if m.Subresource == "status" {
				owners = append(owners, m.Manager+"/"+string(m.Operation))
			}
		}
		return owners
	}
}

var _ = Describe("a NATS channel's broker, as its streamers report it", func() {
	const unreachable = "pod app-streamer-7d9f-x2 at 2026-12-07T07:44:13.000Z: cannot reach NATS at nats://nats.nats:4222 since 2026-12-07T07:44:08.000Z: nats: no servers available for connection; check spec.broker.nats.url"

	It("is folded into Degraded and Ready with the streamers' reason and message, with Events, and kept across the operator's writes", func(ctx SpecContext) {
		ns := newNamespace(ctx, nil)
		channel := readyNATSChannel(ctx, ns)

		By("a streamer reporting that it cannot reach NATS")
		Expect(applyBrokerCondition(ctx, channel, metav1.ConditionFalse, notifyv1alpha1.ReasonBrokerUnreachable, unreachable)).To(Succeed())
		Eventually(channelStatus(ctx, channel)).Should(And(
			haveConditionFor(notifyv1alpha1.ConditionDegraded, metav1.ConditionTrue, notifyv1alpha1.ReasonBrokerUnreachable, channel.Generation),
			haveConditionFor(notifyv1alpha1.ConditionReady, metav1.ConditionFalse, notifyv1alpha1.ReasonBrokerUnreachable, channel.Generation),
		))
		Expect(condition(get(ctx, channel), notifyv1alpha1.ConditionDegraded).Message).To(Equal(unreachable))
		Eventually(eventReasons(ctx, channel)).Should(ContainElement(notifyv1alpha1.ReasonBrokerUnreachable))

		By("the operator writing its status for a new generation")
		channel = editChannel(ctx, channel, func(c *notifyv1alpha1.NotificationChannel) { c.Spec.Connections.MaxPerUser = 3 })
		Eventually(channelStatus(ctx, channel)).Should(
			haveConditionFor(notifyv1alpha1.ConditionDegraded, metav1.ConditionTrue, notifyv1alpha1.ReasonBrokerUnreachable, channel.Generation))
		Expect(condition(get(ctx, channel), notifyv1alpha1.ConditionBrokerReachable)).To(And(
			HaveField("Status", metav1.ConditionFalse), HaveField("Message", unreachable)), "the streamers' condition survives")
		Expect(statusOwners(ctx, channel)()).To(ConsistOf(controllers.FieldOwner+"/Apply", statusapply.StreamerManager+"/Apply", statusapply.StreamerSecretsManager+"/Apply"))

		By("the streamer reaching NATS again")
		Expect(applyBrokerCondition(ctx, channel, metav1.ConditionTrue, notifyv1alpha1.ReasonBrokerConnected, "pod app-streamer-7d9f-x2 at 2026-12-07T07:45:00.000Z: connected to NATS at nats://nats.nats:4222")).To(Succeed())
		Eventually(channelStatus(ctx, channel)).Should(And(
			haveConditionFor(notifyv1alpha1.ConditionDegraded, metav1.ConditionFalse, notifyv1alpha1.ReasonAsExpected, channel.Generation),
			readyFor(channel.Generation),
		))
		Eventually(eventReasons(ctx, channel)).Should(ContainElement("Recovered"))
		Expect(condition(get(ctx, channel), notifyv1alpha1.ConditionBrokerReachable).Status).To(Equal(metav1.ConditionTrue))
	})

	It("loses neither writer's conditions when the streamers and the operator write at once", func(ctx SpecContext) {
		ns := newNamespace(ctx, nil)
		channel := readyNATSChannel(ctx, ns)

		const rounds = 10
		reported := channel.DeepCopy() // the loop below moves channel on
		var wg sync.WaitGroup
		wg.Go(func() {
			defer GinkgoRecover()
			for i := range rounds {
				status, reason := metav1.ConditionFalse, notifyv1alpha1.ReasonBrokerUnreachable
				if i%2 == 1 {
					status, reason = metav1.ConditionTrue, notifyv1alpha1.ReasonBrokerConnected
				}
				Expect(applyBrokerCondition(ctx, reported, status, reason, fmt.Sprintf("pod app-streamer-a at 2026-12-07T07:44:%02d.000Z: round %d", i, i))).To(Succeed())
			}
		})
		for i := range rounds {
			// A merge patch of the spec: an update would conflict with the
			// status writes more often than editChannel retries.
			Eventually(func() error {
				current := get(ctx, channel)
				patch := client.MergeFrom(current.DeepCopy())
				current.Spec.Connections.MaxPerUser = int32(2 + i)
				return api.Client.Patch(ctx, current, patch)
			}).Should(Succeed())
		}
		wg.Wait()
		channel = get(ctx, channel)

		setDeploymentStatus(ctx, ns, 1)
		Eventually(channelStatus(ctx, channel)).Should(readyFor(channel.Generation), "the operator's conditions are there, for the last generation")
		Expect(condition(get(ctx, channel), notifyv1alpha1.ConditionBrokerReachable)).To(And(HaveField("Status", metav1.ConditionTrue), HaveField("Message", HaveSuffix(fmt.Sprintf("round %d", rounds-1)))),
			"the streamers' last write is there")
	})

	It("removes, after an upgrade, a condition the operator's former merge-patch writes left and it no longer wants", func(ctx SpecContext) {
		ns := newNamespace(ctx, nil)
		channel := readyNATSChannel(ctx, ns)

		By("writing the status as the operator did before (a merge patch, as the manager named after its binary)")
		channel = get(ctx, channel)
		former := channel.DeepCopy()
		meta.SetStatusCondition(&channel.Status.Conditions, metav1.Condition{
			Type: notifyv1alpha1.ConditionStalled, Status: metav1.ConditionTrue, Reason: notifyv1alpha1.ReasonInvalidSpec,
			Message: "no streamer image", ObservedGeneration: channel.Generation,
		})
		channel.Status.Endpoint = "http://former.example/api/v1/sse/notifications"
		Expect(api.Client.Status().Patch(ctx, channel, client.MergeFrom(former), client.FieldOwner("herald"))).To(Succeed())
		Expect(statusOwners(ctx, channel)()).To(ContainElement("herald/Update"))

		By("the upgraded operator writing the status of a new generation")
		channel = editChannel(ctx, channel, func(c *notifyv1alpha1.NotificationChannel) { c.Spec.Connections.MaxPerUser = 4 })
		Eventually(channelStatus(ctx, channel)).Should(HaveField("ObservedGeneration", channel.Generation))
		Eventually(func() *metav1.Condition { return condition(get(ctx, channel), notifyv1alpha1.ConditionStalled) }).Should(BeNil())
		status := get(ctx, channel).Status
		Expect(status.Endpoint).To(Equal("http://app-streamer." + ns + ".svc/api/v1/sse/notifications"))
		Expect(statusOwners(ctx, channel)()).To(ConsistOf(controllers.FieldOwner+"/Apply", statusapply.StreamerSecretsManager+"/Apply"), "no former writer owns a status field any more")
	})

	It("reconciles on a new report, and writes nothing when the status it owns stays the same", func(ctx SpecContext) {
		ns := newNamespace(ctx, nil)
		channel := readyNATSChannel(ctx, ns)
		Expect(applyBrokerCondition(ctx, channel, metav1.ConditionFalse, notifyv1alpha1.ReasonBrokerUnreachable, unreachable)).To(Succeed())
		Eventually(channelStatus(ctx, channel)).Should(
			haveConditionFor(notifyv1alpha1.ConditionDegraded, metav1.ConditionTrue, notifyv1alpha1.ReasonBrokerUnreachable, channel.Generation))
		settled(ctx, channel)
		before := len(writes.in(ns))
		key := client.ObjectKeyFromObject(channel)
		reconciles := reconcil.count(key)

		By("a streamer writing the same report at another transition time")
		target := &notifyv1alpha1.NotificationChannel{}
		target.Namespace, target.Name = channel.Namespace, channel.Name
		Expect(statusapply.Apply(ctx, api.Client, target, "NotificationChannel", "", map[string]any{"conditions": []metav1.Condition{{
			Type: notifyv1alpha1.ConditionBrokerReachable, Status: metav1.ConditionFalse, Reason: notifyv1alpha1.ReasonBrokerUnreachable,
			Message: unreachable, ObservedGeneration: channel.Generation, LastTransitionTime: metav1.NewTime(time.Now().Add(-time.Hour)),
		}}}, statusapply.StreamerManager)).To(Succeed())
		Eventually(func() int { return reconcil.count(key) }).Should(BeNumerically(">", reconciles), "a change of the report is reconciled")
		Consistently(func() int { return len(writes.in(ns)) }, time.Second).Should(Equal(before), "and writes nothing")
	})
})
