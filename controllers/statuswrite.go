package controllers

import (
	"context"
	"fmt"
	"slices"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/apimachinery/pkg/util/sets"
	"k8s.io/client-go/util/csaupgrade"
	"sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/controller-runtime/pkg/log"

	notifyv1alpha1 "github.com/herald-notify/herald/api/v1alpha1"
	"github.com/herald-notify/herald/internal/statusapply"
)

// operatorConditions are the condition types of a channel the operator owns;
// the streamers own the others (BrokerReachable, SecretsUsable).
var operatorConditions = []string{
	notifyv1alpha1.ConditionReady, notifyv1alpha1.ConditionProgressing,
	notifyv1alpha1.ConditionDegraded, notifyv1alpha1.ConditionStalled,
}

// applyStatus writes the operator's part of status on the channel by
// server-side apply as FieldOwner: observedGeneration, replicas,
// readyReplicas, endpoint and the operatorConditions. A field or condition
// it applied before and omits now is removed; the streamers' conditions are
// left alone.
func applyStatus(ctx context.Context, c client.Client, channel *notifyv1alpha1.NotificationChannel, status notifyv1alpha1.NotificationChannelStatus) error {
	if err := handOverStatus(ctx, c, channel); err != nil {
		return err
	}
	owned := status
	owned.Conditions = slices.DeleteFunc(slices.Clone(status.Conditions), func(c metav1.Condition) bool {
		return !slices.Contains(operatorConditions, c.Type)
	})
	target := &notifyv1alpha1.NotificationChannel{}
	target.Namespace, target.Name = channel.Namespace, channel.Name
	return statusapply.Apply(ctx, c, target, "NotificationChannel", "", owned, FieldOwner)
}

// handOverStatus gives FieldOwner's apply the status fields that earlier
// writers own through Update operations. Until this version the operator
// wrote the whole status with merge patches (as the manager named after its
// binary, "herald"): without the hand-over, those fields would stay owned
// by that manager, and a condition or field the operator's apply omits
// (Stalled once the spec is fixed, replicas at zero) would never be removed.
// It runs once per channel: the patch (of the channel's managedFields, with
// its resourceVersion as a precondition) leaves no Update manager of the
// status behind.
func handOverStatus(ctx context.Context, c client.Client, channel *notifyv1alpha1.NotificationChannel) error {
	writers := sets.New[string]()
	for _, m := range channel.ManagedFields {
		if m.Operation == metav1.ManagedFieldsOperationUpdate && m.Subresource == "status" {
			writers.Insert(m.Manager)
		}
	}
	if writers.Len() == 0 {
		return nil
	}
	patch, err := csaupgrade.UpgradeManagedFieldsPatch(channel, writers, FieldOwner, csaupgrade.Subresource("status"))
	if err != nil {
		return fmt.Errorf("failed to hand the status fields of %v over to %s: %w", sets.List(writers), FieldOwner, err)
	}
	if patch == nil {
		return nil
	}
	log.FromContext(ctx).Info("Handing the status fields of earlier writers over to server-side apply", "managers", sets.List(writers))
	if err := c.Patch(ctx, channel.DeepCopy(), client.RawPatch(types.JSONPatchType, patch)); err != nil {
		return fmt.Errorf("failed to hand the status fields of %v over to %s: %w", sets.List(writers), FieldOwner, err)
	}
	return nil
}
