package controllers_test

import (
	"context"
	"fmt"
	"slices"
	"strings"
	"time"

	. "github.com/onsi/ginkgo/v2"
	. "github.com/onsi/gomega"
	. "github.com/onsi/gomega/gstruct"
	appsv1 "k8s.io/api/apps/v1"
	autoscalingv2 "k8s.io/api/autoscaling/v2"
	corev1 "k8s.io/api/core/v1"
	eventsv1 "k8s.io/api/events/v1"
	policyv1 "k8s.io/api/policy/v1"
	rbacv1 "k8s.io/api/rbac/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"k8s.io/apimachinery/pkg/api/resource"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"
	"sigs.k8s.io/controller-runtime/pkg/client"

	notifyv1alpha1 "github.com/herald-notify/herald/api/v1alpha1"
	"github.com/herald-notify/herald/controllers/resources"
	"github.com/herald-notify/herald/internal/testutil/certtest"
)

const objectName = "app-streamer"

// owned returns empty objects of every kind a channel always owns, named
// like the channel's objects in namespace.
func owned(namespace string) []client.Object {
	meta := func() metav1.ObjectMeta { return metav1.ObjectMeta{Namespace: namespace, Name: objectName} }
	return []client.Object{
		&corev1.ServiceAccount{ObjectMeta: meta()},
		&rbacv1.Role{ObjectMeta: meta()},
		&rbacv1.RoleBinding{ObjectMeta: meta()},
		&appsv1.Deployment{ObjectMeta: meta()},
		&corev1.Service{ObjectMeta: meta()},
	}
}

// exists reports whether obj (named like it) exists.
func exists(ctx context.Context, obj client.Object) func() bool {
	return func() bool {
		err := api.Client.Get(ctx, client.ObjectKeyFromObject(obj), obj)
		if err != nil && !apierrors.IsNotFound(err) {
			Fail(err.Error())
		}
		return err == nil
	}
}

// channelStatus polls the channel's status.
func channelStatus(ctx context.Context, channel *notifyv1alpha1.NotificationChannel) func() notifyv1alpha1.NotificationChannelStatus {
	return func() notifyv1alpha1.NotificationChannelStatus {
		return get(ctx, channel).Status
	}
}

// haveCondition matches a status with the condition typ at status and reason.
func haveCondition(typ string, status metav1.ConditionStatus, reason string) OmegaMatcher {
	return HaveField("Conditions", ContainElement(MatchFields(IgnoreExtras, Fields{
		"Type": Equal(typ), "Status": Equal(status), "Reason": Equal(reason),
	})))
}

// deploymentOf polls the channel's Deployment.
func deploymentOf(ctx context.Context, namespace string) func() *appsv1.Deployment {
	return func() *appsv1.Deployment {
		d := &appsv1.Deployment{ObjectMeta: metav1.ObjectMeta{Namespace: namespace, Name: objectName}}
		if !exists(ctx, d)() {
			return nil
		}
		return d
	}
}

// settled waits until the channel's status reports its generation, and its
// reconciles and the writes of its status stop (the operator's, and the
// report its streamer writes): two polls a while apart see the same
// reconcile count and the same channel.
func settled(ctx context.Context, channel *notifyv1alpha1.NotificationChannel) {
	GinkgoHelper()
	Eventually(channelStatus(ctx, channel)).Should(HaveField("ObservedGeneration", channel.Generation))
	key := client.ObjectKeyFromObject(channel)
	last := ""
	Eventually(func() bool {
		now := fmt.Sprint(reconcil.count(key), get(ctx, channel.DeepCopy()).ResourceVersion)
		stable := now == last
		last = now
		return stable
	}).WithPolling(time.Second).Should(BeTrue())
}

// setDeploymentStatus writes the Deployment's status as the Deployment
// controller and kubelets would once ready pods of the current template run.
func setDeploymentStatus(ctx context.Context, namespace string, ready int32, conditions ...appsv1.DeploymentCondition) {
	GinkgoHelper()
	Eventually(func() error {
		d := deploymentOf(ctx, namespace)()
		if d == nil {
			return apierrors.NewNotFound(appsv1.Resource("deployments"), objectName)
		}
		d.Status = appsv1.DeploymentStatus{
			ObservedGeneration: d.Generation,
			Replicas:           *d.Spec.Replicas, UpdatedReplicas: *d.Spec.Replicas,
			ReadyReplicas: ready, AvailableReplicas: ready,
			Conditions: conditions,
		}
		return api.Client.Status().Update(ctx, d)
	}).Should(Succeed())
}

// eventReasons lists the reasons of the Events recorded on the channel.
func eventReasons(ctx context.Context, channel *notifyv1alpha1.NotificationChannel) func() []string {
	return func() []string {
		var list eventsv1.EventList
		Expect(api.Client.List(ctx, &list, client.InNamespace(channel.Namespace))).To(Succeed())
		var reasons []string
		for _, e := range list.Items {
			if e.Regarding.UID == channel.UID {
				reasons = append(reasons, e.Reason)
			}
		}
		return reasons
	}
}

var _ = Describe("NotificationChannel reconciler", func() {
	It("creates every owned object with the expected fields, owned by the channel", func(ctx SpecContext) {
		ns := newNamespace(ctx, nil)
		createKeySecret(ctx, ns, map[string][]byte{"k1": hmacKey()})
		channel := createChannel(ctx, ns, nil)

		for _, obj := range owned(ns) {
			Eventually(exists(ctx, obj)).Should(BeTrue(), "%T", obj)
			Expect(obj.GetOwnerReferences()).To(ConsistOf(MatchFields(IgnoreExtras, Fields{
				"APIVersion": Equal(notifyv1alpha1.GroupVersion.String()), "Kind": Equal("NotificationChannel"),
				"Name": Equal("app"), "UID": Equal(channel.UID), "Controller": PointTo(BeTrue()),
				"BlockOwnerDeletion": PointTo(BeTrue()),
			})), "%T", obj)
			Expect(obj.GetLabels()).To(HaveKeyWithValue(resources.LabelManagedBy, resources.ManagedBy))
			Expect(obj.GetManagedFields()).To(ContainElement(HaveField("Manager", "herald-operator")))
		}

		d := deploymentOf(ctx, ns)()
		Expect(d.Spec.Replicas).To(PointTo(BeEquivalentTo(1)))
		pod := d.Spec.Template.Spec
		Expect(pod.ServiceAccountName).To(Equal(objectName))
		Expect(pod.Containers).To(HaveLen(1))
		Expect(pod.Containers[0].Image).To(Equal(streamerImage))
		Expect(pod.Containers[0].Args).To(HaveExactElements("streamer", "--channel", ns+"/app", "--listen=:8080", "--metrics-listen=:9090"))
		Expect(d.Spec.Template.Annotations).To(HaveKey(resources.AnnotationConfigHash))

		role := get(ctx, &rbacv1.Role{ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: objectName}})
		Expect(role.Rules).To(ContainElement(MatchFields(IgnoreExtras, Fields{
			"Resources": ConsistOf("secrets"), "ResourceNames": ConsistOf("app-keys"),
		})))
		binding := get(ctx, &rbacv1.RoleBinding{ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: objectName}})
		Expect(binding.Subjects).To(ConsistOf(HaveField("Name", objectName)))

		svc := get(ctx, &corev1.Service{ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: objectName}})
		Expect(svc.Spec.Ports).To(ContainElement(HaveField("Name", "http")))

		By("letting the streamers review publishers' ServiceAccount tokens, held by a finalizer")
		delegator := &rbacv1.ClusterRoleBinding{ObjectMeta: metav1.ObjectMeta{Name: "herald:" + ns + ":app-streamer:auth-delegator"}}
		Eventually(exists(ctx, delegator)).Should(BeTrue())
		Expect(delegator.RoleRef.Name).To(Equal("system:auth-delegator"))
		Expect(delegator.Subjects).To(ConsistOf(And(HaveField("Name", objectName), HaveField("Namespace", ns))))
		Expect(get(ctx, channel).Finalizers).To(ContainElement("notify.herald.dev/cluster-objects"))

		By("not creating a PodDisruptionBudget or autoscaler for a single replica")
		Expect(exists(ctx, &policyv1.PodDisruptionBudget{ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: objectName}})()).To(BeFalse())
		Expect(exists(ctx, &autoscalingv2.HorizontalPodAutoscaler{ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: objectName}})()).To(BeFalse())

		By("reporting the generation, the endpoint and a rollout in progress")
		Eventually(channelStatus(ctx, channel)).Should(And(
			HaveField("ObservedGeneration", channel.Generation),
			HaveField("Endpoint", "http://app-streamer."+ns+".svc/api/v1/sse/notifications"),
			haveCondition(notifyv1alpha1.ConditionReady, metav1.ConditionFalse, notifyv1alpha1.ReasonReplicasNotReady),
			haveCondition(notifyv1alpha1.ConditionProgressing, metav1.ConditionTrue, notifyv1alpha1.ReasonReconciling),
			haveCondition(notifyv1alpha1.ConditionDegraded, metav1.ConditionFalse, notifyv1alpha1.ReasonAsExpected),
		))
		Eventually(eventReasons(ctx, channel)).Should(ContainElement("Applied"))
	})

	It("rolls the pods on a change of a start-only setting, and writes nothing when nothing changed", func(ctx SpecContext) {
		ns := newNamespace(ctx, nil)
		createKeySecret(ctx, ns, map[string][]byte{"k1": hmacKey()})
		channel := createChannel(ctx, ns, nil)
		settled(ctx, channel)
		before := deploymentOf(ctx, ns)().Spec.Template.Annotations[resources.AnnotationConfigHash]

		By("changing a setting the streamers apply live: the pod template stays")
		channel = editChannel(ctx, channel, func(c *notifyv1alpha1.NotificationChannel) {
			c.Spec.Connections.MaxPerUser = 2
		})
		settled(ctx, channel) // the operator observed the new generation
		Expect(deploymentOf(ctx, ns)().Spec.Template.Annotations[resources.AnnotationConfigHash]).To(Equal(before))

		By("changing a setting the streamer reads at start")
		channel = editChannel(ctx, channel, func(c *notifyv1alpha1.NotificationChannel) {
			c.Spec.History.MaxEvents = 777
		})
		Eventually(func() string {
			return deploymentOf(ctx, ns)().Spec.Template.Annotations[resources.AnnotationConfigHash]
		}).ShouldNot(Equal(before))
		settled(ctx, channel)

		By("reconciling the unchanged channel again")
		writesBefore := writes.in(ns)
		reconciles := reconcil.count(client.ObjectKeyFromObject(channel))
		channel = editChannel(ctx, channel, func(c *notifyv1alpha1.NotificationChannel) {
			c.Annotations = map[string]string{"example.com/touched": "yes"}
		})
		Eventually(func() int { return reconcil.count(client.ObjectKeyFromObject(channel)) }).Should(BeNumerically(">", reconciles))
		Expect(writes.in(ns)).To(Equal(writesBefore))
	})

	It("restores owned objects edited or deleted by hand", func(ctx SpecContext) {
		ns := newNamespace(ctx, nil)
		createKeySecret(ctx, ns, map[string][]byte{"k1": hmacKey()})
		channel := createChannel(ctx, ns, nil)
		settled(ctx, channel)

		By("editing the Deployment's image and replicas")
		d := deploymentOf(ctx, ns)()
		d.Spec.Template.Spec.Containers[0].Image = "example.com/someone-else:latest"
		d.Spec.Replicas = new(int32(5))
		Expect(api.Client.Update(ctx, d)).To(Succeed())
		Eventually(deploymentOf(ctx, ns)).Should(And(
			HaveField("Spec.Template.Spec.Containers", ContainElement(HaveField("Image", streamerImage))),
			HaveField("Spec.Replicas", PointTo(BeEquivalentTo(1))),
		))

		By("widening the Role")
		role := get(ctx, &rbacv1.Role{ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: objectName}})
		role.Rules = append(role.Rules, rbacv1.PolicyRule{APIGroups: []string{""}, Resources: []string{"secrets"}, Verbs: []string{"list"}})
		Expect(api.Client.Update(ctx, role)).To(Succeed())
		Eventually(func() []rbacv1.PolicyRule {
			return get(ctx, &rbacv1.Role{ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: objectName}}).Rules
		}).ShouldNot(ContainElement(HaveField("Verbs", Equal([]string{"list"}))))

		By("deleting the Service and the ServiceAccount")
		svc := get(ctx, &corev1.Service{ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: objectName}})
		sa := get(ctx, &corev1.ServiceAccount{ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: objectName}})
		Expect(api.Client.Delete(ctx, svc)).To(Succeed())
		Expect(api.Client.Delete(ctx, sa)).To(Succeed())
		Eventually(func() types.UID {
			restored := &corev1.Service{ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: objectName}}
			if !exists(ctx, restored)() {
				return ""
			}
			return restored.UID
		}).ShouldNot(Or(BeEmpty(), Equal(svc.UID)))
		Eventually(exists(ctx, &corev1.ServiceAccount{ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: objectName}})).Should(BeTrue())
	})

	It("adds and removes the PodDisruptionBudget and autoscaler, keeping the replica count on the hand-over", func(ctx SpecContext) {
		ns := newNamespace(ctx, nil)
		createKeySecret(ctx, ns, map[string][]byte{"k1": hmacKey()})
		pdb := &policyv1.PodDisruptionBudget{ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: objectName}}
		hpa := &autoscalingv2.HorizontalPodAutoscaler{ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: objectName}}
		channel := createChannel(ctx, ns, func(spec *notifyv1alpha1.NotificationChannelSpec) {
			spec.Replicas = new(int32(3))
			spec.Broker = notifyv1alpha1.BrokerSpec{Type: notifyv1alpha1.BrokerNATS, NATS: &notifyv1alpha1.NATSBrokerSpec{URL: "nats://nats.nats:4222"}}
		})
		Eventually(exists(ctx, pdb)).Should(BeTrue())
		Expect(pdb.Spec.MaxUnavailable.IntValue()).To(Equal(1))
		Expect(deploymentOf(ctx, ns)().Spec.Replicas).To(PointTo(BeEquivalentTo(3)))
		settled(ctx, channel)
		Expect(get(ctx, channel).Status).To(haveCondition(notifyv1alpha1.ConditionDegraded, metav1.ConditionFalse, notifyv1alpha1.ReasonAsExpected),
			"a NATS channel is served by this version's streamers")

		By("turning autoscaling on: the Deployment keeps its 3 replicas")
		channel = editChannel(ctx, channel, func(c *notifyv1alpha1.NotificationChannel) {
			c.Spec.Autoscaling = &notifyv1alpha1.AutoscalingSpec{MinReplicas: 2, MaxReplicas: 6}
			c.Spec.Pod.Resources.Requests = corev1.ResourceList{corev1.ResourceCPU: resource.MustParse("100m")}
		})
		Eventually(exists(ctx, hpa)).Should(BeTrue())
		Expect(hpa.Spec.MaxReplicas).To(BeEquivalentTo(6))
		settled(ctx, channel)
		d := deploymentOf(ctx, ns)()
		Expect(d.Spec.Replicas).To(PointTo(BeEquivalentTo(3)))
		Expect(slices.ContainsFunc(d.ManagedFields, func(m metav1.ManagedFieldsEntry) bool {
			return m.Manager == "herald-operator" && strings.Contains(m.FieldsV1.GetRawString(), `"f:replicas"`)
		})).To(BeFalse(), "the operator no longer owns spec.replicas")

		By("turning autoscaling off with one replica: both go, and the operator sets replicas again")
		editChannel(ctx, channel, func(c *notifyv1alpha1.NotificationChannel) {
			c.Spec.Autoscaling = nil
			c.Spec.Replicas = new(int32(1))
		})
		Eventually(exists(ctx, hpa)).Should(BeFalse())
		Eventually(exists(ctx, pdb)).Should(BeFalse())
		Eventually(deploymentOf(ctx, ns)).Should(HaveField("Spec.Replicas", PointTo(BeEquivalentTo(1))))
	})

	It("serves a three-replica NATS channel: its Role reads the credentials Secret, which is checked, and the channel gets Ready", func(ctx SpecContext) {
		ns := newNamespace(ctx, nil)
		createKeySecret(ctx, ns, map[string][]byte{"k1": hmacKey()})
		channel := createChannel(ctx, ns, func(spec *notifyv1alpha1.NotificationChannelSpec) {
			spec.Replicas = new(int32(3))
			spec.Broker = notifyv1alpha1.BrokerSpec{Type: notifyv1alpha1.BrokerNATS, NATS: &notifyv1alpha1.NATSBrokerSpec{
				URL: "nats://nats.nats:4222", StreamReplicas: 3,
				CredentialsSecretRef: &notifyv1alpha1.LocalSecretReference{Name: "app-nats"},
			}}
		})

		By("creating the channel before its credentials Secret")
		Eventually(channelStatus(ctx, channel)).Should(
			haveCondition(notifyv1alpha1.ConditionDegraded, metav1.ConditionTrue, notifyv1alpha1.ReasonSecretNotFound))
		Expect(condition(get(ctx, channel), notifyv1alpha1.ConditionDegraded).Message).To(And(
			ContainSubstring(`Secret "app-nats" named by spec.broker.nats.credentialsSecretRef does not exist`),
			ContainSubstring(`"nats.creds"`)), "the message says what to create")
		role := &rbacv1.Role{}
		Eventually(func() error { return api.Client.Get(ctx, client.ObjectKey{Namespace: ns, Name: objectName}, role) }).Should(Succeed())
		Expect(role.Rules).To(ContainElement(And(
			HaveField("Resources", ConsistOf("secrets")),
			HaveField("ResourceNames", ConsistOf("app-keys", "app-nats")),
			HaveField("Verbs", Not(ContainElements("create", "update", "patch", "delete"))),
		)), "the streamers may read the credentials Secret by name, and nothing else")

		By("creating it with two ways to authenticate")
		secret := &corev1.Secret{ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: "app-nats"},
			Data: map[string][]byte{"token": []byte("t"), "username": []byte("u"), "password": []byte("p")}}
		Expect(api.Client.Create(ctx, secret)).To(Succeed())
		Eventually(channelStatus(ctx, channel)).Should(
			haveCondition(notifyv1alpha1.ConditionDegraded, metav1.ConditionTrue, notifyv1alpha1.ReasonInvalidBrokerCredentials))
		Expect(condition(get(ctx, channel), notifyv1alpha1.ConditionDegraded).Message).To(ContainSubstring("each name a way to authenticate"))

		By("fixing it, and the Deployment reporting three ready pods")
		secret.Data = map[string][]byte{"token": []byte("t")}
		Expect(api.Client.Update(ctx, secret)).To(Succeed())
		Eventually(channelStatus(ctx, channel)).Should(
			haveCondition(notifyv1alpha1.ConditionDegraded, metav1.ConditionFalse, notifyv1alpha1.ReasonAsExpected))
		Expect(deploymentOf(ctx, ns)().Spec.Replicas).To(PointTo(BeEquivalentTo(3)))
		settled(ctx, channel)
		setDeploymentStatus(ctx, ns, 3)
		Eventually(channelStatus(ctx, channel)).Should(readyFor(channel.Generation))
	})

	It("serves TLS from a Secret: its Role reads it, it is checked, the Service says https, and the endpoint is https", func(ctx SpecContext) {
		ns := newNamespace(ctx, nil)
		createKeySecret(ctx, ns, map[string][]byte{"k1": hmacKey()})
		channel := createChannel(ctx, ns, func(spec *notifyv1alpha1.NotificationChannelSpec) {
			spec.HTTP.TLS = &notifyv1alpha1.HTTPTLSSpec{SecretRef: notifyv1alpha1.LocalSecretReference{Name: "app-tls"}}
		})

		By("creating the channel before its TLS Secret")
		Eventually(channelStatus(ctx, channel)).Should(
			haveCondition(notifyv1alpha1.ConditionDegraded, metav1.ConditionTrue, notifyv1alpha1.ReasonSecretNotFound))
		Expect(condition(get(ctx, channel), notifyv1alpha1.ConditionDegraded).Message).To(And(
			ContainSubstring(`Secret "app-tls" named by spec.http.tls.secretRef does not exist`),
			ContainSubstring(`"tls.crt" and "tls.key"`)), "the message says what to create")
		role := &rbacv1.Role{}
		Eventually(func() error { return api.Client.Get(ctx, client.ObjectKey{Namespace: ns, Name: objectName}, role) }).Should(Succeed())
		Expect(role.Rules).To(ContainElement(And(
			HaveField("Resources", ConsistOf("secrets")),
			HaveField("ResourceNames", ConsistOf("app-keys", "app-tls")),
		)), "the streamers may read the TLS Secret by name")
		service := &corev1.Service{}
		Eventually(func() error { return api.Client.Get(ctx, client.ObjectKey{Namespace: ns, Name: objectName}, service) }).Should(Succeed())
		Expect(service.Spec.Ports[0].AppProtocol).To(PointTo(Equal("https")))

		By("creating it with a certificate without its key")
		issued := certtest.NewCA().Issue("app")
		secret := &corev1.Secret{ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: "app-tls"}, Type: corev1.SecretTypeOpaque,
			Data: map[string][]byte{corev1.TLSCertKey: issued[corev1.TLSCertKey]}}
		Expect(api.Client.Create(ctx, secret)).To(Succeed())
		Eventually(channelStatus(ctx, channel)).Should(
			haveCondition(notifyv1alpha1.ConditionDegraded, metav1.ConditionTrue, notifyv1alpha1.ReasonInvalidCertificate))
		Expect(condition(get(ctx, channel), notifyv1alpha1.ConditionDegraded).Message).To(ContainSubstring(`the entry "tls.key" is missing`))

		By("fixing it, and the channel getting Ready with an https endpoint")
		secret.Data = issued
		Expect(api.Client.Update(ctx, secret)).To(Succeed())
		Eventually(channelStatus(ctx, channel)).Should(
			haveCondition(notifyv1alpha1.ConditionDegraded, metav1.ConditionFalse, notifyv1alpha1.ReasonAsExpected))
		settled(ctx, channel)
		setDeploymentStatus(ctx, ns, 1)
		Eventually(channelStatus(ctx, channel)).Should(And(readyFor(channel.Generation),
			HaveField("Endpoint", "https://app-streamer."+ns+".svc:80/api/v1/sse/notifications")))
	})

	It("reports a missing or malformed key Secret as Degraded, with Events, and recovers when it is fixed", func(ctx SpecContext) {
		ns := newNamespace(ctx, nil)
		channel := createChannel(ctx, ns, nil)

		By("creating the channel before its Secret")
		Eventually(channelStatus(ctx, channel)).Should(And(
			haveCondition(notifyv1alpha1.ConditionDegraded, metav1.ConditionTrue, notifyv1alpha1.ReasonSecretNotFound),
			haveCondition(notifyv1alpha1.ConditionReady, metav1.ConditionFalse, notifyv1alpha1.ReasonSecretNotFound),
		))
		Expect(condition(get(ctx, channel), notifyv1alpha1.ConditionDegraded).Message).To(ContainSubstring(`Secret "app-keys" named by spec.auth.keySecretRef does not exist`))
		Eventually(eventReasons(ctx, channel)).Should(ContainElement(notifyv1alpha1.ReasonSecretNotFound))
		// The streamer's report can come before the operator's first apply
		// succeeds (its status write conflicts with the finalizer's patch).
		Eventually(exists(ctx, &appsv1.Deployment{ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: objectName}})).Should(BeTrue(),
			"the streamer objects are applied anyway, ready for the Secret")

		By("creating it with a key too short for HS256")
		secret := createKeySecret(ctx, ns, map[string][]byte{"k1": []byte("short")})
		Eventually(channelStatus(ctx, channel)).Should(
			haveCondition(notifyv1alpha1.ConditionDegraded, metav1.ConditionTrue, notifyv1alpha1.ReasonInvalidKey))
		Expect(condition(get(ctx, channel), notifyv1alpha1.ConditionDegraded).Message).To(ContainSubstring(`key "k1"`))
		Eventually(eventReasons(ctx, channel)).Should(ContainElement(notifyv1alpha1.ReasonInvalidKey))

		By("fixing the key")
		secret.Data = map[string][]byte{"k1": hmacKey()}
		Expect(api.Client.Update(ctx, secret)).To(Succeed())
		Eventually(channelStatus(ctx, channel)).Should(And(
			haveCondition(notifyv1alpha1.ConditionDegraded, metav1.ConditionFalse, notifyv1alpha1.ReasonAsExpected),
			haveCondition(notifyv1alpha1.ConditionReady, metav1.ConditionFalse, notifyv1alpha1.ReasonReplicasNotReady),
		))
		Eventually(eventReasons(ctx, channel)).Should(ContainElement("Recovered"))
	})

	It("reports the Deployment's readiness and a stuck rollout", func(ctx SpecContext) {
		ns := newNamespace(ctx, nil)
		createKeySecret(ctx, ns, map[string][]byte{"k1": hmacKey()})
		channel := createChannel(ctx, ns, nil)
		settled(ctx, channel)

		By("a ready pod of the current template")
		setDeploymentStatus(ctx, ns, 1)
		Eventually(channelStatus(ctx, channel)).Should(And(
			HaveField("Replicas", BeEquivalentTo(1)),
			HaveField("ReadyReplicas", BeEquivalentTo(1)),
			haveCondition(notifyv1alpha1.ConditionReady, metav1.ConditionTrue, notifyv1alpha1.ReasonAvailable),
			haveCondition(notifyv1alpha1.ConditionProgressing, metav1.ConditionFalse, notifyv1alpha1.ReasonRolloutComplete),
			haveCondition(notifyv1alpha1.ConditionDegraded, metav1.ConditionFalse, notifyv1alpha1.ReasonAsExpected),
		))
		Eventually(eventReasons(ctx, channel)).Should(ContainElement(notifyv1alpha1.ReasonAvailable))

		By("a rollout past its progress deadline")
		setDeploymentStatus(ctx, ns, 0, appsv1.DeploymentCondition{
			Type: appsv1.DeploymentProgressing, Status: corev1.ConditionFalse, Reason: "ProgressDeadlineExceeded",
		})
		Eventually(channelStatus(ctx, channel)).Should(And(
			HaveField("ReadyReplicas", BeEquivalentTo(0)),
			haveCondition(notifyv1alpha1.ConditionReady, metav1.ConditionFalse, notifyv1alpha1.ReasonRolloutStuck),
			haveCondition(notifyv1alpha1.ConditionProgressing, metav1.ConditionFalse, notifyv1alpha1.ReasonRolloutStuck),
			haveCondition(notifyv1alpha1.ConditionDegraded, metav1.ConditionTrue, notifyv1alpha1.ReasonRolloutStuck),
		))
		Eventually(eventReasons(ctx, channel)).Should(ContainElement(notifyv1alpha1.ReasonRolloutStuck))
	})

	It("builds pods that the restricted Pod Security level admits", func(ctx SpecContext) {
		ns := newNamespace(ctx, map[string]string{"pod-security.kubernetes.io/enforce": "restricted"})
		createKeySecret(ctx, ns, map[string][]byte{"k1": hmacKey()})
		createChannel(ctx, ns, nil)
		Eventually(deploymentOf(ctx, ns)).ShouldNot(BeNil())
		template := deploymentOf(ctx, ns)().Spec.Template

		podFrom := func(spec corev1.PodSpec) *corev1.Pod {
			return &corev1.Pod{
				ObjectMeta: metav1.ObjectMeta{Namespace: ns, GenerateName: "streamer-", Labels: template.Labels},
				Spec:       spec,
			}
		}
		Expect(api.Client.Create(ctx, podFrom(template.Spec), client.DryRunAll)).To(Succeed())

		By("and a privilege escalation is refused there, so the check can fail")
		escalating := template.Spec.DeepCopy()
		escalating.Containers[0].SecurityContext.AllowPrivilegeEscalation = new(true)
		err := api.Client.Create(ctx, podFrom(*escalating), client.DryRunAll)
		Expect(err).To(MatchError(ContainSubstring(`violates PodSecurity "restricted`)))
	})
})
