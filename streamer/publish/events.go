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

// notificationEvent is what each recipient receives; field names and order
// are those of the NestJS module's clients.
type notificationEvent struct {
	Type             string          `json:"type"`
	NotificationID   string          `json:"notificationId"`
	NotificationType string          `json:"notificationType"`
	Action           string          `json:"action,omitempty"`
	Priority         string          `json:"priority"`
	Data             json.RawMessage `json:"data"`
	Timestamp        string          `json:"timestamp"`
	UserID           string          `json:"userId"`
}

// NotificationResult is the 202 answer of POST /api/v1/notifications: one log
// event per recipient, in the order of recipientUserIds.
type NotificationResult struct {
	NotificationID string   `json:"notificationId"`
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
	// One log event per recipient: each carries its own userId, and a user's
	// resume reads only that user's events.
	result := NotificationResult{NotificationID: id, EventIDs: make([]string, 0, len(users))}
	for _, user := range users {
		delivered.UserID = user
		encoded, err := json.Marshal(delivered)
		if err != nil {
			return nil, err
		}
		eventID, err := a.append(ctx, eventlogEvent(event.TypeNotification, []string{user}, encoded))
		if err != nil {
			return nil, err
		}
		result.EventIDs = append(result.EventIDs, eventID)
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
