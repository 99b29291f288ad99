package v1alpha1

import (
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
)

// NotificationChannelSpec is what a platform team asks for: a fleet of streamer
// pods that authenticate clients with the channel's keys and deliver its events.
//
// +kubebuilder:validation:XValidation:rule="!has(self.replicas) || self.replicas <= 1 || (has(self.broker) && has(self.broker.type) && self.broker.type == 'NATS')",fieldPath=".replicas",message="more than one replica requires broker.type NATS: the embedded log lives inside one pod"
// +kubebuilder:validation:XValidation:rule="!has(self.autoscaling) || self.autoscaling.maxReplicas <= 1 || (has(self.broker) && has(self.broker.type) && self.broker.type == 'NATS')",fieldPath=".autoscaling",message="autoscaling beyond one replica requires broker.type NATS: the embedded log lives inside one pod"
// +kubebuilder:validation:XValidation:rule="!has(self.autoscaling) || (has(self.pod) && has(self.pod.resources) && has(self.pod.resources.requests) && 'cpu' in self.pod.resources.requests)",fieldPath=".autoscaling",message="autoscaling needs pod.resources.requests.cpu: the autoscaler scales on CPU use relative to the request, and without one it never acts"
type NotificationChannelSpec struct {
	// Replicas is the number of streamer pods. More than one requires the NATS
	// broker, so that every replica sees the same ordered log. Ignored while
	// autoscaling is set. Zero stops the channel without deleting it.
	// +kubebuilder:default=1
	// +kubebuilder:validation:Minimum=0
	// +kubebuilder:validation:Maximum=100
	// +optional
	Replicas *int32 `json:"replicas,omitempty"`

	// Image overrides the streamer image. Empty means the operator's own image,
	// so operator and streamers never drift apart.
	// +kubebuilder:validation:MaxLength=512
	// +optional
	Image string `json:"image,omitempty"`

	// Auth says how clients and publishers prove who they are.
	// +required
	Auth AuthSpec `json:"auth"`

	// Connections bounds what each user and each pod may hold open.
	// +kubebuilder:default={}
	// +optional
	Connections ConnectionsSpec `json:"connections,omitempty"`

	// History bounds the event log that resuming clients replay from.
	// +kubebuilder:default={}
	// +optional
	History HistorySpec `json:"history,omitempty"`

	// Broker selects where the channel's ordered event log lives.
	// +kubebuilder:default={}
	// +optional
	Broker BrokerSpec `json:"broker,omitempty"`

	// CORS lists the browser origins allowed to open streams and tickets.
	// +optional
	CORS CORSSpec `json:"cors,omitempty"`

	// Drain says how a stopping pod hands its clients to the others.
	// +kubebuilder:default={}
	// +optional
	Drain DrainSpec `json:"drain,omitempty"`

	// Pod holds the knobs of the streamer pods' template.
	// +optional
	Pod PodSpec `json:"pod,omitempty"`

	// Service says how the streamers are exposed inside the cluster.
	// +kubebuilder:default={}
	// +optional
	Service ServiceSpec `json:"service,omitempty"`

	// HTTP says which protocols the streamers serve streams and the publish
	// API with. Empty means plain HTTP/1.1.
	// +optional
	HTTP HTTPSpec `json:"http,omitempty"`

	// Autoscaling, when set, lets a HorizontalPodAutoscaler own the replica
	// count between its bounds; replicas is then ignored.
	// +optional
	Autoscaling *AutoscalingSpec `json:"autoscaling,omitempty"`

	// NetworkPolicy fences the streamer pods: on by default, they accept
	// traffic on their serving and metrics ports only, each from the sources
	// named here.
	// +kubebuilder:default={}
	// +optional
	NetworkPolicy NetworkPolicySpec `json:"networkPolicy,omitempty"`
}

// JWTAlgorithm is a JWS algorithm the channel accepts. "none" is never accepted.
// +kubebuilder:validation:Enum=HS256;HS384;HS512;RS256;RS384;RS512;PS256;PS384;PS512;ES256;ES384;ES512;EdDSA
type JWTAlgorithm string

// The accepted JWS algorithms (RFC 7518, RFC 8037).
const (
	HS256 JWTAlgorithm = "HS256"
	HS384 JWTAlgorithm = "HS384"
	HS512 JWTAlgorithm = "HS512"
	RS256 JWTAlgorithm = "RS256"
	RS384 JWTAlgorithm = "RS384"
	RS512 JWTAlgorithm = "RS512"
	PS256 JWTAlgorithm = "PS256"
	PS384 JWTAlgorithm = "PS384"
	PS512 JWTAlgorithm = "PS512"
	ES256 JWTAlgorithm = "ES256"
	ES384 JWTAlgorithm = "ES384"
	ES512 JWTAlgorithm = "ES512"
	EdDSA JWTAlgorithm = "EdDSA"
)

// JWTAlgorithms are the accepted JWS algorithms in the order of the enum
// marker above: the one list the streamer verifies and `herald token` signs
// with. A test ties it to the generated CRD's enum.
var JWTAlgorithms = []JWTAlgorithm{
	HS256, HS384, HS512,
	RS256, RS384, RS512,
	PS256, PS384, PS512,
	ES256, ES384, ES512,
	EdDSA,
}

// IsHMAC reports whether the algorithm verifies with a shared secret rather
// than a public key.
func (a JWTAlgorithm) IsHMAC() bool { return a == HS256 || a == HS384 || a == HS512 }

// TokenSource is a place in the request where the streamer looks for a JWT.
// +kubebuilder:validation:Enum=Header;Cookie;Ticket;QueryParameter
type TokenSource string

// Token sources, in the order they are tried: the first one found wins.
const (
	// TokenSourceHeader is "Authorization: Bearer <jwt>".
	TokenSourceHeader TokenSource = "Header"
	// TokenSourceCookie is the cookie named by auth.cookieName.
	TokenSourceCookie TokenSource = "Cookie"
	// TokenSourceTicket is the single-use "ticket" query parameter issued by
	// POST /api/v1/sse/tickets.
	TokenSourceTicket TokenSource = "Ticket"
	// TokenSourceQueryParameter is the raw "access_token" query parameter.
	// It leaks into proxy and browser history, so it is off unless listed.
	TokenSourceQueryParameter TokenSource = "QueryParameter"
)

// AuthSpec configures JWT verification (RFC 8725) for streams and publishers.
type AuthSpec struct {
	// Algorithms is the JWS algorithm allow-list. A token whose "alg" is not
	// listed, or does not match its key's type, is rejected. HMAC (HS*) and
	// public-key algorithms cannot be mixed: a key is either a shared secret or
	// a public key, and mixing them enables algorithm-confusion attacks.
	// +kubebuilder:default={"HS256"}
	// +kubebuilder:validation:MinItems=1
	// +kubebuilder:validation:MaxItems=13
	// +listType=set
	// +kubebuilder:validation:XValidation:rule="self.all(a, a.startsWith('HS')) || self.all(a, !a.startsWith('HS'))",message="HMAC algorithms (HS256, HS384, HS512) and public-key algorithms must not be mixed: a key is either a shared secret or a public key"
	// +optional
	Algorithms []JWTAlgorithm `json:"algorithms,omitempty"`

	// KeySecretRef names a Secret in the channel's namespace holding the
	// verification keys. Each data entry is one key and the entry's name is
	// its key id ("kid"): raw bytes for HMAC (at least as long as the hash,
	// e.g. 32 bytes for HS256), a PEM public key otherwise. A token's "kid"
	// selects the entry; a token without "kid" is accepted only when the
	// Secret holds exactly one key. Rotate by adding the new entry, moving the
	// signers over, then removing the old one: no connection is dropped.
	// +required
	KeySecretRef LocalSecretReference `json:"keySecretRef"`

	// Issuer, when set, must equal the token's "iss" claim.
	// +kubebuilder:validation:MaxLength=1024
	// +optional
	Issuer string `json:"issuer,omitempty"`

	// Audiences, when set, must contain one of the token's "aud" values.
	// +kubebuilder:validation:MaxItems=16
	// +kubebuilder:validation:items:MinLength=1
	// +kubebuilder:validation:items:MaxLength=1024
	// +listType=set
	// +optional
	Audiences []string `json:"audiences,omitempty"`

	// UserIDClaim is the claim that holds the user id; tokens where it is
	// missing or empty are rejected.
	// +kubebuilder:default="sub"
	// +kubebuilder:validation:MinLength=1
	// +kubebuilder:validation:MaxLength=256
	// +optional
	UserIDClaim string `json:"userIdClaim,omitempty"`

	// Leeway is the clock skew tolerated on "exp", "nbf" and "iat" (0s to 5m).
	// +kubebuilder:default="30s"
	// +kubebuilder:validation:Type=string
	// +kubebuilder:validation:Pattern=`^([0-9]+(\.[0-9]+)?(ms|s|m|h))+$`
	// +kubebuilder:validation:XValidation:rule="duration(self) <= duration('5m')",message="must be at most 5m"
	// +optional
	Leeway *metav1.Duration `json:"leeway,omitempty"`

	// TokenSources are the places a stream request may carry its token. The
	// first found wins, in the order Header, Cookie, Ticket, QueryParameter.
	// +kubebuilder:default={"Header","Cookie","Ticket"}
	// +kubebuilder:validation:MinItems=1
	// +kubebuilder:validation:MaxItems=4
	// +listType=set
	// +optional
	TokenSources []TokenSource `json:"tokenSources,omitempty"`

	// CookieName is the cookie read when the Cookie token source is enabled.
	// +kubebuilder:default="herald_token"
	// +kubebuilder:validation:Pattern=`^[!#$%&'*+\-.^_|~0-9A-Za-z]{1,128}$`
	// +optional
	CookieName string `json:"cookieName,omitempty"`

	// TicketTTL is how long a ticket from POST /api/v1/sse/tickets stays
	// valid (1s to 5m). Tickets are single-use either way.
	// +kubebuilder:default="30s"
	// +kubebuilder:validation:Type=string
	// +kubebuilder:validation:Pattern=`^([0-9]+(\.[0-9]+)?(ms|s|m|h))+$`
	// +kubebuilder:validation:XValidation:rule="duration(self) >= duration('1s') && duration(self) <= duration('5m')",message="must be between 1s and 5m"
	// +optional
	TicketTTL *metav1.Duration `json:"ticketTTL,omitempty"`

	// ExpiryWarning is how long before a stream's token expires the stream
	// sends a token_expiring event, time to refresh the token in place
	// (0s to 1h; 0s sends none). A stream takes a change with its next token:
	// at connect or refresh.
	// +kubebuilder:default="60s"
	// +kubebuilder:validation:Type=string
	// +kubebuilder:validation:Pattern=`^([0-9]+(\.[0-9]+)?(ms|s|m|h))+$`
	// +kubebuilder:validation:XValidation:rule="duration(self) <= duration('1h')",message="must be at most 1h"
	// +optional
	ExpiryWarning *metav1.Duration `json:"expiryWarning,omitempty"`

	// PublishGrant is the claim a token must carry to use the publish API.
	// +kubebuilder:default={}
	// +optional
	PublishGrant PublishGrantSpec `json:"publishGrant,omitempty"`
}

// PublishGrantSpec names the claim value that allows a token to publish.
type PublishGrantSpec struct {
	// Claim is the claim holding the grant: either a space-separated string
	// (as OAuth "scope") or an array of strings.
	// +kubebuilder:default="scope"
	// +kubebuilder:validation:MinLength=1
	// +kubebuilder:validation:MaxLength=256
	// +optional
	Claim string `json:"claim,omitempty"`

	// Value is the grant the claim must contain.
	// +kubebuilder:default="notifications:publish"
	// +kubebuilder:validation:MinLength=1
	// +kubebuilder:validation:MaxLength=256
	// +kubebuilder:validation:Pattern=`^\S+$`
	// +optional
	Value string `json:"value,omitempty"`
}

// LocalSecretReference names a Secret in the referrer's namespace.
type LocalSecretReference struct {
	// Name of the Secret.
	// +kubebuilder:validation:MinLength=1
	// +kubebuilder:validation:MaxLength=253
	// +kubebuilder:validation:Pattern=`^[a-z0-9]([-a-z0-9]*[a-z0-9])?(\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*$`
	// +required
	Name string `json:"name"`
}

// UserLimitPolicy says what happens when a user opens one connection more than
// connections.maxPerUser allows.
// +kubebuilder:validation:Enum=ReplaceOldest;Reject
type UserLimitPolicy string

// User limit policies.
const (
	// UserLimitReplaceOldest closes the user's oldest stream, as the NestJS
	// module did: the newest tab wins.
	UserLimitReplaceOldest UserLimitPolicy = "ReplaceOldest"
	// UserLimitReject answers the new request 429 and keeps the old streams.
	UserLimitReject UserLimitPolicy = "Reject"
)

// ConnectionsSpec bounds connections per user and per pod.
type ConnectionsSpec struct {
	// MaxPerUser is how many streams one user may hold open at once, across
	// all replicas.
	// +kubebuilder:default=1
	// +kubebuilder:validation:Minimum=1
	// +kubebuilder:validation:Maximum=1000
	// +optional
	MaxPerUser int32 `json:"maxPerUser,omitempty"`

	// UserLimitPolicy is what happens to a connection beyond maxPerUser.
	// +kubebuilder:default=ReplaceOldest
	// +optional
	UserLimitPolicy UserLimitPolicy `json:"userLimitPolicy,omitempty"`

	// MaxPerPod is how many streams one pod holds; beyond it new requests get
	// 503 with Retry-After, so a load balancer tries another pod.
	// +kubebuilder:default=10000
	// +kubebuilder:validation:Minimum=1
	// +kubebuilder:validation:Maximum=1000000
	// +optional
	MaxPerPod int32 `json:"maxPerPod,omitempty"`

	// KeepAliveInterval is how often an idle stream gets an SSE comment line,
	// which keeps proxies from closing it and detects dead clients (1s to 10m).
	// +kubebuilder:default="30s"
	// +kubebuilder:validation:Type=string
	// +kubebuilder:validation:Pattern=`^([0-9]+(\.[0-9]+)?(ms|s|m|h))+$`
	// +kubebuilder:validation:XValidation:rule="duration(self) >= duration('1s') && duration(self) <= duration('10m')",message="must be between 1s and 10m"
	// +optional
	KeepAliveInterval *metav1.Duration `json:"keepAliveInterval,omitempty"`

	// SendQueueBytes bounds the encoded events waiting to be written to one
	// client. A client that falls further behind is disconnected as a slow
	// consumer and resumes from the log with Last-Event-ID.
	// +kubebuilder:default=65536
	// +kubebuilder:validation:Minimum=4096
	// +kubebuilder:validation:Maximum=16777216
	// +optional
	SendQueueBytes int32 `json:"sendQueueBytes,omitempty"`
}

// HistorySpec bounds the ordered event log. A client that resumes from an
// event older than this is told so ("recovered": false).
type HistorySpec struct {
	// MaxEvents is the most events the log retains.
	// +kubebuilder:default=10000
	// +kubebuilder:validation:Minimum=1
	// +kubebuilder:validation:Maximum=10000000
	// +optional
	MaxEvents int32 `json:"maxEvents,omitempty"`

	// MaxAge is how long an event stays in the log (1s to 720h).
	// +kubebuilder:default="1h"
	// +kubebuilder:validation:Type=string
	// +kubebuilder:validation:Pattern=`^([0-9]+(\.[0-9]+)?(ms|s|m|h))+$`
	// +kubebuilder:validation:XValidation:rule="duration(self) >= duration('1s') && duration(self) <= duration('720h')",message="must be between 1s and 720h"
	// +optional
	MaxAge *metav1.Duration `json:"maxAge,omitempty"`
}

// BrokerType selects the log implementation.
// +kubebuilder:validation:Enum=Embedded;NATS
type BrokerType string

// Broker types.
const (
	// BrokerEmbedded keeps the log in the streamer's memory: one replica only.
	BrokerEmbedded BrokerType = "Embedded"
	// BrokerNATS keeps the log in a NATS JetStream stream: any replica count.
	BrokerNATS BrokerType = "NATS"
)

// BrokerSpec selects where the channel's ordered event log lives.
// +kubebuilder:validation:XValidation:rule="(has(self.type) && self.type == 'NATS') == has(self.nats)",fieldPath=".nats",message="nats is required when type is NATS and must be omitted otherwise"
type BrokerSpec struct {
	// Type is Embedded (in-process, one replica) or NATS (JetStream, any
	// number of replicas).
	// +kubebuilder:default=Embedded
	// +optional
	Type BrokerType `json:"type,omitempty"`

	// NATS points at an existing NATS server with JetStream enabled. Herald
	// does not deploy NATS.
	// +optional
	NATS *NATSBrokerSpec `json:"nats,omitempty"`
}

// NATSBrokerSpec points at an existing NATS JetStream deployment.
type NATSBrokerSpec struct {
	// URL of the NATS server(s), comma-separated, e.g. nats://nats.nats:4222.
	// +kubebuilder:validation:MaxLength=2048
	// +kubebuilder:validation:Pattern=`^(nats|tls|ws|wss)://[^\s,]+(,(nats|tls|ws|wss)://[^\s,]+)*$`
	// +required
	URL string `json:"url"`

	// CredentialsSecretRef names a Secret with the client's credentials: at
	// most one of an entry "nats.creds" (a JWT and NKey credentials file),
	// "token", or "username" and "password"; and optionally "ca.crt", the PEM
	// CAs that sign the servers' TLS certificates. Omit it for a server
	// without authentication whose certificates the system CAs verify.
	// +optional
	CredentialsSecretRef *LocalSecretReference `json:"credentialsSecretRef,omitempty"`

	// StreamReplicas is the JetStream replication factor of the channel's stream.
	// +kubebuilder:default=1
	// +kubebuilder:validation:Minimum=1
	// +kubebuilder:validation:Maximum=5
	// +optional
	StreamReplicas int32 `json:"streamReplicas,omitempty"`
}

// Entries of the Secret named by NATSBrokerSpec.CredentialsSecretRef.
const (
	// NATSCredsKey holds a NATS credentials file (a user JWT and its NKey seed).
	NATSCredsKey = "nats.creds"
	// NATSTokenKey holds an authentication token.
	NATSTokenKey = "token"
	// NATSUsernameKey and NATSPasswordKey hold a user name and its password.
	NATSUsernameKey = "username"
	NATSPasswordKey = "password"
	// NATSCAKey holds the PEM CAs that sign the NATS servers' certificates.
	NATSCAKey = "ca.crt"
)

// CORSSpec is the cross-origin allow-list.
type CORSSpec struct {
	// AllowedOrigins are the exact origins (scheme://host[:port]) whose pages
	// may open streams, with credentials. No wildcard: a wildcard with
	// credentials would let any site read a user's events.
	// +kubebuilder:validation:MaxItems=64
	// +kubebuilder:validation:items:Pattern=`^https?://[A-Za-z0-9.-]+(:[0-9]{1,5})?$`
	// +listType=set
	// +optional
	AllowedOrigins []string `json:"allowedOrigins,omitempty"`
}

// DrainSpec is the graceful-shutdown behaviour of a streamer pod.
// +kubebuilder:validation:XValidation:rule="!has(self.reconnectJitter) || !has(self.gracePeriod) || duration(self.reconnectJitter) <= duration(self.gracePeriod)",fieldPath=".reconnectJitter",message="must not exceed gracePeriod"
type DrainSpec struct {
	// GracePeriod is how long a stopping pod takes to close its streams; they
	// are closed spread over this period (1s to 1h). The pod's
	// terminationGracePeriodSeconds is derived from it.
	// +kubebuilder:default="30s"
	// +kubebuilder:validation:Type=string
	// +kubebuilder:validation:Pattern=`^([0-9]+(\.[0-9]+)?(ms|s|m|h))+$`
	// +kubebuilder:validation:XValidation:rule="duration(self) >= duration('1s') && duration(self) <= duration('1h')",message="must be between 1s and 1h"
	// +optional
	GracePeriod *metav1.Duration `json:"gracePeriod,omitempty"`

	// ReconnectJitter is the upper bound of the random "retry:" delay sent to a
	// client whose stream is closed by a drain, so clients do not all come back
	// at once (0s up to gracePeriod).
	// +kubebuilder:default="5s"
	// +kubebuilder:validation:Type=string
	// +kubebuilder:validation:Pattern=`^([0-9]+(\.[0-9]+)?(ms|s|m|h))+$`
	// +optional
	ReconnectJitter *metav1.Duration `json:"reconnectJitter,omitempty"`
}

// PodSpec holds the knobs of the streamer pod template.
type PodSpec struct {
	// Resources of the streamer container.
	// +optional
	Resources corev1.ResourceRequirements `json:"resources,omitempty"`

	// NodeSelector constrains the nodes the pods run on.
	// +optional
	NodeSelector map[string]string `json:"nodeSelector,omitempty"`

	// Tolerations of the pods.
	// +kubebuilder:validation:MaxItems=64
	// +listType=atomic
	// +optional
	Tolerations []corev1.Toleration `json:"tolerations,omitempty"`

	// Affinity of the pods. The operator always spreads pods across nodes.
	// +optional
	Affinity *corev1.Affinity `json:"affinity,omitempty"`

	// Annotations added to the pods.
	// +optional
	Annotations map[string]string `json:"annotations,omitempty"`

	// PriorityClassName of the pods.
	// +kubebuilder:validation:MaxLength=253
	// +optional
	PriorityClassName string `json:"priorityClassName,omitempty"`
}

// ServiceType is how the Service is exposed.
// +kubebuilder:validation:Enum=ClusterIP;NodePort;LoadBalancer
type ServiceType string

// Service types.
const (
	ServiceTypeClusterIP    ServiceType = "ClusterIP"
	ServiceTypeNodePort     ServiceType = "NodePort"
	ServiceTypeLoadBalancer ServiceType = "LoadBalancer"
)

// ServiceSpec is the Service in front of the streamer pods.
type ServiceSpec struct {
	// Type of the Service.
	// +kubebuilder:default=ClusterIP
	// +optional
	Type ServiceType `json:"type,omitempty"`

	// Port the Service serves streams and the publish API on.
	// +kubebuilder:default=80
	// +kubebuilder:validation:Minimum=1
	// +kubebuilder:validation:Maximum=65535
	// +optional
	Port int32 `json:"port,omitempty"`

	// Annotations added to the Service (load balancer settings, for example).
	// +optional
	Annotations map[string]string `json:"annotations,omitempty"`
}

// HTTPSpec is how the streamer pods serve streams and the publish API: plain
// HTTP/1.1 (the zero value), TLS with HTTP/2 by ALPN, or unencrypted HTTP/2
// (h2c) beside HTTP/1.1 for proxies that speak it. HTTP/2 lets a browser's
// tabs share one connection, past the six HTTP/1.1 connections it holds per
// host. The metrics and probe port stays plain HTTP either way.
// +kubebuilder:validation:XValidation:rule="!has(self.tls) || !has(self.h2c) || !self.h2c",fieldPath=".h2c",message="h2c must be false when tls is set: TLS serves HTTP/2 by ALPN"
type HTTPSpec struct {
	// TLS, when set, serves TLS with the certificate of a Secret, HTTP/2 and
	// HTTP/1.1 by ALPN.
	// +optional
	TLS *HTTPTLSSpec `json:"tls,omitempty"`

	// H2C also serves unencrypted HTTP/2 with prior knowledge, for a proxy
	// that speaks HTTP/2 to the pods; HTTP/1.1 is still served. Not with tls.
	// +optional
	H2C bool `json:"h2c,omitempty"`
}

// HTTPTLSSpec is the streamers' TLS certificate.
type HTTPTLSSpec struct {
	// SecretRef names a kubernetes.io/tls Secret in the channel's namespace:
	// "tls.crt" (the PEM certificate chain) and "tls.key" (its private key).
	// A changed Secret applies to new TLS handshakes without a restart; open
	// connections keep theirs.
	// +required
	SecretRef LocalSecretReference `json:"secretRef"`
}

// NetworkPolicySpec is the NetworkPolicy the operator applies to the channel's
// pods. It covers traffic into the pods only: their traffic out, to the API
// server and to NATS, is left to the cluster's own policies.
type NetworkPolicySpec struct {
	// Enabled applies the NetworkPolicy; false deletes it, and the pods then
	// accept whatever the namespace's other policies allow. Unset means true.
	// +kubebuilder:default=true
	// +optional
	Enabled *bool `json:"enabled,omitempty"`

	// HTTPFrom are the sources allowed to reach the serving port (streams,
	// tickets and the publish API). Unset means every source, in the cluster
	// and outside it: browsers arrive through an ingress or a load balancer.
	// An empty list is refused: leave the field out to allow every source.
	// +kubebuilder:validation:MinItems=1
	// +kubebuilder:validation:MaxItems=32
	// +listType=atomic
	// +optional
	HTTPFrom []NetworkPolicyPeer `json:"httpFrom,omitempty"`

	// MetricsFrom are the sources allowed to reach the metrics port
	// (/metrics, /healthz, /readyz). Unset means every pod of every
	// namespace ({namespaceSelector: {}}), so that turning the policy on
	// never cuts off an in-cluster scraper. An empty list is refused. The
	// kubelet's probes come from the node, which a NetworkPolicy always
	// allows.
	// +kubebuilder:default={{namespaceSelector: {}}}
	// +kubebuilder:validation:MinItems=1
	// +kubebuilder:validation:MaxItems=32
	// +listType=atomic
	// +optional
	MetricsFrom []NetworkPolicyPeer `json:"metricsFrom,omitempty"`
}

// NetworkPolicyPeer is one source of traffic, as in a NetworkPolicy's "from":
// pods (podSelector: pods of the channel's namespace, or of the namespaces
// namespaceSelector selects), every pod of some namespaces
// (namespaceSelector alone), or an IP range (ipBlock alone). An empty
// selector ({}) selects everything.
// +kubebuilder:validation:XValidation:rule="has(self.podSelector) || has(self.namespaceSelector) || has(self.ipBlock)",message="must set podSelector, namespaceSelector or ipBlock"
// +kubebuilder:validation:XValidation:rule="!has(self.ipBlock) || !(has(self.podSelector) || has(self.namespaceSelector))",fieldPath=".ipBlock",message="must not be combined with podSelector or namespaceSelector"
type NetworkPolicyPeer struct {
	// PodSelector selects pods by label.
	// +optional
	PodSelector *metav1.LabelSelector `json:"podSelector,omitempty"`

	// NamespaceSelector selects namespaces by label
	// (kubernetes.io/metadata.name holds each namespace's name).
	// +optional
	NamespaceSelector *metav1.LabelSelector `json:"namespaceSelector,omitempty"`

	// IPBlock is a range of IP addresses, typically from outside the
	// cluster: pod IPs are better selected by label, as they change.
	// +optional
	IPBlock *IPBlock `json:"ipBlock,omitempty"`
}

// IPBlock is a CIDR with optional exceptions.
// +kubebuilder:validation:XValidation:rule="!has(self.except) || !isCIDR(self.cidr) || self.except.all(e, !isCIDR(e) || (cidr(self.cidr).containsCIDR(cidr(e)) && cidr(e).prefixLength() > cidr(self.cidr).prefixLength()))",fieldPath=".except",message="each entry must be a range inside cidr, and smaller than it"
type IPBlock struct {
	// CIDR is the range, such as 10.0.0.0/8 or 2001:db8::/32.
	// +kubebuilder:validation:MinLength=1
	// +kubebuilder:validation:MaxLength=43
	// +kubebuilder:validation:XValidation:rule="isCIDR(self) && string(cidr(self).masked()) == self",message="must be a CIDR in canonical form, such as 10.0.0.0/8 or 2001:db8::/32 (no address bits set after the prefix)"
	// +required
	CIDR string `json:"cidr"`

	// Except are ranges inside cidr that are not allowed.
	// +kubebuilder:validation:MaxItems=16
	// +kubebuilder:validation:items:MaxLength=43
	// +kubebuilder:validation:items:XValidation:rule="isCIDR(self) && string(cidr(self).masked()) == self",message="must be a CIDR in canonical form, such as 10.1.0.0/16"
	// +listType=atomic
	// +optional
	Except []string `json:"except,omitempty"`
}

// AutoscalingSpec configures a HorizontalPodAutoscaler for the streamers.
// +kubebuilder:validation:XValidation:rule="self.minReplicas <= self.maxReplicas",fieldPath=".minReplicas",message="must not exceed maxReplicas"
type AutoscalingSpec struct {
	// MinReplicas is the lower bound of the replica count.
	// +kubebuilder:default=2
	// +kubebuilder:validation:Minimum=1
	// +kubebuilder:validation:Maximum=100
	// +optional
	MinReplicas int32 `json:"minReplicas,omitempty"`

	// MaxReplicas is the upper bound of the replica count.
	// +kubebuilder:validation:Minimum=1
	// +kubebuilder:validation:Maximum=100
	// +required
	MaxReplicas int32 `json:"maxReplicas"`

	// TargetCPUUtilizationPercentage is the average CPU use, as a percentage
	// of the requested CPU, that the autoscaler aims for.
	// +kubebuilder:default=70
	// +kubebuilder:validation:Minimum=1
	// +kubebuilder:validation:Maximum=100
	// +optional
	TargetCPUUtilizationPercentage int32 `json:"targetCPUUtilizationPercentage,omitempty"`
}

// NotificationChannelStatus is what the operator observed of the channel.
type NotificationChannelStatus struct {
	// ObservedGeneration is the last generation the operator is done with:
	// every object applied, or stalled on a spec it cannot apply (Stalled).
	// +optional
	ObservedGeneration int64 `json:"observedGeneration,omitempty"`

	// Replicas is the number of streamer pods that exist.
	// +optional
	Replicas int32 `json:"replicas,omitempty"`

	// ReadyReplicas is the number of streamer pods ready to serve streams.
	// +optional
	ReadyReplicas int32 `json:"readyReplicas,omitempty"`

	// Endpoint is the in-cluster URL of the stream endpoint.
	// +optional
	Endpoint string `json:"endpoint,omitempty"`

	// Conditions: Ready, Progressing and Degraded, with reasons to act on,
	// and Stalled while the operator cannot go on with the spec;
	// SecretsUsable; with broker.type NATS, BrokerReachable. Each says in its
	// observedGeneration which generation it was computed for. Each writer
	// applies its own (server-side apply of the status subresource): the
	// operator, field manager "herald-operator", every field of the status
	// and the first four; the streamers SecretsUsable, field manager
	// "herald-streamer-secrets", and BrokerReachable, "herald-streamer".
	// +listType=map
	// +listMapKey=type
	// +optional
	Conditions []metav1.Condition `json:"conditions,omitempty"`
}

// NotificationChannel is a real-time notification endpoint: the operator runs a
// fleet of streamer pods for it that clients open Server-Sent Event streams on.
//
// +kubebuilder:object:root=true
// +kubebuilder:subresource:status
// +kubebuilder:resource:shortName=nch,categories=herald
// +kubebuilder:printcolumn:name="Ready",type=string,JSONPath=`.status.conditions[?(@.type=="Ready")].status`
// +kubebuilder:printcolumn:name="Replicas",type=integer,JSONPath=`.status.replicas`
// +kubebuilder:printcolumn:name="Available",type=integer,JSONPath=`.status.readyReplicas`
// +kubebuilder:printcolumn:name="Broker",type=string,JSONPath=`.spec.broker.type`
// +kubebuilder:printcolumn:name="Endpoint",type=string,JSONPath=`.status.endpoint`,priority=1
// +kubebuilder:printcolumn:name="Reason",type=string,JSONPath=`.status.conditions[?(@.type=="Ready")].reason`,priority=1
// +kubebuilder:printcolumn:name="Age",type=date,JSONPath=`.metadata.creationTimestamp`
type NotificationChannel struct {
	metav1.TypeMeta   `json:",inline"`
	metav1.ObjectMeta `json:"metadata,omitempty"`

	// Spec is the desired channel.
	// +required
	Spec NotificationChannelSpec `json:"spec"`

	// Status is what the operator observed.
	// +optional
	Status NotificationChannelStatus `json:"status,omitempty"`
}

// NotificationChannelList is a list of NotificationChannels.
//
// +kubebuilder:object:root=true
type NotificationChannelList struct {
	metav1.TypeMeta `json:",inline"`
	metav1.ListMeta `json:"metadata,omitempty"`
	Items           []NotificationChannel `json:"items"`
}
