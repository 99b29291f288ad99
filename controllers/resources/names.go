package resources

import (
	"crypto/sha256"
	"encoding/hex"
	"strings"

	"k8s.io/apimachinery/pkg/api/validate/content"
	"k8s.io/apimachinery/pkg/util/validation"
)

// Label keys on every object the operator owns for a channel.
const (
	LabelName      = "app.kubernetes.io/name"
	LabelComponent = "app.kubernetes.io/component"
	LabelInstance  = "app.kubernetes.io/instance"
	LabelManagedBy = "app.kubernetes.io/managed-by"
	// LabelChannel carries ChannelLabelValue(channel name).
	LabelChannel = "notify.herald.dev/channel"
)

// Label values that are the same for every channel.
const (
	AppName           = "herald"
	ComponentStreamer = "streamer"
	ManagedBy         = "herald-operator"
)

// AnnotationConfigHash is the pod-template annotation holding ConfigHash.
const AnnotationConfigHash = "notify.herald.dev/config-hash"

// NameSuffix follows the channel's name in the names of its objects.
const NameSuffix = "-streamer"

const (
	// maxLabelLength bounds a DNS label (a Service name) and a label value.
	maxLabelLength = 63
	// nameHashLength is how many hex digits of the full name's SHA-256 a
	// shortened name keeps: 32 bits, so two long names in one namespace that
	// share their first 50 characters still differ.
	nameHashLength = 8
	// digitPrefix goes before a name that starts with a digit, which a
	// DNS-1035 label (a Service name) may not.
	digitPrefix = "c-"
)

// ObjectName names every object of the channel: "<channel>-streamer" when that
// is a valid Service name (a DNS-1035 label of at most 63 characters). Else
// the channel name has its dots turned into dashes, a letter prefix when it
// starts with a digit, is cut short and followed by a hash of the full name;
// the hash is there even when nothing was cut, so that channels "a.b" and
// "a-b" in one namespace do not share "a-b-streamer".
func ObjectName(channel string) string {
	name := channel + NameSuffix
	if len(validation.IsDNS1035Label(name)) == 0 {
		return name
	}
	base := strings.ReplaceAll(channel, ".", "-")
	if base != "" && base[0] >= '0' && base[0] <= '9' {
		base = digitPrefix + base
	}
	return withHash(base, channel, maxLabelLength-len(NameSuffix)) + NameSuffix
}

// ChannelLabelValue is the value of the instance and channel labels: the
// channel name when it is a valid label value (at most 63 characters), else
// the name cut short and followed by a hash of the full name.
func ChannelLabelValue(channel string) string {
	if len(content.IsLabelValue(channel)) == 0 {
		return channel
	}
	return withHash(channel, channel, maxLabelLength)
}

// withHash returns base, cut so that the result fits in limit bytes, a dash
// and nameHashLength hex digits of the SHA-256 of full. A cut never leaves a
// dash or dot before the hash's dash.
func withHash(base, full string, limit int) string {
	sum := sha256.Sum256([]byte(full))
	keep := min(len(base), limit-1-nameHashLength)
	prefix := strings.TrimRight(base[:keep], "-.")
	return prefix + "-" + hex.EncodeToString(sum[:])[:nameHashLength]
}

// Labels are the labels of every object of the channel and of its pods.
func Labels(channel string) map[string]string {
	value := ChannelLabelValue(channel)
	return map[string]string{
		LabelName:      AppName,
		LabelComponent: ComponentStreamer,
		LabelInstance:  value,
		LabelManagedBy: ManagedBy,
		LabelChannel:   value,
	}
}

// SelectorLabels select the channel's pods: the Deployment's selector (which
// is immutable), the Service's, the PodDisruptionBudget's and the topology
// spread's. They hold nothing that can change for a channel, and use the
// operator's own channel key rather than app.kubernetes.io/instance, which
// deployment tools set on objects for their own tracking.
func SelectorLabels(channel string) map[string]string {
	return map[string]string{
		LabelName:      AppName,
		LabelComponent: ComponentStreamer,
		LabelChannel:   ChannelLabelValue(channel),
	}
}
