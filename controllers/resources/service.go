package resources

import (
	"maps"
	"net"
	"net/url"
	"strconv"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/util/intstr"

	notifyv1alpha1 "github.com/herald-notify/herald/api/v1alpha1"
	"github.com/herald-notify/herald/streamer/paths"
)

// defaultHTTPPort is left out of Endpoint URLs.
const defaultHTTPPort int32 = 80

// Service fronts the channel's ready streamers: type, port and annotations
// from spec.service, port "http" to the pods' "http" port. A ClusterIP
// Service also has a "metrics" port for in-cluster scrapers; NodePort and
// LoadBalancer Services do not, so /metrics is never exposed outside the
// cluster (scrape the pods' "metrics" port, e.g. with a PodMonitor). Not-ready
// pods are left out (publishNotReadyAddresses false): a draining pod takes no
// new streams.
func Service(in Inputs) *corev1.Service {
	spec := &in.Channel.Spec.Service
	meta := in.objectMeta()
	meta.Annotations = maps.Clone(spec.Annotations)
	return &corev1.Service{
		TypeMeta:   metav1.TypeMeta{APIVersion: "v1", Kind: "Service"},
		ObjectMeta: meta,
		Spec: corev1.ServiceSpec{
			Type:                     serviceType(spec),
			Selector:                 SelectorLabels(in.Channel.Name),
			Ports:                    servicePorts(spec),
			PublishNotReadyAddresses: false,
		},
	}
}

// serviceType is spec.service.type, or its API default when unset.
func serviceType(spec *notifyv1alpha1.ServiceSpec) corev1.ServiceType {
	if spec.Type == "" {
		return corev1.ServiceType(notifyv1alpha1.DefaultServiceType)
	}
	return corev1.ServiceType(spec.Type)
}

// servicePort is spec.service.port, or its API default when unset.
func servicePort(spec *notifyv1alpha1.ServiceSpec) int32 {
	return orDefaultInt32(spec.Port, notifyv1alpha1.DefaultServicePort)
}

// servicePorts are "http", and "metrics" on a ClusterIP Service only.
func servicePorts(spec *notifyv1alpha1.ServiceSpec) []corev1.ServicePort {
	ports := []corev1.ServicePort{{
		Name:       PortNameHTTP,
		Protocol:   corev1.ProtocolTCP,
		Port:       servicePort(spec),
		TargetPort: intstr.FromString(PortNameHTTP),
	}}
	if serviceType(spec) == corev1.ServiceTypeClusterIP {
		ports = append(ports, corev1.ServicePort{
			Name:       PortNameMetrics,
			Protocol:   corev1.ProtocolTCP,
			Port:       PortMetrics,
			TargetPort: intstr.FromString(PortNameMetrics),
		})
	}
	return ports
}

// Endpoint is the in-cluster URL of the channel's stream endpoint, for the
// channel's status: http://<service>.<namespace>.svc[:<port>]/api/v1/sse/notifications,
// without the port when it is 80.
func Endpoint(in Inputs) string {
	host := in.name() + "." + in.Channel.Namespace + ".svc"
	if port := servicePort(&in.Channel.Spec.Service); port != defaultHTTPPort {
		host = net.JoinHostPort(host, strconv.Itoa(int(port)))
	}
	return (&url.URL{Scheme: "http", Host: host, Path: paths.Stream}).String()
}
