// Package paths names the URL paths of the streamer's HTTP contract. It
// imports nothing, so that the operator (which builds probes and the
// channel's endpoint URL from them) shares them with the server without
// depending on it.
package paths

// The client contract (DESIGN.md): what EventSource clients and browsers call.
const (
	// Stream is the SSE endpoint: GET opens a stream of the user's events.
	Stream = "/api/v1/sse/notifications"
	// Tickets trades a bearer token for a single-use ticket: POST.
	Tickets = "/api/v1/sse/tickets"
	// StreamToken, a pattern of net/http's ServeMux, replaces the token of
	// the open stream named by the connection event's streamId: POST.
	StreamToken = "/api/v1/sse/streams/{streamId}/token"
)

// The publish contract: what backends call, POST with a JSON body.
const (
	Notifications = "/api/v1/notifications"
	SystemEvents  = "/api/v1/system-events"
	CustomEvents  = "/api/v1/custom-events"
)

// The probes, served on the metrics address (and on the API address).
const (
	// Healthz answers 200 while the process serves, draining included.
	Healthz = "/healthz"
	// Readyz answers 503 from the moment a drain starts (SIGTERM).
	Readyz = "/readyz"
)
