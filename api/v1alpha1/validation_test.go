package v1alpha1_test

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"strings"

	. "github.com/onsi/ginkgo/v2"
	. "github.com/onsi/gomega"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/yaml"

	notifyv1alpha1 "github.com/herald-notify/herald/api/v1alpha1"
	"github.com/herald-notify/herald/internal/apiserver"
)

// validChannel and validEvent are the smallest valid objects; each invalid
// case breaks exactly one rule of one of them.
const validChannel = `
apiVersion: notify.herald.dev/v1alpha1
kind: NotificationChannel
metadata: {name: app}
spec:
  auth:
    keySecretRef: {name: app-keys}
`

const validEvent = `
apiVersion: notify.herald.dev/v1alpha1
kind: SystemEvent
metadata: {name: announcement}
spec:
  channelRef: {name: app}
  eventType: maintenance
  data: {message: System maintenance scheduled}
`

func object(manifest string) *unstructured.Unstructured {
	obj := &unstructured.Unstructured{}
	Expect(yaml.Unmarshal([]byte(manifest), &obj.Object)).To(Succeed())
	return obj
}

// mutation changes one field of an object, given as a dotted path.
type mutation func(obj *unstructured.Unstructured)

func set(path string, value any) mutation {
	return func(obj *unstructured.Unstructured) {
		Expect(unstructured.SetNestedField(obj.Object, value, strings.Split(path, ".")...)).To(Succeed())
	}
}

func remove(path string) mutation {
	return func(obj *unstructured.Unstructured) {
		unstructured.RemoveNestedField(obj.Object, strings.Split(path, ".")...)
	}
}

func list(values ...any) []any { return values }

func manyProperties(n int) map[string]any {
	m := make(map[string]any, n)
	for i := range n {
		m[fmt.Sprintf("field%d", i)] = "x"
	}
	return m
}

var _ = Describe("the CRD schema", func() {
	var namespace string

	BeforeEach(func(ctx SpecContext) {
		namespace = newNamespace(ctx)
	})

	create := func(ctx context.Context, obj *unstructured.Unstructured) error {
		obj.SetNamespace(namespace)
		return k8s.Create(ctx, obj)
	}

	It("accepts every sample in config/samples", func(ctx SpecContext) {
		files, err := filepath.Glob(filepath.Join(repoRoot, "config", "samples", "*.yaml"))
		Expect(err).NotTo(HaveOccurred())
		kinds := map[string]int{}
		for _, file := range files {
			objs, err := apiserver.ReadManifests(file)
			Expect(err).NotTo(HaveOccurred())
			Expect(objs).NotTo(BeEmpty(), "%s holds no object", file)
			for _, obj := range objs {
				Expect(create(ctx, obj)).To(Succeed(), "sample %s was rejected", file)
				kinds[obj.GetKind()]++
			}
		}
		Expect(kinds).To(HaveKeyWithValue("NotificationChannel", BeNumerically(">=", 2)))
		Expect(kinds).To(HaveKeyWithValue("SystemEvent", BeNumerically(">=", 3)))

		By("keeping the maintenance announcement of the design")
		sev := &notifyv1alpha1.SystemEvent{}
		Expect(k8s.Get(ctx, client.ObjectKey{Namespace: namespace, Name: "maintenance"}, sev)).To(Succeed())
		Expect(sev.Spec.EventType).To(Equal("maintenance"))
		Expect(string(sev.Spec.Data.Raw)).To(MatchJSON(`{"message":"System maintenance scheduled"}`))
		Expect(sev.Spec.Audience.All).To(HaveValue(BeTrue()))
	})

	It("applies to a minimal channel the defaults the streamer's config file uses", func(ctx SpecContext) {
		obj := object(validChannel)
		Expect(create(ctx, obj)).To(Succeed())
		nch := &notifyv1alpha1.NotificationChannel{}
		Expect(k8s.Get(ctx, client.ObjectKeyFromObject(obj), nch)).To(Succeed())

		s := nch.Spec
		Expect(s.Replicas).To(HaveValue(Equal(notifyv1alpha1.DefaultReplicas)))
		Expect(s.Auth.Algorithms).To(Equal(notifyv1alpha1.DefaultAlgorithms))
		Expect(s.Auth.UserIDClaim).To(Equal(notifyv1alpha1.DefaultUserIDClaim))
		Expect(s.Auth.Leeway.Duration).To(Equal(notifyv1alpha1.DefaultLeeway))
		Expect(s.Auth.TokenSources).To(Equal(notifyv1alpha1.DefaultTokenSources))
		Expect(s.Auth.CookieName).To(Equal(notifyv1alpha1.DefaultCookieName))
		Expect(s.Auth.TicketTTL.Duration).To(Equal(notifyv1alpha1.DefaultTicketTTL))
		Expect(s.Auth.ExpiryWarning.Duration).To(Equal(notifyv1alpha1.DefaultExpiryWarning))
		Expect(s.Auth.PublishGrant.Claim).To(Equal(notifyv1alpha1.DefaultPublishGrantClaim))
		Expect(s.Auth.PublishGrant.Value).To(Equal(notifyv1alpha1.DefaultPublishGrantValue))
		Expect(s.Connections.MaxPerUser).To(Equal(notifyv1alpha1.DefaultMaxConnectionsPerUser))
		Expect(s.Connections.UserLimitPolicy).To(Equal(notifyv1alpha1.DefaultUserLimitPolicy))
		Expect(s.Connections.MaxPerPod).To(Equal(notifyv1alpha1.DefaultMaxConnectionsPerPod))
		Expect(s.Connections.KeepAliveInterval.Duration).To(Equal(notifyv1alpha1.DefaultKeepAliveInterval))
		Expect(s.Connections.SendQueueBytes).To(Equal(notifyv1alpha1.DefaultSendQueueBytes))
		Expect(s.History.MaxEvents).To(Equal(notifyv1alpha1.DefaultHistoryMaxEvents))
		Expect(s.History.MaxAge.Duration).To(Equal(notifyv1alpha1.DefaultHistoryMaxAge))
		Expect(s.Broker.Type).To(Equal(notifyv1alpha1.DefaultBrokerType))
		Expect(s.Drain.GracePeriod.Duration).To(Equal(notifyv1alpha1.DefaultDrainGracePeriod))
		Expect(s.Drain.ReconnectJitter.Duration).To(Equal(notifyv1alpha1.DefaultDrainReconnectJitter))
		Expect(s.Service.Type).To(Equal(notifyv1alpha1.DefaultServiceType))
		Expect(s.Service.Port).To(Equal(notifyv1alpha1.DefaultServicePort))
		Expect(s.NetworkPolicy.Enabled).To(HaveValue(Equal(notifyv1alpha1.DefaultNetworkPolicyEnabled)))
		Expect(s.NetworkPolicy.HTTPFrom).To(BeNil())
		Expect(s.NetworkPolicy.MetricsFrom).To(Equal(notifyv1alpha1.DefaultNetworkPolicyMetricsFrom))
		Expect(s.Autoscaling).To(BeNil())
	})

	It("applies the nested defaults of an optional block once it is set", func(ctx SpecContext) {
		obj := object(validChannel)
		set("spec.broker", map[string]any{"type": "NATS", "nats": map[string]any{"url": "nats://nats:4222"}})(obj)
		set("spec.autoscaling", map[string]any{"maxReplicas": int64(5)})(obj)
		set("spec.pod", map[string]any{"resources": map[string]any{"requests": map[string]any{"cpu": "100m"}}})(obj)
		Expect(create(ctx, obj)).To(Succeed())
		nch := &notifyv1alpha1.NotificationChannel{}
		Expect(k8s.Get(ctx, client.ObjectKeyFromObject(obj), nch)).To(Succeed())
		Expect(nch.Spec.Broker.NATS.StreamReplicas).To(Equal(notifyv1alpha1.DefaultNATSStreamReplicas))
		Expect(nch.Spec.Autoscaling.MinReplicas).To(Equal(notifyv1alpha1.DefaultAutoscalingMinReplicas))
		Expect(nch.Spec.Autoscaling.TargetCPUUtilizationPercentage).To(Equal(notifyv1alpha1.DefaultAutoscalingTargetCPUUtilization))
	})

	It("applies the defaults of a minimal SystemEvent", func(ctx SpecContext) {
		obj := object(validEvent)
		Expect(create(ctx, obj)).To(Succeed())
		sev := &notifyv1alpha1.SystemEvent{}
		Expect(k8s.Get(ctx, client.ObjectKeyFromObject(obj), sev)).To(Succeed())
		Expect(sev.Spec.Audience.All).To(HaveValue(BeTrue()))
		Expect(sev.Spec.Priority).To(Equal(notifyv1alpha1.DefaultSystemEventPriority))
	})

	// The counterparts of the scaling rules below: what they allow.
	natsBroker := set("spec.broker", map[string]any{"type": "NATS", "nats": map[string]any{"url": "nats://nats:4222"}})
	DescribeTable("accepts a valid object",
		func(ctx SpecContext, manifest string, changes ...mutation) {
			obj := object(manifest)
			for _, change := range changes {
				change(obj)
			}
			Expect(create(ctx, obj)).To(Succeed())
		},
		Entry("several replicas on the NATS broker", validChannel, natsBroker, set("spec.replicas", int64(3))),
		Entry("autoscaling on the NATS broker", validChannel, natsBroker,
			set("spec.autoscaling", map[string]any{"maxReplicas": int64(8)}),
			set("spec.pod", map[string]any{"resources": map[string]any{"requests": map[string]any{"cpu": "100m"}}})),
		Entry("one replica on the embedded broker, said explicitly", validChannel,
			set("spec.broker.type", "Embedded"), set("spec.replicas", int64(1))),
		Entry("no token expiry warning", validChannel, set("spec.auth.expiryWarning", "0s")),
		Entry("NATS with several URLs, a credentials Secret and stream replicas", validChannel,
			set("spec.broker", map[string]any{"type": "NATS", "nats": map[string]any{
				"url":                  "nats://n1:4222,tls://n2:4222",
				"credentialsSecretRef": map[string]any{"name": "app-nats"},
				"streamReplicas":       int64(3),
			}}), set("spec.replicas", int64(5))),
		Entry("TLS from a Secret", validChannel, set("spec.http", map[string]any{"tls": map[string]any{"secretRef": map[string]any{"name": "app-tls"}}})),
		Entry("TLS with h2c said false", validChannel,
			set("spec.http", map[string]any{"tls": map[string]any{"secretRef": map[string]any{"name": "app-tls"}}, "h2c": false})),
		Entry("unencrypted HTTP/2", validChannel, set("spec.http", map[string]any{"h2c": true})),
		Entry("a NetworkPolicy narrowed to an ingress controller, a monitoring namespace and office ranges", validChannel,
			set("spec.networkPolicy", map[string]any{
				"httpFrom": list(
					map[string]any{
						"namespaceSelector": map[string]any{"matchLabels": map[string]any{"kubernetes.io/metadata.name": "ingress-nginx"}},
						"podSelector":       map[string]any{"matchLabels": map[string]any{"app.kubernetes.io/name": "ingress-nginx"}},
					},
					map[string]any{"ipBlock": map[string]any{"cidr": "203.0.113.0/24", "except": list("203.0.113.128/25")}},
					map[string]any{"ipBlock": map[string]any{"cidr": "2001:db8::/32"}},
				),
				"metricsFrom": list(map[string]any{"namespaceSelector": map[string]any{"matchLabels": map[string]any{"kubernetes.io/metadata.name": "monitoring"}}}),
			})),
		Entry("a NetworkPolicy turned off", validChannel, set("spec.networkPolicy.enabled", false)),
	)

	DescribeTable("rejects an invalid object with a message naming the field",
		func(ctx SpecContext, manifest string, breakIt mutation, field, message string) {
			obj := object(manifest)
			breakIt(obj)
			err := create(ctx, obj)
			Expect(err).To(HaveOccurred(), "the API server accepted an invalid %s", obj.GetKind())
			Expect(apierrors.IsInvalid(err)).To(BeTrue(), "expected 422 Invalid, got: %v", err)
			Expect(err.Error()).To(ContainSubstring(field+": "), "the message does not name %s", field)
			Expect(err.Error()).To(ContainSubstring(message))
		},
		// NotificationChannel: enums.
		Entry("alg none", validChannel, set("spec.auth.algorithms", list("none")),
			"spec.auth.algorithms[0]", `Unsupported value: "none"`),
		Entry("unknown token source", validChannel, set("spec.auth.tokenSources", list("Header", "Query")),
			"spec.auth.tokenSources[1]", `Unsupported value: "Query"`),
		Entry("unknown user limit policy", validChannel, set("spec.connections.userLimitPolicy", "DropOldest"),
			"spec.connections.userLimitPolicy", `Unsupported value: "DropOldest"`),
		Entry("unknown broker", validChannel, set("spec.broker.type", "Kafka"),
			"spec.broker.type", `Unsupported value: "Kafka"`),
		Entry("unknown service type", validChannel, set("spec.service.type", "ExternalName"),
			"spec.service.type", `Unsupported value: "ExternalName"`),
		// NotificationChannel: numbers out of range.
		Entry("negative replicas", validChannel, set("spec.replicas", int64(-1)),
			"spec.replicas", "should be greater than or equal to 0"),
		Entry("zero connections per user", validChannel, set("spec.connections.maxPerUser", int64(0)),
			"spec.connections.maxPerUser", "should be greater than or equal to 1"),
		Entry("tiny send queue", validChannel, set("spec.connections.sendQueueBytes", int64(100)),
			"spec.connections.sendQueueBytes", "should be greater than or equal to 4096"),
		Entry("service port beyond 65535", validChannel, set("spec.service.port", int64(70000)),
			"spec.service.port", "should be less than or equal to 65535"),
		Entry("too many events kept", validChannel, set("spec.history.maxEvents", int64(20000000)),
			"spec.history.maxEvents", "should be less than or equal to 10000000"),
		// NotificationChannel: missing required fields.
		Entry("no auth", validChannel, remove("spec.auth"),
			"spec.auth", "Required value"),
		Entry("no key Secret", validChannel, remove("spec.auth.keySecretRef.name"),
			"spec.auth.keySecretRef.name", "Required value"),
		Entry("NATS without URL", validChannel, set("spec.broker", map[string]any{"type": "NATS", "nats": map[string]any{}}),
			"spec.broker.nats.url", "Required value"),
		// NotificationChannel: patterns and durations.
		Entry("keep-alive not a duration", validChannel, set("spec.connections.keepAliveInterval", "soon"),
			"spec.connections.keepAliveInterval", "should match"),
		Entry("keep-alive below 1s", validChannel, set("spec.connections.keepAliveInterval", "500ms"),
			"spec.connections.keepAliveInterval", "must be between 1s and 10m"),
		Entry("leeway above 5m", validChannel, set("spec.auth.leeway", "10m"),
			"spec.auth.leeway", "must be at most 5m"),
		Entry("expiry warning above 1h", validChannel, set("spec.auth.expiryWarning", "2h"),
			"spec.auth.expiryWarning", "must be at most 1h"),
		Entry("expiry warning not a duration", validChannel, set("spec.auth.expiryWarning", "-1s"),
			"spec.auth.expiryWarning", "should match"),
		Entry("history older than 30 days", validChannel, set("spec.history.maxAge", "1000h"),
			"spec.history.maxAge", "must be between 1s and 720h"),
		Entry("wildcard CORS origin", validChannel, set("spec.cors.allowedOrigins", list("*")),
			"spec.cors.allowedOrigins[0]", "should match"),
		Entry("stream replicas beyond 5", validChannel, set("spec.broker", map[string]any{"type": "NATS", "nats": map[string]any{"url": "nats://nats:4222", "streamReplicas": int64(7)}}),
			"spec.broker.nats.streamReplicas", "should be less than or equal to 5"),
		Entry("credentials Secret without a name", validChannel, set("spec.broker", map[string]any{"type": "NATS", "nats": map[string]any{"url": "nats://nats:4222", "credentialsSecretRef": map[string]any{}}}),
			"spec.broker.nats.credentialsSecretRef.name", "Required value"),
		Entry("several replicas on the embedded broker, said explicitly", validChannel, func(obj *unstructured.Unstructured) {
			set("spec.broker.type", "Embedded")(obj)
			set("spec.replicas", int64(2))(obj)
		}, "spec.replicas", "more than one replica requires broker.type NATS"),
		Entry("NATS URL over HTTP", validChannel, set("spec.broker", map[string]any{"type": "NATS", "nats": map[string]any{"url": "http://nats:4222"}}),
			"spec.broker.nats.url", "should match"),
		Entry("cookie name with a separator", validChannel, set("spec.auth.cookieName", "session;id"),
			"spec.auth.cookieName", "should match"),
		// NotificationChannel: CEL rules.
		Entry("HMAC mixed with a public-key algorithm", validChannel, set("spec.auth.algorithms", list("HS256", "RS256")),
			"spec.auth.algorithms", "must not be mixed"),
		Entry("several replicas on the embedded log", validChannel, set("spec.replicas", int64(3)),
			"spec.replicas", "more than one replica requires broker.type NATS"),
		Entry("autoscaling on the embedded log", validChannel, set("spec.autoscaling", map[string]any{"maxReplicas": int64(4)}),
			"spec.autoscaling", "requires broker.type NATS"),
		Entry("NATS broker without its settings", validChannel, set("spec.broker.type", "NATS"),
			"spec.broker.nats", "nats is required when type is NATS"),
		Entry("NATS settings on the embedded broker", validChannel, set("spec.broker.nats", map[string]any{"url": "nats://nats:4222"}),
			"spec.broker.nats", "must be omitted otherwise"),
		Entry("autoscaling without a CPU request", validChannel, func(obj *unstructured.Unstructured) {
			set("spec.broker", map[string]any{"type": "NATS", "nats": map[string]any{"url": "nats://nats:4222"}})(obj)
			set("spec.autoscaling", map[string]any{"maxReplicas": int64(4)})(obj)
		}, "spec.autoscaling", "autoscaling needs pod.resources.requests.cpu"),
		Entry("autoscaling minimum above maximum", validChannel, set("spec.autoscaling", map[string]any{"minReplicas": int64(5), "maxReplicas": int64(1)}),
			"spec.autoscaling.minReplicas", "must not exceed maxReplicas"),
		Entry("reconnect jitter longer than the drain", validChannel, set("spec.drain", map[string]any{"gracePeriod": "10s", "reconnectJitter": "1m"}),
			"spec.drain.reconnectJitter", "must not exceed gracePeriod"),
		Entry("TLS and h2c together", validChannel,
			set("spec.http", map[string]any{"tls": map[string]any{"secretRef": map[string]any{"name": "app-tls"}}, "h2c": true}),
			"spec.http.h2c", "h2c must be false when tls is set"),
		Entry("TLS without a Secret", validChannel, set("spec.http", map[string]any{"tls": map[string]any{}}),
			"spec.http.tls.secretRef", "Required value"),
		// NotificationChannel: the NetworkPolicy's sources.
		Entry("an empty list of HTTP sources", validChannel, set("spec.networkPolicy.httpFrom", []any{}),
			"spec.networkPolicy.httpFrom", "should have at least 1 items"),
		Entry("an empty list of metrics sources", validChannel, set("spec.networkPolicy.metricsFrom", []any{}),
			"spec.networkPolicy.metricsFrom", "should have at least 1 items"),
		Entry("a source that names nothing", validChannel, set("spec.networkPolicy.httpFrom", list(map[string]any{})),
			"spec.networkPolicy.httpFrom[0]", "must set podSelector, namespaceSelector or ipBlock"),
		Entry("an IP range with a selector", validChannel, set("spec.networkPolicy.metricsFrom", list(map[string]any{
			"ipBlock": map[string]any{"cidr": "10.0.0.0/8"}, "namespaceSelector": map[string]any{},
		})), "spec.networkPolicy.metricsFrom[0].ipBlock", "must not be combined with podSelector or namespaceSelector"),
		Entry("an IP range that is not a CIDR", validChannel, set("spec.networkPolicy.httpFrom", list(map[string]any{
			"ipBlock": map[string]any{"cidr": "10.0.0.300/8"},
		})), "spec.networkPolicy.httpFrom[0].ipBlock.cidr", "must be a CIDR in canonical form"),
		Entry("an IP range with address bits after the prefix", validChannel, set("spec.networkPolicy.httpFrom", list(map[string]any{
			"ipBlock": map[string]any{"cidr": "10.1.2.3/8"},
		})), "spec.networkPolicy.httpFrom[0].ipBlock.cidr", "no address bits set after the prefix"),
		Entry("an exception outside its range", validChannel, set("spec.networkPolicy.httpFrom", list(map[string]any{
			"ipBlock": map[string]any{"cidr": "10.0.0.0/8", "except": list("192.168.0.0/16")},
		})), "spec.networkPolicy.httpFrom[0].ipBlock.except", "each entry must be a range inside cidr, and smaller than it"),
		Entry("an exception as large as its range", validChannel, set("spec.networkPolicy.httpFrom", list(map[string]any{
			"ipBlock": map[string]any{"cidr": "10.0.0.0/8", "except": list("10.0.0.0/8")},
		})), "spec.networkPolicy.httpFrom[0].ipBlock.except", "each entry must be a range inside cidr, and smaller than it"),
		Entry("an exception that is not a CIDR", validChannel, set("spec.networkPolicy.httpFrom", list(map[string]any{
			"ipBlock": map[string]any{"cidr": "10.0.0.0/8", "except": list("10.1.0.0")},
		})), "spec.networkPolicy.httpFrom[0].ipBlock.except[0]", "must be a CIDR in canonical form"),
		Entry("enabled not a boolean", validChannel, set("spec.networkPolicy.enabled", "yes"),
			"spec.networkPolicy.enabled", "must be of type boolean"),

		// SystemEvent.
		Entry("event without a type", validEvent, remove("spec.eventType"),
			"spec.eventType", "Required value"),
		Entry("event without a channel", validEvent, remove("spec.channelRef"),
			"spec.channelRef", "Required value"),
		Entry("event type with spaces", validEvent, set("spec.eventType", "big news"),
			"spec.eventType", "should match"),
		Entry("unknown priority", validEvent, set("spec.priority", "URGENT"),
			"spec.priority", `Unsupported value: "URGENT"`),
		Entry("data that is not an object", validEvent, set("spec.data", "maintenance"),
			"spec.data", "must be of type object"),
		Entry("data beyond its size bound", validEvent, set("spec.data", manyProperties(65)),
			"spec.data", "must have at most 64 items"),
		Entry("expiry before delivery", validEvent, func(obj *unstructured.Unstructured) {
			set("spec.deliverAt", "2027-01-15T22:00:00Z")(obj)
			set("spec.expiresAt", "2027-01-15T21:00:00Z")(obj)
		}, "spec.expiresAt", "must be after deliverAt"),
		Entry("audience of all users and a list", validEvent, set("spec.audience", map[string]any{"all": true, "userIds": list("u1")}),
			"spec.audience", "exactly one of all: true or a non-empty userIds list"),
		Entry("audience of nobody", validEvent, set("spec.audience", map[string]any{"all": false}),
			"spec.audience", "set exactly one of all: true or a non-empty userIds list"),
		Entry("empty user id", validEvent, set("spec.audience", map[string]any{"userIds": list("")}),
			"spec.audience.userIds[0]", "should be at least 1 chars long"),
	)
})

// The samples directory is applied with `kubectl apply -f`, which reads every
// file in it: it must hold Kubernetes objects only.
var _ = It("keeps config/samples free of non-object files", func() {
	entries, err := os.ReadDir(filepath.Join(repoRoot, "config", "samples"))
	Expect(err).NotTo(HaveOccurred())
	for _, e := range entries {
		Expect(e.Name()).To(HaveSuffix(".yaml"))
		Expect(e.Name()).NotTo(Equal("kustomization.yaml"))
	}
})
