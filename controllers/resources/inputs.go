package resources

import (
	"errors"
	"time"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	notifyv1alpha1 "github.com/herald-notify/herald/api/v1alpha1"
)

// Inputs is everything the builders read. Only the channel and the image: the
// contents of the key and NATS credentials Secrets are deliberately absent, so
// rotating them never changes an object, and never rolls the pods.
type Inputs struct {
	// Channel is the channel as read from the API server, defaults applied.
	// The builders fall back on the API defaults for a field left empty, so a
	// hand-built channel works too, but its ConfigHash differs from the same
	// channel defaulted.
	Channel *notifyv1alpha1.NotificationChannel

	// DefaultImage is the streamer image when spec.image is empty: the
	// operator's --streamer-image flag, whose default is the operator's own
	// image, so operator and streamers run the same build.
	DefaultImage string
}

// Validate reports inputs the builders cannot build from. The builders assume
// valid inputs: call Validate first.
func (in Inputs) Validate() error {
	switch {
	case in.Channel == nil:
		return errors.New("resources: no channel")
	case in.Channel.Name == "" || in.Channel.Namespace == "":
		return errors.New("resources: the channel has no name or namespace")
	case in.StreamerImage() == "":
		return errors.New("resources: no streamer image: the channel sets no spec.image and the operator has no default image")
	}
	return validateNetworkPolicy(&in.Channel.Spec.NetworkPolicy)
}

// StreamerImage is the image the streamer pods run: spec.image, or else the
// operator's default.
func (in Inputs) StreamerImage() string {
	if in.Channel.Spec.Image != "" {
		return in.Channel.Spec.Image
	}
	return in.DefaultImage
}

// name is ObjectName of the channel, the name of every object built here.
func (in Inputs) name() string { return ObjectName(in.Channel.Name) }

// objectMeta is the metadata every object of the channel starts from.
func (in Inputs) objectMeta() metav1.ObjectMeta {
	return metav1.ObjectMeta{
		Name:      in.name(),
		Namespace: in.Channel.Namespace,
		Labels:    Labels(in.Channel.Name),
	}
}

// replicas is spec.replicas, or its API default when unset.
func replicas(spec *notifyv1alpha1.NotificationChannelSpec) int32 {
	if spec.Replicas == nil {
		return notifyv1alpha1.DefaultReplicas
	}
	return *spec.Replicas
}

// maxPods is the most streamer pods the channel runs at once outside a
// rollout: autoscaling.maxReplicas when autoscaled, spec.replicas otherwise.
func maxPods(spec *notifyv1alpha1.NotificationChannelSpec) int32 {
	if spec.Autoscaling != nil {
		return spec.Autoscaling.MaxReplicas
	}
	return replicas(spec)
}

// orDefault reads an optional duration of the spec, falling back on its API
// default when unset.
func orDefault(d *metav1.Duration, def time.Duration) time.Duration {
	if d == nil {
		return def
	}
	return d.Duration
}

// orDefaultInt32 falls back on def when v is zero (unset).
func orDefaultInt32(v, def int32) int32 {
	if v == 0 {
		return def
	}
	return v
}
