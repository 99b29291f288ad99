package kube

import (
	"context"
	"fmt"
	"log/slog"
	"slices"
	"strings"
	"time"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"
	"sigs.k8s.io/controller-runtime/pkg/client"

	notifyv1alpha1 "github.com/herald-notify/herald/api/v1alpha1"
	"github.com/herald-notify/herald/internal/statusapply"
	"github.com/herald-notify/herald/streamer/log/jetstreamlog"
	"github.com/herald-notify/herald/streamer/server"
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
	// DefaultReportRefresh. A False not refreshed for three of them is
	// stale.
	Refresh time.Duration
	// Now is the clock; nil means time.Now.
	Now    func() time.Time
	Logger *slog.Logger
}

// BrokerReporter writes one pod's view of its NATS broker into the
// channel's BrokerReachable condition, as field manager herald-streamer
// (statusapply.StreamerManager). Every pod of the channel shares the one
// condition by the rules of sharedCondition: a pod that cannot reach NATS for
// longer than the grace writes False naming itself and refreshes it while
// the outage lasts; a pod that reaches NATS writes True over its own False,
// an older generation's, or a stale one.
type BrokerReporter struct {
	opts   BrokerReporterOptions
	shared *sharedCondition
	url    string

	// Run's state: when the current outage began (zero while healthy), and
	// the view last decided on.
	since time.Time
	last  *brokerView
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
	shared := newSharedCondition(opts.Client, opts.Channel, opts.Pod, notifyv1alpha1.ConditionBrokerReachable,
		statusapply.StreamerManager, opts.Refresh, opts.Now, opts.Logger)
	// A pod of a channel since turned embedded says nothing more.
	shared.wanted = func(c *notifyv1alpha1.NotificationChannel) bool {
		return c.Spec.Broker.Type == notifyv1alpha1.BrokerNATS
	}
	opts.Refresh, opts.Now, opts.Logger = shared.refresh, shared.now, shared.logger
	return &BrokerReporter{opts: opts, shared: shared, url: jetstreamlog.RedactURLs(opts.URL)}
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
	r.last = &view
	r.shared.offer(ctx, r.report(view), always)
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
		if r.last == nil {
			return brokerView{}, false
		}
		return *r.last, true
	}
	return brokerView{since: r.since, err: err}, true
}

// ReportIncompatible writes that the channel's stream exists with settings
// Herald cannot use, before the streamer exits on it.
func (r *BrokerReporter) ReportIncompatible(ctx context.Context, incompatible error) error {
	return r.shared.write(ctx, r.report(brokerView{incompatible: incompatible, since: r.opts.Now()}))
}

// report is the condition a view says.
func (r *BrokerReporter) report(view brokerView) conditionReport {
	report := conditionReport{generation: r.opts.Generation, status: metav1.ConditionFalse}
	switch {
	case view.reachable:
		report.status, report.reason = metav1.ConditionTrue, notifyv1alpha1.ReasonBrokerConnected
		report.body = "connected to NATS at " + r.url
	case view.incompatible != nil:
		report.reason, report.body = notifyv1alpha1.ReasonIncompatibleStream, view.incompatible.Error()
	default:
		report.reason = notifyv1alpha1.ReasonBrokerUnreachable
		report.body = fmt.Sprintf("cannot reach NATS at %s since %s: %s; check spec.broker.nats.url, that NATS runs there with JetStream enabled, and that it accepts the credentials of spec.broker.nats.credentialsSecretRef",
			r.url, view.since.UTC().Format(reportTimeLayout), r.redact(oneLine(view.err)))
	}
	return report
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

// RemoveBrokerReachable takes the BrokerReachable condition off a channel
// whose broker is not NATS (any more): nobody else would, and the streamers
// of its NATS days, which wrote it, are gone. A JSON patch, not an apply: an
// apply of nothing would remove the condition too, but leave an invalid
// null status when it was the only one; the patch also leaves nothing owned
// by the streamers' field manager. Its test of the condition's type makes it
// fail, rather than remove another, when the conditions changed meanwhile.
func RemoveBrokerReachable(ctx context.Context, c client.Client, key types.NamespacedName) error {
	ctx, cancel := context.WithTimeout(ctx, reportWriteTimeout)
	defer cancel()
	channel := &notifyv1alpha1.NotificationChannel{}
	if err := c.Get(ctx, key, channel); err != nil {
		return fmt.Errorf("failed to read NotificationChannel %s: %w", key, err)
	}
	i := slices.IndexFunc(channel.Status.Conditions, func(c metav1.Condition) bool {
		return c.Type == notifyv1alpha1.ConditionBrokerReachable
	})
	if i < 0 {
		return nil
	}
	patch := fmt.Sprintf(`[{"op":"test","path":"/status/conditions/%d/type","value":%q},{"op":"remove","path":"/status/conditions/%d"}]`,
		i, notifyv1alpha1.ConditionBrokerReachable, i)
	if err := c.Status().Patch(ctx, channel, client.RawPatch(types.JSONPatchType, []byte(patch)), client.FieldOwner(statusapply.StreamerManager)); err != nil {
		return fmt.Errorf("failed to remove the BrokerReachable condition of NotificationChannel %s: %w", key, err)
	}
	return nil
}
