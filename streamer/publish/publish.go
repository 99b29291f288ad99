// Package publish is the streamer's publish API: backends POST notifications,
// system events and custom events; each is validated, encoded once as the
// JSON clients receive, and appended to the channel's log. A 202 answer means
// the event is in the log: from there it reaches every connected recipient,
// and recipients who reconnect later within the log's retention.
package publish

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"slices"
	"strings"
	"time"

	"github.com/herald-notify/herald/streamer/auth"
	"github.com/herald-notify/herald/streamer/event"
	"github.com/herald-notify/herald/streamer/httpapi"
	eventlog "github.com/herald-notify/herald/streamer/log"
	"github.com/herald-notify/herald/streamer/paths"
)

// Limits of a publish request.
const (
	// DefaultMaxBodyBytes bounds a request body.
	DefaultMaxBodyBytes = 64 << 10
	// MaxRecipients bounds the user ids of one request.
	MaxRecipients = 1000
	// maxNameLength bounds ids and type names.
	maxNameLength = 256
	// appendTimeout bounds how long a request waits for the log to store its
	// event (a broker's acknowledgement): the publisher then gets 503 and
	// retries, rather than hold its connection.
	appendTimeout = 5 * time.Second
)

// Authenticator verifies a request's bearer token. Its error may say more
// than "unauthorized" (401): an error with a Forbidden() true method means
// the caller is known but may not publish (403), one with a Temporary()
// true method that it could not be checked right now (503, retry).
type Authenticator interface {
	Verify(token string) (auth.Identity, error)
}

// Observer counts published events (metrics); may be nil.
type Observer interface {
	Published(eventType string)
}

// Options configure the publish API.
type Options struct {
	// Log stores the events.
	Log           eventlog.Log
	Authenticator Authenticator
	// ServiceAccounts, when set, verifies the tokens that look like
	// Kubernetes ServiceAccount tokens issued for auth.PublishTokenAudience
	// (TokenReview and SubjectAccessReview); Authenticator verifies the rest.
	ServiceAccounts Authenticator
	Observer        Observer
	// MaxBodyBytes bounds a request body (default DefaultMaxBodyBytes).
	MaxBodyBytes int64
	// Now is the clock of the timestamps; nil means time.Now.
	Now func() time.Time
	// NewID generates notification ids the publisher did not give.
	NewID func() string
}

// API serves the three publish endpoints.
type API struct{ opts Options }

// New returns the publish API.
func New(opts Options) *API {
	if opts.MaxBodyBytes <= 0 {
		opts.MaxBodyBytes = DefaultMaxBodyBytes
	}
	if opts.Now == nil {
		opts.Now = time.Now
	}
	return &API{opts: opts}
}

// Register mounts the endpoints on mux.
func (a *API) Register(mux *http.ServeMux) {
	mux.Handle(paths.Notifications, a.endpoint(a.notification))
	mux.Handle(paths.SystemEvents, a.endpoint(a.systemEvent))
	mux.Handle(paths.CustomEvents, a.endpoint(a.customEvent))
}

// requestError is a client's mistake, answered 400 (or 413) with its message.
type requestError struct {
	code, message string
}

func (e *requestError) Error() string { return e.message }

func invalid(format string, args ...any) error {
	return &requestError{code: httpapi.CodeInvalidRequest, message: fmt.Sprintf(format, args...)}
}

// endpoint wraps a publish handler with the method check, authentication,
// the publish grant and the body limit.
func (a *API) endpoint(handle func(ctx context.Context, body []byte) (any, error)) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.Method != http.MethodPost {
			httpapi.MethodNotAllowed(w, http.MethodPost)
			return
		}
		token, ok := httpapi.BearerToken(r)
		if !ok {
			httpapi.WriteError(w, httpapi.CodeUnauthorized, "an Authorization: Bearer token is required")
			return
		}
		verifier := a.opts.Authenticator
		if a.opts.ServiceAccounts != nil && auth.LooksLikeServiceAccountToken(token) {
			verifier = a.opts.ServiceAccounts
		}
		identity, err := verifier.Verify(token)
		var forbidden interface{ Forbidden() bool }
		var temporary interface{ Temporary() bool }
		switch {
		case errors.As(err, &forbidden) && forbidden.Forbidden():
			httpapi.WriteError(w, httpapi.CodeForbidden, err.Error())
			return
		case errors.As(err, &temporary) && temporary.Temporary():
			httpapi.WriteRetryAfter(w, httpapi.CodeUnavailable, err.Error(), time.Second)
			return
		case err != nil:
			httpapi.WriteError(w, httpapi.CodeUnauthorized, "invalid token: "+err.Error())
			return
		}
		if !identity.CanPublish {
			httpapi.WriteError(w, httpapi.CodeForbidden, "the token does not carry the channel's publish grant")
			return
		}
		if ct := r.Header.Get("Content-Type"); ct != "" && !strings.HasPrefix(ct, "application/json") {
			httpapi.WriteError(w, httpapi.CodeInvalidRequest, "Content-Type must be application/json")
			return
		}
		body, err := io.ReadAll(http.MaxBytesReader(w, r.Body, a.opts.MaxBodyBytes))
		var tooLarge *http.MaxBytesError
		if errors.As(err, &tooLarge) {
			httpapi.WriteError(w, httpapi.CodeTooLarge, fmt.Sprintf("the body exceeds %d bytes", a.opts.MaxBodyBytes))
			return
		}
		if err != nil {
			httpapi.WriteError(w, httpapi.CodeInvalidRequest, "failed to read the body: "+err.Error())
			return
		}
		ctx, cancel := context.WithTimeout(r.Context(), appendTimeout)
		defer cancel()
		result, err := handle(ctx, body)
		var reqErr *requestError
		switch {
		case errors.As(err, &reqErr):
			httpapi.WriteError(w, reqErr.code, reqErr.message)
		case errors.Is(err, eventlog.ErrClosed):
			httpapi.WriteRetryAfter(w, httpapi.CodeUnavailable, "the server is shutting down; publish to another replica", time.Second)
		case err != nil:
			httpapi.WriteRetryAfter(w, httpapi.CodeUnavailable, "failed to store the event: "+err.Error(), time.Second)
		default:
			httpapi.WriteJSON(w, http.StatusAccepted, result)
		}
	})
}

// decode parses a JSON body strictly: unknown fields are named, so a misspelt
// field is an error rather than silently dropped.
func decode(body []byte, v any) error {
	dec := json.NewDecoder(strings.NewReader(string(body)))
	dec.DisallowUnknownFields()
	if err := dec.Decode(v); err != nil {
		return invalid("invalid JSON body: %s", strings.TrimPrefix(err.Error(), "json: "))
	}
	if dec.More() {
		return invalid("invalid JSON body: more than one JSON value")
	}
	return nil
}

// checkName validates a required or optional id or type name.
func checkName(field, value string, required bool) error {
	switch {
	case value == "" && required:
		return invalid("%s is required", field)
	case len(value) > maxNameLength:
		return invalid("%s is longer than %d bytes", field, maxNameLength)
	case strings.ContainsAny(value, "\x00\r\n"):
		return invalid("%s contains a control character", field)
	}
	return nil
}

// checkUsers validates a recipient list and returns it without duplicates.
func checkUsers(field string, users []string, required bool) ([]string, error) {
	if len(users) == 0 && required {
		return nil, invalid("%s must name at least one user", field)
	}
	if len(users) > MaxRecipients {
		return nil, invalid("%s has %d users, at most %d are allowed", field, len(users), MaxRecipients)
	}
	unique := make([]string, 0, len(users))
	for i, u := range users {
		if err := checkName(fmt.Sprintf("%s[%d]", field, i), u, true); err != nil {
			return nil, err
		}
		if !slices.Contains(unique, u) {
			unique = append(unique, u)
		}
	}
	return unique, nil
}

// checkData validates an optional data object.
func checkData(data json.RawMessage) (json.RawMessage, error) {
	if len(data) == 0 || string(data) == "null" {
		return json.RawMessage("{}"), nil
	}
	if data[0] != '{' {
		return nil, invalid("data must be a JSON object")
	}
	return data, nil
}

// checkPriority validates an optional priority and applies the default.
func checkPriority(p string) (string, error) {
	priority, err := event.ParsePriority(p)
	if err != nil {
		return "", invalid("%s", err)
	}
	return string(priority), nil
}

func (a *API) timestamp() string { return event.Timestamp(a.opts.Now()) }

func (a *API) append(ctx context.Context, e eventlog.Event) (string, error) {
	stored, err := a.opts.Log.Append(ctx, e, "")
	if err != nil {
		return "", err
	}
	if a.opts.Observer != nil {
		a.opts.Observer.Published(e.Type)
	}
	return stored.Position.String(), nil
}
