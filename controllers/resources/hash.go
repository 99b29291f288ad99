package resources

import (
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"slices"

	notifyv1alpha1 "github.com/herald-notify/herald/api/v1alpha1"
)

// configHashLength is how many hex digits of the SHA-256 the annotation
// keeps: 64 bits, plenty to tell one configuration from the next.
const configHashLength = 16

// restartInputs is what ConfigHash hashes, in a fixed field order.
type restartInputs struct {
	Image string                                 `json:"image"`
	Spec  notifyv1alpha1.NotificationChannelSpec `json:"spec"`
}

// ConfigHash is a stable hash of every input that needs new streamer pods:
// the image, and the spec fields the streamer reads only when it starts
// (restartSpec). It goes in the pod template, so a change rolls the pods; any
// other change leaves the template, and the pods, alone. The hash is computed
// from canonical JSON: struct fields in declaration order, map keys sorted,
// durations in their canonical form, set-like lists sorted, so equal inputs
// always give the same hash.
func ConfigHash(in Inputs) string {
	data, err := json.Marshal(restartInputs{Image: in.StreamerImage(), Spec: restartSpec(&in.Channel.Spec)})
	if err != nil {
		// The spec holds strings, numbers, durations and maps of strings,
		// none of which can fail to marshal.
		panic("resources: failed to marshal the channel spec: " + err.Error())
	}
	sum := sha256.Sum256(data)
	return hex.EncodeToString(sum[:])[:configHashLength]
}

// restartSpec is a copy of spec without the fields whose change does not need
// new pods:
//
//   - replicas and autoscaling set the number of pods, not their content;
//   - service configures the Service in front of the pods;
//   - pod (resources, scheduling, annotations) is in the pod template itself,
//     so the Deployment rolls on its changes without the hash;
//   - image is replaced by the image actually run, so that a spec.image equal
//     to the operator's default does not roll anything.
//
// Everything else (auth, connections, history, broker, cors, drain, and any
// field added later) is kept: the streamer applies no setting of its spec
// live today. Remove a field here once the streamer applies it live. The
// Secrets' contents are not inputs at all: the streamer applies rotated keys
// live. The lists that the API declares as sets are sorted, so reordering one
// does not roll the pods.
func restartSpec(spec *notifyv1alpha1.NotificationChannelSpec) notifyv1alpha1.NotificationChannelSpec {
	s := *spec.DeepCopy()
	s.Replicas = nil
	s.Autoscaling = nil
	s.Service = notifyv1alpha1.ServiceSpec{}
	s.Pod = notifyv1alpha1.PodSpec{}
	s.Image = ""
	slices.Sort(s.Auth.Algorithms)
	slices.Sort(s.Auth.Audiences)
	slices.Sort(s.Auth.TokenSources)
	slices.Sort(s.CORS.AllowedOrigins)
	return s
}
