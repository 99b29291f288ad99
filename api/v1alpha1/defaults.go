package v1alpha1

import (
	"time"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
)

// Defaults of the NotificationChannel spec. The API server applies them from the
// CRD schema (the +kubebuilder:default markers); the streamer's config file
// applies the same values from here. A test keeps the two in step.
const (
	DefaultReplicas          int32 = 1
	DefaultUserIDClaim             = "sub"
	DefaultLeeway                  = 30 * time.Second
	DefaultCookieName              = "herald_token"
	DefaultTicketTTL               = 30 * time.Second
	DefaultExpiryWarning           = 60 * time.Second
	DefaultPublishGrantClaim       = "scope"
	DefaultPublishGrantValue       = "notifications:publish"

	DefaultMaxConnectionsPerUser int32 = 1
	DefaultUserLimitPolicy             = UserLimitReplaceOldest
	DefaultMaxConnectionsPerPod  int32 = 10000
	DefaultKeepAliveInterval           = 30 * time.Second
	DefaultSendQueueBytes        int32 = 65536

	DefaultHistoryMaxEvents int32 = 10000
	DefaultHistoryMaxAge          = time.Hour

	DefaultBrokerType               = BrokerEmbedded
	DefaultNATSStreamReplicas int32 = 1

	DefaultDrainGracePeriod     = 30 * time.Second
	DefaultDrainReconnectJitter = 5 * time.Second

	DefaultServiceType       = ServiceTypeClusterIP
	DefaultServicePort int32 = 80

	DefaultNetworkPolicyEnabled = true

	DefaultAutoscalingMinReplicas          int32 = 2
	DefaultAutoscalingTargetCPUUtilization int32 = 70
	DefaultSystemEventPriority                   = PriorityMedium
)

// DefaultAlgorithms is the JWT algorithm allow-list when the spec names none.
var DefaultAlgorithms = []JWTAlgorithm{HS256}

// DefaultTokenSources are the token sources enabled when the spec names none.
// The access_token query parameter is opt-in: it ends up in proxy logs.
var DefaultTokenSources = []TokenSource{TokenSourceHeader, TokenSourceCookie, TokenSourceTicket}

// DefaultNetworkPolicyMetricsFrom are the sources allowed to reach the
// metrics port when the spec names none: every pod of every namespace.
var DefaultNetworkPolicyMetricsFrom = []NetworkPolicyPeer{{NamespaceSelector: &metav1.LabelSelector{}}}
