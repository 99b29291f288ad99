package resources_test

import (
	"strings"

	. "github.com/onsi/ginkgo/v2"
	. "github.com/onsi/gomega"

	"github.com/herald-notify/herald/controllers/resources"
)

var _ = Describe("ConfigHash", func() {
	// base is the spec every entry changes one thing of.
	base := []string{
		"auth: {keySecretRef: {name: chat-keys}, algorithms: [HS256, HS384], audiences: [web, mobile], tokenSources: [Header, Ticket]}",
		natsBrokerYML,
		"replicas: 2",
		"cors: {allowedOrigins: ['https://a.example.com', 'https://b.example.com']}",
		"service: {annotations: {a: b}}",
		"pod: {annotations: {a: b, c: d}, nodeSelector: {zone: one, pool: two}}",
	}
	// hash is the ConfigHash of base with the top-level fields of spec
	// replaced or added.
	hash := func(spec ...string) string {
		GinkgoHelper()
		return resources.ConfigHash(inputs(withFields(base, spec...)...))
	}

	It("is 16 hex digits, in the pod template", func() {
		in := inputs(base...)
		Expect(resources.ConfigHash(in)).To(MatchRegexp(`^[0-9a-f]{16}$`))
		Expect(resources.Deployment(in).Spec.Template.Annotations).To(
			HaveKeyWithValue("notify.herald.dev/config-hash", resources.ConfigHash(in)))
	})

	It("is the same for equal inputs decoded apart, however often it is computed", func() {
		first := hash()
		for range 50 {
			Expect(hash()).To(Equal(first))
		}
	})

	DescribeTable("changes when the pods must restart to apply a change",
		func(spec string) {
			Expect(hash(spec)).NotTo(Equal(hash()))
		},
		Entry("the key Secret reference", "auth: {keySecretRef: {name: other-keys}}"),
		Entry("the history", "history: {maxEvents: 5}"),
		Entry("the history's age", "history: {maxAge: 2h}"),
		Entry("the broker", "broker: {type: NATS, nats: {url: 'nats://other:4222'}}"),
		Entry("the NATS stream replicas", "broker: {type: NATS, nats: {url: 'nats://nats.nats:4222', streamReplicas: 3}}"),
		Entry("the image", "image: registry.example.com/herald:v9"),
	)

	DescribeTable("stays when the running streamers apply the change live",
		func(spec string) {
			Expect(hash(spec)).To(Equal(hash()))
		},
		Entry("the issuer", "auth: {keySecretRef: {name: chat-keys}, issuer: https://id.example.com}"),
		Entry("the algorithms", "auth: {keySecretRef: {name: chat-keys}, algorithms: [HS512]}"),
		Entry("the audiences and token sources", "auth: {keySecretRef: {name: chat-keys}, audiences: [api], tokenSources: [Cookie]}"),
		Entry("the user-id claim, leeway, cookie, ticket TTL and publish grant",
			"auth: {keySecretRef: {name: chat-keys}, userIdClaim: email, leeway: 1m, cookieName: sid, ticketTTL: 1m, publishGrant: {claim: roles, value: publisher}}"),
		Entry("the connection limits", "connections: {maxPerPod: 5, maxPerUser: 3, userLimitPolicy: Reject}"),
		Entry("the keep-alive and send queue", "connections: {keepAliveInterval: 10s, sendQueueBytes: 8192}"),
		Entry("the CORS origins", "cors: {allowedOrigins: ['https://c.example.com']}"),
		Entry("the drain's jitter", "drain: {reconnectJitter: 10s}"),
	)

	It("leaves a changed drain grace period to the pod template, which rolls the pods by itself", func() {
		in := inputs(withFields(base, "drain: {gracePeriod: 1m}")...)
		Expect(resources.ConfigHash(in)).To(Equal(hash()))
		Expect(*resources.Deployment(in).Spec.Template.Spec.TerminationGracePeriodSeconds).NotTo(
			Equal(*resources.Deployment(inputs(base...)).Spec.Template.Spec.TerminationGracePeriodSeconds))
	})

	DescribeTable("stays when the change needs no new pods, or rolls them by itself",
		func(spec string) {
			Expect(hash(spec)).To(Equal(hash()))
		},
		Entry("replicas", "replicas: 3"),
		Entry("autoscaling", "autoscaling: {minReplicas: 2, maxReplicas: 8}\npod: {resources: {requests: {cpu: 100m}}}"),
		Entry("service annotations", "service: {annotations: {a: c, d: e}}"),
		Entry("service type and port", "service: {type: LoadBalancer, port: 8443}"),
		Entry("pod annotations", "pod: {annotations: {other: x}}"),
		Entry("pod resources", "pod: {resources: {limits: {memory: 1Gi}}}"),
		Entry("a spec.image equal to the operator's image", "image: "+defaultImage),
		Entry("the same sets in another order",
			"auth: {keySecretRef: {name: chat-keys}, algorithms: [HS384, HS256], audiences: [mobile, web], tokenSources: [Ticket, Header]}"),
		Entry("the same origins in another order", "cors: {allowedOrigins: ['https://b.example.com', 'https://a.example.com']}"),
		Entry("the same duration written otherwise", "drain: {gracePeriod: 0.5m}"),
	)

	It("changes with the operator's image when the channel has none", func() {
		in := inputs(base...)
		before := resources.ConfigHash(in)
		in.DefaultImage = "ghcr.io/herald-notify/herald:v1.2.4"
		Expect(resources.ConfigHash(in)).NotTo(Equal(before))
	})

	It("ignores the operator's image when the channel has its own", func() {
		in := inputs(withFields(base, "image: registry.example.com/herald:v9")...)
		before := resources.ConfigHash(in)
		in.DefaultImage = "ghcr.io/herald-notify/herald:v1.2.4"
		Expect(resources.ConfigHash(in)).To(Equal(before))
	})

	It("does not reorder the channel's own lists", func() {
		in := inputs(base...)
		resources.ConfigHash(in)
		Expect(in.Channel.Spec.Auth.Audiences).To(Equal([]string{"web", "mobile"}))
	})
})

// withFields is spec, one top-level field a line, with the fields of
// overrides replaced or added.
func withFields(spec []string, overrides ...string) []string {
	out := append([]string{}, spec...)
	for _, override := range overrides {
		key, _, _ := strings.Cut(override, ":")
		replaced := false
		for i, line := range out {
			if strings.HasPrefix(line, key+":") {
				out[i], replaced = override, true
			}
		}
		if !replaced {
			out = append(out, override)
		}
	}
	return out
}
