// Package sevtest helps the suites that race SystemEvent status writers on a
// real API server: the streamers' record of a revision, bounded concurrent
// writes, and who manages the status.
package sevtest

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"time"

	apiextensionsv1 "k8s.io/apiextensions-apiserver/pkg/apis/apiextensions/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/util/retry"
	"sigs.k8s.io/controller-runtime/pkg/client"

	notifyv1alpha1 "github.com/herald-notify/herald/api/v1alpha1"
)

// RecordedAt is the time every record of Record was delivered at, as a
// client decodes it: whole seconds, in the local zone.
var RecordedAt = metav1.NewTime(time.Date(2027, 1, 15, 22, 0, 0, 0, time.UTC).Local())

// Phases are the phases one revision goes through, in order.
var Phases = []notifyv1alpha1.SystemEventPhase{notifyv1alpha1.PhaseScheduled, notifyv1alpha1.PhaseDelivered, notifyv1alpha1.PhaseExpired}

// CreateAt creates the SystemEvent "maintenance" of channel "app" in
// namespace, and edits it until it is at generation.
func CreateAt(ctx context.Context, c client.Client, namespace string, generation int64) (*notifyv1alpha1.SystemEvent, error) {
	sev := &notifyv1alpha1.SystemEvent{
		ObjectMeta: metav1.ObjectMeta{Namespace: namespace, Name: "maintenance"},
		Spec: notifyv1alpha1.SystemEventSpec{ChannelRef: notifyv1alpha1.ChannelReference{Name: "app"}, EventType: "maintenance",
			Audience: notifyv1alpha1.Audience{All: new(true)}},
	}
	if err := c.Create(ctx, sev); err != nil {
		return nil, fmt.Errorf("failed to create SystemEvent %s/%s: %w", namespace, sev.Name, err)
	}
	if err := AdvanceTo(ctx, c, sev, generation); err != nil {
		return nil, err
	}
	return sev, nil
}

// AdvanceTo edits sev's spec, as a person would, until it is at generation.
// Other writers change the status meanwhile, so each edit reads sev again
// on a conflict.
func AdvanceTo(ctx context.Context, c client.Client, sev *notifyv1alpha1.SystemEvent, generation int64) error {
	for sev.Generation < generation {
		if err := retry.RetryOnConflict(retry.DefaultRetry, func() error {
			if err := c.Get(ctx, client.ObjectKeyFromObject(sev), sev); err != nil {
				return err
			}
			sev.Spec.Data = &apiextensionsv1.JSON{Raw: fmt.Appendf(nil, `{"revision":%d}`, sev.Generation+1)}
			return c.Update(ctx, sev)
		}); err != nil {
			return fmt.Errorf("failed to edit SystemEvent %s/%s: %w", sev.Namespace, sev.Name, err)
		}
	}
	return nil
}

// Record is the record the streamers write for a revision in phase: the same
// values on every replica, as the announcer builds them, with event id
// "1-<generation>".
func Record(generation int64, phase notifyv1alpha1.SystemEventPhase) notifyv1alpha1.SystemEventStatus {
	ready := metav1.Condition{
		Type: notifyv1alpha1.ConditionReady, Status: metav1.ConditionFalse, Reason: string(phase),
		Message: string(phase), ObservedGeneration: generation, LastTransitionTime: RecordedAt,
	}
	if phase == notifyv1alpha1.PhaseDelivered {
		ready.Status = metav1.ConditionTrue
	}
	status := notifyv1alpha1.SystemEventStatus{Phase: phase, ObservedGeneration: generation, Conditions: []metav1.Condition{ready}}
	if phase != notifyv1alpha1.PhaseScheduled {
		status.EventID, status.DeliveredAt = fmt.Sprintf("1-%d", generation), &RecordedAt
	}
	return status
}

// RunBounded runs every write, at most parallel at once, and returns their
// errors joined.
func RunBounded(parallel int, writes []func() error) error {
	jobs := make(chan func() error)
	errs := make(chan error, len(writes))
	var wg sync.WaitGroup
	for range parallel {
		wg.Go(func() {
			for write := range jobs {
				errs <- write()
			}
		})
	}
	for _, write := range writes {
		jobs <- write
	}
	close(jobs)
	wg.Wait()
	close(errs)
	var all []error
	for err := range errs {
		all = append(all, err)
	}
	return errors.Join(all...)
}

// StatusManagers are the field managers of sev's status subresource.
func StatusManagers(sev *notifyv1alpha1.SystemEvent) []string {
	var managers []string
	for _, m := range sev.ManagedFields {
		if m.Subresource == "status" {
			managers = append(managers, m.Manager)
		}
	}
	return managers
}
