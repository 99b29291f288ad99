// Package statusapply writes the status of a Herald resource the one way all
// its writers do: server-side apply of the status subresource, each writer
// under its own field manager and applying only the fields and conditions it
// owns. The API server then merges their writes (conditions by type, as the
// CRDs' listType=map says) instead of one writer's replacing another's.
//
// Used for the SystemEvent status (internal/sevstatus) and the
// NotificationChannel status (the operator and the streamers).
package statusapply

import (
	"context"
	"encoding/json"
	"fmt"

	"k8s.io/apimachinery/pkg/types"
	"sigs.k8s.io/controller-runtime/pkg/client"

	notifyv1alpha1 "github.com/herald-notify/herald/api/v1alpha1"
)

// StreamerManager is the status field manager of every streamer replica
// (the operator's is controllers.FieldOwner). One manager for all of them:
// they write one record (the same values for the same state), and a manager
// per pod would keep each pod's last copy alive in the object's
// managedFields after the pod is gone.
// On a NotificationChannel it writes BrokerReachable.
const StreamerManager = "herald-streamer"

// StreamerSecretsManager is the field manager of the streamers'
// SecretsUsable condition on a NotificationChannel: one manager per
// streamer-written condition, as an apply removes the conditions its manager
// owned and omits.
const StreamerSecretsManager = "herald-streamer-secrets"

// document is the body of an apply to the status subresource: the object's
// identity and the fields the manager owns, nothing else.
type document struct {
	APIVersion string   `json:"apiVersion"`
	Kind       string   `json:"kind"`
	Metadata   metadata `json:"metadata"`
	Status     any      `json:"status"`
}

type metadata struct {
	Name      string `json:"name"`
	Namespace string `json:"namespace"`
	// ResourceVersion, when set, is a precondition of the write.
	ResourceVersion string `json:"resourceVersion,omitempty"`
}

// Apply makes status the whole of what manager owns in the status of target
// (an empty object of the kind, named by its namespace and name): fields and
// conditions it applied before and omits now are removed, other managers'
// are left alone. Ownership is forced, as each writer is the authority on its
// own fields (a field someone edited by hand, or that a writer without
// server-side apply set, is taken back). A non-empty resourceVersion is a
// precondition: the API server refuses the write with a Conflict when the
// object changed since it was read.
func Apply(ctx context.Context, c client.Client, target client.Object, kind, resourceVersion string, status any, manager string) error {
	key := client.ObjectKeyFromObject(target)
	body, err := json.Marshal(document{
		APIVersion: notifyv1alpha1.GroupVersion.String(),
		Kind:       kind,
		Metadata:   metadata{Name: key.Name, Namespace: key.Namespace, ResourceVersion: resourceVersion},
		Status:     status,
	})
	if err != nil {
		return fmt.Errorf("failed to encode the status of %s %s: %w", kind, key, err)
	}
	if err := c.Status().Patch(ctx, target, client.RawPatch(types.ApplyPatchType, body),
		client.FieldOwner(manager), client.ForceOwnership); err != nil {
		return fmt.Errorf("failed to apply the status of %s %s as %s: %w", kind, key, manager, err)
	}
	return nil
}
