package resources_test

import (
	"time"

	. "github.com/onsi/ginkgo/v2"
	. "github.com/onsi/gomega"
	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/api/resource"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/util/intstr"

	notifyv1alpha1 "github.com/herald-notify/herald/api/v1alpha1"
	"github.com/herald-notify/herald/controllers/resources"
)

// container is the Deployment's one container.
func container(d *appsv1.Deployment) corev1.Container {
	GinkgoHelper()
	Expect(d.Spec.Template.Spec.Containers).To(HaveLen(1))
	return d.Spec.Template.Spec.Containers[0]
}

var _ = Describe("Deployment", func() {
	It("runs the streamer of a minimal channel", func() {
		d := resources.Deployment(inputs())
		Expect(d.APIVersion).To(Equal("apps/v1"))
		Expect(d.Kind).To(Equal("Deployment"))
		Expect(d.Spec.Replicas).To(HaveValue(Equal(int32(1))))
		Expect(d.Spec.Selector.MatchLabels).To(Equal(resources.SelectorLabels(channelName)))
		Expect(d.Spec.Template.Labels).To(Equal(resources.Labels(channelName)))

		pod := d.Spec.Template.Spec
		Expect(pod.ServiceAccountName).To(Equal(objectName))
		Expect(pod.AutomountServiceAccountToken).To(HaveValue(BeTrue()))
		Expect(pod.EnableServiceLinks).To(HaveValue(BeFalse()))
		Expect(pod.TerminationGracePeriodSeconds).To(HaveValue(Equal(int64(45))))

		c := container(d)
		Expect(c.Name).To(Equal("streamer"))
		Expect(c.Image).To(Equal(defaultImage))
		Expect(c.Args).To(Equal([]string{"streamer", "--channel", "apps/chat", "--listen=:8080", "--metrics-listen=:9090"}))
		Expect(c.Ports).To(Equal([]corev1.ContainerPort{
			{Name: "http", ContainerPort: 8080, Protocol: corev1.ProtocolTCP},
			{Name: "metrics", ContainerPort: 9090, Protocol: corev1.ProtocolTCP},
		}))
		Expect(c.Env).To(Equal([]corev1.EnvVar{{Name: "POD_NAME", ValueFrom: &corev1.EnvVarSource{
			FieldRef: &corev1.ObjectFieldSelector{APIVersion: "v1", FieldPath: "metadata.name"},
		}}}), "the pod's name, for its reports; no GOMAXPROCS: Go sets it from the CPU limit by itself")
		Expect(c.Resources).To(Equal(corev1.ResourceRequirements{}))
		Expect(c.Lifecycle.PreStop.Sleep).To(Equal(&corev1.SleepAction{Seconds: 5}))
		Expect(c.TerminationMessagePolicy).To(Equal(corev1.TerminationMessageFallbackToLogsOnError))
	})

	It("probes health and readiness on the metrics port, readiness often", func() {
		c := container(resources.Deployment(inputs()))
		for _, probe := range []*corev1.Probe{c.StartupProbe, c.LivenessProbe, c.ReadinessProbe} {
			Expect(probe.HTTPGet.Port).To(Equal(intstr.FromString("metrics")))
			Expect(probe.HTTPGet.Scheme).To(Equal(corev1.URISchemeHTTP))
			Expect(probe.TimeoutSeconds).To(BeNumerically(">", 0))
			Expect(probe.SuccessThreshold).To(Equal(int32(1)))
		}
		Expect(c.StartupProbe.HTTPGet.Path).To(Equal("/healthz"))
		Expect(c.LivenessProbe.HTTPGet.Path).To(Equal("/healthz"))
		Expect(c.ReadinessProbe.HTTPGet.Path).To(Equal("/readyz"))
		Expect(c.ReadinessProbe.PeriodSeconds).To(Equal(int32(5)))
		Expect(c.ReadinessProbe.FailureThreshold).To(BeNumerically("<=", 2))
		readinessOut := c.ReadinessProbe.PeriodSeconds * c.ReadinessProbe.FailureThreshold
		livenessOut := c.LivenessProbe.PeriodSeconds * c.LivenessProbe.FailureThreshold
		Expect(readinessOut).To(BeNumerically("<", livenessOut), "a pod leaves the endpoints before it is restarted")
	})

	It("meets the restricted Pod Security Standard", func() {
		pod := resources.Deployment(inputs()).Spec.Template.Spec
		Expect(pod.SecurityContext).To(Equal(&corev1.PodSecurityContext{
			RunAsNonRoot:   new(true),
			RunAsUser:      new(int64(65532)),
			RunAsGroup:     new(int64(65532)),
			SeccompProfile: &corev1.SeccompProfile{Type: corev1.SeccompProfileTypeRuntimeDefault},
		}))
		Expect(pod.HostNetwork).To(BeFalse())
		Expect(pod.HostPID).To(BeFalse())
		Expect(pod.HostIPC).To(BeFalse())
		Expect(pod.Volumes).To(BeEmpty())
		Expect(pod.InitContainers).To(BeEmpty())
		for _, c := range pod.Containers {
			Expect(c.SecurityContext).To(Equal(&corev1.SecurityContext{
				AllowPrivilegeEscalation: new(false),
				ReadOnlyRootFilesystem:   new(true),
				RunAsNonRoot:             new(true),
				Capabilities:             &corev1.Capabilities{Drop: []corev1.Capability{"ALL"}},
			}))
			for _, port := range c.Ports {
				Expect(port.HostPort).To(BeZero())
			}
		}
	})

	DescribeTable("leaves replicas to the autoscaler when there is one",
		func(spec []string, want *int32) {
			Expect(resources.Deployment(inputs(spec...)).Spec.Replicas).To(Equal(want))
		},
		Entry("the default", nil, new(int32(1))),
		Entry("zero stops the channel", []string{"replicas: 0"}, new(int32(0))),
		Entry("three over NATS", []string{natsBrokerYML, "replicas: 3"}, new(int32(3))),
		Entry("autoscaled", []string{natsBrokerYML, "replicas: 3", cpuRequestYML, "autoscaling: {maxReplicas: 6}"}, nil),
	)

	DescribeTable("gives a deleted pod the preStop sleep, the whole drain and a margin",
		func(gracePeriod string, want int64) {
			d := resources.Deployment(inputs("drain: {gracePeriod: " + gracePeriod + ", reconnectJitter: 1s}"))
			Expect(d.Spec.Template.Spec.TerminationGracePeriodSeconds).To(HaveValue(Equal(want)))
			Expect(container(d).Lifecycle.PreStop.Sleep.Seconds).To(BeNumerically("<", want), "the API server rejects a sleep beyond the grace period")
		},
		Entry("the default 30s", "30s", int64(5+30+10)),
		Entry("the shortest drain", "1s", int64(5+1+10)),
		Entry("a fraction rounds up", "1500ms", int64(5+2+10)),
		Entry("minutes", "2m", int64(5+120+10)),
		Entry("the longest drain", "1h", int64(5+3600+10)),
	)

	It("falls back on the default drain when the spec has none", func() {
		Expect(resources.TerminationGracePeriodSeconds(&notifyv1alpha1.DrainSpec{})).To(Equal(int64(45)))
		Expect(resources.TerminationGracePeriodSeconds(&notifyv1alpha1.DrainSpec{
			GracePeriod: &metav1.Duration{Duration: 10 * time.Second},
		})).To(Equal(int64(25)))
	})

	It("rolls one new pod at a time, never below the serving count", func() {
		strategy := resources.Deployment(inputs()).Spec.Strategy
		Expect(strategy.Type).To(Equal(appsv1.RollingUpdateDeploymentStrategyType))
		Expect(strategy.RollingUpdate.MaxUnavailable).To(HaveValue(Equal(intstr.FromInt32(0))))
		Expect(strategy.RollingUpdate.MaxSurge).To(HaveValue(Equal(intstr.FromInt32(1))))
	})

	It("spreads the pods of one revision across nodes and zones, best effort", func() {
		constraints := resources.Deployment(inputs()).Spec.Template.Spec.TopologySpreadConstraints
		Expect(constraints).To(HaveLen(2))
		Expect([]string{constraints[0].TopologyKey, constraints[1].TopologyKey}).To(
			ConsistOf("kubernetes.io/hostname", "topology.kubernetes.io/zone"))
		for _, c := range constraints {
			Expect(c.MaxSkew).To(Equal(int32(1)))
			Expect(c.WhenUnsatisfiable).To(Equal(corev1.ScheduleAnyway))
			Expect(c.LabelSelector.MatchLabels).To(Equal(resources.SelectorLabels(channelName)))
			Expect(c.MatchLabelKeys).To(Equal([]string{"pod-template-hash"}))
		}
	})

	It("copies the pod knobs of the spec", func() {
		in := inputs(`pod:
  resources: {requests: {cpu: 100m, memory: 128Mi}, limits: {memory: 512Mi}}
  nodeSelector: {pool: realtime}
  tolerations: [{key: dedicated, operator: Equal, value: realtime, effect: NoExecute, tolerationSeconds: 60}]
  affinity: {nodeAffinity: {requiredDuringSchedulingIgnoredDuringExecution: {nodeSelectorTerms: [{matchExpressions: [{key: arch, operator: In, values: [arm64]}]}]}}}
  annotations: {prometheus.io/scrape: "true", notify.herald.dev/config-hash: mine}
  priorityClassName: high`)
		pod := resources.Deployment(in).Spec.Template
		knobs := in.Channel.Spec.Pod
		Expect(pod.Spec.NodeSelector).To(Equal(map[string]string{"pool": "realtime"}))
		Expect(pod.Spec.Tolerations).To(Equal(knobs.Tolerations))
		Expect(pod.Spec.Tolerations[0].TolerationSeconds).To(HaveValue(Equal(int64(60))))
		Expect(pod.Spec.Affinity).To(Equal(knobs.Affinity))
		Expect(pod.Spec.PriorityClassName).To(Equal("high"))
		Expect(pod.Spec.Containers[0].Resources.Requests.Cpu().Equal(resource.MustParse("100m"))).To(BeTrue())
		Expect(pod.Spec.Containers[0].Resources.Limits.Memory().Equal(resource.MustParse("512Mi"))).To(BeTrue())
		Expect(pod.Annotations).To(HaveKeyWithValue("prometheus.io/scrape", "true"))
		Expect(pod.Annotations).To(HaveKeyWithValue(resources.AnnotationConfigHash, resources.ConfigHash(in)), "the operator's hash wins")
		Expect(pod.Annotations).To(HaveLen(2))
	})

	It("does not alias the channel: the result may be changed freely", func() {
		in := inputs(`pod:
  resources: {limits: {memory: 512Mi}}
  nodeSelector: {pool: realtime}
  tolerations: [{key: dedicated, operator: Exists, tolerationSeconds: 60}]
  affinity: {nodeAffinity: {requiredDuringSchedulingIgnoredDuringExecution: {nodeSelectorTerms: [{matchExpressions: [{key: arch, operator: In, values: [arm64]}]}]}}}
  annotations: {a: b}`)
		before := in.Channel.DeepCopy()
		pod := resources.Deployment(in).Spec.Template
		pod.Annotations["a"] = "changed"
		pod.Spec.NodeSelector["pool"] = "changed"
		*pod.Spec.Tolerations[0].TolerationSeconds = 1
		pod.Spec.Affinity.NodeAffinity = nil
		pod.Spec.Containers[0].Resources.Limits[corev1.ResourceMemory] = resource.MustParse("1Gi")
		Expect(in.Channel).To(Equal(before))
	})

	It("runs spec.image over the operator's image", func() {
		Expect(container(resources.Deployment(inputs())).Image).To(Equal(defaultImage))
		Expect(container(resources.Deployment(inputs("image: registry.example.com/herald:v9"))).Image).To(
			Equal("registry.example.com/herald:v9"))
	})

	It("builds the same Deployment every time", func() {
		in := inputs(natsBrokerYML, "replicas: 3", "pod: {annotations: {a: b, c: d, e: f}, nodeSelector: {zone: one, pool: two}}")
		first := resources.Deployment(in)
		for range 20 {
			Expect(resources.Deployment(in)).To(Equal(first))
		}
	})
})
