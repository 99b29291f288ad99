package v1alpha1

import (
	apiextensionsv1 "k8s.io/apiextensions-apiserver/pkg/apis/apiextensions/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
)

// SystemEventSpec is an announcement to the connected users of one channel.
//
// +kubebuilder:validation:XValidation:rule="!has(self.deliverAt) || !has(self.expiresAt) || self.expiresAt > self.deliverAt",fieldPath=".expiresAt",message="must be after deliverAt"
type SystemEventSpec struct {
	// ChannelRef names the NotificationChannel, in the same namespace, whose
	// users receive the event.
	// +required
	ChannelRef ChannelReference `json:"channelRef"`

	// EventType is the "eventType" field of the delivered system event, for
	// example "maintenance" or "incident".
	// +kubebuilder:validation:MinLength=1
	// +kubebuilder:validation:MaxLength=128
	// +kubebuilder:validation:Pattern=`^[A-Za-z0-9][A-Za-z0-9_.:-]*$`
	// +required
	EventType string `json:"eventType"`

	// Data is the "data" field of the delivered event: any JSON object, at
	// most 64 top-level fields. The streamer refuses an event whose encoded
	// data exceeds 32 KiB (phase Failed), as a browser holds it in memory.
	// +kubebuilder:validation:Type=object
	// +kubebuilder:validation:MaxProperties=64
	// +kubebuilder:pruning:PreserveUnknownFields
	// +optional
	Data *apiextensionsv1.JSON `json:"data,omitempty"`

	// Audience is who receives the event: all connected users, or a list of
	// user ids.
	// +kubebuilder:default={all: true}
	// +optional
	Audience Audience `json:"audience,omitempty"`

	// Priority is the "priority" field of the delivered event.
	// +kubebuilder:default=MEDIUM
	// +optional
	Priority Priority `json:"priority,omitempty"`

	// DeliverAt schedules the event: it stays Scheduled until then.
	// +optional
	DeliverAt *metav1.Time `json:"deliverAt,omitempty"`

	// ExpiresAt, when set, keeps the event active until then: a user who
	// connects later still receives it once, right after the connection
	// event. Afterwards the event is Expired.
	// +optional
	ExpiresAt *metav1.Time `json:"expiresAt,omitempty"`
}

// ChannelReference names a NotificationChannel in the referrer's namespace.
type ChannelReference struct {
	// Name of the NotificationChannel.
	// +kubebuilder:validation:MinLength=1
	// +kubebuilder:validation:MaxLength=253
	// +kubebuilder:validation:Pattern=`^[a-z0-9]([-a-z0-9]*[a-z0-9])?(\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*$`
	// +required
	Name string `json:"name"`
}

// Audience is either every connected user of the channel or a list of user ids.
// +kubebuilder:validation:XValidation:rule="(has(self.all) && self.all) != (has(self.userIds) && size(self.userIds) > 0)",message="set exactly one of all: true or a non-empty userIds list"
type Audience struct {
	// All sends the event to every connected user.
	// +optional
	All *bool `json:"all,omitempty"`

	// UserIDs sends the event to these users only.
	// +kubebuilder:validation:MaxItems=1000
	// +kubebuilder:validation:items:MinLength=1
	// +kubebuilder:validation:items:MaxLength=256
	// +listType=set
	// +optional
	UserIDs []string `json:"userIds,omitempty"`
}

// Priority of an event, as the NestJS module's clients know it.
// +kubebuilder:validation:Enum=LOW;MEDIUM;HIGH;CRITICAL
type Priority string

// Priorities.
const (
	PriorityLow      Priority = "LOW"
	PriorityMedium   Priority = "MEDIUM"
	PriorityHigh     Priority = "HIGH"
	PriorityCritical Priority = "CRITICAL"
)

// Priorities are the priorities, lowest first, in the order of the enum marker
// above: the one list a SystemEvent may hold and the publish API accepts. A
// test ties it to the generated CRD's enum.
var Priorities = []Priority{PriorityLow, PriorityMedium, PriorityHigh, PriorityCritical}

// SystemEventPhase is where a SystemEvent is in its life.
// +kubebuilder:validation:Enum=Scheduled;Delivered;Expired;Failed
type SystemEventPhase string

// SystemEvent phases.
const (
	// PhaseScheduled: waiting for deliverAt.
	PhaseScheduled SystemEventPhase = "Scheduled"
	// PhaseDelivered: written to the channel's log; connected users got it.
	PhaseDelivered SystemEventPhase = "Delivered"
	// PhaseExpired: expiresAt has passed; late joiners no longer receive it.
	PhaseExpired SystemEventPhase = "Expired"
	// PhaseFailed: it cannot be delivered; the conditions say why.
	PhaseFailed SystemEventPhase = "Failed"
)

// SystemEventStatus is what the streamers did with the event, and whether
// its channel exists.
//
// It has several writers, and each writes it by server-side apply of the
// status subresource under its own field manager, applying only the fields
// it owns, so that none loses its fields to another's write:
//   - the channel's streamers, field manager "herald-streamer": phase,
//     eventId, deliveredAt, observedGeneration and the Ready condition. All
//     replicas share the manager: they write one record of the channel, with
//     the same values for the same revision (the log stores its
//     announcement once, under the revision's de-duplication key, and gives
//     every replica that first event's id and time). A manager per pod would
//     instead keep each pod's last copy of the record owned (a field one pod
//     drops stays while another still owns it, a pod applying a new
//     revision conflicts with those still holding the old one, and every
//     pod ever started leaves an entry in managedFields). As one manager
//     does not conflict with itself, each write reads the record first and
//     applies with that resourceVersion as a precondition, never replacing a
//     later generation's record, or a later phase of the same one.
//   - the operator, field manager "herald-operator": the ChannelFound
//     condition.
type SystemEventStatus struct {
	// Phase is Scheduled, Delivered, Expired or Failed.
	// +optional
	Phase SystemEventPhase `json:"phase,omitempty"`

	// EventID is the id of the delivered revision in the channel's log: the
	// SSE "id:" clients saw it under.
	// +optional
	EventID string `json:"eventId,omitempty"`

	// DeliveredAt is when the current revision was written to the log.
	// +optional
	DeliveredAt *metav1.Time `json:"deliveredAt,omitempty"`

	// ObservedGeneration is the generation the status describes.
	// +optional
	ObservedGeneration int64 `json:"observedGeneration,omitempty"`

	// Conditions, each owned by one writer; server-side apply merges them by
	// type: Ready (the streamers': True once the current revision is
	// delivered, else False with reason Scheduled, Expired, DataTooLarge or
	// InvalidData) and ChannelFound (the operator's: False with reason
	// ChannelNotFound while spec.channelRef names no channel).
	// +listType=map
	// +listMapKey=type
	// +optional
	Conditions []metav1.Condition `json:"conditions,omitempty"`
}

// SystemEvent is an announcement (maintenance, incident, feature flag) that the
// streamers of a channel broadcast to its connected users as a "system" event.
//
// +kubebuilder:object:root=true
// +kubebuilder:subresource:status
// +kubebuilder:resource:shortName=sev,categories=herald
// +kubebuilder:printcolumn:name="Channel",type=string,JSONPath=`.spec.channelRef.name`
// +kubebuilder:printcolumn:name="Type",type=string,JSONPath=`.spec.eventType`
// +kubebuilder:printcolumn:name="Phase",type=string,JSONPath=`.status.phase`
// +kubebuilder:printcolumn:name="Event-ID",type=string,JSONPath=`.status.eventId`
// +kubebuilder:printcolumn:name="Delivered",type=date,JSONPath=`.status.deliveredAt`
// +kubebuilder:printcolumn:name="Priority",type=string,JSONPath=`.spec.priority`,priority=1
// +kubebuilder:printcolumn:name="Age",type=date,JSONPath=`.metadata.creationTimestamp`
type SystemEvent struct {
	metav1.TypeMeta   `json:",inline"`
	metav1.ObjectMeta `json:"metadata,omitempty"`

	// Spec is the announcement.
	// +required
	Spec SystemEventSpec `json:"spec"`

	// Status is what the streamers did with it (phase, eventId, deliveredAt,
	// observedGeneration and the Ready condition, applied by every replica as
	// field manager herald-streamer) and whether its channel exists (the
	// ChannelFound condition, applied by the operator as herald-operator).
	// +optional
	Status SystemEventStatus `json:"status,omitempty"`
}

// SystemEventList is a list of SystemEvents.
//
// +kubebuilder:object:root=true
type SystemEventList struct {
	metav1.TypeMeta `json:",inline"`
	metav1.ListMeta `json:"metadata,omitempty"`
	Items           []SystemEvent `json:"items"`
}
