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
// the image, and the spec settings the streamer reads only when it starts
// (NotificationChannelSpec.StartOnly, the list the streamer itself uses to
// refuse changing them live). It goes in the pod template, so a change rolls
// the pods; any other change leaves the template, and the pods, alone:
//
//   - replicas and autoscaling set the number of pods, not their content;
//   - service configures the Service in front of the pods;
//   - pod (resources, scheduling, annotations) is in the pod template itself,
//     so the Deployment rolls on its changes without the hash; so is
//     drain.gracePeriod, as terminationGracePeriodSeconds;
//   - spec.image is replaced by the image actually run, so that a spec.image
//     equal to the operator's default does not roll anything;
//   - the rest the running streamers apply live (server.SetSpec).
//
// The Secrets' contents are not inputs at all: the streamer applies rotated
// keys live. The hash is computed from JSON, whose struct fields come in
// declaration order and map keys sorted, so equal inputs give the same hash.
func ConfigHash(in Inputs) string {
	data, err := json.Marshal(restartInputs{Image: in.StreamerImage(), Spec: in.Channel.Spec.StartOnly()})
	if err != nil {
		// The spec holds strings, numbers, durations and maps of strings,
		// none of which can fail to marshal.
		panic("resources: failed to marshal the channel spec: " + err.Error())
	}
	sum := sha256.Sum256(data)
	return hex.EncodeToString(sum[:])[:configHashLength]
}
