package fleettest

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"

	"github.com/herald-notify/herald/streamer/paths"
)

// Notification is the body of POST /api/v1/notifications.
type Notification struct {
	RecipientUserIDs []string `json:"recipientUserIds"`
	NotificationID   string   `json:"notificationId"`
	NotificationType string   `json:"notificationType"`
	Data             any      `json:"data,omitempty"`
}

// PublishResult is a publish request's answer.
type PublishResult struct {
	Status     int
	RetryAfter string
	// EventID and EventIDs are the 202's ids: the notification's one event,
	// repeated once per recipient.
	EventID  string
	EventIDs []string
	// Message is the error message of any other answer.
	Message string
}

// Notify publishes n through the streamer at api with token, a publisher's.
// An error is a request that got no answer (the notification may or may not
// be stored); any answer, 202 or not, is a result.
func Notify(ctx context.Context, client *http.Client, api, token string, n Notification) (PublishResult, error) {
	body, err := json.Marshal(n)
	if err != nil {
		return PublishResult{}, err
	}
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, api+paths.Notifications, bytes.NewReader(body))
	if err != nil {
		return PublishResult{}, err
	}
	req.Header.Set("Content-Type", "application/json")
	req.Header.Set("Authorization", "Bearer "+token)
	resp, err := client.Do(req)
	if err != nil {
		return PublishResult{}, err
	}
	defer func() { _ = resp.Body.Close() }()
	raw, err := io.ReadAll(resp.Body)
	if err != nil {
		return PublishResult{}, fmt.Errorf("failed to read the answer (%s): %w", resp.Status, err)
	}
	res := PublishResult{Status: resp.StatusCode, RetryAfter: resp.Header.Get("Retry-After")}
	if resp.StatusCode != http.StatusAccepted {
		var answer struct {
			Error struct {
				Message string `json:"message"`
			} `json:"error"`
		}
		if json.Unmarshal(raw, &answer) != nil || answer.Error.Message == "" {
			res.Message = string(raw)
		} else {
			res.Message = answer.Error.Message
		}
		return res, nil
	}
	var answer struct {
		EventID  string   `json:"eventId"`
		EventIDs []string `json:"eventIds"`
	}
	if err := json.Unmarshal(raw, &answer); err != nil {
		return res, fmt.Errorf("failed to decode the 202 answer %q: %w", raw, err)
	}
	res.EventID, res.EventIDs = answer.EventID, answer.EventIDs
	return res, nil
}

// OpenStream requests user's stream (token is theirs) from the streamer at
// api, resuming after lastID when set. The caller reads and closes the
// body of any answer.
func OpenStream(ctx context.Context, client *http.Client, api, token, lastID string) (*http.Response, error) {
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, api+paths.Stream, nil)
	if err != nil {
		return nil, err
	}
	req.Header.Set("Authorization", "Bearer "+token)
	if lastID != "" {
		req.Header.Set("Last-Event-ID", lastID)
	}
	return client.Do(req)
}

// Readyz is the status of the readiness probe at ops.
func Readyz(ops string) (int, error) {
	resp, err := http.Get(ops + paths.Readyz)
	if err != nil {
		return 0, err
	}
	_ = resp.Body.Close()
	return resp.StatusCode, nil
}
