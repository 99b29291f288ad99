// Package controllers holds the operator's reconcilers. The permissions the
// operator runs with are declared here, so that config/rbac and the chart's
// ClusterRole are generated from one source. Beyond what the reconcilers
// need, the operator creates TokenReviews and SubjectAccessReviews to check
// who may read its /metrics; holding them (and bind on the role) also lets it
// grant system:auth-delegator to each channel's streamers. Patch on the
// channels themselves adds and removes the operator's finalizer, and hands
// the status fields an earlier version wrote by merge patch over to its
// server-side apply, once per channel (handOverStatus).
//
// The operator holds no right on Secrets. Its streamers' Roles grant reading
// the Secrets their channel names, which the API server lets the operator
// create and bind only with escalate and bind on roles; a
// ValidatingAdmissionPolicy (config/rbac/operator_policy.yaml) confines those
// to the Roles and RoleBindings that resources.Role and resources.RoleBinding
// build. Another confines its ClusterRoleBindings, which it may write and
// delete cluster-wide, to those resources.AuthDelegatorBinding builds.
//
// +kubebuilder:rbac:groups=notify.herald.dev,resources=notificationchannels,verbs=get;list;watch;patch
// +kubebuilder:rbac:groups=notify.herald.dev,resources=notificationchannels/status,verbs=get;update;patch
// +kubebuilder:rbac:groups=notify.herald.dev,resources=notificationchannels/finalizers,verbs=update
// +kubebuilder:rbac:groups=notify.herald.dev,resources=systemevents,verbs=get;list;watch
// +kubebuilder:rbac:groups=notify.herald.dev,resources=systemevents/status,verbs=get;update;patch
// +kubebuilder:rbac:groups="",resources=services;serviceaccounts,verbs=get;list;watch;create;update;patch;delete
// +kubebuilder:rbac:groups="",resources=events,verbs=create;patch
// +kubebuilder:rbac:groups=events.k8s.io,resources=events,verbs=create;patch
// +kubebuilder:rbac:groups=apps,resources=deployments,verbs=get;list;watch;create;update;patch;delete
// +kubebuilder:rbac:groups=networking.k8s.io,resources=networkpolicies,verbs=get;list;watch;create;update;patch;delete
// +kubebuilder:rbac:groups=policy,resources=poddisruptionbudgets,verbs=get;list;watch;create;update;patch;delete
// +kubebuilder:rbac:groups=autoscaling,resources=horizontalpodautoscalers,verbs=get;list;watch;create;update;patch;delete
// +kubebuilder:rbac:groups=rbac.authorization.k8s.io,resources=roles;rolebindings,verbs=get;list;watch;create;update;patch;delete
// +kubebuilder:rbac:groups=rbac.authorization.k8s.io,resources=roles,verbs=escalate;bind
// +kubebuilder:rbac:groups=rbac.authorization.k8s.io,resources=clusterrolebindings,verbs=get;list;watch;create;update;patch;delete
// +kubebuilder:rbac:groups=rbac.authorization.k8s.io,resources=clusterroles,verbs=bind,resourceNames=system:auth-delegator
// +kubebuilder:rbac:groups=authentication.k8s.io,resources=tokenreviews,verbs=create
// +kubebuilder:rbac:groups=authorization.k8s.io,resources=subjectaccessreviews,verbs=create
package controllers
