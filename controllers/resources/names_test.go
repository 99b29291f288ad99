package resources_test

import (
	"strings"

	. "github.com/onsi/ginkgo/v2"
	. "github.com/onsi/gomega"
	"k8s.io/apimachinery/pkg/api/validate/content"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/util/validation"
	"sigs.k8s.io/controller-runtime/pkg/client"

	notifyv1alpha1 "github.com/herald-notify/herald/api/v1alpha1"
	"github.com/herald-notify/herald/controllers/resources"
)

// allObjects are every object built for in, the optional ones included when wanted.
func allObjects(in resources.Inputs) []client.Object {
	objs := []client.Object{
		resources.ServiceAccount(in), resources.Role(in), resources.RoleBinding(in),
		resources.Deployment(in), resources.Service(in),
	}
	if pdb, ok := resources.PodDisruptionBudget(in); ok {
		objs = append(objs, pdb)
	}
	if hpa, ok := resources.HorizontalPodAutoscaler(in); ok {
		objs = append(objs, hpa)
	}
	return objs
}

// long is a channel name of n characters, a valid DNS subdomain.
func long(prefix string, n int) string {
	return prefix + strings.Repeat("x", n-len(prefix))
}

var _ = Describe("names", func() {
	DescribeTable("ObjectName is a valid Service name of at most 63 characters",
		func(channel, want string) {
			name := resources.ObjectName(channel)
			Expect(validation.IsDNS1035Label(name)).To(BeEmpty())
			Expect(name).To(HaveSuffix(resources.NameSuffix))
			if want != "" {
				Expect(name).To(Equal(want))
			}
			Expect(resources.ObjectName(channel)).To(Equal(name), "deterministic")
		},
		Entry("a short name as is", "chat", "chat-streamer"),
		Entry("the longest name kept as is", long("a", 54), long("a", 54)+"-streamer"),
		Entry("one character more is shortened", long("a", 55), ""),
		Entry("a 253-character name", long("a", 253), ""),
		Entry("dots become dashes", "team.chat", ""),
		Entry("a leading digit gets a letter prefix", "1st-chat", ""),
		Entry("a long dotted name", long("a.b.", 200), ""),
	)

	It("keeps channels apart whose names it had to change", func() {
		Expect(resources.ObjectName("a.b")).NotTo(Equal(resources.ObjectName("a-b")))
		Expect(resources.ObjectName("a.b")).To(MatchRegexp(`^a-b-[0-9a-f]{8}-streamer$`))
		Expect(resources.ObjectName("1st")).To(MatchRegexp(`^c-1st-[0-9a-f]{8}-streamer$`))
		Expect(resources.ObjectName(long("a", 100))).NotTo(Equal(resources.ObjectName(long("a", 101))))
		Expect(resources.ObjectName(long("a", 100))).To(HaveLen(63))
	})

	DescribeTable("ChannelLabelValue is a valid label value",
		func(channel string, kept bool) {
			value := resources.ChannelLabelValue(channel)
			Expect(content.IsLabelValue(value)).To(BeEmpty())
			if kept {
				Expect(value).To(Equal(channel))
			} else {
				Expect(value).To(MatchRegexp(`-[0-9a-f]{8}$`))
			}
		},
		Entry("a short name as is", "chat", true),
		Entry("dots are fine in a label value", "team.chat", true),
		Entry("63 characters as is", long("a", 63), true),
		Entry("64 characters shortened", long("a", 64), false),
		Entry("a cut before a dot loses the dot", long("a", 53)+".bbbbbbbbbbbbbbbbbbbb", false),
	)

	It("labels every object with the channel and selects on a stable subset", func() {
		labels := resources.Labels(channelName)
		Expect(labels).To(Equal(map[string]string{
			"app.kubernetes.io/name":       "herald",
			"app.kubernetes.io/component":  "streamer",
			"app.kubernetes.io/instance":   channelName,
			"app.kubernetes.io/managed-by": "herald-operator",
			"notify.herald.dev/channel":    channelName,
		}))
		selector := resources.SelectorLabels(channelName)
		Expect(selector).To(HaveLen(3))
		for key, value := range selector {
			Expect(labels).To(HaveKeyWithValue(key, value))
		}
		Expect(selector).NotTo(HaveKey(resources.LabelManagedBy))
		Expect(selector).NotTo(HaveKey(resources.LabelInstance))
	})

	It("names, labels and types every object", func() {
		in := inputs(natsBrokerYML, cpuRequestYML, "autoscaling: {maxReplicas: 4}")
		objs := allObjects(in)
		Expect(objs).To(HaveLen(7))
		kinds := map[string]bool{}
		for _, obj := range objs {
			kind := obj.GetObjectKind().GroupVersionKind()
			Expect(kind.Kind).NotTo(BeEmpty())
			Expect(kind.Version).NotTo(BeEmpty())
			kinds[kind.Kind] = true
			Expect(obj.GetName()).To(Equal(objectName), kind.Kind)
			Expect(obj.GetNamespace()).To(Equal(namespace), kind.Kind)
			Expect(obj.GetLabels()).To(Equal(resources.Labels(channelName)), kind.Kind)
			Expect(obj.GetOwnerReferences()).To(BeEmpty(), "the reconciler sets owner references")
		}
		Expect(kinds).To(HaveLen(7))
	})

	It("keeps the selectors and the pod labels when the spec changes", func() {
		selectors := func(in resources.Inputs) []map[string]string {
			pdb, _ := resources.PodDisruptionBudget(in)
			return []map[string]string{
				resources.Deployment(in).Spec.Selector.MatchLabels,
				resources.Deployment(in).Spec.Template.Labels,
				resources.Service(in).Spec.Selector,
				pdb.Spec.Selector.MatchLabels,
			}
		}
		before := selectors(inputs(natsBrokerYML, "replicas: 2"))
		after := selectors(resources.Inputs{
			Channel: decode(
				"auth: {keySecretRef: {name: other-keys}, issuer: https://id.example.com}",
				"image: registry.example.com/herald:v9", natsBrokerYML,
				"autoscaling: {minReplicas: 3, maxReplicas: 9}",
				"pod: {annotations: {a: b}, nodeSelector: {pool: rt}, resources: {requests: {cpu: 100m}}}",
				"service: {type: LoadBalancer, port: 443}",
			),
			DefaultImage: "ghcr.io/herald-notify/herald:v2",
		})
		Expect(after).To(Equal(before))
	})
})

var _ = Describe("Inputs", func() {
	DescribeTable("Validate",
		func(in resources.Inputs, problem string) {
			err := in.Validate()
			if problem == "" {
				Expect(err).NotTo(HaveOccurred())
				return
			}
			Expect(err).To(MatchError(ContainSubstring(problem)))
		},
		Entry("a channel and a default image", resources.Inputs{Channel: channel("chat", "apps", ""), DefaultImage: defaultImage}, ""),
		Entry("a channel with its own image", resources.Inputs{Channel: channel("chat", "apps", "herald:v1")}, ""),
		Entry("no channel", resources.Inputs{DefaultImage: defaultImage}, "no channel"),
		Entry("no namespace", resources.Inputs{Channel: channel("chat", "", ""), DefaultImage: defaultImage}, "namespace"),
		Entry("no name", resources.Inputs{Channel: channel("", "apps", ""), DefaultImage: defaultImage}, "name"),
		Entry("no image at all", resources.Inputs{Channel: channel("chat", "apps", "")}, "no streamer image"),
	)

	It("runs spec.image over the default image", func() {
		Expect(inputs().StreamerImage()).To(Equal(defaultImage))
		Expect(inputs("image: registry.example.com/herald:v9").StreamerImage()).To(Equal("registry.example.com/herald:v9"))
	})
})

// channel is a hand-built channel, for what decoding cannot produce.
func channel(name, namespace, image string) *notifyv1alpha1.NotificationChannel {
	return &notifyv1alpha1.NotificationChannel{
		ObjectMeta: metav1.ObjectMeta{Name: name, Namespace: namespace},
		Spec:       notifyv1alpha1.NotificationChannelSpec{Image: image},
	}
}
