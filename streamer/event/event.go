// Package event is the vocabulary of the events clients receive: their types,
// timestamps, actions and priorities. The publish API, the announcer and the
// streams all write it, so that each value is defined once.
package event

import (
	"encoding/json"
	"fmt"
	"slices"
	"strings"
	"time"

	"github.com/herald-notify/herald/api/v1alpha1"
)

// Types of event, the "type" field of the delivered JSON.
const (
	// TypeConnection is the first event of every stream.
	TypeConnection   = "connection"
	TypeNotification = "notification"
	TypeSystem       = "system"
	TypeCustom       = "custom"
	// TypeTokenExpiring warns, shortly before, that the stream's token
	// expires: time to refresh it in place.
	TypeTokenExpiring = "token_expiring"
	// TypeEnd is the last event of a stream the server ends: why, and what
	// the client should do.
	TypeEnd = "end"
)

// What a client does after an end event, its "reconnect" field.
const (
	// ReconnectResume: reconnect with Last-Event-ID (after retryMs, when
	// the event has one).
	ReconnectResume = "resume"
	// ReconnectNewToken: fetch a new token (and ticket) first, then
	// reconnect with Last-Event-ID.
	ReconnectNewToken = "new_token"
	// ReconnectBackOff: reconnect with Last-Event-ID after a growing,
	// jittered delay.
	ReconnectBackOff = "back_off"
	// ReconnectNone: do not reconnect on your own; a newer stream of the
	// same user took this one's place.
	ReconnectNone = "none"
)

// TimestampLayout is the clients' timestamp format: UTC RFC 3339 with milliseconds.
const TimestampLayout = "2006-01-02T15:04:05.000Z07:00"

// Timestamp formats t as clients receive it, in UTC whatever t's location.
func Timestamp(t time.Time) string { return t.UTC().Format(TimestampLayout) }

// Actions, the "action" field: what happened to what the event is about.
// Publishers choose a notification's freely; announcements use these.
const (
	ActionCreate = "CREATE"
	ActionUpdate = "UPDATE"
	ActionDelete = "DELETE"
)

// DefaultPriority is the priority of an event published without one, the
// same as a SystemEvent's.
const DefaultPriority = v1alpha1.DefaultSystemEventPriority

// ParsePriority returns the priority p names, or DefaultPriority when p is
// empty. The valid ones are v1alpha1.Priorities, the SystemEvent CRD's enum,
// so that what a SystemEvent may hold and what the publish API accepts cannot
// differ.
func ParsePriority(p string) (v1alpha1.Priority, error) {
	priority := v1alpha1.Priority(p)
	switch {
	case p == "":
		return DefaultPriority, nil
	case slices.Contains(v1alpha1.Priorities, priority):
		return priority, nil
	}
	return "", fmt.Errorf("priority must be one of %s, not %q", joinPriorities(), p)
}

// joinPriorities formats the priorities as "LOW, MEDIUM" for messages.
func joinPriorities() string {
	names := make([]string, len(v1alpha1.Priorities))
	for i, p := range v1alpha1.Priorities {
		names[i] = string(p)
	}
	return strings.Join(names, ", ")
}

// WithRecipient is a notification's delivered JSON for one recipient: data,
// the notification as the log stores it once for all its recipients (a JSON
// object without "userId"), with "userId" added last, as the seed's clients
// read it. dst is extended and returned.
func WithRecipient(dst, data []byte, user string) []byte {
	quoted, _ := json.Marshal(user) // a string always marshals
	if len(data) < 2 || data[len(data)-1] != '}' {
		return append(dst, data...) // not an object: nothing to add to
	}
	dst = append(dst, data[:len(data)-1]...)
	if len(data) > 2 {
		dst = append(dst, ',')
	}
	dst = append(dst, `"userId":`...)
	dst = append(dst, quoted...)
	return append(dst, '}')
}
