// Package v1alpha1 holds the notify.herald.dev/v1alpha1 API: NotificationChannel,
// which a platform team applies to get a streamer fleet, and SystemEvent, which
// on-call engineers apply to announce something to connected users.
//
// +kubebuilder:object:generate=true
// +groupName=notify.herald.dev
package v1alpha1

import (
	"k8s.io/apimachinery/pkg/runtime/schema"
	"sigs.k8s.io/controller-runtime/pkg/scheme"
)

var (
	// GroupVersion is the API group and version of every type in this package.
	GroupVersion = schema.GroupVersion{Group: "notify.herald.dev", Version: "v1alpha1"}

	// SchemeBuilder registers the types of this package with a runtime.Scheme.
	SchemeBuilder = &scheme.Builder{GroupVersion: GroupVersion}

	// AddToScheme adds the types of this package to a runtime.Scheme.
	AddToScheme = SchemeBuilder.AddToScheme
)
