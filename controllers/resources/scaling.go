package resources

import (
	autoscalingv2 "k8s.io/api/autoscaling/v2"
	corev1 "k8s.io/api/core/v1"
	policyv1 "k8s.io/api/policy/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/util/intstr"

	notifyv1alpha1 "github.com/herald-notify/herald/api/v1alpha1"
)

const (
	// ScaleDownStabilizationSeconds is how long the autoscaler must want
	// fewer pods before it removes one: twice its 300s default, because every
	// removed pod sends all its clients reconnecting.
	ScaleDownStabilizationSeconds int32 = 600
	// maxHPAPolicyPeriodSeconds is the longest period an HPA scaling policy
	// accepts.
	maxHPAPolicyPeriodSeconds int32 = 1800
)

// PodDisruptionBudget keeps voluntary disruptions (node drains, cluster
// autoscaler scale-in) to one streamer pod at a time, so that at most one
// pod's clients reconnect at once. It is wanted (true) when the channel can
// run more than one pod: spec.replicas > 1, or autoscaling.maxReplicas > 1 (an
// autoscaler at minReplicas 1 may still scale out). When it is not wanted the
// reconciler deletes any existing one, named ObjectName(channel).
//
// Unhealthy pods may always be evicted (AlwaysAllow), so a crash-looping
// streamer never blocks a node drain.
func PodDisruptionBudget(in Inputs) (*policyv1.PodDisruptionBudget, bool) {
	if maxPods(&in.Channel.Spec) <= 1 {
		return nil, false
	}
	return &policyv1.PodDisruptionBudget{
		TypeMeta:   metav1.TypeMeta{APIVersion: policyv1.SchemeGroupVersion.String(), Kind: "PodDisruptionBudget"},
		ObjectMeta: in.objectMeta(),
		Spec: policyv1.PodDisruptionBudgetSpec{
			MaxUnavailable:             new(intstr.FromInt32(1)),
			Selector:                   &metav1.LabelSelector{MatchLabels: SelectorLabels(in.Channel.Name)},
			UnhealthyPodEvictionPolicy: new(policyv1.AlwaysAllow),
		},
	}, true
}

// HorizontalPodAutoscaler scales the channel's Deployment on CPU utilization
// between autoscaling.minReplicas and maxReplicas. It is wanted (true) only
// when spec.autoscaling is set; otherwise the reconciler deletes any existing
// one, named ObjectName(channel). CPU utilization is relative to the CPU
// request, so spec.pod.resources must request CPU for it to act.
//
// Scaling up uses the autoscaler's defaults. Scaling down is held back
// (ScaleDownStabilizationSeconds) and removes one pod per
// TerminationGracePeriodSeconds at most, so a pod has drained before the next
// one starts to: clients reconnect a pod's worth at a time.
func HorizontalPodAutoscaler(in Inputs) (*autoscalingv2.HorizontalPodAutoscaler, bool) {
	spec := &in.Channel.Spec
	if spec.Autoscaling == nil {
		return nil, false
	}
	return &autoscalingv2.HorizontalPodAutoscaler{
		TypeMeta:   metav1.TypeMeta{APIVersion: autoscalingv2.SchemeGroupVersion.String(), Kind: "HorizontalPodAutoscaler"},
		ObjectMeta: in.objectMeta(),
		Spec: autoscalingv2.HorizontalPodAutoscalerSpec{
			ScaleTargetRef: autoscalingv2.CrossVersionObjectReference{APIVersion: "apps/v1", Kind: "Deployment", Name: in.name()},
			MinReplicas:    new(orDefaultInt32(spec.Autoscaling.MinReplicas, notifyv1alpha1.DefaultAutoscalingMinReplicas)),
			MaxReplicas:    spec.Autoscaling.MaxReplicas,
			Metrics:        []autoscalingv2.MetricSpec{cpuUtilization(spec.Autoscaling)},
			Behavior:       &autoscalingv2.HorizontalPodAutoscalerBehavior{ScaleDown: scaleDown(&spec.Drain)},
		},
	}, true
}

// cpuUtilization targets the average CPU use, as a percentage of the request.
func cpuUtilization(autoscaling *notifyv1alpha1.AutoscalingSpec) autoscalingv2.MetricSpec {
	target := orDefaultInt32(autoscaling.TargetCPUUtilizationPercentage, notifyv1alpha1.DefaultAutoscalingTargetCPUUtilization)
	return autoscalingv2.MetricSpec{
		Type: autoscalingv2.ResourceMetricSourceType,
		Resource: &autoscalingv2.ResourceMetricSource{
			Name:   corev1.ResourceCPU,
			Target: autoscalingv2.MetricTarget{Type: autoscalingv2.UtilizationMetricType, AverageUtilization: new(target)},
		},
	}
}

// scaleDown removes at most one pod per ScaleDownPeriodSeconds, after the
// stabilization window.
func scaleDown(drain *notifyv1alpha1.DrainSpec) *autoscalingv2.HPAScalingRules {
	return &autoscalingv2.HPAScalingRules{
		StabilizationWindowSeconds: new(ScaleDownStabilizationSeconds),
		SelectPolicy:               new(autoscalingv2.MaxChangePolicySelect),
		Policies: []autoscalingv2.HPAScalingPolicy{
			{Type: autoscalingv2.PodsScalingPolicy, Value: 1, PeriodSeconds: ScaleDownPeriodSeconds(drain)},
		},
	}
}

// ScaleDownPeriodSeconds is the period of the one-pod scale-down policy: the
// time a removed pod may take to drain (TerminationGracePeriodSeconds), capped
// at the 1800s the API accepts; the default 30s drain gives 45.
func ScaleDownPeriodSeconds(drain *notifyv1alpha1.DrainSpec) int32 {
	return int32(min(TerminationGracePeriodSeconds(drain), int64(maxHPAPolicyPeriodSeconds)))
}
