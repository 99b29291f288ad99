// Package v1alpha1 holds the notify.herald.dev/v1alpha1 API: NotificationChannel,
// which a platform team applies to get a streamer fleet, and SystemEvent, which
// on-call engineers apply to announce something to connected users.
//
// +kubebuilder:object:generate=true
// +groupName=notify.herald.dev
package v1alpha1

import (
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/runtime/schema"
)

var (
	// GroupVersion is the API group and version of every type in this package.
	GroupVersion = schema.GroupVersion{Group: "notify.herald.dev", Version: "v1alpha1"}

	// SchemeBuilder registers the types of this package with a runtime.Scheme.
	// It depends on apimachinery only, so clients import this package cheaply.
	SchemeBuilder = runtime.NewSchemeBuilder(addKnownTypes)

	// AddToScheme adds the types of this package to a runtime.Scheme.
	AddToScheme = SchemeBuilder.AddToScheme
)

func addKnownTypes(s *runtime.Scheme) error {
	s.AddKnownTypes(GroupVersion,
		&NotificationChannel{}, &NotificationChannelList{},
		&SystemEvent{}, &SystemEventList{},
	)
	metav1.AddToGroupVersion(s, GroupVersion)
	return nil
}
