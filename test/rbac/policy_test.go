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
	"github.com/herald-notify/herald/controllers/resources"
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

// authDelegatorBinding is the ClusterRoleBinding the operator builds for a
// channel of team-a named channelName (app's spec, which the binding does not
// read), with change applied.
func authDelegatorBinding(ctx context.Context, channelName string, change func(*rbacv1.ClusterRoleBinding)) *rbacv1.ClusterRoleBinding {
	GinkgoHelper()
	channel := appChannel(ctx)
	channel.Name = channelName
	binding := streamerObjects(channel)[3].(*rbacv1.ClusterRoleBinding)
	change(binding)
	return binding
}

// foreignBinding creates, as the administrator, a ClusterRoleBinding of
// system:auth-delegator (which the operator may bind, so RBAC lets its
// requests through to the policy) that the operator did not build, and
// deletes it after the spec.
func foreignBinding(ctx context.Context, name string, subject rbacv1.Subject) *rbacv1.ClusterRoleBinding {
	GinkgoHelper()
	binding := &rbacv1.ClusterRoleBinding{
		ObjectMeta: metav1.ObjectMeta{Name: name},
		RoleRef:    rbacv1.RoleRef{APIGroup: rbacv1.GroupName, Kind: "ClusterRole", Name: resources.AuthDelegatorRole},
		Subjects:   []rbacv1.Subject{subject},
	}
	Expect(server.Client.Create(ctx, binding)).To(Succeed())
	DeferCleanup(func(ctx context.Context) { Expect(server.Client.Delete(ctx, binding)).To(Succeed()) })
	return binding
}

// metricsServer is the subject of a binding of system:auth-delegator as
// clusters commonly hold one, which the operator did not build.
var metricsServer = rbacv1.Subject{Kind: rbacv1.ServiceAccountKind, Namespace: "kube-system", Name: "metrics-server"}

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

var _ = Describe("the admission policies that fence the operator's escalate and bind on Roles and its ClusterRoleBindings", func() {
	// The API server type-checks a policy in kube-controller-manager, which
	// envtest does not run: the spec runs the same checker, against the
	// server's own OpenAPI schemas of Roles, RoleBindings and
	// ClusterRoleBindings.
	It("type-check without a warning", func(ctx SpecContext) {
		discoveryClient, err := discovery.NewDiscoveryClientForConfig(server.Config)
		Expect(err).NotTo(HaveOccurred())
		checker := &validating.TypeChecker{
			SchemaResolver: &resolver.ClientDiscoveryResolver{Discovery: discoveryClient},
			RestMapper:     restmapper.NewDeferredDiscoveryRESTMapper(memory.NewMemCacheClient(discoveryClient)),
		}
		for _, name := range []string{
			"herald-operator-streamer-roles", "herald-operator-streamer-rolebindings", "herald-operator-streamer-clusterrolebindings",
		} {
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

	DescribeTable("a ClusterRoleBinding the operator creates",
		func(ctx SpecContext, channelName string, change func(*rbacv1.ClusterRoleBinding), denial string) {
			expectAdmitted(ctx, asOperator, authDelegatorBinding(ctx, channelName, change), denial)
		},
		Entry("as the operator builds it", "probe", func(*rbacv1.ClusterRoleBinding) {}, ""),
		// "probe.v2-streamer" is no Service name: the ServiceAccount is
		// "probe-v2-<hash>-streamer", the channel label "probe.v2".
		Entry("as the operator builds it for a channel whose objects' name it shortens", "probe.v2",
			func(b *rbacv1.ClusterRoleBinding) {
				Expect(b.Subjects[0].Name).To(MatchRegexp(`^probe-v2-[0-9a-f]{8}-streamer$`))
			}, ""),
		// The operator holds every right of its own ClusterRole, so RBAC
		// lets it bind that one, and the policy refuses it.
		Entry("of the operator's own ClusterRole", "probe", func(b *rbacv1.ClusterRoleBinding) { b.RoleRef.Name = "herald-operator" },
			`ClusterRoleBinding herald:team-a:probe-streamer:auth-delegator binds ClusterRole herald-operator: `+
				`the operator creates, changes and deletes only its streamers' bindings of ClusterRole system:auth-delegator`),
		// RBAC refuses this one before the policy.
		Entry("of cluster-admin", "probe", func(b *rbacv1.ClusterRoleBinding) { b.RoleRef.Name = "cluster-admin" },
			"is attempting to grant RBAC permissions not currently held"),
		Entry("to two streamers", "probe", func(b *rbacv1.ClusterRoleBinding) {
			b.Subjects = append(b.Subjects, rbacv1.Subject{Kind: rbacv1.ServiceAccountKind, Namespace: teamB, Name: "probe-streamer"})
		}, `ClusterRoleBinding herald:team-a:probe-streamer:auth-delegator: the operator binds system:auth-delegator only to one streamers' `+
			`ServiceAccount, <channel>-streamer; it binds ServiceAccount team-a/probe-streamer, ServiceAccount team-b/probe-streamer`),
		Entry("to a person", "probe", func(b *rbacv1.ClusterRoleBinding) {
			b.Subjects = []rbacv1.Subject{{Kind: rbacv1.UserKind, APIGroup: rbacv1.GroupName, Name: viewer}}
		}, `the operator binds system:auth-delegator only to one streamers' ServiceAccount, <channel>-streamer; it binds User viewer@example.com`),
		Entry("to another ServiceAccount", "probe", func(b *rbacv1.ClusterRoleBinding) { b.Subjects[0].Name = "backend" },
			`it binds ServiceAccount team-a/backend`),
		Entry("to the operator's own ServiceAccount", "probe", func(b *rbacv1.ClusterRoleBinding) {
			b.Subjects[0] = rbacv1.Subject{Kind: rbacv1.ServiceAccountKind, Namespace: operatorNamespace, Name: "herald-operator"}
		}, `it binds ServiceAccount herald-system/herald-operator`),
		Entry("to no one", "probe", func(b *rbacv1.ClusterRoleBinding) { b.Subjects = nil }, `it binds no subject`),
		Entry("to the streamers of another namespace than its name's", "probe", func(b *rbacv1.ClusterRoleBinding) {
			b.Subjects[0].Namespace = teamB
		}, `ClusterRoleBinding herald:team-a:probe-streamer:auth-delegator: the operator names a streamers' binding after their `+
			`ServiceAccount: herald:team-b:probe-streamer:auth-delegator`),
		Entry("to the streamers of another channel than its name's", "probe", func(b *rbacv1.ClusterRoleBinding) {
			b.Subjects[0].Name = "other-streamer"
		}, `the operator names a streamers' binding after their ServiceAccount: herald:team-a:other-streamer:auth-delegator`),
		Entry("without Herald's labels", "probe", func(b *rbacv1.ClusterRoleBinding) { b.Labels = nil },
			`ClusterRoleBinding herald:team-a:probe-streamer:auth-delegator: a streamers' ClusterRoleBinding is labelled `+
				`app.kubernetes.io/managed-by=herald-operator, app.kubernetes.io/component=streamer, notify.herald.dev/channel `+
				`and notify.herald.dev/channel-namespace`),
		Entry("without the channel's namespace", "probe", func(b *rbacv1.ClusterRoleBinding) {
			delete(b.Labels, resources.LabelChannelNamespace)
		}, `a streamers' ClusterRoleBinding is labelled`),
		Entry("labelled with another channel", "probe", func(b *rbacv1.ClusterRoleBinding) { b.Labels[resources.LabelChannel] = "other" },
			`ClusterRoleBinding herald:team-a:probe-streamer:auth-delegator: the labels notify.herald.dev/channel=other and `+
				`notify.herald.dev/channel-namespace=team-a name another channel than the one whose streamers it binds`),
		Entry("labelled with another namespace", "probe", func(b *rbacv1.ClusterRoleBinding) {
			b.Labels[resources.LabelChannelNamespace] = teamB
		}, `the labels notify.herald.dev/channel=probe and notify.herald.dev/channel-namespace=team-b name another channel`),
		Entry("labelled, for a shortened name, with a channel whose name is not shortened", "probe.v2", func(b *rbacv1.ClusterRoleBinding) {
			b.Labels[resources.LabelChannel] = "probe"
		}, `the labels notify.herald.dev/channel=probe and notify.herald.dev/channel-namespace=team-a name another channel`),
	)

	It("lets the operator delete a binding it built", func(ctx SpecContext) {
		binding := &rbacv1.ClusterRoleBinding{ObjectMeta: metav1.ObjectMeta{Name: resources.AuthDelegatorBindingName(teamA, "app")}}
		Expect(asOperator.Delete(ctx, binding, client.DryRunAll)).To(Succeed())
	})

	It("refuses the operator deleting a binding it did not build, which stays", func(ctx SpecContext) {
		binding := foreignBinding(ctx, "metrics-server:system:auth-delegator", metricsServer)
		err := asOperator.Delete(ctx, binding)
		Expect(err).To(MatchError(ContainSubstring(
			`ClusterRoleBinding metrics-server:system:auth-delegator: the operator binds system:auth-delegator only to one ` +
				`streamers' ServiceAccount, <channel>-streamer; it binds ServiceAccount kube-system/metrics-server`)))
		Expect(apierrors.IsInvalid(err) || apierrors.IsForbidden(err)).To(BeTrue(), "%v", err)
		Expect(server.Client.Get(ctx, client.ObjectKeyFromObject(binding), &rbacv1.ClusterRoleBinding{})).To(Succeed())
	})

	// RBAC refuses the operator changing a binding of a ClusterRole it may
	// not bind, such as cluster-admin's; deleting one it does not check.
	It("refuses the operator deleting cluster-admin's binding", func(ctx SpecContext) {
		binding := &rbacv1.ClusterRoleBinding{ObjectMeta: metav1.ObjectMeta{Name: "cluster-admin"}}
		Expect(asOperator.Delete(ctx, binding)).To(MatchError(ContainSubstring(
			`ClusterRoleBinding cluster-admin binds ClusterRole cluster-admin: the operator creates, changes and deletes only`)))
		Expect(server.Client.Get(ctx, client.ObjectKeyFromObject(binding), &rbacv1.ClusterRoleBinding{})).To(Succeed())
	})

	// The operator holds every right of system:discovery, so RBAC lets it
	// rewrite that binding, which every authenticated identity relies on.
	It("refuses the operator rewriting the system's bindings", func(ctx SpecContext) {
		binding := &rbacv1.ClusterRoleBinding{}
		Expect(server.Client.Get(ctx, client.ObjectKey{Name: "system:discovery"}, binding)).To(Succeed())
		binding.Subjects = nil
		Expect(asOperator.Update(ctx, binding, client.DryRunAll)).To(MatchError(ContainSubstring(
			`ClusterRoleBinding system:discovery binds ClusterRole system:discovery: the operator creates, changes and deletes only`)))
	})

	It("refuses the operator rewriting a binding it did not build", func(ctx SpecContext) {
		binding := foreignBinding(ctx, "metrics-server:system:auth-delegator", metricsServer)
		binding.Subjects = nil
		Expect(asOperator.Update(ctx, binding, client.DryRunAll)).To(MatchError(ContainSubstring(
			`ClusterRoleBinding metrics-server:system:auth-delegator: the operator binds system:auth-delegator only to one ` +
				`streamers' ServiceAccount, <channel>-streamer; it binds no subject`)))
	})

	// The binding as rewritten is one the operator builds; as it stands, it
	// binds a person. Taking it over would bind the streamers instead, and
	// the channel's deletion would delete it.
	It("refuses the operator taking over a binding of its name that it did not build", func(ctx SpecContext) {
		built := authDelegatorBinding(ctx, "taken", func(*rbacv1.ClusterRoleBinding) {})
		binding := foreignBinding(ctx, built.Name, rbacv1.Subject{Kind: rbacv1.UserKind, APIGroup: rbacv1.GroupName, Name: viewer})
		binding.Labels, binding.Subjects = built.Labels, built.Subjects
		Expect(asOperator.Update(ctx, binding, client.DryRunAll)).To(MatchError(ContainSubstring(
			`ClusterRoleBinding herald:team-a:taken-streamer:auth-delegator is not the operator's: it changes only a binding it built, ` +
				`labelled app.kubernetes.io/managed-by=herald-operator, of the same subject`)))
		Expect(applyAsOperator(ctx, built)).To(MatchError(ContainSubstring("is not the operator's")))
	})

	// The policy tells the operator's bindings by their labels: one whose
	// labels someone removed is no longer its own.
	It("refuses the operator deleting or restoring a binding it built whose labels were removed", func(ctx SpecContext) {
		built := authDelegatorBinding(ctx, "unlabelled", func(*rbacv1.ClusterRoleBinding) {})
		unlabelled := foreignBinding(ctx, built.Name, built.Subjects[0])
		Expect(asOperator.Delete(ctx, unlabelled, client.DryRunAll)).To(MatchError(ContainSubstring(
			`ClusterRoleBinding herald:team-a:unlabelled-streamer:auth-delegator: a streamers' ClusterRoleBinding is labelled`)))
		Expect(applyAsOperator(ctx, built)).To(MatchError(ContainSubstring(
			`ClusterRoleBinding herald:team-a:unlabelled-streamer:auth-delegator is not the operator's`)))
	})

	It("refuses the operator rebinding a binding it built", func(ctx SpecContext) {
		binding := &rbacv1.ClusterRoleBinding{}
		Expect(asOperator.Get(ctx, client.ObjectKey{Name: resources.AuthDelegatorBindingName(teamA, "app")}, binding)).To(Succeed())
		binding.Subjects[0].Namespace = teamB
		Expect(asOperator.Update(ctx, binding, client.DryRunAll)).To(MatchError(ContainSubstring(
			`the operator names a streamers' binding after their ServiceAccount: herald:team-b:app-streamer:auth-delegator`)))
	})

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

		foreign := foreignBinding(ctx, "metrics-server:system:auth-delegator", metricsServer)
		Expect(asTwin.Delete(ctx, foreign, client.DryRunAll)).To(Succeed())
		Expect(asOperator.Delete(ctx, foreign, client.DryRunAll)).To(MatchError(ContainSubstring(
			"it binds ServiceAccount kube-system/metrics-server")))
	})
})
