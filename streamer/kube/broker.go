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
	"github.com/herald-notify/herald/streamer/log/jetstreamlog"
	"github.com/herald-notify/herald/streamer/server"
)

// Defaults of BrokerReporterOptions.
const (
	// DefaultBrokerRefresh is how often a pod that cannot reach NATS
	// refreshes the False that names it, and how often every pod looks at
	// the condition again.
	DefaultBrokerRefresh = 30 * time.Second
	// brokerStaleRefreshes is how many refreshes a False may miss before
	// another pod that reaches NATS takes it for stale: its pod recovered
	// without being able to say so, or is gone.
	brokerStaleRefreshes = 3
	// brokerWriteTimeout bounds one read and write of the channel.
	brokerWriteTimeout = 5 * time.Second
	// brokerRetryInterval paces the writes again after one failed (the API
	// server away): the pod keeps serving meanwhile.
	brokerRetryInterval = 2 * time.Second
)

// BrokerReporterOptions configure a BrokerReporter. Zero values are the
// documented defaults.
type BrokerReporterOptions struct {
	// Client reads the channel from the API server itself (not a cache) and
	// applies its status.
	Client client.Client
	// Channel names the NotificationChannel, whose broker.type is NATS.
	Channel types.NamespacedName
	// Pod is the name of this pod, which the condition names.
	Pod string
	// Generation is the channel generation whose spec.broker the pod runs
	// with (read at start: a change of the broker rolls the pods).
	Generation int64
	// URL is spec.broker.nats.url; the condition shows it without
	// credentials.
	URL string
	// Health is the log's health: why it cannot reach NATS, nil when it can.
	Health server.HealthReporter
	// Grace is how long the log may be unhealthy before the pod reports it:
	// the grace of /readyz; 0 means server.DefaultLogUnhealthyGrace.
	Grace time.Duration
	// Refresh is how often a pod that cannot reach NATS refreshes its
	// False, and how often every pod looks at the condition again; 0 means
	// DefaultBrokerRefresh. A False not refreshed for three of them is
	// stale.
	Refresh time.Duration
	// Now is the clock; nil means time.Now.
	Now    func() time.Time
	Logger *slog.Logger
}

// BrokerReporter writes one pod's view of its NATS broker into the
// channel's BrokerReachable condition, as field manager herald-streamer.
//
// Every pod of the channel shares the manager and the one condition. So that
// one healthy pod does not hide another's failure for ever, and one pod's
// False does not outlive its failure:
//   - a pod that cannot reach NATS for longer than the grace writes False
//     naming itself (unless a False naming another pod is fresh: the
//     condition already says so), and refreshes it every Refresh while the
//     outage lasts;
//   - a pod that reaches NATS writes True only over a False that names
//     itself, is of an older generation, or has not been refreshed for
//     three Refreshes;
//   - a pod never overwrites the condition of a newer generation.
//
// Each write reads the channel and applies with the resourceVersion read as
// a precondition, so two pods deciding at once do not undo each other. A
// write that fails (the API server away) is retried; the pod keeps serving.
type BrokerReporter struct {
	opts       BrokerReporterOptions
	staleAfter time.Duration
	url        string

	// Run's state: when the current outage began (zero while healthy), and
	// the view last written or decided on.
	since    time.Time
	reported *brokerView
	retryAt  time.Time
	failing  bool
}

// brokerView is what one pod sees of its broker.
type brokerView struct {
	reachable bool
	// incompatible, when set, is why the channel's stream cannot be used.
	incompatible error
	// since and err: when the pod stopped reaching NATS, and why.
	since time.Time
	err   error
}

// NewBrokerReporter returns a reporter; Run starts it.
func NewBrokerReporter(opts BrokerReporterOptions) *BrokerReporter {
	if opts.Grace <= 0 {
		opts.Grace = server.DefaultLogUnhealthyGrace
	}
	if opts.Refresh <= 0 {
		opts.Refresh = DefaultBrokerRefresh
	}
	if opts.Now == nil {
		opts.Now = time.Now
	}
	if opts.Logger == nil {
		opts.Logger = slog.New(slog.DiscardHandler)
	}
	return &BrokerReporter{opts: opts, staleAfter: brokerStaleRefreshes * opts.Refresh, url: jetstreamlog.RedactURLs(opts.URL)}
}

// Run samples the log's health a few times per grace and writes the
// condition when the pod's view changes, and every Refresh, until ctx ends.
func (r *BrokerReporter) Run(ctx context.Context) {
	sample := time.NewTicker(max(r.opts.Grace/5, 50*time.Millisecond))
	defer sample.Stop()
	refresh := time.NewTicker(r.opts.Refresh)
	defer refresh.Stop()
	r.sample(ctx, false)
	for {
		select {
		case <-ctx.Done():
			return
		case <-sample.C:
			r.sample(ctx, false)
		case <-refresh.C:
			r.sample(ctx, true)
		}
	}
}

// sample reads the log's health and writes the condition when the view
// changed, a write is due again, or always is set.
func (r *BrokerReporter) sample(ctx context.Context, always bool) {
	now := r.opts.Now()
	view, known := r.view(now)
	if !known {
		return // within the grace: nothing changed yet
	}
	if !r.retryAt.IsZero() && now.Before(r.retryAt) {
		return // the last write failed: wait before the next
	}
	changed := r.reported == nil || r.reported.reachable != view.reachable
	if !changed && !always && r.retryAt.IsZero() {
		return
	}
	if err := r.report(ctx, view); err != nil {
		r.retryAt = now.Add(brokerRetryInterval)
		if !r.failing {
			r.failing = true
			r.opts.Logger.Warn("cannot write the channel's BrokerReachable condition; retrying, and serving meanwhile",
				"reason", "StatusWriteFailed", "error", err.Error())
		}
		return
	}
	r.retryAt = time.Time{}
	if r.failing {
		r.failing = false
		r.opts.Logger.Info("the channel's BrokerReachable condition is written again")
	}
	r.reported = &view
}

// view is the pod's view of its broker at now. While the log has been
// unhealthy for less than the grace, the view stays what it was (known is
// false when there was none yet), as /readyz does.
func (r *BrokerReporter) view(now time.Time) (view brokerView, known bool) {
	err := r.opts.Health.LastError()
	if err == nil {
		r.since = time.Time{}
		return brokerView{reachable: true}, true
	}
	if r.since.IsZero() {
		r.since = now
	}
	if now.Sub(r.since) < r.opts.Grace {
		if r.reported == nil {
			return brokerView{}, false
		}
		return *r.reported, true
	}
	return brokerView{since: r.since, err: err}, true
}

// ReportIncompatible writes that the channel's stream exists with settings
// Herald cannot use, before the streamer exits on it.
func (r *BrokerReporter) ReportIncompatible(ctx context.Context, incompatible error) error {
	return r.report(ctx, brokerView{incompatible: incompatible, since: r.opts.Now()})
}

// report writes view into the condition when the rules of BrokerReporter
// say so, retrying when another writer changed the channel meanwhile.
func (r *BrokerReporter) report(ctx context.Context, view brokerView) error {
	ctx, cancel := context.WithTimeout(ctx, brokerWriteTimeout)
	defer cancel()
	for {
		err := r.reportOnce(ctx, view)
		if !apierrors.IsConflict(err) {
			return err
		}
		if ctx.Err() != nil {
			return err
		}
	}
}

// reportOnce is one read and, when the condition is to change, one apply
// conditional on nothing having changed since.
func (r *BrokerReporter) reportOnce(ctx context.Context, view brokerView) error {
	channel := &notifyv1alpha1.NotificationChannel{}
	if err := r.opts.Client.Get(ctx, r.opts.Channel, channel); err != nil {
		return fmt.Errorf("failed to read NotificationChannel %s: %w", r.opts.Channel, err)
	}
	current := meta.FindStatusCondition(channel.Status.Conditions, notifyv1alpha1.ConditionBrokerReachable)
	now := r.opts.Now()
	if !r.replaces(current, view, now) {
		return nil
	}
	next := r.condition(view, now)
	if current != nil && current.Status == next.Status {
		next.LastTransitionTime = current.LastTransitionTime
	}
	status := map[string]any{"conditions": []metav1.Condition{next}}
	target := &notifyv1alpha1.NotificationChannel{}
	target.Namespace, target.Name = r.opts.Channel.Namespace, r.opts.Channel.Name
	if err := statusapply.Apply(ctx, r.opts.Client, target, "NotificationChannel", channel.ResourceVersion, status, statusapply.StreamerManager); err != nil {
		return err
	}
	r.opts.Logger.Info("BrokerReachable written on the channel", "status", next.Status, "reason", next.Reason, "message", next.Message)
	return nil
}

// replaces decides whether this pod's view goes over the current condition
// (see BrokerReporter).
func (r *BrokerReporter) replaces(current *metav1.Condition, view brokerView, now time.Time) bool {
	if current == nil || current.ObservedGeneration < r.opts.Generation {
		return true
	}
	if current.ObservedGeneration > r.opts.Generation {
		return false // the pods of a newer generation speak
	}
	pod, at, parsed := parseBrokerReport(current.Message)
	mine := parsed && pod == r.opts.Pod
	stale := !parsed || now.Sub(at) >= r.staleAfter
	switch {
	case view.reachable:
		return current.Status != metav1.ConditionTrue && (mine || stale)
	case current.Status == metav1.ConditionTrue:
		return true
	case mine:
		// Refreshed at half the interval: a refresh tick comes a little
		// less than one interval after the last write.
		return current.Reason != r.reason(view) || now.Sub(at) >= r.opts.Refresh/2
	default:
		return stale
	}
}

// reason is the condition's reason for a view.
func (r *BrokerReporter) reason(view brokerView) string {
	switch {
	case view.reachable:
		return notifyv1alpha1.ReasonBrokerConnected
	case view.incompatible != nil:
		return notifyv1alpha1.ReasonIncompatibleStream
	default:
		return notifyv1alpha1.ReasonBrokerUnreachable
	}
}

// condition is the BrokerReachable condition of view, written at now.
func (r *BrokerReporter) condition(view brokerView, now time.Time) metav1.Condition {
	c := metav1.Condition{
		Type: notifyv1alpha1.ConditionBrokerReachable, Status: metav1.ConditionFalse, Reason: r.reason(view),
		ObservedGeneration: r.opts.Generation, LastTransitionTime: metav1.NewTime(now),
	}
	var body string
	switch {
	case view.reachable:
		c.Status = metav1.ConditionTrue
		body = "connected to NATS at " + r.url
	case view.incompatible != nil:
		body = view.incompatible.Error()
	default:
		body = fmt.Sprintf("cannot reach NATS at %s since %s: %s; check spec.broker.nats.url, that NATS runs there with JetStream enabled, and that it accepts the credentials of spec.broker.nats.credentialsSecretRef",
			r.url, view.since.UTC().Format(brokerTimeLayout), r.redact(oneLine(view.err)))
	}
	c.Message = brokerReport(r.opts.Pod, now, body)
	return c
}

// brokerTimeLayout writes the times of the condition's message: RFC 3339,
// in milliseconds, UTC.
const brokerTimeLayout = "2006-01-02T15:04:05.000Z07:00"

// brokerReport is the condition's message: "pod <pod> at <time>: <body>".
// Its start says which pod wrote it and when, which the other pods read
// back (parseBrokerReport): a pod name holds no space.
func brokerReport(pod string, at time.Time, body string) string {
	return "pod " + pod + " at " + at.UTC().Format(brokerTimeLayout) + ": " + body
}

// parseBrokerReport reads the pod and time at the start of a message that
// brokerReport wrote; ok is false for any other message.
func parseBrokerReport(message string) (pod string, at time.Time, ok bool) {
	rest, found := strings.CutPrefix(message, "pod ")
	if !found {
		return "", time.Time{}, false
	}
	pod, rest, found = strings.Cut(rest, " at ")
	if !found || pod == "" {
		return "", time.Time{}, false
	}
	stamp, _, found := strings.Cut(rest, ": ")
	if !found {
		return "", time.Time{}, false
	}
	at, err := time.Parse(brokerTimeLayout, stamp)
	if err != nil {
		return "", time.Time{}, false
	}
	return pod, at, true
}

// redact is text with each URL of the channel's that carries credentials
// written without them, as errors quote the URLs they dialled.
func (r *BrokerReporter) redact(text string) string {
	for part := range strings.SplitSeq(r.opts.URL, ",") {
		if part = strings.TrimSpace(part); part != "" {
			text = strings.ReplaceAll(text, part, jetstreamlog.RedactURLs(part))
		}
	}
	return text
}

// oneLine is err's message on one line.
func oneLine(err error) string {
	if err == nil {
		return "unknown error"
	}
	return strings.Join(strings.Fields(err.Error()), " ")
}
