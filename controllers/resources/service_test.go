package resources_test

import (
	. "github.com/onsi/ginkgo/v2"
	. "github.com/onsi/gomega"
	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/util/intstr"

	"github.com/herald-notify/herald/controllers/resources"
)

var _ = Describe("Service", func() {
	It("fronts the ready streamers of a minimal channel on port 80", func() {
		svc := resources.Service(inputs())
		Expect(svc.APIVersion).To(Equal("v1"))
		Expect(svc.Kind).To(Equal("Service"))
		Expect(svc.Annotations).To(BeEmpty())
		Expect(svc.Spec.Type).To(Equal(corev1.ServiceTypeClusterIP))
		Expect(svc.Spec.Selector).To(Equal(resources.SelectorLabels(channelName)))
		Expect(svc.Spec.PublishNotReadyAddresses).To(BeFalse())
		Expect(svc.Spec.Ports).To(Equal([]corev1.ServicePort{
			{Name: "http", Protocol: corev1.ProtocolTCP, Port: 80, TargetPort: intstr.FromString("http")},
			{Name: "metrics", Protocol: corev1.ProtocolTCP, Port: 9090, TargetPort: intstr.FromString("metrics")},
		}))
	})

	DescribeTable("exposes metrics inside the cluster only",
		func(serviceType string, metrics bool) {
			svc := resources.Service(inputs("service: {type: " + serviceType + ", port: 8443}"))
			Expect(string(svc.Spec.Type)).To(Equal(serviceType))
			Expect(svc.Spec.Ports[0]).To(Equal(corev1.ServicePort{
				Name: "http", Protocol: corev1.ProtocolTCP, Port: 8443, TargetPort: intstr.FromString("http"),
			}))
			if metrics {
				Expect(svc.Spec.Ports).To(HaveLen(2))
			} else {
				Expect(svc.Spec.Ports).To(HaveLen(1))
			}
		},
		Entry("ClusterIP", "ClusterIP", true),
		Entry("NodePort", "NodePort", false),
		Entry("LoadBalancer", "LoadBalancer", false),
	)

	It("carries the spec's annotations without aliasing them", func() {
		in := inputs("service: {annotations: {service.beta.kubernetes.io/aws-load-balancer-type: nlb}}")
		svc := resources.Service(in)
		Expect(svc.Annotations).To(Equal(map[string]string{"service.beta.kubernetes.io/aws-load-balancer-type": "nlb"}))
		svc.Annotations["x"] = "y"
		Expect(in.Channel.Spec.Service.Annotations).To(HaveLen(1))
	})
})

var _ = DescribeTable("Endpoint",
	func(port, want string) {
		spec := minimalSpec
		if port != "" {
			spec = "service: {port: " + port + "}"
		}
		Expect(resources.Endpoint(inputs(spec))).To(Equal(want))
	},
	Entry("the default port is left out", "", "http://chat-streamer.apps.svc/api/v1/sse/notifications"),
	Entry("port 80 is left out", "80", "http://chat-streamer.apps.svc/api/v1/sse/notifications"),
	Entry("another port is written", "8080", "http://chat-streamer.apps.svc:8080/api/v1/sse/notifications"),
)
