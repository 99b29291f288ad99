package resources_test

import (
	. "github.com/onsi/ginkgo/v2"
	. "github.com/onsi/gomega"
	rbacv1 "k8s.io/api/rbac/v1"

	"github.com/herald-notify/herald/controllers/resources"
)

var _ = Describe("ServiceAccount", func() {
	It("mounts its token: the streamer watches the API", func() {
		sa := resources.ServiceAccount(inputs())
		Expect(sa.APIVersion).To(Equal("v1"))
		Expect(sa.Kind).To(Equal("ServiceAccount"))
		Expect(sa.AutomountServiceAccountToken).To(HaveValue(BeTrue()))
	})
})

var _ = Describe("Role", func() {
	// rule finds the rule for resource in group.
	rule := func(role *rbacv1.Role, group, resource string) rbacv1.PolicyRule {
		GinkgoHelper()
		for _, r := range role.Rules {
			if r.APIGroups[0] == group && r.Resources[0] == resource {
				return r
			}
		}
		Fail("no rule for " + resource + " in group " + group)
		return rbacv1.PolicyRule{}
	}

	It("grants the least the streamer needs", func() {
		role := resources.Role(inputs())
		Expect(role.APIVersion).To(Equal("rbac.authorization.k8s.io/v1"))
		Expect(role.Kind).To(Equal("Role"))
		Expect(role.Rules).To(Equal([]rbacv1.PolicyRule{
			{APIGroups: []string{"notify.herald.dev"}, Resources: []string{"notificationchannels"}, ResourceNames: []string{channelName}, Verbs: []string{"get", "list", "watch"}},
			{APIGroups: []string{""}, Resources: []string{"secrets"}, ResourceNames: []string{"chat-keys"}, Verbs: []string{"get", "list", "watch"}},
			{APIGroups: []string{"notify.herald.dev"}, Resources: []string{"systemevents"}, Verbs: []string{"get", "list", "watch"}},
			{APIGroups: []string{"notify.herald.dev"}, Resources: []string{"systemevents/status"}, Verbs: []string{"update", "patch"}},
			{APIGroups: []string{""}, Resources: []string{"events"}, Verbs: []string{"create", "patch"}},
			{APIGroups: []string{"events.k8s.io"}, Resources: []string{"events"}, Verbs: []string{"create", "patch"}},
			{APIGroups: []string{"notify.herald.dev"}, Resources: []string{"notificationchannels/status"}, ResourceNames: []string{channelName}, Verbs: []string{"patch"}},
		}))
	})

	DescribeTable("lets the streamers patch their own channel's status alone, to report its Secrets and its broker",
		func(yml ...string) {
			Expect(rule(resources.Role(inputs(yml...)), "notify.herald.dev", "notificationchannels/status")).To(Equal(rbacv1.PolicyRule{
				APIGroups: []string{"notify.herald.dev"}, Resources: []string{"notificationchannels/status"},
				ResourceNames: []string{channelName}, Verbs: []string{"patch"},
			}))
		},
		Entry("on the embedded log"),
		Entry("on NATS", natsBrokerYML),
	)

	It("never grants a wildcard, nor more than one group or resource per rule", func() {
		role := resources.Role(inputs(natsBrokerYML))
		for _, r := range role.Rules {
			Expect(r.APIGroups).To(HaveLen(1))
			Expect(r.Resources).To(HaveLen(1))
			Expect(r.Verbs).NotTo(ContainElement("*"))
			Expect(r.Resources).NotTo(ContainElement("*"))
			Expect(r.APIGroups).NotTo(ContainElement("*"))
			Expect(r.NonResourceURLs).To(BeEmpty())
		}
	})

	DescribeTable("names the Secrets the channel refers to",
		func(broker string, want []string) {
			in := inputs()
			if broker != "" {
				in = inputs(broker)
			}
			Expect(rule(resources.Role(in), "", "secrets").ResourceNames).To(Equal(want))
		},
		Entry("the key Secret", "", []string{"chat-keys"}),
		Entry("NATS without credentials", natsBrokerYML, []string{"chat-keys"}),
		Entry("and the NATS credentials",
			"broker: {type: NATS, nats: {url: 'nats://n:4222', credentialsSecretRef: {name: chat-nats}}}",
			[]string{"chat-keys", "chat-nats"}),
		Entry("once when both are the same Secret",
			"broker: {type: NATS, nats: {url: 'nats://n:4222', credentialsSecretRef: {name: chat-keys}}}",
			[]string{"chat-keys"}),
		Entry("and the TLS Secret", "http: {tls: {secretRef: {name: chat-tls}}}", []string{"chat-keys", "chat-tls"}),
		Entry("once when the TLS Secret is the key Secret", "http: {tls: {secretRef: {name: chat-keys}}}", []string{"chat-keys"}),
	)

	It("does not share its slices between objects", func() {
		in := inputs()
		resources.Role(in).Rules[0].Verbs[0] = "delete"
		Expect(resources.Role(in).Rules[0].Verbs[0]).To(Equal("get"))
	})
})

var _ = Describe("RoleBinding", func() {
	It("binds the Role to the ServiceAccount", func() {
		in := inputs()
		binding := resources.RoleBinding(in)
		Expect(binding.APIVersion).To(Equal("rbac.authorization.k8s.io/v1"))
		Expect(binding.Kind).To(Equal("RoleBinding"))
		Expect(binding.RoleRef).To(Equal(rbacv1.RoleRef{APIGroup: "rbac.authorization.k8s.io", Kind: "Role", Name: resources.Role(in).Name}))
		Expect(binding.Subjects).To(Equal([]rbacv1.Subject{
			{Kind: "ServiceAccount", Name: resources.ServiceAccount(in).Name, Namespace: namespace},
		}))
	})
})

var _ = Describe("AuthDelegatorBinding", func() {
	It("lets the streamers' ServiceAccount review publishers' tokens, named per channel", func() {
		binding := resources.AuthDelegatorBinding(inputs())
		Expect(binding.Name).To(Equal("herald:" + namespace + ":" + objectName + ":auth-delegator"))
		Expect(binding.Namespace).To(BeEmpty())
		Expect(binding.RoleRef).To(Equal(rbacv1.RoleRef{APIGroup: "rbac.authorization.k8s.io", Kind: "ClusterRole", Name: "system:auth-delegator"}))
		Expect(binding.Subjects).To(Equal([]rbacv1.Subject{{Kind: "ServiceAccount", Name: objectName, Namespace: namespace}}))
		Expect(binding.Labels).To(And(
			HaveKeyWithValue(resources.LabelManagedBy, resources.ManagedBy),
			HaveKeyWithValue(resources.LabelChannel, channelName),
			HaveKeyWithValue(resources.LabelChannelNamespace, namespace),
		))
		Expect(resources.Labels(channelName)).NotTo(HaveKey(resources.LabelChannelNamespace), "the builder does not alias the shared labels")
	})
})
