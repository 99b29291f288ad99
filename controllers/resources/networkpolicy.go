package resources

import (
	corev1 "k8s.io/api/core/v1"
	networkingv1 "k8s.io/api/networking/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	metav1validation "k8s.io/apimachinery/pkg/apis/meta/v1/validation"
	"k8s.io/apimachinery/pkg/util/intstr"
	"k8s.io/apimachinery/pkg/util/validation/field"

	notifyv1alpha1 "github.com/herald-notify/herald/api/v1alpha1"
)

// NetworkPolicy fences the channel's pods for traffic into them: the serving
// port accepts spec.networkPolicy.httpFrom (every source when unset), the
// metrics port metricsFrom (every pod of every namespace when unset), and
// nothing else reaches the pods, apart from their node (the kubelet's
// probes), which a NetworkPolicy always allows. The ports are numbers, not
// the container's port names, which every network plugin understands. Egress
// is not restricted. It reports false when spec.networkPolicy.enabled is
// false: the reconciler deletes the policy then.
func NetworkPolicy(in Inputs) (*networkingv1.NetworkPolicy, bool) {
	spec := &in.Channel.Spec.NetworkPolicy
	if !networkPolicyEnabled(spec) {
		return nil, false
	}
	return &networkingv1.NetworkPolicy{
		TypeMeta:   metav1.TypeMeta{APIVersion: networkingv1.SchemeGroupVersion.String(), Kind: "NetworkPolicy"},
		ObjectMeta: in.objectMeta(),
		Spec: networkingv1.NetworkPolicySpec{
			PodSelector: metav1.LabelSelector{MatchLabels: SelectorLabels(in.Channel.Name)},
			PolicyTypes: []networkingv1.PolicyType{networkingv1.PolicyTypeIngress},
			Ingress: []networkingv1.NetworkPolicyIngressRule{
				{Ports: tcpPort(PortHTTP), From: peers(spec.HTTPFrom)},
				{Ports: tcpPort(PortMetrics), From: peers(metricsFrom(spec))},
			},
		},
	}, true
}

// networkPolicyEnabled is spec.networkPolicy.enabled, or its API default
// (true) when unset.
func networkPolicyEnabled(spec *notifyv1alpha1.NetworkPolicySpec) bool {
	if spec.Enabled == nil {
		return notifyv1alpha1.DefaultNetworkPolicyEnabled
	}
	return *spec.Enabled
}

// metricsFrom is spec.networkPolicy.metricsFrom, or its API default when
// unset.
func metricsFrom(spec *notifyv1alpha1.NetworkPolicySpec) []notifyv1alpha1.NetworkPolicyPeer {
	if len(spec.MetricsFrom) == 0 {
		return notifyv1alpha1.DefaultNetworkPolicyMetricsFrom
	}
	return spec.MetricsFrom
}

// tcpPort is the one TCP port of an ingress rule.
func tcpPort(port int32) []networkingv1.NetworkPolicyPort {
	return []networkingv1.NetworkPolicyPort{{Protocol: new(corev1.ProtocolTCP), Port: new(intstr.FromInt32(port))}}
}

// peers copies the channel's sources into a rule's "from"; none (nil) means
// every source.
func peers(from []notifyv1alpha1.NetworkPolicyPeer) []networkingv1.NetworkPolicyPeer {
	if len(from) == 0 {
		return nil
	}
	out := make([]networkingv1.NetworkPolicyPeer, len(from))
	for i, p := range from {
		out[i] = networkingv1.NetworkPolicyPeer{
			PodSelector:       p.PodSelector.DeepCopy(),
			NamespaceSelector: p.NamespaceSelector.DeepCopy(),
		}
		if p.IPBlock != nil {
			out[i].IPBlock = &networkingv1.IPBlock{CIDR: p.IPBlock.CIDR, Except: append([]string(nil), p.IPBlock.Except...)}
		}
	}
	return out
}

// validateNetworkPolicy checks the label selectors of the channel's sources,
// which the CRD's schema cannot: a selector the API server would refuse in
// the NetworkPolicy is reported naming the channel's field.
func validateNetworkPolicy(spec *notifyv1alpha1.NetworkPolicySpec) error {
	path := field.NewPath("spec", "networkPolicy")
	var errs field.ErrorList
	for _, sources := range []struct {
		path *field.Path
		from []notifyv1alpha1.NetworkPolicyPeer
	}{{path.Child("httpFrom"), spec.HTTPFrom}, {path.Child("metricsFrom"), spec.MetricsFrom}} {
		for i, p := range sources.from {
			at := sources.path.Index(i)
			opts := metav1validation.LabelSelectorValidationOptions{}
			errs = append(errs, metav1validation.ValidateLabelSelector(p.PodSelector, opts, at.Child("podSelector"))...)
			errs = append(errs, metav1validation.ValidateLabelSelector(p.NamespaceSelector, opts, at.Child("namespaceSelector"))...)
		}
	}
	return errs.ToAggregate()
}
