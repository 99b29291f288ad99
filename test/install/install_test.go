// Package install_test checks that the ways of installing Herald — the
// kustomizations of config/ and the Helm chart — render and apply to a real
// API server, with the real kubectl and helm.
package install_test

import (
	"bufio"
	"bytes"
	"context"
	"errors"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	. "github.com/onsi/ginkgo/v2"
	. "github.com/onsi/gomega"
	admissionregistrationv1 "k8s.io/api/admissionregistration/v1"
	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"
	rbacv1 "k8s.io/api/rbac/v1"
	apiextensionsv1 "k8s.io/apiextensions-apiserver/pkg/apis/apiextensions/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	utilyaml "k8s.io/apimachinery/pkg/util/yaml"
	"sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/yaml"

	"github.com/herald-notify/herald/internal/apiserver"

	"github.com/herald-notify/herald/internal/testutil"
)

var (
	server   *apiserver.Server
	k8s      client.Client
	repoRoot = filepath.Join("..", "..")
)

func TestInstall(t *testing.T) {
	testutil.RunSuite(t, "installing Herald on a real API server")
}

var _ = BeforeSuite(func() {
	SetDefaultEventuallyTimeout(30 * time.Second)
	// An Eventually given the spec's context still gives up after the timeout.
	EnforceDefaultTimeoutsWhenUsingContexts()
	var err error
	server, err = apiserver.Start(filepath.Join(repoRoot, "config", "crd", "bases"), GinkgoT().TempDir())
	Expect(err).NotTo(HaveOccurred())
	Expect(apiextensionsv1.AddToScheme(server.Scheme)).To(Succeed())
	k8s, err = client.New(server.Config, client.Options{Scheme: server.Scheme})
	Expect(err).NotTo(HaveOccurred())
	DeferCleanup(func() { Expect(server.Stop()).To(Succeed()) })
})

// helm runs the real helm ($HELM, as provided by make test).
func helm(ctx context.Context, args ...string) (string, error) {
	bin := os.Getenv("HELM")
	Expect(bin).NotTo(BeEmpty(), "HELM is not set: run 'make test', or export HELM=\"$(hack/helm.sh)\"")
	cmd := exec.CommandContext(ctx, bin, args...)
	var stdout, stderr bytes.Buffer
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	err := cmd.Run()
	if err != nil {
		GinkgoWriter.Println(stderr.String())
	}
	return stdout.String(), err
}

// expectOperatorDeployment asserts the hardening both install paths promise.
func expectOperatorDeployment(ctx context.Context, key client.ObjectKey) {
	deploy := &appsv1.Deployment{}
	Expect(k8s.Get(ctx, key, deploy)).To(Succeed())
	pod := deploy.Spec.Template.Spec
	Expect(pod.SecurityContext.RunAsNonRoot).To(HaveValue(BeTrue()))
	Expect(pod.SecurityContext.SeccompProfile.Type).To(Equal(corev1.SeccompProfileTypeRuntimeDefault))
	Expect(pod.Containers).To(HaveLen(1))
	c := pod.Containers[0]
	Expect(c.Args[:4]).To(HaveExactElements("operator", HavePrefix("--leader-elect"),
		"--health-probe-bind-address=:8081", "--metrics-bind-address=:8443"))
	// The operator stamps its own image into the streamers: given as a flag,
	// or read from its own Pod, which the downward API names.
	if !slices.Contains(c.Args, "--streamer-image="+c.Image) {
		Expect(c.Args).To(HaveLen(4))
		Expect(c.Env).To(ConsistOf(
			And(HaveField("Name", "POD_NAME"), HaveField("ValueFrom.FieldRef.FieldPath", "metadata.name")),
			And(HaveField("Name", "POD_NAMESPACE"), HaveField("ValueFrom.FieldRef.FieldPath", "metadata.namespace")),
		))
	}
	Expect(c.SecurityContext.AllowPrivilegeEscalation).To(HaveValue(BeFalse()))
	Expect(c.SecurityContext.ReadOnlyRootFilesystem).To(HaveValue(BeTrue()))
	Expect(c.SecurityContext.Capabilities.Drop).To(ContainElement(corev1.Capability("ALL")))
	Expect(c.LivenessProbe).NotTo(BeNil())
	Expect(c.ReadinessProbe).NotTo(BeNil())
}

// expectOperatorRole asserts that a ClusterRole carries the generated rules.
func expectOperatorRole(ctx context.Context, name string) {
	role := &rbacv1.ClusterRole{}
	Expect(k8s.Get(ctx, client.ObjectKey{Name: name}, role)).To(Succeed())
	Expect(role.Rules).To(ContainElement(And(
		HaveField("APIGroups", ConsistOf("notify.herald.dev")),
		HaveField("Resources", ContainElement("notificationchannels/status")),
	)))
}

var _ = It("applies config/default with kubectl", func(ctx SpecContext) {
	applied := server.Kubectl(ctx, "", "apply", "--server-side", "-k", filepath.Join(repoRoot, "config", "default"))
	Expect(applied.Err).NotTo(HaveOccurred(), applied.Stderr)
	Expect(applied.Stdout).To(ContainSubstring("deployment.apps/herald-operator serverside-applied"))

	ns := &corev1.Namespace{}
	Expect(k8s.Get(ctx, client.ObjectKey{Name: "herald-system"}, ns)).To(Succeed())
	Expect(ns.Labels).To(HaveKeyWithValue("pod-security.kubernetes.io/enforce", "restricted"))
	expectOperatorDeployment(ctx, client.ObjectKey{Namespace: "herald-system", Name: "herald-operator"})
	expectOperatorRole(ctx, "herald-operator")
	for _, name := range []string{"notificationchannels.notify.herald.dev", "systemevents.notify.herald.dev"} {
		Expect(k8s.Get(ctx, client.ObjectKey{Name: name}, &apiextensionsv1.CustomResourceDefinition{})).To(Succeed())
	}
	Expect(k8s.Get(ctx, client.ObjectKey{Name: "herald-systemevent-editor"}, &rbacv1.ClusterRole{})).To(Succeed())
})

var _ = It("lints the Helm chart and applies what it renders", func(ctx SpecContext) {
	chart := filepath.Join(repoRoot, "charts", "herald")
	_, err := helm(ctx, "lint", "--strict", chart)
	Expect(err).NotTo(HaveOccurred())

	ns := &corev1.Namespace{ObjectMeta: metav1.ObjectMeta{GenerateName: "herald-chart-"}}
	Expect(k8s.Create(ctx, ns)).To(Succeed())
	rendered, err := helm(ctx, "template", "notify", chart, "--namespace", ns.Name, "--include-crds",
		"--set", "image.tag=v9.9.9")
	Expect(err).NotTo(HaveOccurred())
	Expect(rendered).To(ContainSubstring("kind: CustomResourceDefinition"))

	applied := server.Kubectl(ctx, rendered, "apply", "--server-side", "-f", "-")
	Expect(applied.Err).NotTo(HaveOccurred(), applied.Stderr)

	key := client.ObjectKey{Namespace: ns.Name, Name: "notify-herald-operator"}
	expectOperatorDeployment(ctx, key)
	deploy := &appsv1.Deployment{}
	Expect(k8s.Get(ctx, key, deploy)).To(Succeed())
	Expect(deploy.Spec.Template.Spec.Containers[0].Image).To(Equal("ghcr.io/herald-notify/herald:v9.9.9"))
	Expect(deploy.Spec.Template.Spec.ServiceAccountName).To(Equal("notify-herald"))
	expectOperatorRole(ctx, "notify-herald-operator")
	binding := &rbacv1.ClusterRoleBinding{}
	Expect(k8s.Get(ctx, client.ObjectKey{Name: "notify-herald-operator"}, binding)).To(Succeed())
	Expect(binding.Subjects).To(ConsistOf(HaveField("Namespace", ns.Name)))
})

// admissionPolicies are the ValidatingAdmissionPolicies and their bindings
// among the YAML documents of manifests, by name.
func admissionPolicies(manifests string) (map[string]admissionregistrationv1.ValidatingAdmissionPolicy, map[string]admissionregistrationv1.ValidatingAdmissionPolicyBinding) {
	GinkgoHelper()
	policies := map[string]admissionregistrationv1.ValidatingAdmissionPolicy{}
	bindings := map[string]admissionregistrationv1.ValidatingAdmissionPolicyBinding{}
	reader := utilyaml.NewYAMLReader(bufio.NewReader(strings.NewReader(manifests)))
	for {
		doc, err := reader.Read()
		if errors.Is(err, io.EOF) {
			return policies, bindings
		}
		Expect(err).NotTo(HaveOccurred())
		var meta metav1.TypeMeta
		Expect(yaml.Unmarshal(doc, &meta)).To(Succeed())
		switch meta.Kind {
		case "ValidatingAdmissionPolicy":
			var policy admissionregistrationv1.ValidatingAdmissionPolicy
			Expect(yaml.UnmarshalStrict(doc, &policy)).To(Succeed())
			policies[policy.Name] = policy
		case "ValidatingAdmissionPolicyBinding":
			var binding admissionregistrationv1.ValidatingAdmissionPolicyBinding
			Expect(yaml.UnmarshalStrict(doc, &binding)).To(Succeed())
			bindings[binding.Name] = binding
		}
	}
}

var _ = It("renders config/rbac's admission policies in the chart, for the release's ServiceAccount", func(ctx SpecContext) {
	config, err := os.ReadFile(filepath.Join(repoRoot, "config", "rbac", "operator_policy.yaml"))
	Expect(err).NotTo(HaveOccurred())
	wantPolicies, wantBindings := admissionPolicies(string(config))
	Expect(wantPolicies).To(HaveLen(3))
	Expect(wantBindings).To(HaveLen(3))

	ns := &corev1.Namespace{ObjectMeta: metav1.ObjectMeta{GenerateName: "herald-policy-"}}
	Expect(k8s.Create(ctx, ns)).To(Succeed())
	rendered, err := helm(ctx, "template", "fence", filepath.Join(repoRoot, "charts", "herald"), "--namespace", ns.Name,
		"--set", "serviceAccount.name=custom-operator")
	Expect(err).NotTo(HaveOccurred())
	gotPolicies, gotBindings := admissionPolicies(rendered)
	Expect(gotPolicies).To(HaveLen(len(wantPolicies)))
	Expect(gotBindings).To(HaveLen(len(wantBindings)))

	operator := "system:serviceaccount:" + ns.Name + ":custom-operator"
	for name, want := range wantPolicies {
		got, found := gotPolicies[strings.Replace(name, "herald-", "fence-herald-", 1)]
		Expect(found).To(BeTrue(), "the chart renders no policy for %s", name)
		Expect(got.Spec.MatchConditions).To(ConsistOf(HaveField("Expression", `request.userInfo.username == "`+operator+`"`)))
		got.Spec.MatchConditions, want.Spec.MatchConditions = nil, nil
		Expect(got.Spec).To(Equal(want.Spec), "the chart's %s differs from config/rbac's", got.Name)
	}
	for name, want := range wantBindings {
		got, found := gotBindings[strings.Replace(name, "herald-", "fence-herald-", 1)]
		Expect(found).To(BeTrue(), "the chart renders no binding for %s", name)
		Expect(got.Spec.PolicyName).To(Equal(strings.Replace(want.Spec.PolicyName, "herald-", "fence-herald-", 1)))
		Expect(got.Spec.ValidationActions).To(Equal(want.Spec.ValidationActions))
	}

	By("applying them: the release's operator is fenced, another ServiceAccount is not")
	applied := server.Kubectl(ctx, rendered, "apply", "--server-side", "-f", "-")
	Expect(applied.Err).NotTo(HaveOccurred(), applied.Stderr)
	asOperator, err := server.ClientAs(operator)
	Expect(err).NotTo(HaveOccurred())
	unfenced, err := server.ClientAs("system:serviceaccount:" + ns.Name + ":someone-else")
	Expect(err).NotTo(HaveOccurred())
	binding := &rbacv1.ClusterRoleBinding{
		ObjectMeta: metav1.ObjectMeta{GenerateName: "someone-else-"},
		RoleRef:    rbacv1.RoleRef{APIGroup: rbacv1.GroupName, Kind: "ClusterRole", Name: "fence-herald-operator"},
		Subjects:   []rbacv1.Subject{{Kind: rbacv1.ServiceAccountKind, Namespace: ns.Name, Name: "someone-else"}},
	}
	Expect(k8s.Create(ctx, binding)).To(Succeed())
	role := &rbacv1.Role{ObjectMeta: metav1.ObjectMeta{Namespace: ns.Name, Name: "anything"}}
	Eventually(func(ctx context.Context) error {
		return asOperator.Create(ctx, role.DeepCopy(), client.DryRunAll)
	}).WithContext(ctx).Should(MatchError(ContainSubstring("the operator creates only its streamers' Roles")))
	Eventually(func(ctx context.Context) error {
		return unfenced.Create(ctx, role.DeepCopy(), client.DryRunAll)
	}).WithContext(ctx).Should(Succeed())
	Eventually(func(ctx context.Context) error {
		return asOperator.Delete(ctx, binding.DeepCopy(), client.DryRunAll)
	}).WithContext(ctx).Should(MatchError(ContainSubstring(
		"the operator creates, changes and deletes only its streamers' bindings of ClusterRole system:auth-delegator")))
	Expect(unfenced.Delete(ctx, binding.DeepCopy(), client.DryRunAll)).To(Succeed())
})
