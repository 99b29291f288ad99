package rbac_test

import (
	"context"

	. "github.com/onsi/ginkgo/v2"
	. "github.com/onsi/gomega"
	admissionregistrationv1 "k8s.io/api/admissionregistration/v1"
	rbacv1 "k8s.io/api/rbac/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apiserver/pkg/admission/plugin/policy/validating"
	"k8s.io/apiserver/pkg/cel/openapi/resolver"
	"k8s.io/client-go/discovery"
	"k8s.io/client-go/discovery/cached/memory"
	"k8s.io/client-go/restmapper"
	"sigs.k8s.io/controller-runtime/pkg/client"

	notifyv1alpha1 "github.com/herald-notify/herald/api/v1alpha1"
)

// appChannel reads the channel team-a/app the suite created.
func appChannel(ctx context.Context) *notifyv1alpha1.NotificationChannel {
	GinkgoHelper()
	channel := &notifyv1alpha1.NotificationChannel{}
	Expect(server.Client.Get(ctx, client.ObjectKey{Namespace: teamA, Name: "app"}, channel)).To(Succeed())
	return channel
}

// streamerRole is the Role the operator builds for channel team-a/app, under
// the name probe-streamer (app-streamer exists), with change applied.
func streamerRole(ctx context.Context, change func(*rbacv1.Role)) *rbacv1.Role {
	GinkgoHelper()
	role := streamerObjects(appChannel(ctx))[1].(*rbacv1.Role)
	role.Name = "probe-streamer"
	change(role)
	return role
}

// streamerRoleBinding is the RoleBinding the operator builds for channel
// team-a/app, under the name probe-streamer, with change applied.
func streamerRoleBinding(ctx context.Context, change func(*rbacv1.RoleBinding)) *rbacv1.RoleBinding {
	GinkgoHelper()
	binding := streamerObjects(appChannel(ctx))[2].(*rbacv1.RoleBinding)
	binding.Name, binding.RoleRef.Name, binding.Subjects[0].Name = "probe-streamer", "probe-streamer", "probe-streamer"
	change(binding)
	return binding
}

// expectAdmitted creates obj as identity, dry run, and expects the API server
// to accept it when denial is empty, else to refuse it with a message that
// holds denial.
func expectAdmitted(ctx context.Context, as client.Client, obj client.Object, denial string) {
	GinkgoHelper()
	err := as.Create(ctx, obj, client.DryRunAll)
	if denial == "" {
		Expect(err).NotTo(HaveOccurred())
		return
	}
	Expect(err).To(HaveOccurred())
	Expect(apierrors.IsInvalid(err) || apierrors.IsForbidden(err)).To(BeTrue(), "%v", err)
	Expect(err.Error()).To(ContainSubstring(denial))
}

var _ = Describe("the admission policies that fence the operator's escalate and bind on Roles", func() {
	// The API server type-checks a policy in kube-controller-manager, which
	// envtest does not run: the spec runs the same checker, against the
	// server's own OpenAPI schemas of Roles and RoleBindings.
	It("type-check without a warning", func(ctx SpecContext) {
		discoveryClient, err := discovery.NewDiscoveryClientForConfig(server.Config)
		Expect(err).NotTo(HaveOccurred())
		checker := &validating.TypeChecker{
			SchemaResolver: &resolver.ClientDiscoveryResolver{Discovery: discoveryClient},
			RestMapper:     restmapper.NewDeferredDiscoveryRESTMapper(memory.NewMemCacheClient(discoveryClient)),
		}
		for _, name := range []string{"herald-operator-streamer-roles", "herald-operator-streamer-rolebindings"} {
			policy := &admissionregistrationv1.ValidatingAdmissionPolicy{}
			Expect(server.Client.Get(ctx, client.ObjectKey{Name: name}, policy)).To(Succeed())
			Expect(checker.Check(policy)).To(BeEmpty(), name)

			By("finding a type error in " + name + ": the checker knows the schema")
			policy.Spec.Validations = append(policy.Spec.Validations, admissionregistrationv1.Validation{Expression: "object.metadata.name == 1"})
			Expect(checker.Check(policy)).To(ContainElement(HaveField("Warning", ContainSubstring("no matching overload"))), name)
		}
	})

	DescribeTable("a Role the operator creates",
		func(ctx SpecContext, change func(*rbacv1.Role), denial string) {
			expectAdmitted(ctx, asOperator, streamerRole(ctx, change), denial)
		},
		Entry("as the operator builds it, reading the channel's Secrets by name", func(*rbacv1.Role) {}, ""),
		Entry("granting the Secrets without resourceNames", func(r *rbacv1.Role) { r.Rules[1].ResourceNames = nil },
			`Role team-a/probe-streamer: a streamer reads its channel and Secrets by name only; this rule has no resourceNames: resources [secrets]`),
		Entry("granting every verb on everything", func(r *rbacv1.Role) {
			r.Rules = append(r.Rules, rbacv1.PolicyRule{APIGroups: []string{"*"}, Resources: []string{"*"}, Verbs: []string{"*"}})
		}, `the operator grants its streamers only the streamer rules; not one of them: apiGroups ["*"] resources [*] verbs [*]`),
		Entry("granting a write on the Secrets it names", func(r *rbacv1.Role) { r.Rules[1].Verbs = append(r.Rules[1].Verbs, "update") },
			`not one of them: apiGroups [""] resources [secrets] verbs [get, list, watch, update]`),
		Entry("granting pods", func(r *rbacv1.Role) {
			r.Rules = append(r.Rules, rbacv1.PolicyRule{APIGroups: []string{""}, Resources: []string{"pods"}, Verbs: []string{"get"}})
		}, `not one of them: apiGroups [""] resources [pods] verbs [get]`),
		Entry("granting ServiceAccount tokens", func(r *rbacv1.Role) {
			r.Rules = append(r.Rules, rbacv1.PolicyRule{APIGroups: []string{""}, Resources: []string{"serviceaccounts/token"}, Verbs: []string{"create"}})
		}, `not one of them: apiGroups [""] resources [serviceaccounts/token] verbs [create]`),
		Entry("granting RoleBindings", func(r *rbacv1.Role) {
			r.Rules = append(r.Rules, rbacv1.PolicyRule{APIGroups: []string{rbacv1.GroupName}, Resources: []string{"rolebindings"}, Verbs: []string{"create"}})
		}, `not one of them: apiGroups ["rbac.authorization.k8s.io"] resources [rolebindings] verbs [create]`),
		Entry("named otherwise", func(r *rbacv1.Role) { r.Name = "admin" },
			`Role team-a/admin: the operator creates only its streamers' Roles, named <channel>-streamer`),
		Entry("without Herald's labels", func(r *rbacv1.Role) { r.Labels = nil },
			`Role team-a/probe-streamer: a streamer Role is labelled app.kubernetes.io/managed-by=herald-operator`),
		Entry("controlled by no channel", func(r *rbacv1.Role) { r.OwnerReferences = nil },
			`Role team-a/probe-streamer: a streamer Role is controlled by its NotificationChannel`),
	)

	It("refuses the operator a widening of an existing streamer Role", func(ctx SpecContext) {
		role := &rbacv1.Role{}
		Expect(asOperator.Get(ctx, client.ObjectKey{Namespace: teamA, Name: "app-streamer"}, role)).To(Succeed())
		role.Rules[1].ResourceNames = nil
		err := asOperator.Update(ctx, role, client.DryRunAll)
		Expect(err).To(MatchError(ContainSubstring("this rule has no resourceNames: resources [secrets]")))
	})

	DescribeTable("a RoleBinding the operator creates",
		func(ctx SpecContext, change func(*rbacv1.RoleBinding), denial string) {
			expectAdmitted(ctx, asOperator, streamerRoleBinding(ctx, change), denial)
		},
		Entry("as the operator builds it", func(*rbacv1.RoleBinding) {}, ""),
		// The operator may bind this ClusterRole (in ClusterRoleBindings),
		// so RBAC lets the request through and the policy refuses it.
		Entry("of the ClusterRole the operator may bind", func(b *rbacv1.RoleBinding) {
			b.RoleRef = rbacv1.RoleRef{APIGroup: rbacv1.GroupName, Kind: "ClusterRole", Name: "system:auth-delegator"}
		}, `RoleBinding team-a/probe-streamer binds ClusterRole system:auth-delegator: the operator binds only its streamers' Roles`),
		// RBAC refuses this one before the policy: the operator may not
		// bind cluster-admin, nor grant what it does not hold.
		Entry("of cluster-admin", func(b *rbacv1.RoleBinding) {
			b.RoleRef = rbacv1.RoleRef{APIGroup: rbacv1.GroupName, Kind: "ClusterRole", Name: "cluster-admin"}
		}, "is attempting to grant RBAC permissions not currently held"),
		Entry("of another Role", func(b *rbacv1.RoleBinding) { b.RoleRef.Name = "other-streamer" },
			`RoleBinding team-a/probe-streamer binds Role other-streamer: the operator binds a streamer Role only in the binding of the same name`),
		Entry("to the operator's own ServiceAccount", func(b *rbacv1.RoleBinding) {
			b.Subjects = append(b.Subjects, rbacv1.Subject{Kind: rbacv1.ServiceAccountKind, Namespace: operatorNamespace, Name: "herald-operator"})
		}, `RoleBinding team-a/probe-streamer: the operator may not bind a Role to its own ServiceAccount`),
		Entry("to a person", func(b *rbacv1.RoleBinding) {
			b.Subjects = []rbacv1.Subject{{Kind: rbacv1.UserKind, APIGroup: rbacv1.GroupName, Name: viewer}}
		}, `the operator binds a streamer Role only to the ServiceAccount probe-streamer of the same namespace; not that: User viewer@example.com`),
		Entry("to a ServiceAccount of the name in another namespace", func(b *rbacv1.RoleBinding) { b.Subjects[0].Namespace = teamB },
			`not that: ServiceAccount team-b/probe-streamer`),
		Entry("without Herald's labels", func(b *rbacv1.RoleBinding) { b.Labels = nil },
			`RoleBinding team-a/probe-streamer: a streamer RoleBinding is labelled app.kubernetes.io/managed-by=herald-operator`),
		Entry("controlled by no channel", func(b *rbacv1.RoleBinding) { b.OwnerReferences = nil },
			`RoleBinding team-a/probe-streamer: a streamer RoleBinding is controlled by its NotificationChannel`),
	)

	It("leaves alone an identity with the operator's rights under another name", func(ctx SpecContext) {
		const twin = "system:serviceaccount:herald-system:operator-twin"
		binding := &rbacv1.ClusterRoleBinding{
			ObjectMeta: metav1.ObjectMeta{Name: "operator-twin"},
			RoleRef:    rbacv1.RoleRef{APIGroup: rbacv1.GroupName, Kind: "ClusterRole", Name: "herald-operator"},
			Subjects:   []rbacv1.Subject{{Kind: rbacv1.ServiceAccountKind, Namespace: operatorNamespace, Name: "operator-twin"}},
		}
		Expect(server.Client.Create(ctx, binding)).To(Succeed())
		DeferCleanup(func(ctx context.Context) { Expect(server.Client.Delete(ctx, binding)).To(Succeed()) })
		asTwin, err := server.ClientAs(twin)
		Expect(err).NotTo(HaveOccurred())

		wide := &rbacv1.Role{
			ObjectMeta: metav1.ObjectMeta{Namespace: teamA, Name: "wide"},
			Rules:      []rbacv1.PolicyRule{{APIGroups: []string{""}, Resources: []string{"secrets"}, Verbs: []string{"get", "list"}}},
		}
		// RBAC caches bindings briefly: the new binding takes effect soon.
		Eventually(func(ctx context.Context) error {
			return asTwin.Create(ctx, wide.DeepCopy(), client.DryRunAll)
		}).WithContext(ctx).Should(Succeed())
		expectAdmitted(ctx, asOperator, wide, "Role team-a/wide: the operator creates only its streamers' Roles")
	})
})
