package resources

import (
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"

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
//     to the operator's default does not roll anything;
//   - auth (but keySecretRef), connections, cors and drain: the running
//     streamers watch their channel and apply these live, without dropping a
//     stream (server.SetSpec). drain.gracePeriod still rolls the pods, by
//     itself: it sets the pod template's terminationGracePeriodSeconds.
//
// What is kept needs new pods: broker and history (the event log is built
// when the streamer starts), auth.keySecretRef (the key Secret's watch and
// the Role's resourceNames are set up for one Secret), and any field added
// later, until the streamer applies it live. The streamer's list of the
// settings it cannot change live (startOnlySettings in streamer/server) names
// the same fields: keep the two in step. The Secrets' contents are not inputs
// at all: the streamer applies rotated keys live.
func restartSpec(spec *notifyv1alpha1.NotificationChannelSpec) notifyv1alpha1.NotificationChannelSpec {
	s := *spec.DeepCopy()
	s.Replicas = nil
	s.Autoscaling = nil
	s.Service = notifyv1alpha1.ServiceSpec{}
	s.Pod = notifyv1alpha1.PodSpec{}
	s.Image = ""
	s.Auth = notifyv1alpha1.AuthSpec{KeySecretRef: s.Auth.KeySecretRef}
	s.Connections = notifyv1alpha1.ConnectionsSpec{}
	s.CORS = notifyv1alpha1.CORSSpec{}
	s.Drain = notifyv1alpha1.DrainSpec{}
	return s
}
