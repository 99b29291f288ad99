// Package sevstatus writes a SystemEvent's status the one way all its
// writers do: server-side apply of the status subresource, each writer under
// its own field manager and applying only the fields and conditions it owns.
// The API server then merges their writes (conditions by type, as the CRD's
// listType=map says) instead of one writer's replacing another's.
//
// The writers and what they own are listed on SystemEventStatus
// (api/v1alpha1).
package sevstatus

import (
	"context"
	"encoding/json"
	"fmt"

	"k8s.io/apimachinery/pkg/types"
	"sigs.k8s.io/controller-runtime/pkg/client"

	notifyv1alpha1 "github.com/herald-notify/herald/api/v1alpha1"
)

// StreamerManager is the field manager of every streamer replica. One
// manager for all of them: they write one record of the channel (the same
// values for the same revision), and a manager per pod would keep each pod's
// last copy of it alive (see SystemEventStatus).
const StreamerManager = "herald-streamer"

// applyDocument is the body of an apply to the status subresource: the
// object's identity and the fields the manager owns, nothing else.
type applyDocument struct {
	APIVersion string                           `json:"apiVersion"`
	Kind       string                           `json:"kind"`
	Metadata   applyMetadata                    `json:"metadata"`
	Status     notifyv1alpha1.SystemEventStatus `json:"status"`
}

type applyMetadata struct {
	Name      string `json:"name"`
	Namespace string `json:"namespace"`
	// ResourceVersion, when set, is a precondition of the write.
	ResourceVersion string `json:"resourceVersion,omitempty"`
}

// Apply makes status the whole of what manager owns in the status of the
// SystemEvent key: fields and conditions it applied before and omits now are
// removed, other managers' are left alone. Ownership is forced, as each
// writer is the authority on its own fields (a field someone edited by hand,
// or that a writer without server-side apply set, is taken back). A non-empty
// resourceVersion is a precondition: the API server refuses the write with
// a Conflict when the object changed since it was read.
func Apply(ctx context.Context, c client.Client, key client.ObjectKey, resourceVersion string,
	status notifyv1alpha1.SystemEventStatus, manager string) error {
	body, err := json.Marshal(applyDocument{
		APIVersion: notifyv1alpha1.GroupVersion.String(),
		Kind:       "SystemEvent",
		Metadata:   applyMetadata{Name: key.Name, Namespace: key.Namespace, ResourceVersion: resourceVersion},
		Status:     status,
	})
	if err != nil {
		return fmt.Errorf("failed to encode the status of SystemEvent %s: %w", key, err)
	}
	target := &notifyv1alpha1.SystemEvent{}
	target.Namespace, target.Name = key.Namespace, key.Name
	if err := c.Status().Patch(ctx, target, client.RawPatch(types.ApplyPatchType, body),
		client.FieldOwner(manager), client.ForceOwnership); err != nil {
		return fmt.Errorf("failed to apply the status of SystemEvent %s as %s: %w", key, manager, err)
	}
	return nil
}
