package controllers_test

import (
	. "github.com/onsi/ginkgo/v2"
	. "github.com/onsi/gomega"
	. "github.com/onsi/gomega/gstruct"
	corev1 "k8s.io/api/core/v1"
	networkingv1 "k8s.io/api/networking/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/labels"
	"k8s.io/apimachinery/pkg/util/intstr"
	"sigs.k8s.io/yaml"

	notifyv1alpha1 "github.com/herald-notify/herald/api/v1alpha1"
	"github.com/herald-notify/herald/controllers/resources"
)

var _ = Describe("the channel's NetworkPolicy", func() {
	policyIn := func(namespace string) *networkingv1.NetworkPolicy {
		return &networkingv1.NetworkPolicy{ObjectMeta: metav1.ObjectMeta{Namespace: namespace, Name: objectName}}
	}
	// port matches an ingress rule of the one TCP port.
	port := func(number int) OmegaMatcher {
		return HaveField("Ports", ConsistOf(And(
			HaveField("Protocol", PointTo(Equal(corev1.ProtocolTCP))),
			HaveField("Port", PointTo(Equal(intstr.FromInt(number)))),
		)))
	}
	monitoring := []notifyv1alpha1.NetworkPolicyPeer{{NamespaceSelector: &metav1.LabelSelector{
		MatchLabels: map[string]string{"kubernetes.io/metadata.name": "monitoring"},
	}}}

	It("is applied by default, owned by the channel, and fences the pods on their two ports", func(ctx SpecContext) {
		ns := newNamespace(ctx, nil)
		createKeySecret(ctx, ns, map[string][]byte{"k1": hmacKey()})
		channel := createChannel(ctx, ns, nil)

		policy := policyIn(ns)
		Eventually(exists(ctx, policy)).Should(BeTrue())
		Expect(policy.OwnerReferences).To(ConsistOf(MatchFields(IgnoreExtras, Fields{
			"Kind": Equal("NotificationChannel"), "UID": Equal(channel.UID), "Controller": PointTo(BeTrue()),
		})))
		Expect(policy.Labels).To(HaveKeyWithValue(resources.LabelManagedBy, resources.ManagedBy))
		Expect(policy.ManagedFields).To(ContainElement(HaveField("Manager", "herald-operator")))
		Expect(policy.Spec.PolicyTypes).To(ConsistOf(networkingv1.PolicyTypeIngress), "egress is left to the cluster")

		By("selecting exactly the pods of the channel's Deployment")
		Eventually(deploymentOf(ctx, ns)).ShouldNot(BeNil())
		d := deploymentOf(ctx, ns)()
		Expect(policy.Spec.PodSelector).To(Equal(*d.Spec.Selector))
		selector, err := metav1.LabelSelectorAsSelector(&policy.Spec.PodSelector)
		Expect(err).NotTo(HaveOccurred())
		Expect(selector.Matches(labels.Set(d.Spec.Template.Labels))).To(BeTrue())

		By("opening the serving port to every source and the metrics port to every namespace")
		Expect(policy.Spec.Ingress).To(HaveExactElements(
			And(port(8080), HaveField("From", BeEmpty())),
			And(port(9090), HaveField("From", ConsistOf(networkingv1.NetworkPolicyPeer{NamespaceSelector: &metav1.LabelSelector{}}))),
		))
		Expect(d.Spec.Template.Spec.Containers[0].Ports).To(ConsistOf(
			HaveField("ContainerPort", BeEquivalentTo(8080)), HaveField("ContainerPort", BeEquivalentTo(9090))),
			"the policy's ports are the ones the streamer serves on")
	})

	It("follows the spec, is put back after a hand edit, goes when turned off and comes back when turned on", func(ctx SpecContext) {
		ns := newNamespace(ctx, nil)
		createKeySecret(ctx, ns, map[string][]byte{"k1": hmacKey()})
		channel := createChannel(ctx, ns, nil)
		policy := policyIn(ns)
		Eventually(exists(ctx, policy)).Should(BeTrue())

		By("narrowing the metrics port to the monitoring namespace")
		channel = editChannel(ctx, channel, func(c *notifyv1alpha1.NotificationChannel) {
			c.Spec.NetworkPolicy.MetricsFrom = monitoring
		})
		metricsFromMonitoring := HaveField("Spec.Ingress", HaveExactElements(
			HaveField("From", BeEmpty()),
			HaveField("From", ConsistOf(HaveField("NamespaceSelector", Equal(monitoring[0].NamespaceSelector)))),
		))
		Eventually(func() *networkingv1.NetworkPolicy { return get(ctx, policyIn(ns)) }).Should(metricsFromMonitoring)
		settled(ctx, channel)

		By("opening the serving port to every pod by hand")
		edited := get(ctx, policyIn(ns))
		edited.Spec.Ingress = append(edited.Spec.Ingress, networkingv1.NetworkPolicyIngressRule{
			From: []networkingv1.NetworkPolicyPeer{{NamespaceSelector: &metav1.LabelSelector{}}},
		})
		Expect(api.Client.Update(ctx, edited)).To(Succeed())
		Eventually(func() *networkingv1.NetworkPolicy { return get(ctx, policyIn(ns)) }).Should(And(
			HaveField("Spec.Ingress", HaveLen(2)), metricsFromMonitoring))

		By("turning it off")
		channel = editChannel(ctx, channel, func(c *notifyv1alpha1.NotificationChannel) {
			c.Spec.NetworkPolicy.Enabled = new(false)
		})
		Eventually(exists(ctx, policyIn(ns))).Should(BeFalse())
		settled(ctx, channel)
		Eventually(eventReasons(ctx, channel)).Should(ContainElement("Applied"))

		By("turning it on again")
		editChannel(ctx, channel, func(c *notifyv1alpha1.NotificationChannel) {
			c.Spec.NetworkPolicy.Enabled = new(true)
		})
		Eventually(exists(ctx, policyIn(ns))).Should(BeTrue())
	})

	It("leaves alone a NetworkPolicy of the same name that the channel does not own", func(ctx SpecContext) {
		ns := newNamespace(ctx, nil)
		createKeySecret(ctx, ns, map[string][]byte{"k1": hmacKey()})
		// Labelled as the operator's, so that its cache sees it.
		theirs := policyIn(ns)
		theirs.Labels = resources.Labels("app")
		theirs.Spec.PolicyTypes = []networkingv1.PolicyType{networkingv1.PolicyTypeIngress}
		Expect(api.Client.Create(ctx, theirs)).To(Succeed())
		channel := createChannel(ctx, ns, func(spec *notifyv1alpha1.NotificationChannelSpec) {
			spec.NetworkPolicy.Enabled = new(false)
		})
		settled(ctx, channel)
		Expect(exists(ctx, policyIn(ns))()).To(BeTrue())
	})

	It("stalls a channel whose selector the NetworkPolicy would refuse, naming the field", func(ctx SpecContext) {
		ns := newNamespace(ctx, nil)
		createKeySecret(ctx, ns, map[string][]byte{"k1": hmacKey()})
		channel := createChannel(ctx, ns, func(spec *notifyv1alpha1.NotificationChannelSpec) {
			spec.NetworkPolicy.HTTPFrom = []notifyv1alpha1.NetworkPolicyPeer{{PodSelector: &metav1.LabelSelector{
				MatchLabels: map[string]string{"app name": "web"},
			}}}
		})
		Eventually(channelStatus(ctx, channel)).Should(
			haveCondition(notifyv1alpha1.ConditionStalled, metav1.ConditionTrue, notifyv1alpha1.ReasonInvalidSpec))
		Expect(condition(get(ctx, channel), notifyv1alpha1.ConditionStalled).Message).To(
			ContainSubstring(`spec.networkPolicy.httpFrom[0].podSelector.matchLabels: Invalid value: "app name"`))
	})

	Describe("as built, on a server-side dry-run with the real kubectl", func() {
		// dryRun applies the channel's policy, as the operator builds it,
		// with kubectl apply --server-side --dry-run=server.
		dryRun := func(ctx SpecContext, networkPolicy notifyv1alpha1.NetworkPolicySpec) (string, error) {
			ns := newNamespace(ctx, nil)
			channel := &notifyv1alpha1.NotificationChannel{
				ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: "app"},
				Spec:       notifyv1alpha1.NotificationChannelSpec{NetworkPolicy: networkPolicy},
			}
			policy, wanted := resources.NetworkPolicy(resources.Inputs{Channel: channel, DefaultImage: streamerImage})
			Expect(wanted).To(BeTrue())
			manifest, err := yaml.Marshal(policy)
			Expect(err).NotTo(HaveOccurred())
			result := api.Kubectl(ctx, string(manifest), "apply", "--server-side", "--dry-run=server", "--field-manager=herald-operator", "-f", "-")
			return result.Stdout + result.Stderr, result.Err
		}

		DescribeTable("is accepted",
			func(ctx SpecContext, networkPolicy notifyv1alpha1.NetworkPolicySpec) {
				out, err := dryRun(ctx, networkPolicy)
				Expect(err).NotTo(HaveOccurred(), out)
				Expect(out).To(ContainSubstring("networkpolicy.networking.k8s.io/app-streamer serverside-applied (server dry run)"))
			},
			Entry("by default", notifyv1alpha1.NetworkPolicySpec{}),
			Entry("with every kind of source", notifyv1alpha1.NetworkPolicySpec{
				HTTPFrom: []notifyv1alpha1.NetworkPolicyPeer{
					{
						NamespaceSelector: &metav1.LabelSelector{MatchLabels: map[string]string{"kubernetes.io/metadata.name": "ingress-nginx"}},
						PodSelector: &metav1.LabelSelector{MatchExpressions: []metav1.LabelSelectorRequirement{
							{Key: "app.kubernetes.io/name", Operator: metav1.LabelSelectorOpIn, Values: []string{"ingress-nginx"}},
						}},
					},
					{PodSelector: &metav1.LabelSelector{MatchLabels: map[string]string{"role": "backend"}}},
					{IPBlock: &notifyv1alpha1.IPBlock{CIDR: "203.0.113.0/24", Except: []string{"203.0.113.128/25"}}},
					{IPBlock: &notifyv1alpha1.IPBlock{CIDR: "2001:db8::/32"}},
				},
				MetricsFrom: monitoring,
			}),
		)

		It("is refused with a selector that Validate refuses, so the check can fail", func(ctx SpecContext) {
			out, err := dryRun(ctx, notifyv1alpha1.NetworkPolicySpec{MetricsFrom: []notifyv1alpha1.NetworkPolicyPeer{{
				NamespaceSelector: &metav1.LabelSelector{MatchExpressions: []metav1.LabelSelectorRequirement{
					{Key: "team", Operator: metav1.LabelSelectorOpIn},
				}},
			}}})
			Expect(err).To(HaveOccurred())
			Expect(out).To(ContainSubstring("spec.ingress[1].from[0].namespaceSelector.matchExpressions[0].values"))
		})
	})
})
