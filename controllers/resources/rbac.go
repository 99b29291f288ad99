package resources

import (
	corev1 "k8s.io/api/core/v1"
	rbacv1 "k8s.io/api/rbac/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	notifyv1alpha1 "github.com/herald-notify/herald/api/v1alpha1"
)

// readVerbs let an informer list and watch. On a rule with resourceNames,
// list and watch are authorized only for requests whose field selector is
// exactly metadata.name=<one of the names> (Kubernetes 1.11 and later), so
// there they grant nothing beyond get.
func readVerbs() []string { return []string{"get", "list", "watch"} }

// verbPatch patches an object: a merge, JSON or server-side apply patch.
const verbPatch = "patch"

// statusVerbs write a status subresource.
func statusVerbs() []string { return []string{"update", verbPatch} }

// eventVerbs record an Event and bump the count of a repeated one.
func eventVerbs() []string { return []string{"create", verbPatch} }

// ServiceAccount is the identity of the channel's streamer pods. Its token is
// mounted: the streamer watches its channel, its Secrets and SystemEvents.
func ServiceAccount(in Inputs) *corev1.ServiceAccount {
	return &corev1.ServiceAccount{
		TypeMeta:                     metav1.TypeMeta{APIVersion: "v1", Kind: "ServiceAccount"},
		ObjectMeta:                   in.objectMeta(),
		AutomountServiceAccountToken: new(true),
	}
}

// Role is the least the streamer needs, in the channel's namespace only:
//
//   - get, list, watch its own NotificationChannel, by name;
//   - get, list, watch the key Secret, the NATS credentials Secret and the
//     TLS Secret, by name;
//   - get, list, watch every SystemEvent of the namespace (RBAC cannot select
//     by spec.channelRef; the streamer filters), and update or patch their
//     status, to record delivery;
//   - create and patch Events (core and events.k8s.io), to report problems;
//   - patch its own NotificationChannel's status, by name, to report whether
//     the channel's Secrets are usable (SecretsUsable) and, with broker.type
//     NATS, whether the broker can be reached (BrokerReachable): server-side
//     apply of a condition needs nothing more.
//
// A rule with resourceNames authorizes list and watch only for a request
// whose field selector is metadata.name=<name>: the streamer must watch its
// channel and each Secret with such a single-name informer, never the whole
// collection. The Role changes when a Secret reference changes; apply it
// before the Deployment so that new pods can read the new Secret.
func Role(in Inputs) *rbacv1.Role {
	group := notifyv1alpha1.GroupVersion.Group
	role := &rbacv1.Role{
		TypeMeta:   metav1.TypeMeta{APIVersion: rbacv1.SchemeGroupVersion.String(), Kind: "Role"},
		ObjectMeta: in.objectMeta(),
		Rules: []rbacv1.PolicyRule{
			{APIGroups: []string{group}, Resources: []string{"notificationchannels"}, ResourceNames: []string{in.Channel.Name}, Verbs: readVerbs()},
			{APIGroups: []string{""}, Resources: []string{"secrets"}, ResourceNames: in.Channel.Spec.SecretNames(), Verbs: readVerbs()},
			{APIGroups: []string{group}, Resources: []string{"systemevents"}, Verbs: readVerbs()},
			{APIGroups: []string{group}, Resources: []string{"systemevents/status"}, Verbs: statusVerbs()},
			{APIGroups: []string{""}, Resources: []string{"events"}, Verbs: eventVerbs()},
			{APIGroups: []string{"events.k8s.io"}, Resources: []string{"events"}, Verbs: eventVerbs()},
			{APIGroups: []string{group}, Resources: []string{"notificationchannels/status"}, ResourceNames: []string{in.Channel.Name}, Verbs: []string{verbPatch}},
		},
	}
	return role
}

// RoleBinding grants Role to ServiceAccount.
func RoleBinding(in Inputs) *rbacv1.RoleBinding {
	return &rbacv1.RoleBinding{
		TypeMeta:   metav1.TypeMeta{APIVersion: rbacv1.SchemeGroupVersion.String(), Kind: "RoleBinding"},
		ObjectMeta: in.objectMeta(),
		RoleRef:    rbacv1.RoleRef{APIGroup: rbacv1.GroupName, Kind: "Role", Name: in.name()},
		Subjects: []rbacv1.Subject{
			{Kind: rbacv1.ServiceAccountKind, Name: in.name(), Namespace: in.Channel.Namespace},
		},
	}
}

// AuthDelegatorRole is the built-in ClusterRole that lets the streamers ask
// the API server who a publisher's ServiceAccount token belongs to
// (TokenReview) and whether it may publish (SubjectAccessReview).
const AuthDelegatorRole = "system:auth-delegator"

// LabelChannelNamespace is on the cluster-scoped objects of a channel, which
// owner references cannot tie to it: the channel's namespace.
const LabelChannelNamespace = "notify.herald.dev/channel-namespace"

// AuthDelegatorBinding grants AuthDelegatorRole to the streamers'
// ServiceAccount, so that backends can publish with their own ServiceAccount
// token, authorized by an ordinary Role on notificationchannels/publish.
// It is cluster-scoped, so no owner reference ties it to the channel: the
// reconciler deletes it through a finalizer. Its name is unique per channel:
// "herald:<namespace>:<object name>:auth-delegator".
func AuthDelegatorBinding(in Inputs) *rbacv1.ClusterRoleBinding {
	labels := Labels(in.Channel.Name)
	labels[LabelChannelNamespace] = in.Channel.Namespace
	return &rbacv1.ClusterRoleBinding{
		TypeMeta: metav1.TypeMeta{APIVersion: rbacv1.SchemeGroupVersion.String(), Kind: "ClusterRoleBinding"},
		ObjectMeta: metav1.ObjectMeta{
			Name:   AuthDelegatorBindingName(in.Channel.Namespace, in.Channel.Name),
			Labels: labels,
		},
		RoleRef: rbacv1.RoleRef{APIGroup: rbacv1.GroupName, Kind: "ClusterRole", Name: AuthDelegatorRole},
		Subjects: []rbacv1.Subject{
			{Kind: rbacv1.ServiceAccountKind, Name: in.name(), Namespace: in.Channel.Namespace},
		},
	}
}

// AuthDelegatorBindingName names the AuthDelegatorBinding of a channel.
func AuthDelegatorBindingName(namespace, channel string) string {
	return "herald:" + namespace + ":" + ObjectName(channel) + ":auth-delegator"
}
