package v1alpha1

import "k8s.io/apimachinery/pkg/api/equality"

// startOnlySettings are the settings of a channel's spec that the streamer
// reads only when it starts. They are the one list both sides use: the
// operator hashes them (StartOnly) into the pod template, so that a change
// rolls the pods, and a running streamer keeps their values and reports a
// change (KeepStartOnly, StartOnlyChanges). Every other field the streamer
// applies live, or does not read at all (replicas, image, pod, service,
// autoscaling and networkPolicy go into the objects the operator builds
// around it).
var startOnlySettings = []struct {
	path string
	// copy sets the setting of dst to a deep copy of src's.
	copy func(dst, src *NotificationChannelSpec)
}{
	// The event log, with its retention, is built at start and holds the events.
	{"spec.broker", func(dst, src *NotificationChannelSpec) { src.Broker.DeepCopyInto(&dst.Broker) }},
	{"spec.history", func(dst, src *NotificationChannelSpec) { src.History.DeepCopyInto(&dst.History) }},
	// The key Secret's watch, and the Role that lets the pod read the Secret,
	// are set up for one Secret name.
	{"spec.auth.keySecretRef", func(dst, src *NotificationChannelSpec) { dst.Auth.KeySecretRef = src.Auth.KeySecretRef }},
	// The API listener is built at start for its protocols, and the
	// certificate's watch and Role for one Secret name (the certificate in
	// the Secret is reloaded live).
	{"spec.http", func(dst, src *NotificationChannelSpec) { src.HTTP.DeepCopyInto(&dst.HTTP) }},
}

// StartOnlySettings are the paths of the settings the streamer reads only
// when it starts, such as "spec.history": changing one needs new pods.
func StartOnlySettings() []string {
	paths := make([]string, len(startOnlySettings))
	for i, setting := range startOnlySettings {
		paths[i] = setting.path
	}
	return paths
}

// StartOnly is a copy of the spec's start-only settings, every other field
// left empty: what the operator's pod-template hash covers.
func (s *NotificationChannelSpec) StartOnly() NotificationChannelSpec {
	var out NotificationChannelSpec
	for _, setting := range startOnlySettings {
		setting.copy(&out, s)
	}
	return out
}

// KeepStartOnly sets the start-only settings of s to those of running: what
// a running streamer makes of a new spec.
func (s *NotificationChannelSpec) KeepStartOnly(running *NotificationChannelSpec) {
	for _, setting := range startOnlySettings {
		setting.copy(s, running)
	}
}

// StartOnlyChanges are the paths of the start-only settings that differ
// between s and to, in the order of StartOnlySettings. Semantic equality: an
// empty list or map equals a missing one.
func (s *NotificationChannelSpec) StartOnlyChanges(to *NotificationChannelSpec) []string {
	var changed []string
	for _, setting := range startOnlySettings {
		var from, next NotificationChannelSpec
		setting.copy(&from, s)
		setting.copy(&next, to)
		if !equality.Semantic.DeepEqual(from, next) {
			changed = append(changed, setting.path)
		}
	}
	return changed
}
