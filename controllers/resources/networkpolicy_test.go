package resources_test

import (
	. "github.com/onsi/ginkgo/v2"
	. "github.com/onsi/gomega"
	corev1 "k8s.io/api/core/v1"
	networkingv1 "k8s.io/api/networking/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/util/intstr"

	notifyv1alpha1 "github.com/herald-notify/herald/api/v1alpha1"
	"github.com/herald-notify/herald/controllers/resources"
)

var _ = Describe("NetworkPolicy", func() {
	// rule is the ingress rule of the policy's only port, with its sources.
	rule := func(port int32, from ...networkingv1.NetworkPolicyPeer) networkingv1.NetworkPolicyIngressRule {
		tcp := corev1.ProtocolTCP
		p := intstr.FromInt32(port)
		return networkingv1.NetworkPolicyIngressRule{Ports: []networkingv1.NetworkPolicyPort{{Protocol: &tcp, Port: &p}}, From: from}
	}
	everyNamespace := networkingv1.NetworkPolicyPeer{NamespaceSelector: &metav1.LabelSelector{}}
	namespaceNamed := func(name string) *metav1.LabelSelector {
		return &metav1.LabelSelector{MatchLabels: map[string]string{"kubernetes.io/metadata.name": name}}
	}

	It("fences a minimal channel's pods: the serving port open to all, the metrics port to every namespace", func() {
		policy, wanted := resources.NetworkPolicy(inputs())
		Expect(wanted).To(BeTrue())
		Expect(policy.APIVersion).To(Equal("networking.k8s.io/v1"))
		Expect(policy.Kind).To(Equal("NetworkPolicy"))
		Expect(policy.Name).To(Equal(objectName))
		Expect(policy.Namespace).To(Equal(namespace))
		Expect(policy.Labels).To(Equal(resources.Labels(channelName)))
		Expect(policy.Spec.PodSelector).To(Equal(metav1.LabelSelector{MatchLabels: resources.SelectorLabels(channelName)}))
		Expect(policy.Spec.PolicyTypes).To(Equal([]networkingv1.PolicyType{networkingv1.PolicyTypeIngress}), "egress is left alone")
		Expect(policy.Spec.Ingress).To(Equal([]networkingv1.NetworkPolicyIngressRule{
			rule(8080),
			rule(9090, everyNamespace),
		}))
	})

	It("fences the ports the streamer container serves on", func() {
		policy, _ := resources.NetworkPolicy(inputs())
		ports := resources.Deployment(inputs()).Spec.Template.Spec.Containers[0].Ports
		Expect(ports).To(HaveLen(len(policy.Spec.Ingress)))
		for i, port := range ports {
			Expect(policy.Spec.Ingress[i].Ports[0].Port.IntVal).To(Equal(port.ContainerPort), port.Name)
		}
	})

	DescribeTable("takes each port's sources from the spec",
		func(spec string, wanted bool, ingress []networkingv1.NetworkPolicyIngressRule) {
			policy, ok := resources.NetworkPolicy(inputs(spec))
			Expect(ok).To(Equal(wanted))
			if !wanted {
				Expect(policy).To(BeNil())
				return
			}
			Expect(policy.Spec.Ingress).To(Equal(ingress))
		},
		Entry("none when turned off", "networkPolicy: {enabled: false}", false, nil),
		Entry("the defaults when turned on explicitly", "networkPolicy: {enabled: true}", true,
			[]networkingv1.NetworkPolicyIngressRule{rule(8080), rule(9090, everyNamespace)}),
		Entry("the serving port narrowed to an ingress controller's pods",
			"networkPolicy: {httpFrom: [{namespaceSelector: {matchLabels: {kubernetes.io/metadata.name: ingress-nginx}}, podSelector: {matchLabels: {app: ingress}}}]}", true,
			[]networkingv1.NetworkPolicyIngressRule{
				rule(8080, networkingv1.NetworkPolicyPeer{
					NamespaceSelector: namespaceNamed("ingress-nginx"),
					PodSelector:       &metav1.LabelSelector{MatchLabels: map[string]string{"app": "ingress"}},
				}),
				rule(9090, everyNamespace),
			}),
		Entry("the metrics port narrowed to one namespace",
			"networkPolicy: {metricsFrom: [{namespaceSelector: {matchLabels: {kubernetes.io/metadata.name: monitoring}}}]}", true,
			[]networkingv1.NetworkPolicyIngressRule{rule(8080), rule(9090, networkingv1.NetworkPolicyPeer{NamespaceSelector: namespaceNamed("monitoring")})}),
		Entry("IP ranges with exceptions, and pods of the channel's namespace",
			"networkPolicy: {httpFrom: [{ipBlock: {cidr: 10.0.0.0/8, except: [10.1.0.0/16]}}, {podSelector: {matchExpressions: [{key: role, operator: In, values: [backend]}]}}]}", true,
			[]networkingv1.NetworkPolicyIngressRule{
				rule(8080,
					networkingv1.NetworkPolicyPeer{IPBlock: &networkingv1.IPBlock{CIDR: "10.0.0.0/8", Except: []string{"10.1.0.0/16"}}},
					networkingv1.NetworkPolicyPeer{PodSelector: &metav1.LabelSelector{MatchExpressions: []metav1.LabelSelectorRequirement{
						{Key: "role", Operator: metav1.LabelSelectorOpIn, Values: []string{"backend"}},
					}}},
				),
				rule(9090, everyNamespace),
			}),
	)

	It("applies the API defaults to a hand-built channel", func() {
		policy, wanted := resources.NetworkPolicy(resources.Inputs{Channel: channel("chat", "apps", "herald:v1")})
		Expect(wanted).To(BeTrue())
		Expect(policy.Spec.Ingress).To(Equal([]networkingv1.NetworkPolicyIngressRule{rule(8080), rule(9090, everyNamespace)}))
	})

	It("does not share its selectors and ranges with the channel", func() {
		in := inputs("networkPolicy: {httpFrom: [{podSelector: {matchLabels: {app: web}}}, {ipBlock: {cidr: 10.0.0.0/8, except: [10.1.0.0/16]}}]}")
		policy, _ := resources.NetworkPolicy(in)
		policy.Spec.Ingress[0].From[0].PodSelector.MatchLabels["app"] = "changed"
		policy.Spec.Ingress[0].From[1].IPBlock.Except[0] = "changed"
		policy.Spec.Ingress[1].From[0].NamespaceSelector.MatchLabels = map[string]string{"changed": "yes"}
		Expect(in.Channel.Spec.NetworkPolicy.HTTPFrom[0].PodSelector.MatchLabels).To(HaveKeyWithValue("app", "web"))
		Expect(in.Channel.Spec.NetworkPolicy.HTTPFrom[1].IPBlock.Except).To(Equal([]string{"10.1.0.0/16"}))
		Expect(notifyv1alpha1.DefaultNetworkPolicyMetricsFrom[0].NamespaceSelector.MatchLabels).To(BeEmpty())
	})

	DescribeTable("Validate names a selector the NetworkPolicy would refuse",
		func(networkPolicy, problem string) {
			err := inputs("networkPolicy: " + networkPolicy).Validate()
			Expect(err).To(MatchError(ContainSubstring(problem)))
		},
		Entry("a label key with a space", "{httpFrom: [{podSelector: {matchLabels: {'my app': web}}}]}",
			"spec.networkPolicy.httpFrom[0].podSelector.matchLabels: Invalid value: \"my app\""),
		Entry("an unknown operator", "{metricsFrom: [{namespaceSelector: {matchExpressions: [{key: team, operator: Equals, values: [a]}]}}]}",
			"spec.networkPolicy.metricsFrom[0].namespaceSelector.matchExpressions[0].operator: Invalid value: \"Equals\""),
		Entry("In without values", "{httpFrom: [{podSelector: {}}, {namespaceSelector: {matchExpressions: [{key: team, operator: In}]}}]}",
			"spec.networkPolicy.httpFrom[1].namespaceSelector.matchExpressions[0].values: Required value"),
	)
})
