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

// The default ports of the Endpoint URL's schemes, left out of it.
const (
	defaultHTTPPort  int32 = 80
	defaultHTTPSPort int32 = 443
)

// Application protocols of the Service's "http" port (appProtocol), which
// tell ingress controllers and meshes how to speak to the pods.
const (
	AppProtocolHTTPS = "https"
	AppProtocolH2C   = "kubernetes.io/h2c"
)

// Service fronts the channel's ready streamers: type, port and annotations
// from spec.service, port "http" to the pods' "http" port, whose appProtocol
// says what the pods serve there (spec.http: "https", "kubernetes.io/h2c", or
// none for plain HTTP/1.1). A ClusterIP
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
			Ports:                    servicePorts(spec, appProtocol(&in.Channel.Spec.HTTP)),
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

// appProtocol is the application protocol of the pods' "http" port, nil for
// plain HTTP/1.1.
func appProtocol(spec *notifyv1alpha1.HTTPSpec) *string {
	switch {
	case spec.TLS != nil:
		return new(AppProtocolHTTPS)
	case spec.H2C:
		return new(AppProtocolH2C)
	}
	return nil
}

// servicePorts are "http", with the application protocol served there, and
// "metrics" on a ClusterIP Service only.
func servicePorts(spec *notifyv1alpha1.ServiceSpec, appProtocol *string) []corev1.ServicePort {
	ports := []corev1.ServicePort{{
		Name:        PortNameHTTP,
		Protocol:    corev1.ProtocolTCP,
		AppProtocol: appProtocol,
		Port:        servicePort(spec),
		TargetPort:  intstr.FromString(PortNameHTTP),
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
// channel's status: http[s]://<service>.<namespace>.svc[:<port>]/api/v1/sse/notifications,
// https with spec.http.tls, without the port when it is the scheme's default.
func Endpoint(in Inputs) string {
	scheme, defaultPort := "http", defaultHTTPPort
	if in.Channel.Spec.HTTP.TLS != nil {
		scheme, defaultPort = "https", defaultHTTPSPort
	}
	host := in.name() + "." + in.Channel.Namespace + ".svc"
	if port := servicePort(&in.Channel.Spec.Service); port != defaultPort {
		host = net.JoinHostPort(host, strconv.Itoa(int(port)))
	}
	return (&url.URL{Scheme: scheme, Host: host, Path: paths.Stream}).String()
}
