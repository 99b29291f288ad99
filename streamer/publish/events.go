package publish

import (
	"context"
	"encoding/json"

	"github.com/herald-notify/herald/streamer/event"

	eventlog "github.com/herald-notify/herald/streamer/log"
)

// notificationRequest is the body of POST /api/v1/notifications.
type notificationRequest struct {
	RecipientUserIDs []string        `json:"recipientUserIds"`
	NotificationID   string          `json:"notificationId"`
	NotificationType string          `json:"notificationType"`
	Action           string          `json:"action"`
	Priority         string          `json:"priority"`
	Data             json.RawMessage `json:"data"`
}

// notificationEvent is what each recipient receives, but for "userId", which
// each recipient's copy adds last (event.WithRecipient); field names and order
// are those of the NestJS module's clients. "action" is always sent, empty
// when the publisher gave none: the seed's clients read it on every
// notification, and refusing the publish would break publishers that omit it.
type notificationEvent struct {
	Type             string          `json:"type"`
	NotificationID   string          `json:"notificationId"`
	NotificationType string          `json:"notificationType"`
	Action           string          `json:"action"`
	Priority         string          `json:"priority"`
	Data             json.RawMessage `json:"data"`
	Timestamp        string          `json:"timestamp"`
}

// NotificationResult is the 202 answer of POST /api/v1/notifications. The
// notification is one log event for all its recipients, stored all or
// nothing: EventID is its id. EventIDs repeats it once per distinct
// recipient, in the order of recipientUserIds, for publishers written when
// each recipient had an event of their own.
type NotificationResult struct {
	NotificationID string   `json:"notificationId"`
	EventID        string   `json:"eventId"`
	EventIDs       []string `json:"eventIds"`
}

// EventResult is the 202 answer of the system and custom event endpoints.
type EventResult struct {
	EventID string `json:"eventId"`
}

func (a *API) notification(ctx context.Context, body []byte) (any, error) {
	var req notificationRequest
	if err := decode(body, &req); err != nil {
		return nil, err
	}
	users, err := checkUsers("recipientUserIds", req.RecipientUserIDs, true)
	if err != nil {
		return nil, err
	}
	for field, value := range map[string]string{"notificationId": req.NotificationID, "action": req.Action} {
		if err := checkName(field, value, false); err != nil {
			return nil, err
		}
	}
	if err := checkName("notificationType", req.NotificationType, true); err != nil {
		return nil, err
	}
	priority, err := checkPriority(req.Priority)
	if err != nil {
		return nil, err
	}
	data, err := checkData(req.Data)
	if err != nil {
		return nil, err
	}
	id := req.NotificationID
	if id == "" && a.opts.NewID != nil {
		id = a.opts.NewID()
	}
	delivered := notificationEvent{
		Type: event.TypeNotification, NotificationID: id, NotificationType: req.NotificationType,
		Action: req.Action, Priority: priority, Data: data, Timestamp: a.timestamp(),
	}
	encoded, err := json.Marshal(delivered)
	if err != nil {
		return nil, err
	}
	// One write for every recipient: a broker stores it all or nothing, and
	// each recipient's copy is completed with their userId on delivery.
	eventID, err := a.append(ctx, eventlogEvent(event.TypeNotification, users, encoded))
	if err != nil {
		return nil, err
	}
	result := NotificationResult{NotificationID: id, EventID: eventID, EventIDs: make([]string, len(users))}
	for i := range users {
		result.EventIDs[i] = eventID
	}
	return result, nil
}

// broadcastRequest is the body of the system and custom event endpoints.
type broadcastRequest struct {
	EventType string          `json:"eventType"`
	Data      json.RawMessage `json:"data"`
	Priority  string          `json:"priority"`
	UserIDs   []string        `json:"userIds"`
}

// broadcastEvent is a delivered system or custom event.
type broadcastEvent struct {
	Type      string          `json:"type"`
	EventType string          `json:"eventType"`
	Data      json.RawMessage `json:"data"`
	Priority  string          `json:"priority,omitempty"`
	Timestamp string          `json:"timestamp"`
}

func (a *API) systemEvent(ctx context.Context, body []byte) (any, error) {
	return a.broadcast(ctx, event.TypeSystem, body)
}

func (a *API) customEvent(ctx context.Context, body []byte) (any, error) {
	return a.broadcast(ctx, event.TypeCustom, body)
}

// broadcast publishes a system or custom event to its users, or everyone.
// Custom events have no priority, as in the NestJS module.
func (a *API) broadcast(ctx context.Context, eventType string, body []byte) (any, error) {
	var req broadcastRequest
	if err := decode(body, &req); err != nil {
		return nil, err
	}
	if err := checkName("eventType", req.EventType, true); err != nil {
		return nil, err
	}
	users, err := checkUsers("userIds", req.UserIDs, false)
	if err != nil {
		return nil, err
	}
	data, err := checkData(req.Data)
	if err != nil {
		return nil, err
	}
	delivered := broadcastEvent{Type: eventType, EventType: req.EventType, Data: data, Timestamp: a.timestamp()}
	if eventType == event.TypeSystem {
		if delivered.Priority, err = checkPriority(req.Priority); err != nil {
			return nil, err
		}
	} else if req.Priority != "" {
		return nil, invalid("priority applies to system events only")
	}
	encoded, err := json.Marshal(delivered)
	if err != nil {
		return nil, err
	}
	eventID, err := a.append(ctx, eventlogEvent(eventType, users, encoded))
	if err != nil {
		return nil, err
	}
	return EventResult{EventID: eventID}, nil
}

func eventlogEvent(eventType string, users []string, data []byte) eventlog.Event {
	return eventlog.Event{Type: eventType, UserIDs: users, Data: data}
}
