package app_test

import (
	"fmt"
	"time"

	. "github.com/onsi/ginkgo/v2"
	. "github.com/onsi/gomega"
)

const maintenanceYAML = `apiVersion: notify.herald.dev/v1alpha1
kind: SystemEvent
metadata: {name: maintenance}
spec:
  channelRef: {name: app}
  eventType: maintenance
  priority: HIGH
  audience: {all: true}
  expiresAt: %q
  data: {message: %q}
`

const betaYAML = `apiVersion: notify.herald.dev/v1alpha1
kind: SystemEvent
metadata: {name: beta}
spec:
  channelRef: {name: app}
  eventType: feature_flag
  audience: {userIds: [u1]}
  data: {flag: new-editor}
`

var _ = Describe("SystemEvents announced with kubectl", func() {
	It("reach their audience once, late joiners while in force, edits and deletions, and survive a restart", func(ctx SpecContext) {
		ns := cluster.Namespace(ctx)
		key := cluster.CreateChannelWithKey(ctx, ns)
		asStreamer(ctx, ns)
		streamer := startChannelStreamer(ns)
		u1, u2 := streamer.connect(key, "u1"), streamer.connect(key, "u2")
		expires := time.Now().Add(time.Hour).UTC().Format(time.RFC3339)

		By("applying a maintenance announcement for everyone and a flag for u1")
		kubectl(ctx, fmt.Sprintf(maintenanceYAML, expires, "Down at 02:00"), "-n", ns, "apply", "-f", "-")
		first := u1.next()
		Expect(first).To(And(HaveKeyWithValue("type", "system"), HaveKeyWithValue("eventType", "maintenance"),
			HaveKeyWithValue("data", map[string]any{"message": "Down at 02:00"}), HaveKeyWithValue("priority", "HIGH"),
			HaveKeyWithValue("action", "CREATE"), HaveKeyWithValue("name", "maintenance")))
		Expect(u2.next()).To(HaveKeyWithValue("_id", first["_id"]))
		Eventually(sevColumns(ctx, ns, "maintenance")).Should(HaveExactElements(
			"maintenance", "app", "maintenance", "Delivered", first["_id"], Not(BeEmpty()), Not(BeEmpty())))

		kubectl(ctx, betaYAML, "-n", ns, "apply", "-f", "-")
		Expect(u1.next()).To(And(HaveKeyWithValue("eventType", "feature_flag"), HaveKeyWithValue("data", map[string]any{"flag": "new-editor"})))
		streamer.publishCustom(key, "after-beta")
		Expect(u2.next()).To(HaveKeyWithValue("data", map[string]any{"marker": "after-beta"}), "u2 is outside the flag's audience")
		Expect(u1.next()).To(HaveKeyWithValue("type", "custom"))

		By("a user connecting later receives the announcement in force once, right after the connection event")
		u3 := streamer.connect(key, "u3")
		late := u3.next()
		Expect(late).To(And(HaveKeyWithValue("name", "maintenance"), HaveKeyWithValue("_id", u3.startID)),
			"without an id: of its own, the client's resume position stays where the connection event put it")
		streamer.publishCustom(key, "after-late-join")
		for _, u := range []*userStream{u1, u2, u3} {
			Expect(u.next()).To(HaveKeyWithValue("data", map[string]any{"marker": "after-late-join"}), "and nothing before it")
		}

		By("editing the announcement: its next revision")
		kubectl(ctx, fmt.Sprintf(maintenanceYAML, expires, "Moved to 03:00"), "-n", ns, "apply", "-f", "-")
		edited := u1.next()
		Expect(edited).To(And(HaveKeyWithValue("action", "UPDATE"), HaveKeyWithValue("revision", BeEquivalentTo(2)),
			HaveKeyWithValue("data", map[string]any{"message": "Moved to 03:00"})))
		Expect(u2.next()).To(HaveKeyWithValue("action", "UPDATE"))
		Eventually(sevColumns(ctx, ns, "maintenance")).Should(ContainElement(edited["_id"]))

		By("deleting the flag: u1 is told to take it down")
		kubectl(ctx, "", "-n", ns, "delete", "sev", "beta")
		Expect(u1.next()).To(And(HaveKeyWithValue("action", "DELETE"), HaveKeyWithValue("name", "beta")))

		By("restarting the streamer: nothing is announced again")
		streamer.stop()
		restarted := startChannelStreamer(ns)
		Expect(restarted.logs.String()).NotTo(ContainSubstring(`"msg":"SystemEvent announced"`))
		Expect(sevColumns(ctx, ns, "maintenance")()).To(ContainElement(edited["_id"]))
		rejoined := restarted.connect(key, "u1")
		Expect(rejoined.next()).To(And(HaveKeyWithValue("action", "UPDATE"), HaveKeyWithValue("data", map[string]any{"message": "Moved to 03:00"}),
			HaveKeyWithValue("_id", rejoined.startID)), "the announcement in force, to a user connecting to the new streamer")

		By("resuming across the restart: the announcement once, unless Last-Event-ID shows it was seen")
		behind := restarted.resume(key, "u2", first["_id"].(string))
		Expect(behind.next()).To(HaveKeyWithValue("action", "UPDATE"))
		seen := restarted.resume(key, "u3", edited["_id"].(string))
		restarted.publishCustom(key, "after-resume")
		Expect(seen.next()).To(HaveKeyWithValue("data", map[string]any{"marker": "after-resume"}), "nothing before the marker")
		Expect(behind.next()).To(HaveKeyWithValue("data", map[string]any{"marker": "after-resume"}), "and the announcement only once")
	})

	It("delivers a scheduled announcement on time, and records its expiry", func(ctx SpecContext) {
		ns := cluster.Namespace(ctx)
		key := cluster.CreateChannelWithKey(ctx, ns)
		asStreamer(ctx, ns)
		streamer := startChannelStreamer(ns)
		u1 := streamer.connect(key, "u1")

		deliverAt := time.Now().Add(3 * time.Second).Truncate(time.Second)
		kubectl(ctx, fmt.Sprintf(`apiVersion: notify.herald.dev/v1alpha1
kind: SystemEvent
metadata: {name: upgrade}
spec:
  channelRef: {name: app}
  eventType: maintenance
  audience: {all: true}
  deliverAt: %q
  expiresAt: %q
  data: {message: Upgrade starts now}
`, deliverAt.UTC().Format(time.RFC3339), deliverAt.Add(2*time.Second).UTC().Format(time.RFC3339)), "-n", ns, "apply", "-f", "-")
		Eventually(sevColumns(ctx, ns, "upgrade")).Should(ContainElement("Scheduled"))
		Expect(time.Now()).To(BeTemporally("<", deliverAt), "seen as Scheduled before its time")

		event := u1.next()
		Expect(time.Now()).To(BeTemporally(">=", deliverAt))
		Expect(event).To(HaveKeyWithValue("data", map[string]any{"message": "Upgrade starts now"}))
		Eventually(sevColumns(ctx, ns, "upgrade"), 10*time.Second).Should(ContainElement("Expired"))
		Expect(sevColumns(ctx, ns, "upgrade")()).To(ContainElement(event["_id"]))
	})
})
