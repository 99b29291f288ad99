package chaos_test

import (
	"encoding/json"
	"fmt"
	"strconv"
	"strings"
	"sync"

	eventlog "github.com/herald-notify/herald/streamer/log"
	"github.com/herald-notify/herald/streamer/sse"
)

// received is the part of a delivered event's data the checks read.
type received struct {
	Type           string   `json:"type"`
	NotificationID string   `json:"notificationId"`
	UserID         string   `json:"userId"`
	Recovered      *bool    `json:"recovered"`
	Data           *payload `json:"data"`
}

// inbox is what one user received, over all their streams, checked as it
// arrives against the plan.
type inbox struct {
	user int
	plan []*planned

	mu sync.Mutex
	// got has the bit of every notification that arrived.
	got bitset
	// ids are the SSE ids each notification arrived under: more than one
	// when it was stored twice (a publish retried after a lost answer).
	ids map[int][]string
	// lastSeq is, per publisher, the seq of the latest of its notifications
	// to arrive (first copies only): they must arrive in publish order.
	lastSeq []int
	// resumeID is the id to resume from (the latest id: field), and last
	// its position: every event comes after the one before.
	resumeID string
	last     eventlog.Position
}

func newInbox(user int, plan []*planned, publishers int) *inbox {
	b := &inbox{user: user, plan: plan, got: newBitset(len(plan)), ids: map[int][]string{}, lastSeq: make([]int, publishers)}
	for i := range b.lastSeq {
		b.lastSeq[i] = -1
	}
	return b
}

// lastEventID is the id a new stream resumes after ("" before any).
func (b *inbox) lastEventID() string {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.resumeID
}

// connected checks a stream's connection event, the first of each stream:
// a resume must be told that nothing it missed is gone.
func (b *inbox) connected(ev sse.Event, resumedFrom string) error {
	var msg received
	if err := json.Unmarshal([]byte(ev.Data), &msg); err != nil {
		return fmt.Errorf("%s: the first event is not JSON: %q", userName(b.user), ev.Data)
	}
	if msg.Type != "connection" {
		return fmt.Errorf("%s: the first event of a stream is %q, not the connection event", userName(b.user), ev.Data)
	}
	if resumedFrom != "" && (msg.Recovered == nil || !*msg.Recovered) {
		// Retention holds every event of the run: nothing can be gone.
		return fmt.Errorf("%s: resuming after %s was answered %q: not recovered", userName(b.user), resumedFrom, ev.Data)
	}
	pos, err := eventlog.ParsePosition(ev.ID)
	if err != nil {
		return fmt.Errorf("%s: the connection event's id %q: %v", userName(b.user), ev.ID, err)
	}
	b.mu.Lock()
	defer b.mu.Unlock()
	if resumedFrom != "" && ev.ID != resumedFrom {
		return fmt.Errorf("%s: resumed after %s, the connection event says %s", userName(b.user), resumedFrom, ev.ID)
	}
	if b.resumeID == "" {
		b.last = pos // the first stream starts the user's history here
	}
	b.resumeID = ev.ID
	return nil
}

// streamerNotice reports whether ev is the streamer's own notice to the
// client (the end event of a stream it ends, the warning that a token
// expires), which is not in the log and carries no id of its own.
func streamerNotice(ev sse.Event) bool {
	var msg received
	if err := json.Unmarshal([]byte(ev.Data), &msg); err != nil {
		return false
	}
	return msg.Type == "end" || msg.Type == "token_expiring"
}

// add checks and records an event that followed the connection event. It
// returns whether it was a copy of a notification that had arrived before
// under another id (stored twice), and what is wrong with it.
func (b *inbox) add(ev sse.Event) (duplicate bool, err error) {
	var msg received
	if err := json.Unmarshal([]byte(ev.Data), &msg); err != nil {
		return false, fmt.Errorf("%s: an event is not JSON: %q", userName(b.user), ev.Data)
	}
	if msg.Type != "notification" {
		return false, fmt.Errorf("%s: unexpected event %q", userName(b.user), ev.Data)
	}
	n, err := b.notification(msg)
	if err != nil {
		return false, fmt.Errorf("%s: %w (event %s: %q)", userName(b.user), err, ev.ID, ev.Data)
	}
	pos, err := eventlog.ParsePosition(ev.ID)
	if err != nil {
		return false, fmt.Errorf("%s: the id %q of %s: %v", userName(b.user), ev.ID, msg.NotificationID, err)
	}

	b.mu.Lock()
	defer b.mu.Unlock()
	if !pos.After(b.last) {
		return false, fmt.Errorf("%s: %s arrived as %s, after %s: out of log order, or delivered twice",
			userName(b.user), msg.NotificationID, ev.ID, b.last)
	}
	b.last, b.resumeID = pos, ev.ID
	b.ids[n.index] = append(b.ids[n.index], ev.ID)
	if b.got.set(n.index) {
		return true, nil // its first copy was checked for order
	}
	if n.seq <= b.lastSeq[n.publisher] {
		return false, fmt.Errorf("%s: publisher %d's notification #%d arrived after its #%d: out of publish order",
			userName(b.user), n.publisher, n.seq, b.lastSeq[n.publisher])
	}
	b.lastSeq[n.publisher] = n.seq
	return false, nil
}

// notification is the planned notification msg is a copy of, if it is
// this user's and intact.
func (b *inbox) notification(msg received) (*planned, error) {
	index, err := strconv.Atoi(strings.TrimPrefix(msg.NotificationID, "n"))
	if err != nil || !strings.HasPrefix(msg.NotificationID, "n") || index < 0 || index >= len(b.plan) {
		return nil, fmt.Errorf("notification %q was never published", msg.NotificationID)
	}
	n := b.plan[index]
	switch {
	case msg.UserID != userName(b.user):
		return nil, fmt.Errorf("%s arrived with userId %q", msg.NotificationID, msg.UserID)
	case !n.addressedTo(b.user):
		return nil, fmt.Errorf("%s is addressed to %v, not to this user", msg.NotificationID, n.recipients)
	case msg.Data == nil || *msg.Data != n.payload():
		return nil, fmt.Errorf("%s arrived with data %+v, published with %+v", msg.NotificationID, msg.Data, n.payload())
	}
	return n, nil
}

// has reports whether notification i arrived.
func (b *inbox) has(i int) bool {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.got.has(i)
}

// arrivedAs are the ids notification i arrived under.
func (b *inbox) arrivedAs(i int) []string {
	b.mu.Lock()
	defer b.mu.Unlock()
	return append([]string(nil), b.ids[i]...)
}
