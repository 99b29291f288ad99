package resources_test

import (
	"time"

	. "github.com/onsi/ginkgo/v2"
	. "github.com/onsi/gomega"
	autoscalingv2 "k8s.io/api/autoscaling/v2"
	corev1 "k8s.io/api/core/v1"
	policyv1 "k8s.io/api/policy/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/util/intstr"

	notifyv1alpha1 "github.com/herald-notify/herald/api/v1alpha1"
	"github.com/herald-notify/herald/controllers/resources"
)

var _ = Describe("PodDisruptionBudget", func() {
	DescribeTable("is wanted only when the channel can run more than one pod",
		func(spec []string, wanted bool) {
			pdb, ok := resources.PodDisruptionBudget(inputs(spec...))
			Expect(ok).To(Equal(wanted))
			if !wanted {
				Expect(pdb).To(BeNil())
				return
			}
			Expect(pdb.APIVersion).To(Equal("policy/v1"))
			Expect(pdb.Kind).To(Equal("PodDisruptionBudget"))
			Expect(pdb.Spec).To(Equal(policyv1.PodDisruptionBudgetSpec{
				MaxUnavailable:             new(intstr.FromInt32(1)),
				Selector:                   &metav1.LabelSelector{MatchLabels: resources.SelectorLabels(channelName)},
				UnhealthyPodEvictionPolicy: new(policyv1.AlwaysAllow),
			}))
		},
		Entry("the default single replica", nil, false),
		Entry("a stopped channel", []string{"replicas: 0"}, false),
		Entry("two replicas", []string{natsBrokerYML, "replicas: 2"}, true),
		Entry("autoscaled between 1 and 1", []string{cpuRequestYML, "autoscaling: {minReplicas: 1, maxReplicas: 1}"}, false),
		Entry("autoscaled from 1 upwards", []string{natsBrokerYML, cpuRequestYML, "autoscaling: {minReplicas: 1, maxReplicas: 3}"}, true),
		Entry("autoscaled from the default 2", []string{natsBrokerYML, cpuRequestYML, "autoscaling: {maxReplicas: 4}"}, true),
		Entry("autoscaled, replicas ignored", []string{natsBrokerYML, "replicas: 5", cpuRequestYML, "autoscaling: {minReplicas: 1, maxReplicas: 1}"}, false),
	)
})

var _ = Describe("HorizontalPodAutoscaler", func() {
	It("is not wanted without spec.autoscaling", func() {
		hpa, ok := resources.HorizontalPodAutoscaler(inputs(natsBrokerYML, "replicas: 3"))
		Expect(ok).To(BeFalse())
		Expect(hpa).To(BeNil())
	})

	It("scales the Deployment on CPU between the spec's bounds", func() {
		hpa, ok := resources.HorizontalPodAutoscaler(inputs(natsBrokerYML,
			cpuRequestYML, "autoscaling: {minReplicas: 3, maxReplicas: 12, targetCPUUtilizationPercentage: 60}"))
		Expect(ok).To(BeTrue())
		Expect(hpa.APIVersion).To(Equal("autoscaling/v2"))
		Expect(hpa.Kind).To(Equal("HorizontalPodAutoscaler"))
		Expect(hpa.Spec.ScaleTargetRef).To(Equal(autoscalingv2.CrossVersionObjectReference{
			APIVersion: "apps/v1", Kind: "Deployment", Name: objectName,
		}))
		Expect(hpa.Spec.MinReplicas).To(HaveValue(Equal(int32(3))))
		Expect(hpa.Spec.MaxReplicas).To(Equal(int32(12)))
		Expect(hpa.Spec.Metrics).To(Equal([]autoscalingv2.MetricSpec{{
			Type: autoscalingv2.ResourceMetricSourceType,
			Resource: &autoscalingv2.ResourceMetricSource{
				Name:   corev1.ResourceCPU,
				Target: autoscalingv2.MetricTarget{Type: autoscalingv2.UtilizationMetricType, AverageUtilization: new(int32(60))},
			},
		}}))
		Expect(hpa.Spec.Behavior.ScaleUp).To(BeNil(), "scaling up disconnects nobody: the autoscaler's defaults")
	})

	It("applies the API defaults of autoscaling", func() {
		hpa, _ := resources.HorizontalPodAutoscaler(inputs(natsBrokerYML, cpuRequestYML, "autoscaling: {maxReplicas: 4}"))
		Expect(hpa.Spec.MinReplicas).To(HaveValue(Equal(int32(2))))
		Expect(hpa.Spec.Metrics[0].Resource.Target.AverageUtilization).To(HaveValue(Equal(int32(70))))
	})

	DescribeTable("scales down one pod per drain, after a long stabilization window",
		func(gracePeriod string, period int32) {
			hpa, _ := resources.HorizontalPodAutoscaler(inputs(natsBrokerYML, cpuRequestYML, "autoscaling: {maxReplicas: 4}",
				"drain: {gracePeriod: "+gracePeriod+", reconnectJitter: 1s}"))
			Expect(hpa.Spec.Behavior.ScaleDown).To(Equal(&autoscalingv2.HPAScalingRules{
				StabilizationWindowSeconds: new(int32(600)),
				SelectPolicy:               new(autoscalingv2.MaxChangePolicySelect),
				Policies:                   []autoscalingv2.HPAScalingPolicy{{Type: autoscalingv2.PodsScalingPolicy, Value: 1, PeriodSeconds: period}},
			}))
		},
		Entry("the default 30s drain: the pod's whole termination", "30s", int32(45)),
		Entry("a 2m drain", "2m", int32(135)),
		Entry("an hour's drain, capped at the API's 1800s", "1h", int32(1800)),
	)

	It("derives the scale-down period from the default drain when the spec has none", func() {
		Expect(resources.ScaleDownPeriodSeconds(&notifyv1alpha1.DrainSpec{})).To(Equal(int32(45)))
		Expect(resources.ScaleDownPeriodSeconds(&notifyv1alpha1.DrainSpec{
			GracePeriod: &metav1.Duration{Duration: 29*time.Minute + 500*time.Millisecond},
		})).To(Equal(int32(5 + 1741 + 10)))
	})
})
