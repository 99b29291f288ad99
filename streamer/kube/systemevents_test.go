package kube_test

import (
	"context"
	"math/rand/v2"

	. "github.com/onsi/ginkgo/v2"
	. "github.com/onsi/gomega"
	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"sigs.k8s.io/controller-runtime/pkg/client"

	notifyv1alpha1 "github.com/herald-notify/herald/api/v1alpha1"
	"github.com/herald-notify/herald/internal/sevstatus"
	"github.com/herald-notify/herald/internal/testutil/sevtest"
	"github.com/herald-notify/herald/streamer/kube"
)

// systemEventAt creates a SystemEvent in a namespace of its own, at
// generation.
func systemEventAt(ctx context.Context, generation int64) *notifyv1alpha1.SystemEvent {
	GinkgoHelper()
	ns := &corev1.Namespace{ObjectMeta: metav1.ObjectMeta{GenerateName: "sev-"}}
	Expect(api.Client.Create(ctx, ns)).To(Succeed())
	sev, err := sevtest.CreateAt(ctx, api.Client, ns.Name, generation)
	Expect(err).NotTo(HaveOccurred())
	return sev
}

// statusOf reads sev's status from the API server.
func statusOf(ctx context.Context, sev *notifyv1alpha1.SystemEvent) notifyv1alpha1.SystemEventStatus {
	GinkgoHelper()
	current := &notifyv1alpha1.SystemEvent{}
	Expect(api.Client.Get(ctx, client.ObjectKeyFromObject(sev), current)).To(Succeed())
	return current.Status
}

// statusManagers are the field managers of sev's status subresource.
func statusManagers(ctx context.Context, sev *notifyv1alpha1.SystemEvent) []string {
	GinkgoHelper()
	current := &notifyv1alpha1.SystemEvent{}
	Expect(api.Client.Get(ctx, client.ObjectKeyFromObject(sev), current)).To(Succeed())
	return sevtest.StatusManagers(current)
}

var _ = Describe("SystemEventStatus, the streamers' status writer", func() {
	It("records a revision once when replicas race on it, under one field manager", func(ctx SpecContext) {
		sev := systemEventAt(ctx, 1)
		record := sevtest.Record(1, notifyv1alpha1.PhaseDelivered)
		var writes []func() error
		for range 12 {
			replica := kube.SystemEventStatus{Client: api.Client}
			writes = append(writes, func() error { return replica.WriteStatus(ctx, sev, *record.DeepCopy()) })
		}
		Expect(sevtest.RunBounded(6, writes)).To(Succeed())
		Expect(statusOf(ctx, sev)).To(And(
			HaveField("Phase", notifyv1alpha1.PhaseDelivered), HaveField("EventID", "1-1"),
			HaveField("ObservedGeneration", BeEquivalentTo(1)), HaveField("DeliveredAt", Equal(&sevtest.RecordedAt)),
			HaveField("Conditions", ConsistOf(HaveField("Type", notifyv1alpha1.ConditionReady)))))
		Expect(statusManagers(ctx, sev)).To(ConsistOf(sevstatus.StreamerManager))
	})

	It("never replaces a newer record with a lagging replica's", func(ctx SpecContext) {
		sev := systemEventAt(ctx, 2)
		ahead, behind := kube.SystemEventStatus{Client: api.Client}, kube.SystemEventStatus{Client: api.Client}
		Expect(ahead.WriteStatus(ctx, sev, sevtest.Record(2, notifyv1alpha1.PhaseDelivered))).To(Succeed())

		By("an older generation")
		Expect(behind.WriteStatus(ctx, sev, sevtest.Record(1, notifyv1alpha1.PhaseExpired))).To(Succeed())
		Expect(statusOf(ctx, sev)).To(And(HaveField("ObservedGeneration", BeEquivalentTo(2)),
			HaveField("Phase", notifyv1alpha1.PhaseDelivered), HaveField("EventID", "1-2")))

		By("an earlier phase of the same generation")
		Expect(behind.WriteStatus(ctx, sev, sevtest.Record(2, notifyv1alpha1.PhaseScheduled))).To(Succeed())
		Expect(statusOf(ctx, sev)).To(And(HaveField("Phase", notifyv1alpha1.PhaseDelivered), HaveField("EventID", "1-2")))

		By("a later phase of it does replace the record")
		Expect(behind.WriteStatus(ctx, sev, sevtest.Record(2, notifyv1alpha1.PhaseExpired))).To(Succeed())
		Expect(statusOf(ctx, sev)).To(HaveField("Phase", notifyv1alpha1.PhaseExpired))
	})

	It("ends with the newest record whatever order racing replicas write in", func(ctx SpecContext) {
		sev := systemEventAt(ctx, 3)
		var writes []func() error
		for generation := int64(1); generation <= 3; generation++ {
			for _, phase := range sevtest.Phases {
				for range 2 {
					replica := kube.SystemEventStatus{Client: api.Client}
					record := sevtest.Record(generation, phase)
					writes = append(writes, func() error { return replica.WriteStatus(ctx, sev, record) })
				}
			}
		}
		rand.Shuffle(len(writes), func(i, j int) { writes[i], writes[j] = writes[j], writes[i] })
		Expect(sevtest.RunBounded(6, writes)).To(Succeed())
		Expect(statusOf(ctx, sev)).To(Equal(sevtest.Record(3, notifyv1alpha1.PhaseExpired)))
	})

	It("removes what a newer record leaves out", func(ctx SpecContext) {
		sev := systemEventAt(ctx, 2)
		writer := kube.SystemEventStatus{Client: api.Client}
		Expect(writer.WriteStatus(ctx, sev, sevtest.Record(1, notifyv1alpha1.PhaseDelivered))).To(Succeed())
		Expect(writer.WriteStatus(ctx, sev, sevtest.Record(2, notifyv1alpha1.PhaseScheduled))).To(Succeed())
		Expect(statusOf(ctx, sev)).To(And(HaveField("Phase", notifyv1alpha1.PhaseScheduled),
			HaveField("EventID", BeEmpty()), HaveField("DeliveredAt", BeNil())))
	})

	It("applies nothing over a change it has not read", func(ctx SpecContext) {
		sev := systemEventAt(ctx, 1)
		read := sev.ResourceVersion
		Expect(kube.SystemEventStatus{Client: api.Client}.WriteStatus(ctx, sev, sevtest.Record(1, notifyv1alpha1.PhaseScheduled))).To(Succeed())
		err := sevstatus.Apply(ctx, api.Client, client.ObjectKeyFromObject(sev), read,
			sevtest.Record(1, notifyv1alpha1.PhaseDelivered), sevstatus.StreamerManager)
		Expect(apierrors.IsConflict(err)).To(BeTrue(), "the API server refuses a write whose precondition failed: %v", err)
		Expect(statusOf(ctx, sev)).To(HaveField("Phase", notifyv1alpha1.PhaseScheduled))
	})
})
