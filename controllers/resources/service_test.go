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

	DescribeTable("says what the pods serve on the http port (appProtocol)",
		func(http string, want *string) {
			svc := resources.Service(inputs(http))
			Expect(svc.Spec.Ports[0].Name).To(Equal("http"))
			Expect(svc.Spec.Ports[0].AppProtocol).To(Equal(want))
			Expect(svc.Spec.Ports[1].AppProtocol).To(BeNil(), "metrics stays plain HTTP")
		},
		Entry("nothing for plain HTTP/1.1", "http: {}", nil),
		Entry("https with TLS", "http: {tls: {secretRef: {name: chat-tls}}}", new("https")),
		Entry("kubernetes.io/h2c with unencrypted HTTP/2", "http: {h2c: true}", new("kubernetes.io/h2c")),
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
	func(port, http, want string) {
		spec := []string{minimalSpec}
		if port != "" {
			spec = append(spec, "service: {port: "+port+"}")
		}
		if http != "" {
			spec = append(spec, "http: "+http)
		}
		Expect(resources.Endpoint(inputs(spec...))).To(Equal(want))
	},
	Entry("the default port is left out", "", "", "http://chat-streamer.apps.svc/api/v1/sse/notifications"),
	Entry("port 80 is left out", "80", "", "http://chat-streamer.apps.svc/api/v1/sse/notifications"),
	Entry("another port is written", "8080", "", "http://chat-streamer.apps.svc:8080/api/v1/sse/notifications"),
	Entry("h2c stays http", "", "{h2c: true}", "http://chat-streamer.apps.svc/api/v1/sse/notifications"),
	Entry("TLS is https, with port 80 written", "", "{tls: {secretRef: {name: chat-tls}}}", "https://chat-streamer.apps.svc:80/api/v1/sse/notifications"),
	Entry("TLS on port 443 leaves it out", "443", "{tls: {secretRef: {name: chat-tls}}}", "https://chat-streamer.apps.svc/api/v1/sse/notifications"),
)
