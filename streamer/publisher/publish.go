package publisher

import (
	"cmp"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"slices"
	"strings"
)

// Priority is an event's "priority", as the NestJS module's clients know it.
type Priority string

// The priorities the streamer accepts. An empty Priority leaves the choice to
// the streamer, whose default is PriorityMedium.
const (
	PriorityLow      Priority = "LOW"
	PriorityMedium   Priority = "MEDIUM"
	PriorityHigh     Priority = "HIGH"
	PriorityCritical Priority = "CRITICAL"
)

// priorities are the valid non-empty priorities, in rising order.
var priorities = []Priority{PriorityLow, PriorityMedium, PriorityHigh, PriorityCritical}

// Notification is an event for some users, such as "your export is ready".
type Notification struct {
	// RecipientUserIDs are the users who receive it, at least one. Each gets
	// the notification as its own log event.
	RecipientUserIDs []string
	// NotificationID identifies the notification to the clients; empty lets
	// the streamer generate one.
	NotificationID string
	// NotificationType classifies it, such as "VOCAB_TRAINER". Required.
	NotificationType string
	// Action is what happened, such as "CREATE". Optional.
	Action string
	// Priority is optional; the streamer defaults to PriorityMedium.
	Priority Priority
	// Data is the event's free-form "data": anything that marshals to a JSON
	// object, or nil for none.
	Data any
}

// NotificationResult is the streamer's receipt for a notification.
type NotificationResult struct {
	// NotificationID is the notification's id: the one given, or the one the
	// streamer generated.
	NotificationID string
	// EventID is the id of the notification's event in the channel's log,
	// one event for all its recipients. A client that reconnects with it as
	// Last-Event-ID resumes after that event.
	EventID string
	// EventIDs repeats EventID once per distinct recipient, in the order the
	// recipients first appear in RecipientUserIDs (the streamer drops
	// repeated ids), as streamers that stored one event per recipient
	// answered.
	EventIDs []string
}

// SystemEvent is an announcement such as a maintenance window.
type SystemEvent struct {
	// EventType classifies it, such as "maintenance". Required.
	EventType string
	// Data is the event's free-form "data": anything that marshals to a JSON
	// object, or nil for none.
	Data any
	// Priority is optional; the streamer defaults to PriorityMedium.
	Priority Priority
	// UserIDs limits the audience to these users; empty means everyone.
	UserIDs []string
}

// CustomEvent is an application-defined event such as "user_activity".
type CustomEvent struct {
	// EventType classifies it, such as "user_activity". Required.
	EventType string
	// Data is the event's free-form "data": anything that marshals to a JSON
	// object, or nil for none.
	Data any
	// UserIDs limits the audience to these users; empty means everyone.
	UserIDs []string
}

// notificationRequest is the body of POST /api/v1/notifications.
type notificationRequest struct {
	RecipientUserIDs []string        `json:"recipientUserIds"`
	NotificationID   string          `json:"notificationId,omitempty"`
	NotificationType string          `json:"notificationType"`
	Action           string          `json:"action,omitempty"`
	Priority         Priority        `json:"priority,omitempty"`
	Data             json.RawMessage `json:"data,omitempty"`
}

// systemEventRequest is the body of POST /api/v1/system-events.
type systemEventRequest struct {
	EventType string          `json:"eventType"`
	Data      json.RawMessage `json:"data,omitempty"`
	Priority  Priority        `json:"priority,omitempty"`
	UserIDs   []string        `json:"userIds,omitempty"`
}

// customEventRequest is the body of POST /api/v1/custom-events.
type customEventRequest struct {
	EventType string          `json:"eventType"`
	Data      json.RawMessage `json:"data,omitempty"`
	UserIDs   []string        `json:"userIds,omitempty"`
}

// notificationResponse is the 202 body of POST /api/v1/notifications.
type notificationResponse struct {
	NotificationID string   `json:"notificationId"`
	EventID        string   `json:"eventId"`
	EventIDs       []string `json:"eventIds"`
}

// eventResponse is the 202 body of the system and custom event endpoints.
type eventResponse struct {
	EventID string `json:"eventId"`
}

// PublishNotification sends n to its recipients and returns the streamer's
// receipt. A notification that fails the checks of n's fields is not sent
// and the error matches ErrInvalidRequest; a refusal by the streamer is an
// *APIError.
func (c *Client) PublishNotification(ctx context.Context, n Notification) (NotificationResult, error) {
	body, err := n.request()
	if err != nil {
		return NotificationResult{}, fmt.Errorf("publisher: publish notification: %w", err)
	}
	var resp notificationResponse
	if err := c.post(ctx, c.notificationsURL, body, &resp); err != nil {
		return NotificationResult{}, fmt.Errorf("publisher: publish notification: %w", err)
	}
	if resp.NotificationID == "" || len(resp.EventIDs) == 0 {
		return NotificationResult{}, errors.New("publisher: publish notification: the streamer's answer lacks notificationId or eventIds")
	}
	if resp.EventID == "" {
		resp.EventID = resp.EventIDs[0] // a streamer that logged one event per recipient
	}
	return NotificationResult(resp), nil
}

// PublishSystemEvent announces e and returns its event id. Checks and errors
// are as for PublishNotification.
func (c *Client) PublishSystemEvent(ctx context.Context, e SystemEvent) (string, error) {
	body, err := e.request()
	if err != nil {
		return "", fmt.Errorf("publisher: publish system event: %w", err)
	}
	id, err := c.postEvent(ctx, c.systemEventsURL, body)
	if err != nil {
		return "", fmt.Errorf("publisher: publish system event: %w", err)
	}
	return id, nil
}

// PublishCustomEvent sends e and returns its event id. Checks and errors are
// as for PublishNotification.
func (c *Client) PublishCustomEvent(ctx context.Context, e CustomEvent) (string, error) {
	body, err := e.request()
	if err != nil {
		return "", fmt.Errorf("publisher: publish custom event: %w", err)
	}
	id, err := c.postEvent(ctx, c.customEventsURL, body)
	if err != nil {
		return "", fmt.Errorf("publisher: publish custom event: %w", err)
	}
	return id, nil
}

// postEvent posts an event body and returns the event id of the answer.
func (c *Client) postEvent(ctx context.Context, endpoint string, body any) (string, error) {
	var resp eventResponse
	if err := c.post(ctx, endpoint, body, &resp); err != nil {
		return "", err
	}
	if resp.EventID == "" {
		return "", errors.New("the streamer's answer lacks eventId")
	}
	return resp.EventID, nil
}

// request checks n and returns its request body.
func (n Notification) request() (notificationRequest, error) {
	if len(n.RecipientUserIDs) == 0 {
		return notificationRequest{}, invalid("RecipientUserIDs is empty: a notification needs at least one recipient")
	}
	if err := cmp.Or(
		checkUserIDs("RecipientUserIDs", n.RecipientUserIDs),
		checkRequired("NotificationType", n.NotificationType),
		checkPriority(n.Priority),
	); err != nil {
		return notificationRequest{}, err
	}
	data, err := encodeData(n.Data)
	if err != nil {
		return notificationRequest{}, err
	}
	return notificationRequest{
		RecipientUserIDs: n.RecipientUserIDs,
		NotificationID:   n.NotificationID,
		NotificationType: n.NotificationType,
		Action:           n.Action,
		Priority:         n.Priority,
		Data:             data,
	}, nil
}

// request checks e and returns its request body.
func (e SystemEvent) request() (systemEventRequest, error) {
	if err := cmp.Or(
		checkRequired("EventType", e.EventType),
		checkUserIDs("UserIDs", e.UserIDs),
		checkPriority(e.Priority),
	); err != nil {
		return systemEventRequest{}, err
	}
	data, err := encodeData(e.Data)
	if err != nil {
		return systemEventRequest{}, err
	}
	return systemEventRequest{EventType: e.EventType, Data: data, Priority: e.Priority, UserIDs: e.UserIDs}, nil
}

// request checks e and returns its request body.
func (e CustomEvent) request() (customEventRequest, error) {
	if err := cmp.Or(
		checkRequired("EventType", e.EventType),
		checkUserIDs("UserIDs", e.UserIDs),
	); err != nil {
		return customEventRequest{}, err
	}
	data, err := encodeData(e.Data)
	if err != nil {
		return customEventRequest{}, err
	}
	return customEventRequest{EventType: e.EventType, Data: data, UserIDs: e.UserIDs}, nil
}

// checkRequired refuses an empty required field. Errors name the Go fields,
// for the caller to find.
func checkRequired(field, value string) error {
	if value == "" {
		return invalid("%s is required", field)
	}
	return nil
}

// checkUserIDs refuses empty user ids: they would match no one.
func checkUserIDs(field string, ids []string) error {
	if i := slices.Index(ids, ""); i >= 0 {
		return invalid("%s[%d] is empty", field, i)
	}
	return nil
}

// checkPriority refuses a priority the streamer does not know; empty is the
// streamer's default.
func checkPriority(priority Priority) error {
	if priority != "" && !slices.Contains(priorities, priority) {
		return invalid("Priority %q is not one of %s", priority, joinPriorities())
	}
	return nil
}

// joinPriorities formats the priorities as "LOW, MEDIUM" for messages.
func joinPriorities() string {
	names := make([]string, len(priorities))
	for i, p := range priorities {
		names[i] = string(p)
	}
	return strings.Join(names, ", ")
}

// encodeData marshals an event's data, which must be a JSON object. nil, and
// anything that marshals to null, is no data.
func encodeData(data any) (json.RawMessage, error) {
	if data == nil {
		return nil, nil
	}
	raw, err := json.Marshal(data)
	if err != nil {
		return nil, fmt.Errorf("%w: Data: %w", ErrInvalidRequest, err)
	}
	switch raw[0] {
	case 'n':
		return nil, nil
	case '{':
		return raw, nil
	default:
		return nil, invalid("Data must marshal to a JSON object, not %s", jsonKind(raw[0]))
	}
}

// jsonKind names the kind of a JSON value by its first byte.
func jsonKind(first byte) string {
	switch first {
	case '[':
		return "an array"
	case '"':
		return "a string"
	case 't', 'f':
		return "a boolean"
	default:
		return "a number"
	}
}

// invalid is a client-side validation error, matching ErrInvalidRequest.
func invalid(format string, args ...any) error {
	return fmt.Errorf("%w: %s", ErrInvalidRequest, fmt.Sprintf(format, args...))
}
