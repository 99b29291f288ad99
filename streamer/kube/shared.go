package kube

import (
	"context"
	"fmt"
	"log/slog"
	"strings"
	"time"

	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"k8s.io/apimachinery/pkg/api/meta"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"
	"sigs.k8s.io/controller-runtime/pkg/client"

	notifyv1alpha1 "github.com/herald-notify/herald/api/v1alpha1"
	"github.com/herald-notify/herald/internal/statusapply"
)

// Timing of a shared condition.
const (
	// DefaultReportRefresh is how often a pod whose report is False
	// refreshes the False that names it, and how often every pod looks at
	// the condition again.
	DefaultReportRefresh = 30 * time.Second
	// staleRefreshes is how many refreshes a False may miss before another
	// pod takes it for stale: its pod recovered without being able to say
	// so, or is gone.
	staleRefreshes = 3
	// reportWriteTimeout bounds one read and write of the channel.
	reportWriteTimeout = 5 * time.Second
	// reportRetryInterval paces the writes again after one failed (the API
	// server away): the pod keeps serving meanwhile.
	reportRetryInterval = 2 * time.Second
)

// sharedCondition writes one condition of the channel's status that every
// streamer pod of the channel shares, under one field manager per condition
// type (an apply by a manager removes the conditions it owned and omits, so
// two conditions under one manager would erase each other).
//
// So that one healthy pod does not hide another's problem for ever, and one
// pod's False does not outlive its problem:
//   - a pod with a problem writes False naming itself (unless a False naming
//     another pod is fresh: the condition already says so), and refreshes it
//     every refresh while the problem lasts;
//   - a pod without one writes True only over a False that names itself, is
//     of an older generation, or has not been refreshed for three refreshes;
//   - a pod never overwrites the condition of a newer generation.
//
// Each write reads the channel and applies with the resourceVersion read as
// a precondition, so two pods deciding at once do not undo each other. A
// write that fails (the API server away) is retried; the pod keeps serving.
type sharedCondition struct {
	client     client.Client
	channel    types.NamespacedName
	pod        string
	typ        string
	manager    string
	refresh    time.Duration
	staleAfter time.Duration
	now        func() time.Time
	logger     *slog.Logger
	// wanted, when set, says whether the channel as read still wants this
	// pod's condition; when not, the pod writes nothing.
	wanted func(*notifyv1alpha1.NotificationChannel) bool

	// The report last written or decided on, and the pacing of retries.
	reported *conditionReport
	retryAt  time.Time
	failing  bool
}

// conditionReport is what one pod has to say in the condition.
type conditionReport struct {
	// generation is the channel generation the pod speaks for.
	generation int64
	status     metav1.ConditionStatus
	reason     string
	// body is the message after "pod <pod> at <time>: ".
	body string
}

// newSharedCondition returns the writer of condition typ as manager; zero
// refresh, now and logger are the defaults.
func newSharedCondition(c client.Client, channel types.NamespacedName, pod, typ, manager string,
	refresh time.Duration, now func() time.Time, logger *slog.Logger) *sharedCondition {
	if refresh <= 0 {
		refresh = DefaultReportRefresh
	}
	if now == nil {
		now = time.Now
	}
	if logger == nil {
		logger = slog.New(slog.DiscardHandler)
	}
	return &sharedCondition{
		client: c, channel: channel, pod: pod, typ: typ, manager: manager,
		refresh: refresh, staleAfter: staleRefreshes * refresh, now: now, logger: logger,
	}
}

// offer writes report when it differs from the one last written, a write
// is due again after a failure, or always is set (a refresh).
func (s *sharedCondition) offer(ctx context.Context, report conditionReport, always bool) {
	now := s.now()
	if !s.retryAt.IsZero() && now.Before(s.retryAt) {
		return // the last write failed: wait before the next
	}
	if s.reported != nil && *s.reported == report && !always && s.retryAt.IsZero() {
		return
	}
	if err := s.write(ctx, report); err != nil {
		s.retryAt = now.Add(reportRetryInterval)
		if !s.failing {
			s.failing = true
			s.logger.Warn("cannot write the channel's "+s.typ+" condition; retrying, and serving meanwhile",
				"reason", "StatusWriteFailed", "error", err.Error())
		}
		return
	}
	s.retryAt = time.Time{}
	if s.failing {
		s.failing = false
		s.logger.Info("the channel's " + s.typ + " condition is written again")
	}
	s.reported = &report
}

// write writes report into the condition when the rules of sharedCondition
// say so, retrying when another writer changed the channel meanwhile.
func (s *sharedCondition) write(ctx context.Context, report conditionReport) error {
	ctx, cancel := context.WithTimeout(ctx, reportWriteTimeout)
	defer cancel()
	for {
		err := s.writeOnce(ctx, report)
		if !apierrors.IsConflict(err) || ctx.Err() != nil {
			return err
		}
	}
}

// writeOnce is one read and, when the condition is to change, one apply
// conditional on nothing having changed since.
func (s *sharedCondition) writeOnce(ctx context.Context, report conditionReport) error {
	channel := &notifyv1alpha1.NotificationChannel{}
	if err := s.client.Get(ctx, s.channel, channel); err != nil {
		return fmt.Errorf("failed to read NotificationChannel %s: %w", s.channel, err)
	}
	if s.wanted != nil && !s.wanted(channel) {
		return nil
	}
	current := meta.FindStatusCondition(channel.Status.Conditions, s.typ)
	now := s.now()
	if !s.replaces(current, report, now) {
		return nil
	}
	next := metav1.Condition{
		Type: s.typ, Status: report.status, Reason: report.reason, Message: podReport(s.pod, now, report.body),
		ObservedGeneration: report.generation, LastTransitionTime: metav1.NewTime(now),
	}
	if current != nil && current.Status == next.Status {
		next.LastTransitionTime = current.LastTransitionTime
	}
	status := map[string]any{"conditions": []metav1.Condition{next}}
	if err := statusapply.Apply(ctx, s.client, s.target(), "NotificationChannel", channel.ResourceVersion, status, s.manager); err != nil {
		return err
	}
	s.logger.Info(s.typ+" written on the channel", "status", next.Status, "reason", next.Reason, "message", next.Message)
	return nil
}

// target is the channel, named, for an apply.
func (s *sharedCondition) target() *notifyv1alpha1.NotificationChannel {
	target := &notifyv1alpha1.NotificationChannel{}
	target.Namespace, target.Name = s.channel.Namespace, s.channel.Name
	return target
}

// replaces decides whether this pod's report goes over the current
// condition (see sharedCondition).
func (s *sharedCondition) replaces(current *metav1.Condition, report conditionReport, now time.Time) bool {
	if current == nil || current.ObservedGeneration < report.generation {
		return true
	}
	if current.ObservedGeneration > report.generation {
		return false // the pods of a newer generation speak
	}
	pod, at, body, parsed := parsePodReport(current.Message)
	mine := parsed && pod == s.pod
	stale := !parsed || now.Sub(at) >= s.staleAfter
	switch {
	case report.status == metav1.ConditionTrue:
		return current.Status != metav1.ConditionTrue && (mine || stale)
	case current.Status == metav1.ConditionTrue:
		return true
	case mine:
		// Refreshed at half the interval: a refresh tick comes a little
		// less than one interval after the last write.
		return current.Reason != report.reason || body != report.body || now.Sub(at) >= s.refresh/2
	default:
		return stale
	}
}

// reportTimeLayout writes the times of a shared condition's message: RFC
// 3339, in milliseconds, UTC.
const reportTimeLayout = "2006-01-02T15:04:05.000Z07:00"

// podReport is a shared condition's message: "pod <pod> at <time>: <body>".
// Its start says which pod wrote it and when, which the other pods read
// back (parsePodReport): a pod name holds no space.
func podReport(pod string, at time.Time, body string) string {
	return "pod " + pod + " at " + at.UTC().Format(reportTimeLayout) + ": " + body
}

// parsePodReport reads the pod, time and body of a message that podReport
// wrote; ok is false for any other message.
func parsePodReport(message string) (pod string, at time.Time, body string, ok bool) {
	rest, found := strings.CutPrefix(message, "pod ")
	if !found {
		return "", time.Time{}, "", false
	}
	pod, rest, found = strings.Cut(rest, " at ")
	if !found || pod == "" {
		return "", time.Time{}, "", false
	}
	stamp, body, found := strings.Cut(rest, ": ")
	if !found {
		return "", time.Time{}, "", false
	}
	at, err := time.Parse(reportTimeLayout, stamp)
	if err != nil {
		return "", time.Time{}, "", false
	}
	return pod, at, body, true
}
