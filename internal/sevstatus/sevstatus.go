// Package sevstatus writes a SystemEvent's status the one way all its
// writers do (statusapply): server-side apply of the status subresource, each
// writer under its own field manager and applying only the fields and
// conditions it owns.
//
// The writers and what they own are listed on SystemEventStatus
// (api/v1alpha1).
package sevstatus

import (
	"context"

	"sigs.k8s.io/controller-runtime/pkg/client"

	notifyv1alpha1 "github.com/herald-notify/herald/api/v1alpha1"
	"github.com/herald-notify/herald/internal/statusapply"
)

// StreamerManager is the field manager of every streamer replica (see
// statusapply.StreamerManager).
const StreamerManager = statusapply.StreamerManager

// Apply makes status the whole of what manager owns in the status of the
// SystemEvent key (see statusapply.Apply); a non-empty resourceVersion is a
// precondition of the write.
func Apply(ctx context.Context, c client.Client, key client.ObjectKey, resourceVersion string,
	status notifyv1alpha1.SystemEventStatus, manager string) error {
	target := &notifyv1alpha1.SystemEvent{}
	target.Namespace, target.Name = key.Namespace, key.Name
	return statusapply.Apply(ctx, c, target, "SystemEvent", resourceVersion, status, manager)
}
