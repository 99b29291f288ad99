// Package announce turns a channel's SystemEvents into "system" events in the
// channel's log: each revision (metadata.generation) of a SystemEvent is
// announced once to its audience, at its deliverAt time, and is handed to
// users who connect later until its expiresAt; deleting an announced
// SystemEvent announces its retraction. The SystemEvent's status is the
// record of what was announced, so a restarted streamer announces nothing
// twice.
//
// The Announcer is fed SystemEvents (by the Kubernetes watch in watch.go, or
// by tests) and runs all its decisions on one goroutine; timers for deliverAt
// and expiresAt put their work on that goroutine too, so nothing polls.
package announce

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"slices"
	"sync"
	"time"

	"k8s.io/apimachinery/pkg/api/meta"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"

	notifyv1alpha1 "github.com/herald-notify/herald/api/v1alpha1"
	"github.com/herald-notify/herald/streamer/event"
	eventlog "github.com/herald-notify/herald/streamer/log"
)

// MaxDataBytes bounds the encoded data of a SystemEvent: every client holds
// an announcement in memory, and the API server cannot bound schemaless JSON
// itself.
const MaxDataBytes = 32 << 10

// statusRetryDelay is the wait before a failed status write, or a failed
// append to the log, is tried again.
const statusRetryDelay = 2 * time.Second

// retractTimeout bounds the append of a retraction, which is not retried:
// its SystemEvent is gone.
const retractTimeout = 5 * time.Second

// StatusWriter records a SystemEvent's status (on the API server). status is
// the whole of the streamers' record: every replica writes it, so a writer
// keeps a record of a later generation or phase than status in place, and
// the fields other writers own (the operator's conditions) untouched.
type StatusWriter interface {
	WriteStatus(ctx context.Context, sev *notifyv1alpha1.SystemEvent, status notifyv1alpha1.SystemEventStatus) error
}

// Options configure an Announcer.
type Options struct {
	// Channel is the name of the channel whose SystemEvents are announced;
	// others are ignored.
	Channel string
	// Log receives the announcements.
	Log eventlog.Log
	// Status records what was announced.
	Status StatusWriter
	// Now is the clock; nil means time.Now.
	Now func() time.Time
	// Logger receives structured logs; nil discards them.
	Logger *slog.Logger
}

// Announcer announces SystemEvents. Observe and Forget feed it; Run executes.
type Announcer struct {
	opts Options
	work chan func(ctx context.Context)
	// stopped is closed when Run returns: work submitted later is dropped.
	stopped chan struct{}

	// revisions is the state of each SystemEvent, by UID: only the Run
	// goroutine touches it.
	revisions map[types.UID]*revision

	// active are the announcements users who connect later still receive;
	// read by every new stream, so under their own lock.
	mu     sync.RWMutex
	active map[types.UID]activeAnnouncement
}

// revision is what the Announcer knows of one SystemEvent.
type revision struct {
	sev *notifyv1alpha1.SystemEvent
	// generation is the revision handled; an Observe of the same generation
	// (a resync, the watch after a status write) changes nothing.
	generation int64
	// announced is set once the revision (or an earlier one, for a retraction)
	// is in the log; eventID is its position there.
	announced bool
	eventID   eventlog.Position
	// deliveredAt is when the log stored the revision: for a duplicate, the
	// first replica's announcement, so every replica records the same time.
	deliveredAt time.Time
	// timer fires at deliverAt or expiresAt.
	timer *time.Timer
}

// activeAnnouncement is an announcement a user connecting later receives.
type activeAnnouncement struct {
	id      eventlog.Position
	users   []string
	data    []byte
	expires time.Time
}

// New returns an Announcer; start it with Run.
func New(opts Options) *Announcer {
	if opts.Now == nil {
		opts.Now = time.Now
	}
	if opts.Logger == nil {
		opts.Logger = slog.New(slog.DiscardHandler)
	}
	return &Announcer{
		opts:      opts,
		work:      make(chan func(context.Context), 64),
		stopped:   make(chan struct{}),
		revisions: map[types.UID]*revision{},
		active:    map[types.UID]activeAnnouncement{},
	}
}

// Run executes the Announcer's work until ctx ends. Call it once.
func (a *Announcer) Run(ctx context.Context) {
	defer close(a.stopped)
	for {
		select {
		case <-ctx.Done():
			for _, r := range a.revisions {
				r.stopTimer()
			}
			return
		case do := <-a.work:
			do(ctx)
		}
	}
}

// Observe hands the Announcer a created or updated SystemEvent.
func (a *Announcer) Observe(sev *notifyv1alpha1.SystemEvent) {
	sev = sev.DeepCopy()
	a.submit(func(ctx context.Context) { a.observe(ctx, sev) })
}

// Forget hands the Announcer a deleted SystemEvent.
func (a *Announcer) Forget(sev *notifyv1alpha1.SystemEvent) {
	uid := sev.UID
	a.submit(func(ctx context.Context) { a.forget(ctx, uid) })
}

// submit queues work for the Run goroutine, or drops it once Run returned.
func (a *Announcer) submit(do func(context.Context)) {
	select {
	case a.work <- do:
	case <-a.stopped:
	}
}

// Active returns the data of the announcements still in force for user whose
// log position is in (after, upTo], oldest first: what a stream that starts
// at upTo, and has seen everything up to after, has not received.
func (a *Announcer) Active(user string, after, upTo eventlog.Position) [][]byte {
	now := a.opts.Now()
	a.mu.RLock()
	found := make([]activeAnnouncement, 0, len(a.active))
	for _, ann := range a.active {
		e := eventlog.Event{UserIDs: ann.users}
		if ann.id.After(after) && !ann.id.After(upTo) && now.Before(ann.expires) && e.ForUser(user) {
			found = append(found, ann)
		}
	}
	a.mu.RUnlock()
	slices.SortFunc(found, func(x, y activeAnnouncement) int { return x.id.Compare(y.id) })
	data := make([][]byte, len(found))
	for i, ann := range found {
		data[i] = ann.data
	}
	return data
}

// observe decides what a SystemEvent's current revision needs.
func (a *Announcer) observe(ctx context.Context, sev *notifyv1alpha1.SystemEvent) {
	if sev.Spec.ChannelRef.Name != a.opts.Channel {
		// Moved to another channel: as good as deleted here.
		if _, known := a.revisions[sev.UID]; known {
			a.forget(ctx, sev.UID)
		}
		return
	}
	r := a.revisions[sev.UID]
	if r == nil {
		r = &revision{}
		a.revisions[sev.UID] = r
		a.recall(r, sev)
	}
	if r.generation == sev.Generation {
		r.sev = sev
		return
	}
	r.stopTimer()
	r.sev, r.generation = sev, sev.Generation
	a.handleRevision(ctx, r)
}

// recall takes over what the status says an earlier streamer announced:
// that revision is not announced again, and a retraction or an expiry still
// follows it.
func (a *Announcer) recall(r *revision, sev *notifyv1alpha1.SystemEvent) {
	st := sev.Status
	current := st.ObservedGeneration == sev.Generation
	if current && (st.Phase == notifyv1alpha1.PhaseFailed || st.Phase == notifyv1alpha1.PhaseExpired) {
		r.sev, r.generation = sev, sev.Generation
	}
	if id, err := eventlog.ParsePosition(st.EventID); err == nil && st.Phase != notifyv1alpha1.PhaseScheduled {
		r.announced, r.eventID = true, id
	}
	if current && st.Phase == notifyv1alpha1.PhaseDelivered && r.announced {
		r.sev, r.generation = sev, sev.Generation
		if data, err := payload(sev, actionFor(sev), timeOf(st.DeliveredAt, a.opts.Now())); err == nil {
			a.keepActive(r, r.eventID, data)
		}
	}
}

// timeOf is t, or def when t is nil.
func timeOf(t *metav1.Time, def time.Time) time.Time {
	if t == nil {
		return def
	}
	return t.Time
}

// handleRevision announces the revision now, schedules it, or records why
// it will not be announced.
func (a *Announcer) handleRevision(ctx context.Context, r *revision) {
	sev, now := r.sev, a.opts.Now()
	if sev.Spec.Data != nil && len(sev.Spec.Data.Raw) > MaxDataBytes {
		a.record(ctx, r, notifyv1alpha1.PhaseFailed, notifyv1alpha1.ReasonDataTooLarge, fmt.Sprintf(
			"spec.data is %d bytes encoded, more than the %d a client is asked to hold: shorten it, or link to the details", len(sev.Spec.Data.Raw), MaxDataBytes))
		a.dropActive(sev.UID)
		return
	}
	if exp := sev.Spec.ExpiresAt; exp != nil && !now.Before(exp.Time) {
		a.record(ctx, r, notifyv1alpha1.PhaseExpired, notifyv1alpha1.ReasonExpired, "expiresAt passed before this revision was delivered")
		a.dropActive(sev.UID)
		return
	}
	if at := sev.Spec.DeliverAt; at != nil && now.Before(at.Time) {
		a.record(ctx, r, notifyv1alpha1.PhaseScheduled, notifyv1alpha1.ReasonScheduled,
			"to be delivered at "+at.UTC().Format(time.RFC3339))
		a.after(r, at.Sub(now), func(ctx context.Context) { a.handleRevision(ctx, r) })
		return
	}
	a.deliver(ctx, r)
}

// deliver appends the revision to the log and records it.
func (a *Announcer) deliver(ctx context.Context, r *revision) {
	action := event.ActionCreate
	if r.announced {
		action = event.ActionUpdate
	}
	data, err := payload(r.sev, action, a.opts.Now())
	if err != nil {
		a.record(ctx, r, notifyv1alpha1.PhaseFailed, notifyv1alpha1.ReasonInvalidData, "spec.data cannot be encoded: "+err.Error())
		return
	}
	a.opts.Logger.Info("announcing SystemEvent", "systemEvent", ref(r.sev), "generation", r.generation, "action", action)
	// Every replica of the channel announces the revision; the key stores it
	// once.
	key := fmt.Sprintf("%s/%d", r.sev.UID, r.generation)
	stored, err := a.opts.Log.Append(ctx, eventlog.Event{Type: event.TypeSystem, UserIDs: r.sev.Spec.Audience.UserIDs, Data: data}, key)
	if err != nil {
		a.notAnnounced(ctx, r, err)
		return
	}
	r.announced, r.eventID, r.deliveredAt = true, stored.Position, stored.Time
	a.opts.Logger.Info("SystemEvent announced", "systemEvent", ref(r.sev), "generation", r.generation,
		"eventId", stored.Position.String(), "action", action, "duplicate", stored.Duplicate)
	a.keepActive(r, stored.Position, data)
	a.record(ctx, r, notifyv1alpha1.PhaseDelivered, notifyv1alpha1.ReasonDelivered,
		fmt.Sprintf("announced as event %s (%s)", stored.Position, action))
}

// notAnnounced handles a revision the log did not store: after Close (the
// streamer is draining) the next streamer announces it, as its status does
// not say Delivered; after a failure of the log it is tried again.
func (a *Announcer) notAnnounced(ctx context.Context, r *revision, err error) {
	if errors.Is(err, eventlog.ErrClosed) || ctx.Err() != nil {
		a.opts.Logger.Warn("SystemEvent not announced: the log is closed", "systemEvent", ref(r.sev),
			"generation", r.generation, "reason", "LogClosed")
		return
	}
	a.opts.Logger.Error("failed to announce a SystemEvent; retrying", "systemEvent", ref(r.sev),
		"generation", r.generation, "reason", "LogFailed", "error", err.Error())
	a.after(r, statusRetryDelay, func(ctx context.Context) { a.handleRevision(ctx, r) })
}

// ref names a SystemEvent in logs, with its namespace.
func ref(sev *notifyv1alpha1.SystemEvent) string { return sev.Namespace + "/" + sev.Name }

// keepActive hands the revision's announcement (data, log ID id) to users
// who connect later, until expiresAt, and schedules its expiry. Without
// expiresAt it is announced to those connected only.
func (a *Announcer) keepActive(r *revision, id eventlog.Position, data []byte) {
	exp := r.sev.Spec.ExpiresAt
	if exp == nil {
		a.dropActive(r.sev.UID)
		return
	}
	a.mu.Lock()
	a.active[r.sev.UID] = activeAnnouncement{id: id, users: r.sev.Spec.Audience.UserIDs, data: data, expires: exp.Time}
	a.mu.Unlock()
	a.after(r, exp.Sub(a.opts.Now()), func(ctx context.Context) { a.expire(ctx, r) })
}

// actionFor is the action of the announcement of sev's current revision, as
// recalled from its status: its first revision was created, later ones
// updated it.
func actionFor(sev *notifyv1alpha1.SystemEvent) string {
	if sev.Generation > 1 {
		return event.ActionUpdate
	}
	return event.ActionCreate
}

// expire ends the revision's time in force.
func (a *Announcer) expire(ctx context.Context, r *revision) {
	a.dropActive(r.sev.UID)
	a.record(ctx, r, notifyv1alpha1.PhaseExpired, notifyv1alpha1.ReasonExpired, "expiresAt passed")
}

// forget retracts an announced SystemEvent that was deleted while in force.
func (a *Announcer) forget(ctx context.Context, uid types.UID) {
	r := a.revisions[uid]
	delete(a.revisions, uid)
	a.dropActive(uid)
	if r == nil {
		return
	}
	r.stopTimer()
	if !r.announced || r.sev == nil || r.sev.Status.Phase == notifyv1alpha1.PhaseExpired || expired(r.sev, a.opts.Now()) {
		return
	}
	data, err := payload(r.sev, event.ActionDelete, a.opts.Now())
	if err != nil {
		return
	}
	ctx, cancel := context.WithTimeout(ctx, retractTimeout)
	defer cancel()
	key := fmt.Sprintf("%s/%d/delete", uid, r.generation)
	stored, err := a.opts.Log.Append(ctx, eventlog.Event{Type: event.TypeSystem, UserIDs: r.sev.Spec.Audience.UserIDs, Data: data}, key)
	if err != nil {
		a.opts.Logger.Warn("SystemEvent retraction not announced", "systemEvent", ref(r.sev), "reason", "LogFailed", "error", err.Error())
		return
	}
	a.opts.Logger.Info("SystemEvent retracted", "systemEvent", ref(r.sev), "eventId", stored.Position.String(),
		"retracts", r.eventID.String(), "duplicate", stored.Duplicate)
}

func expired(sev *notifyv1alpha1.SystemEvent, now time.Time) bool {
	return sev.Spec.ExpiresAt != nil && !now.Before(sev.Spec.ExpiresAt.Time)
}

func (a *Announcer) dropActive(uid types.UID) {
	a.mu.Lock()
	delete(a.active, uid)
	a.mu.Unlock()
}

// after runs do on the Run goroutine after d, unless the revision changes
// first.
func (a *Announcer) after(r *revision, d time.Duration, do func(context.Context)) {
	r.stopTimer()
	generation := r.generation
	r.timer = time.AfterFunc(d, func() {
		a.submit(func(ctx context.Context) {
			if a.revisions[r.sev.UID] == r && r.generation == generation {
				do(ctx)
			}
		})
	})
}

func (r *revision) stopTimer() {
	if r.timer != nil {
		r.timer.Stop()
		r.timer = nil
	}
}

// record writes the revision's status, retrying on failure: the status is
// the record that keeps a restarted streamer from announcing it again. It
// holds the streamers' fields and their Ready condition only, as the whole
// of what they apply: the operator's conditions are its own (see
// SystemEventStatus).
func (a *Announcer) record(ctx context.Context, r *revision, phase notifyv1alpha1.SystemEventPhase, reason, message string) {
	previous := r.sev.Status
	status := notifyv1alpha1.SystemEventStatus{
		Phase: phase, ObservedGeneration: r.generation,
		// An expired or failed revision keeps the last announcement's event,
		// which a deletion still retracts.
		EventID: previous.EventID, DeliveredAt: previous.DeliveredAt,
	}
	switch phase {
	case notifyv1alpha1.PhaseDelivered:
		status.EventID, status.DeliveredAt = r.eventID.String(), new(metav1.NewTime(r.deliveredAt))
	case notifyv1alpha1.PhaseScheduled:
		// The previous revision's event is not this one's.
		status.EventID, status.DeliveredAt = "", nil
	}
	ready := metav1.ConditionFalse
	if phase == notifyv1alpha1.PhaseDelivered {
		ready = metav1.ConditionTrue
	}
	// Starting from the Ready condition recorded keeps its transition time
	// while its status stays.
	if recorded := meta.FindStatusCondition(previous.Conditions, notifyv1alpha1.ConditionReady); recorded != nil {
		status.Conditions = []metav1.Condition{*recorded}
	}
	meta.SetStatusCondition(&status.Conditions, metav1.Condition{
		Type: notifyv1alpha1.ConditionReady, Status: ready, Reason: reason, Message: message, ObservedGeneration: r.generation,
	})
	a.writeStatus(ctx, r, r.generation, status)
}

func (a *Announcer) writeStatus(ctx context.Context, r *revision, generation int64, status notifyv1alpha1.SystemEventStatus) {
	if r.generation != generation || a.revisions[r.sev.UID] != r {
		return // a newer revision or a deletion came first
	}
	err := a.opts.Status.WriteStatus(ctx, r.sev, status)
	if err == nil {
		r.sev = r.sev.DeepCopy()
		r.sev.Status = status
		return
	}
	if ctx.Err() != nil {
		return
	}
	a.opts.Logger.Error("failed to record a SystemEvent's status; retrying", "systemEvent", ref(r.sev), "reason", "StatusWriteFailed", "error", err.Error())
	time.AfterFunc(statusRetryDelay, func() {
		a.submit(func(ctx context.Context) { a.writeStatus(ctx, r, generation, status) })
	})
}

// systemEvent is the delivered JSON of an announcement: the client
// contract's system event, plus what a client needs to act on an edit or a
// retraction (the SystemEvent's name, its revision, the action).
type systemEvent struct {
	Type      string          `json:"type"`
	EventType string          `json:"eventType"`
	Data      json.RawMessage `json:"data"`
	Priority  string          `json:"priority,omitempty"`
	Timestamp string          `json:"timestamp"`
	Action    string          `json:"action"`
	Name      string          `json:"name"`
	Revision  int64           `json:"revision"`
	ExpiresAt string          `json:"expiresAt,omitempty"`
}

// payload encodes the announcement of sev's current revision.
func payload(sev *notifyv1alpha1.SystemEvent, action string, now time.Time) ([]byte, error) {
	data := json.RawMessage(`{}`)
	if sev.Spec.Data != nil && len(sev.Spec.Data.Raw) > 0 {
		data = sev.Spec.Data.Raw
	}
	announcement := systemEvent{
		Type: event.TypeSystem, EventType: sev.Spec.EventType, Data: data, Priority: string(sev.Spec.Priority),
		Timestamp: event.Timestamp(now), Action: action, Name: sev.Name, Revision: sev.Generation,
	}
	if sev.Spec.ExpiresAt != nil {
		announcement.ExpiresAt = event.Timestamp(sev.Spec.ExpiresAt.Time)
	}
	return json.Marshal(announcement)
}

// Synced is called once the watch handed over every existing SystemEvent;
// the Announcer logs when it has handled them all ("caught up").
func (a *Announcer) Synced() {
	a.submit(func(context.Context) {
		a.opts.Logger.Info("SystemEvents caught up", "systemEvents", len(a.revisions))
	})
}
