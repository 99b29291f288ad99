// Package resources builds every object the operator owns for a
// NotificationChannel: the streamers' ServiceAccount, Role and RoleBinding,
// their Deployment and Service, and, when wanted, a NetworkPolicy, a
// PodDisruptionBudget and a HorizontalPodAutoscaler.
//
// Every builder is a pure function of Inputs: no API calls, no clock, no
// randomness, so the same channel always yields the same objects and each
// builder is tested without an API server (as CloudNativePG builds its pooler
// objects). The objects are complete desired states with TypeMeta set, ready
// to be server-side applied under one field owner; the reconciler adds the
// controller owner references. Builders never alias the channel: maps and
// slices copied from the spec are fresh, so the caller may modify the result.
//
// # Names
//
// Every object is named ObjectName(channel), "<channel>-streamer": the suffix
// keeps the streamers' Service apart from an application Service that has the
// channel's name. Channel names are DNS subdomains of up to 253 characters,
// while a Service name must be a DNS-1035 label (at most 63 characters, no
// dots, a letter first); a channel name that does not fit is shortened with a
// hash of the full name so two channels never share a name. Label values are
// shortened the same way, so read the channel from owner references, never
// from a label.
//
// # Pod-template hash
//
// The streamer reads its channel spec from the API and watches it, applying
// most setting changes (auth, connections, CORS, drain) live without dropping
// a connection, so those are invisible in the pod template. The
// AnnotationConfigHash annotation carries a hash of the inputs that need new
// pods (see ConfigHash: the image, broker, history and the key Secret's
// name): changing them rolls the Deployment, changing anything else does not.
// Key rotation never rolls pods: the keys live in the Secret, not in the
// spec, and the streamer watches that Secret and applies a rotated key
// without dropping connections.
package resources
