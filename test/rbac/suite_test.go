// Package rbac_test pins what every identity of a Herald installation may do:
// the operator (config/rbac), a channel's streamers (their Role and bindings
// as the operator builds them) and the roles for people. It installs them on a
// real API server, asks it with the real `kubectl auth can-i` (impersonating
// each identity, as an administrator may), and compares the answers with the
// lists in testdata/, so that any widening is a reviewed diff. The streamer
// objects are applied as the operator, under the admission policies that
// fence its escalate and bind on Roles and its ClusterRoleBindings
// (policy_test.go checks those).
package rbac_test

import (
	"context"
	"encoding/json"
	"path/filepath"
	"testing"
	"time"

	. "github.com/onsi/ginkgo/v2"
	. "github.com/onsi/gomega"
	corev1 "k8s.io/api/core/v1"
	rbacv1 "k8s.io/api/rbac/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"
	"sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/controller-runtime/pkg/controller/controllerutil"

	notifyv1alpha1 "github.com/herald-notify/herald/api/v1alpha1"
	"github.com/herald-notify/herald/controllers"
	"github.com/herald-notify/herald/controllers/resources"
	"github.com/herald-notify/herald/internal/apiserver"
	"github.com/herald-notify/herald/internal/testutil"
)

func TestRBAC(t *testing.T) {
	testutil.RunSuite(t, "the rights of Herald's identities on a real API server")
}

// The installation the specs look at.
const (
	operatorNamespace = "herald-system"
	// teamA holds the channels "app" and "other"; teamB holds none.
	teamA = "team-a"
	teamB = "team-b"
)

// Identities, as `kubectl --as` names them.
const (
	operatorSA   = "system:serviceaccount:herald-system:herald-operator"
	streamerSA   = "system:serviceaccount:team-a:app-streamer"
	publisherSA  = "system:serviceaccount:team-a:backend"
	prometheusSA = "system:serviceaccount:monitoring:prometheus"
	// People, each bound in team-a to one of the roles for people.
	viewer             = "viewer@example.com"
	channelEditor      = "channel-editor@example.com"
	systemEventEditor  = "oncall@example.com"
	unboundUser        = "nobody@example.com"
	unboundServiceAcct = "system:serviceaccount:team-a:nobody"
)

var (
	server *apiserver.Server
	// asOperator is a client that acts as the operator's ServiceAccount.
	asOperator client.Client
	repoRoot   = filepath.Join("..", "..")
)

var _ = BeforeSuite(func(ctx SpecContext) {
	SetDefaultEventuallyTimeout(30 * time.Second)
	// An Eventually given the spec's context still gives up after the timeout.
	EnforceDefaultTimeoutsWhenUsingContexts()
	var err error
	server, err = apiserver.Start(filepath.Join(repoRoot, "config", "crd", "bases"), GinkgoT().TempDir())
	Expect(err).NotTo(HaveOccurred())
	DeferCleanup(func() { Expect(server.Stop()).To(Succeed()) })
	k8s := server.Client

	for _, name := range []string{operatorNamespace, teamA, teamB} {
		Expect(k8s.Create(ctx, &corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: name}})).To(Succeed())
	}

	By("installing the operator's RBAC and the roles for people as the README does")
	applied := server.Kubectl(ctx, "", "apply", "--server-side", "-k", filepath.Join(repoRoot, "config", "rbac"))
	Expect(applied.Err).NotTo(HaveOccurred(), applied.Stderr)

	asOperator, err = server.ClientAs(operatorSA)
	Expect(err).NotTo(HaveOccurred())
	By("waiting for the admission policies that fence the operator's escalate and bind and its ClusterRoleBindings to be enforced")
	Eventually(func(ctx context.Context) error {
		return asOperator.Create(ctx, &rbacv1.Role{ObjectMeta: metav1.ObjectMeta{Namespace: teamA, Name: "probe"}}, client.DryRunAll)
	}).WithContext(ctx).Should(MatchError(ContainSubstring("the operator creates only its streamers' Roles")))
	Eventually(func(ctx context.Context) error {
		return asOperator.Create(ctx, &rbacv1.ClusterRoleBinding{
			ObjectMeta: metav1.ObjectMeta{Name: "probe"},
			RoleRef:    rbacv1.RoleRef{APIGroup: rbacv1.GroupName, Kind: "ClusterRole", Name: resources.AuthDelegatorRole},
		}, client.DryRunAll)
	}).WithContext(ctx).Should(MatchError(ContainSubstring("the operator binds system:auth-delegator only to one streamers' ServiceAccount")))

	By("creating the streamers' objects of two channels as the operator, which builds and owns them")
	for _, channel := range []*notifyv1alpha1.NotificationChannel{
		channelReading("app", "app-keys", "app-nats", "app-tls"),
		channelReading("other", "other-keys", "other-nats", "other-tls"),
	} {
		Expect(k8s.Create(ctx, channel)).To(Succeed())
		// Twice: the first apply creates, the next reconcile's updates.
		for range 2 {
			for _, obj := range streamerObjects(channel) {
				Expect(applyAsOperator(ctx, obj)).To(Succeed(), "%T %s", obj, obj.GetName())
			}
		}
	}

	By("binding the roles for people, the publisher role and the metrics reader")
	bindings := []client.Object{
		roleBinding("viewer", "herald-viewer", rbacv1.Subject{Kind: rbacv1.UserKind, APIGroup: rbacv1.GroupName, Name: viewer}),
		roleBinding("channel-editor", "herald-notificationchannel-editor", rbacv1.Subject{Kind: rbacv1.UserKind, APIGroup: rbacv1.GroupName, Name: channelEditor}),
		roleBinding("oncall", "herald-systemevent-editor", rbacv1.Subject{Kind: rbacv1.UserKind, APIGroup: rbacv1.GroupName, Name: systemEventEditor}),
		roleBinding("backend", "herald-publisher", rbacv1.Subject{Kind: rbacv1.ServiceAccountKind, Namespace: teamA, Name: "backend"}),
		&rbacv1.ClusterRoleBinding{
			ObjectMeta: metav1.ObjectMeta{Name: "prometheus-herald-metrics"},
			RoleRef:    rbacv1.RoleRef{APIGroup: rbacv1.GroupName, Kind: "ClusterRole", Name: "herald-metrics-reader"},
			Subjects:   []rbacv1.Subject{{Kind: rbacv1.ServiceAccountKind, Namespace: "monitoring", Name: "prometheus"}},
		},
	}
	for _, obj := range bindings {
		Expect(k8s.Create(ctx, obj)).To(Succeed(), "%T %s", obj, obj.GetName())
	}
})

// streamerObjects are the objects the operator builds for the channel's
// streamers, controlled by the channel, as its reconcile applies them.
func streamerObjects(channel *notifyv1alpha1.NotificationChannel) []client.Object {
	GinkgoHelper()
	in := resources.Inputs{Channel: channel, DefaultImage: "ghcr.io/herald-notify/herald:v0.0.0-test"}
	Expect(in.Validate()).To(Succeed())
	objects := make([]client.Object, 0, 4)
	for _, obj := range []client.Object{resources.ServiceAccount(in), resources.Role(in), resources.RoleBinding(in)} {
		Expect(controllerutil.SetControllerReference(channel, obj, server.Scheme)).To(Succeed())
		objects = append(objects, obj)
	}
	// Cluster-scoped: no owner reference (the operator's finalizer deletes it).
	return append(objects, resources.AuthDelegatorBinding(in))
}

// applyAsOperator applies obj as the operator's reconcile does: server-side
// apply, as its field manager, taking over fields another manager set.
func applyAsOperator(ctx context.Context, obj client.Object) error {
	data, err := json.Marshal(obj)
	if err != nil {
		return err
	}
	return asOperator.Patch(ctx, obj, client.RawPatch(types.ApplyPatchType, data),
		client.FieldOwner(controllers.FieldOwner), client.ForceOwnership)
}

// channelReading is a channel of team-a whose key, NATS credentials and TLS
// certificate are the Secrets named.
func channelReading(name, keySecret, natsSecret, tlsSecret string) *notifyv1alpha1.NotificationChannel {
	return &notifyv1alpha1.NotificationChannel{
		ObjectMeta: metav1.ObjectMeta{Namespace: teamA, Name: name},
		Spec: notifyv1alpha1.NotificationChannelSpec{
			Auth: notifyv1alpha1.AuthSpec{KeySecretRef: notifyv1alpha1.LocalSecretReference{Name: keySecret}},
			Broker: notifyv1alpha1.BrokerSpec{Type: notifyv1alpha1.BrokerNATS, NATS: &notifyv1alpha1.NATSBrokerSpec{
				URL: "nats://nats.nats:4222", CredentialsSecretRef: &notifyv1alpha1.LocalSecretReference{Name: natsSecret},
			}},
			HTTP: notifyv1alpha1.HTTPSpec{TLS: &notifyv1alpha1.HTTPTLSSpec{SecretRef: notifyv1alpha1.LocalSecretReference{Name: tlsSecret}}},
		},
	}
}

// roleBinding binds the ClusterRole to subject in team-a.
func roleBinding(name, clusterRole string, subject rbacv1.Subject) *rbacv1.RoleBinding {
	return &rbacv1.RoleBinding{
		ObjectMeta: metav1.ObjectMeta{Namespace: teamA, Name: name},
		RoleRef:    rbacv1.RoleRef{APIGroup: rbacv1.GroupName, Kind: "ClusterRole", Name: clusterRole},
		Subjects:   []rbacv1.Subject{subject},
	}
}

// kubectl runs the real kubectl as the administrator.
func kubectl(ctx context.Context, args ...string) apiserver.KubectlResult {
	return server.Kubectl(ctx, "", args...)
}
