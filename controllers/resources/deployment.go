package resources

import (
	"fmt"
	"maps"
	"time"

	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/util/intstr"

	notifyv1alpha1 "github.com/herald-notify/herald/api/v1alpha1"
	"github.com/herald-notify/herald/streamer/paths"
)

// The streamer container, as `herald streamer` serves it (cmd_streamer.go).
const (
	ContainerName = "streamer"

	// PortNameHTTP and PortHTTP serve the stream and publish APIs (--listen).
	PortNameHTTP       = "http"
	PortHTTP     int32 = 8080
	// PortNameMetrics and PortMetrics serve /metrics, /healthz and /readyz
	// (--metrics-listen), apart from client traffic.
	PortNameMetrics       = "metrics"
	PortMetrics     int32 = 9090

	// HealthzPath answers 200 while the process serves, draining included.
	HealthzPath = paths.Healthz
	// ReadyzPath answers 503 from the moment a drain starts (SIGTERM).
	ReadyzPath = paths.Readyz

	// EnvPodName holds the pod's name (downward API), which the streamer
	// names itself by in what it reports on the channel's status.
	EnvPodName = "POD_NAME"

	// RunAsUser is the "nonroot" user of the distroless image (the
	// Dockerfile's USER); a numeric id lets the kubelet check runAsNonRoot.
	RunAsUser int64 = 65532
)

// Shutdown timing. A deleted pod runs its preStop hook, then gets SIGTERM,
// then, when terminationGracePeriodSeconds is over, SIGKILL.
const (
	// PreStopSleepSeconds is how long a deleted pod keeps serving normally
	// before SIGTERM starts its drain: the time for kube-proxy, load
	// balancers and ingress controllers to stop sending it new requests once
	// the EndpointSlice marks it terminating. It uses the kubelet's sleep
	// handler (GA in Kubernetes 1.34, on by default since 1.30), since the
	// distroless image has no shell to run sleep in.
	PreStopSleepSeconds int64 = 5
	// ShutdownMarginSeconds follows the drain: the streamer gives its HTTP
	// servers 5s to finish (cmd_streamer.go), plus slack for the process to
	// exit, before the kubelet would kill it.
	ShutdownMarginSeconds int64 = 10
)

// Probe timing, all on the metrics port so that a full API port never fails
// a probe.
const (
	// probeTimeoutSeconds: the probe handlers answer from memory.
	probeTimeoutSeconds int32 = 2
	// startupPeriodSeconds × startupFailureThreshold = 60s for the streamer
	// to read its channel and Secrets from the API and start listening,
	// before liveness takes over.
	startupPeriodSeconds    int32 = 2
	startupFailureThreshold int32 = 30
	// livenessPeriodSeconds × livenessFailureThreshold = 30s of a hung
	// process before a restart, which drops every stream of the pod: slow on
	// purpose.
	livenessPeriodSeconds    int32 = 10
	livenessFailureThreshold int32 = 3
	// readinessPeriodSeconds × readinessFailureThreshold = at most 10s for a
	// pod that stops being ready (a drain outside a deletion, e.g. a
	// restart) to leave the endpoints; one slow answer alone does not.
	readinessPeriodSeconds    int32 = 5
	readinessFailureThreshold int32 = 2
)

// Deployment runs the channel's streamers. Replicas is spec.replicas, or nil
// when spec.autoscaling is set so that the HorizontalPodAutoscaler owns it.
//
// Switching an applied Deployment to autoscaling drops replicas from the
// apply; if the operator's field manager is then the only owner of
// spec.replicas, the API server resets it to 1 before the autoscaler acts.
// The reconciler should hand spec.replicas over first (apply it once with the
// current value under a separate field manager), as the server-side apply
// documentation describes for handing replicas to an autoscaler.
func Deployment(in Inputs) *appsv1.Deployment {
	spec := &in.Channel.Spec
	return &appsv1.Deployment{
		TypeMeta:   metav1.TypeMeta{APIVersion: appsv1.SchemeGroupVersion.String(), Kind: "Deployment"},
		ObjectMeta: in.objectMeta(),
		Spec: appsv1.DeploymentSpec{
			Replicas: deploymentReplicas(spec),
			Selector: &metav1.LabelSelector{MatchLabels: SelectorLabels(in.Channel.Name)},
			Strategy: rollingUpdate(),
			Template: podTemplate(in),
		},
	}
}

// deploymentReplicas is nil under autoscaling, spec.replicas otherwise.
func deploymentReplicas(spec *notifyv1alpha1.NotificationChannelSpec) *int32 {
	if spec.Autoscaling != nil {
		return nil
	}
	return new(replicas(spec))
}

// rollingUpdate never takes a serving pod away before its replacement is
// ready (maxUnavailable 0), and adds one pod at a time (maxSurge 1): a
// percentage would round to one for small fleets anyway, and one extra pod is
// all a single-replica channel can afford.
func rollingUpdate() appsv1.DeploymentStrategy {
	return appsv1.DeploymentStrategy{
		Type: appsv1.RollingUpdateDeploymentStrategyType,
		RollingUpdate: &appsv1.RollingUpdateDeployment{
			MaxUnavailable: new(intstr.FromInt32(0)),
			MaxSurge:       new(intstr.FromInt32(1)),
		},
	}
}

// podTemplate is the streamer pod: the channel's labels, the pod annotations
// of the spec and the config hash.
func podTemplate(in Inputs) corev1.PodTemplateSpec {
	return corev1.PodTemplateSpec{
		ObjectMeta: metav1.ObjectMeta{
			Labels:      Labels(in.Channel.Name),
			Annotations: podAnnotations(in),
		},
		Spec: podSpec(in),
	}
}

// podAnnotations are spec.pod.annotations plus AnnotationConfigHash, which
// wins over a user annotation of the same key.
func podAnnotations(in Inputs) map[string]string {
	annotations := maps.Clone(in.Channel.Spec.Pod.Annotations)
	if annotations == nil {
		annotations = map[string]string{}
	}
	annotations[AnnotationConfigHash] = ConfigHash(in)
	return annotations
}

// podSpec hardens the pod to the restricted Pod Security Standard and copies
// the scheduling knobs of spec.pod. Service links are off: the streamer reads
// no *_SERVICE_HOST variables, and a namespace with many Services would
// otherwise bloat its environment.
func podSpec(in Inputs) corev1.PodSpec {
	pod := &in.Channel.Spec.Pod
	return corev1.PodSpec{
		ServiceAccountName:            in.name(),
		AutomountServiceAccountToken:  new(true),
		EnableServiceLinks:            new(false),
		SecurityContext:               podSecurityContext(),
		TerminationGracePeriodSeconds: new(TerminationGracePeriodSeconds(&in.Channel.Spec.Drain)),
		Containers:                    []corev1.Container{streamerContainer(in)},
		NodeSelector:                  maps.Clone(pod.NodeSelector),
		Tolerations:                   copyTolerations(pod.Tolerations),
		Affinity:                      pod.Affinity.DeepCopy(),
		PriorityClassName:             pod.PriorityClassName,
		TopologySpreadConstraints:     topologySpread(in.Channel.Name),
	}
}

// TerminationGracePeriodSeconds is how long a deleted streamer pod may take:
// the preStop sleep, then the drain, which spreads the closing of streams over
// the whole of drain.gracePeriod (rounded up to a second), then the shutdown
// margin. The default 30s drain gives 5 + 30 + 10 = 45.
func TerminationGracePeriodSeconds(drain *notifyv1alpha1.DrainSpec) int64 {
	grace := orDefault(drain.GracePeriod, notifyv1alpha1.DefaultDrainGracePeriod)
	return PreStopSleepSeconds + ceilSeconds(grace) + ShutdownMarginSeconds
}

// ceilSeconds is d in whole seconds, rounded up.
func ceilSeconds(d time.Duration) int64 {
	return int64((d + time.Second - 1) / time.Second)
}

// streamerContainer runs `herald streamer` for the channel. GOMAXPROCS is not
// set: since Go 1.25 the runtime derives it from the container's CPU limit and
// follows changes to it.
func streamerContainer(in Inputs) corev1.Container {
	return corev1.Container{
		Name:  ContainerName,
		Image: in.StreamerImage(),
		Args:  streamerArgs(in.Channel),
		Ports: []corev1.ContainerPort{
			{Name: PortNameHTTP, ContainerPort: PortHTTP, Protocol: corev1.ProtocolTCP},
			{Name: PortNameMetrics, ContainerPort: PortMetrics, Protocol: corev1.ProtocolTCP},
		},
		Env: []corev1.EnvVar{{Name: EnvPodName, ValueFrom: &corev1.EnvVarSource{
			FieldRef: &corev1.ObjectFieldSelector{APIVersion: "v1", FieldPath: "metadata.name"},
		}}},
		Resources:      *in.Channel.Spec.Pod.Resources.DeepCopy(),
		StartupProbe:   metricsPortProbe(HealthzPath, startupPeriodSeconds, startupFailureThreshold),
		LivenessProbe:  metricsPortProbe(HealthzPath, livenessPeriodSeconds, livenessFailureThreshold),
		ReadinessProbe: metricsPortProbe(ReadyzPath, readinessPeriodSeconds, readinessFailureThreshold),
		Lifecycle: &corev1.Lifecycle{
			PreStop: &corev1.LifecycleHandler{Sleep: &corev1.SleepAction{Seconds: PreStopSleepSeconds}},
		},
		// The streamer's last log line (why it exited) becomes the
		// termination message that `kubectl describe pod` shows.
		TerminationMessagePolicy: corev1.TerminationMessageFallbackToLogsOnError,
		SecurityContext:          containerSecurityContext(),
	}
}

// streamerArgs name the channel to serve and the two listen addresses.
func streamerArgs(channel *notifyv1alpha1.NotificationChannel) []string {
	return []string{
		"streamer",
		"--channel", channel.Namespace + "/" + channel.Name,
		fmt.Sprintf("--listen=:%d", PortHTTP),
		fmt.Sprintf("--metrics-listen=:%d", PortMetrics),
	}
}

// metricsPortProbe is an HTTP GET of path on the metrics port.
func metricsPortProbe(path string, periodSeconds, failureThreshold int32) *corev1.Probe {
	return &corev1.Probe{
		ProbeHandler: corev1.ProbeHandler{HTTPGet: &corev1.HTTPGetAction{
			Path:   path,
			Port:   intstr.FromString(PortNameMetrics),
			Scheme: corev1.URISchemeHTTP,
		}},
		TimeoutSeconds:   probeTimeoutSeconds,
		PeriodSeconds:    periodSeconds,
		SuccessThreshold: 1,
		FailureThreshold: failureThreshold,
	}
}

// podSecurityContext is the pod half of the restricted Pod Security Standard:
// a non-root user and the runtime's default seccomp profile.
func podSecurityContext() *corev1.PodSecurityContext {
	return &corev1.PodSecurityContext{
		RunAsNonRoot:   new(true),
		RunAsUser:      new(RunAsUser),
		RunAsGroup:     new(RunAsUser),
		SeccompProfile: &corev1.SeccompProfile{Type: corev1.SeccompProfileTypeRuntimeDefault},
	}
}

// containerSecurityContext is the container half of the restricted Pod
// Security Standard, plus a read-only root file system: the streamer writes
// no files.
func containerSecurityContext() *corev1.SecurityContext {
	return &corev1.SecurityContext{
		AllowPrivilegeEscalation: new(false),
		ReadOnlyRootFilesystem:   new(true),
		RunAsNonRoot:             new(true),
		Capabilities:             &corev1.Capabilities{Drop: []corev1.Capability{"ALL"}},
	}
}

// topologySpread spreads the channel's pods across nodes and zones, so that
// losing one disconnects as few clients as possible. ScheduleAnyway: a
// cluster with one node or zone still runs every replica. Pods are counted per
// revision (pod-template-hash), so that during a rollout the new pods spread
// among themselves rather than around the old ones that are about to go.
func topologySpread(channel string) []corev1.TopologySpreadConstraint {
	return []corev1.TopologySpreadConstraint{
		spreadOver(corev1.LabelHostname, channel),
		spreadOver(corev1.LabelTopologyZone, channel),
	}
}

// spreadOver is a maxSkew 1, best-effort spread over topologyKey.
func spreadOver(topologyKey, channel string) corev1.TopologySpreadConstraint {
	return corev1.TopologySpreadConstraint{
		MaxSkew:           1,
		TopologyKey:       topologyKey,
		WhenUnsatisfiable: corev1.ScheduleAnyway,
		LabelSelector:     &metav1.LabelSelector{MatchLabels: SelectorLabels(channel)},
		MatchLabelKeys:    []string{appsv1.DefaultDeploymentUniqueLabelKey},
	}
}

// copyTolerations deep-copies tolerations; nil when there are none.
func copyTolerations(tolerations []corev1.Toleration) []corev1.Toleration {
	if len(tolerations) == 0 {
		return nil
	}
	out := make([]corev1.Toleration, len(tolerations))
	for i := range tolerations {
		tolerations[i].DeepCopyInto(&out[i])
	}
	return out
}
