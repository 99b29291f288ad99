package controllers_test

import (
	"context"
	"encoding/json"
	"log/slog"
	"math/rand/v2"
	"sync"

	. "github.com/onsi/ginkgo/v2"
	. "github.com/onsi/gomega"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	notifyv1alpha1 "github.com/herald-notify/herald/api/v1alpha1"
	"github.com/herald-notify/herald/controllers"
	"github.com/herald-notify/herald/internal/sevstatus"
	"github.com/herald-notify/herald/internal/testutil/sevtest"
	"github.com/herald-notify/herald/streamer/announce"
	"github.com/herald-notify/herald/streamer/kube"
	eventlog "github.com/herald-notify/herald/streamer/log"
)

// The SystemEvent status has several writers: the operator (here the suite's
// own, and its condition writer called directly) and every streamer
// replica. These specs race them on the real API server.

// channelNotFound matches the operator's condition for a SystemEvent at
// generation whose channel does not exist.
func channelNotFound(generation int64) OmegaMatcher {
	return And(HaveField("Type", notifyv1alpha1.ConditionChannelFound), HaveField("Status", metav1.ConditionFalse),
		HaveField("Reason", notifyv1alpha1.ReasonChannelNotFound), HaveField("ObservedGeneration", generation))
}

// statusManagers are the field managers of sev's status, as it is now.
func statusManagers(ctx context.Context, sev *notifyv1alpha1.SystemEvent) []string {
	GinkgoHelper()
	return sevtest.StatusManagers(get(ctx, sev.DeepCopy()))
}

var _ = Describe("SystemEvent status writers", func() {
	It("keep the streamers' record and the operator's condition when they write at once", func(ctx SpecContext) {
		sev, err := sevtest.CreateAt(ctx, api.Client, newNamespace(ctx, nil), 2)
		Expect(err).NotTo(HaveOccurred())

		var writes []func() error
		for generation := int64(1); generation <= 2; generation++ {
			for _, phase := range sevtest.Phases {
				for range 3 {
					replica, record := kube.SystemEventStatus{Client: api.Client}, sevtest.Record(generation, phase)
					writes = append(writes, func() error { return replica.WriteStatus(ctx, sev, record) })
				}
			}
		}
		for range 8 {
			// As read before any condition: every call applies.
			unwritten := sev.DeepCopy()
			unwritten.Status = notifyv1alpha1.SystemEventStatus{}
			writes = append(writes, func() error { return controllers.ApplyChannelFound(ctx, api.Client, unwritten, false) })
		}
		rand.Shuffle(len(writes), func(i, j int) { writes[i], writes[j] = writes[j], writes[i] })
		Expect(sevtest.RunBounded(6, writes)).To(Succeed())

		want := sevtest.Record(2, notifyv1alpha1.PhaseExpired)
		Eventually(func() notifyv1alpha1.SystemEventStatus { return get(ctx, sev.DeepCopy()).Status }).Should(And(
			HaveField("Phase", want.Phase), HaveField("EventID", want.EventID), HaveField("DeliveredAt", want.DeliveredAt),
			HaveField("ObservedGeneration", want.ObservedGeneration),
			HaveField("Conditions", ConsistOf(Equal(want.Conditions[0]), channelNotFound(2))),
		))
		Expect(statusManagers(ctx, sev)).To(ConsistOf(sevstatus.StreamerManager, controllers.FieldOwner))
	})

	It("announce a revision once with three streamers, recorded once beside the operator's condition", func(ctx SpecContext) {
		ns := newNamespace(ctx, nil)
		log := eventlog.NewEmbedded(eventlog.Options{})
		first := log.Last()
		startReplicas(ns, log, 3)
		// actions are the actions of the announcements in the log, oldest
		// first, and ids their event ids.
		announced := func() (actions, ids []string) {
			events, _, err := log.ReadAfter(context.Background(), first, 100)
			Expect(err).NotTo(HaveOccurred())
			for _, e := range events {
				var body struct{ Action string }
				Expect(json.Unmarshal(e.Data, &body)).To(Succeed())
				actions, ids = append(actions, body.Action), append(ids, e.Position.String())
			}
			return actions, ids
		}
		actions := func() []string { a, _ := announced(); return a }
		status := func() notifyv1alpha1.SystemEventStatus {
			return get(ctx, &notifyv1alpha1.SystemEvent{ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: "maintenance"}}).Status
		}
		delivered := func(generation int64, id string) OmegaMatcher {
			return And(HaveField("Phase", notifyv1alpha1.PhaseDelivered), HaveField("EventID", id),
				HaveField("ObservedGeneration", generation), HaveField("DeliveredAt", Not(BeNil())),
				HaveField("Conditions", ConsistOf(
					And(HaveField("Type", notifyv1alpha1.ConditionReady), HaveField("Status", metav1.ConditionTrue),
						HaveField("Reason", notifyv1alpha1.ReasonDelivered), HaveField("ObservedGeneration", generation)),
					channelNotFound(generation))))
		}

		sev, err := sevtest.CreateAt(ctx, api.Client, ns, 1)
		Expect(err).NotTo(HaveOccurred())
		Eventually(actions).Should(Equal([]string{"CREATE"}))
		_, ids := announced()
		Eventually(status).Should(delivered(1, ids[0]))
		Consistently(actions, "500ms").Should(HaveLen(1))
		Expect(statusManagers(ctx, sev)).To(ConsistOf(sevstatus.StreamerManager, controllers.FieldOwner))

		By("editing it: the next revision, once")
		Expect(sevtest.AdvanceTo(ctx, api.Client, sev, 2)).To(Succeed())
		Eventually(actions).Should(Equal([]string{"CREATE", "UPDATE"}))
		_, ids = announced()
		Eventually(status).Should(delivered(2, ids[1]))
		Consistently(actions, "500ms").Should(HaveLen(2))

		By("deleting it: one retraction")
		Expect(api.Client.Delete(ctx, sev)).To(Succeed())
		Eventually(actions).Should(Equal([]string{"CREATE", "UPDATE", "DELETE"}))
		Consistently(actions, "500ms").Should(HaveLen(3))
	})
})

// startReplicas runs replicas streamers' announcers for channel "app" over
// log, each watching the SystemEvents of namespace and recording their
// status on the API server, until the spec ends.
func startReplicas(namespace string, log eventlog.Log, replicas int) {
	ctx, stop := context.WithCancel(context.Background())
	var running sync.WaitGroup
	for range replicas {
		announcer := announce.New(announce.Options{Channel: "app", Log: log, Status: kube.SystemEventStatus{Client: api.Client}})
		running.Go(func() { announcer.Run(ctx) })
		running.Go(func() {
			defer GinkgoRecover()
			if err := kube.WatchSystemEvents(ctx, api.Config, namespace, announcer, slog.New(slog.DiscardHandler)); err != nil && ctx.Err() == nil {
				Fail("the SystemEvent watch failed: " + err.Error())
			}
		})
	}
	DeferCleanup(func() { stop(); running.Wait() })
}
