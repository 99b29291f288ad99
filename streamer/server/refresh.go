package server

import (
	"context"
	crand "crypto/rand"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"net/http"
	"strings"
	"time"

	"github.com/herald-notify/herald/streamer/auth"
	"github.com/herald-notify/herald/streamer/event"
	"github.com/herald-notify/herald/streamer/httpapi"
	"github.com/herald-notify/herald/streamer/hub"
	"github.com/herald-notify/herald/streamer/paths"
)

// Replicas reaches the channel's other replicas (package relay), so that a
// token refresh that reaches one replica is answered by the replica holding
// the stream.
type Replicas interface {
	// ID names this replica: every stream id it hands out starts with it.
	// It holds only the characters [0-9a-z].
	ID() string
	// Bind hands over the function that answers the other replicas'
	// requests. New calls it once.
	Bind(answer func(request []byte) []byte)
	// Request sends request to replica and returns its answer. found is
	// false when no replica of that id is there (it stopped, and its
	// streams ended with it); err means no answer came in time.
	Request(ctx context.Context, replica string, request []byte) (answer []byte, found bool, err error)
}

// refreshRetryAfter is the Retry-After of a 503 for a replica that did not
// answer a forwarded refresh in time.
const refreshRetryAfter = time.Second

// Values of the token refreshes metric's "result" label.
const (
	refreshOK            = "ok"
	refreshUnauthorized  = "unauthorized"
	refreshForbidden     = "forbidden"
	refreshUnknownStream = "unknown_stream"
	refreshUnavailable   = "unavailable"
)

// streamTokenPath is the refresh endpoint of stream id.
func streamTokenPath(id string) string {
	return strings.Replace(paths.StreamToken, "{streamId}", id, 1)
}

// newReplicaID is the id of a replica that has no Replicas: random, so that
// a stream id of another process is not mistaken for one of this one's.
func newReplicaID() string {
	var b [6]byte
	_, _ = crand.Read(b[:])
	return hex.EncodeToString(b[:])
}

// replicaOf is the replica a stream id names, if it is one of the form
// streamIDs writes.
func replicaOf(streamID string) (string, bool) {
	replica, n, ok := strings.Cut(streamID, ".")
	if !ok || replica == "" || n == "" {
		return "", false
	}
	for _, c := range replica {
		if (c < '0' || c > '9') && (c < 'a' || c > 'z') {
			return "", false
		}
	}
	return replica, true
}

// streamOf is the open stream of this replica that id names, or nil.
func (s *Server) streamOf(id string) *stream {
	n, ok := s.streamIDs.number(id)
	if !ok {
		return nil
	}
	return streamOfConn(s.hub.Lookup(n))
}

// streamOfConn is the stream of a hub Conn, its notifier, or nil.
func streamOfConn(c *hub.Conn) *stream {
	if c == nil {
		return nil
	}
	st, _ := c.Notifier().(*stream)
	return st
}

// refreshRequest is a refresh on its way to the replica holding the stream.
type refreshRequest struct {
	StreamID string `json:"streamId"`
	Token    string `json:"token"`
}

// refreshResult is what became of a refresh: an httpapi error code, or
// none and the stream's new expiry.
type refreshResult struct {
	Code      string `json:"code,omitempty"`
	Message   string `json:"message,omitempty"`
	ExpiresAt string `json:"expiresAt,omitempty"`
}

// refreshResponse is the answer of a successful refresh.
type refreshResponse struct {
	StreamID  string `json:"streamId"`
	ExpiresAt string `json:"expiresAt"`
}

// serveStreamToken is POST /api/v1/sse/streams/{streamId}/token: the token
// in Authorization replaces the one the stream was opened with, and the
// stream ends at its expiry instead.
func (s *Server) serveStreamToken(w http.ResponseWriter, r *http.Request) {
	if r.Method != http.MethodPost {
		httpapi.MethodNotAllowed(w, http.MethodPost)
		return
	}
	id := r.PathValue("streamId")
	token, ok := httpapi.BearerToken(r)
	var result refreshResult
	if ok {
		result = s.refresh(r.Context(), id, token)
	} else {
		s.metrics.authFailures.WithLabelValues("missing_token").Inc()
		result = refreshResult{Code: httpapi.CodeUnauthorized, Message: "an Authorization: Bearer token is required"}
	}
	s.metrics.refreshes.WithLabelValues(result.metricLabel()).Inc()
	switch result.Code {
	case "":
		httpapi.WriteJSON(w, http.StatusOK, refreshResponse{StreamID: id, ExpiresAt: result.ExpiresAt})
	case httpapi.CodeUnavailable:
		httpapi.WriteRetryAfter(w, result.Code, result.Message, refreshRetryAfter)
	default:
		httpapi.WriteError(w, result.Code, result.Message)
	}
}

// refresh moves stream id's expiry to token's, here or on the replica that
// holds the stream. The token is verified first, wherever the stream is, so
// that a bad token is answered 401 alike.
func (s *Server) refresh(ctx context.Context, id, token string) refreshResult {
	identity, err := s.verify(token)
	if err != nil {
		return refreshResult{Code: httpapi.CodeUnauthorized, Message: err.Error()}
	}
	replica, ok := replicaOf(id)
	if !ok {
		return unknownStream(id)
	}
	if replica == s.streamIDs.replica || s.replicas == nil {
		return s.refreshStream(id, identity)
	}
	request, _ := json.Marshal(refreshRequest{StreamID: id, Token: token})
	answer, found, err := s.replicas.Request(ctx, replica, request)
	if err != nil {
		s.logger.Warn("token refresh not answered: the replica holding the stream cannot be reached",
			"stream", id, "reason", "ReplicaUnreachable", "error", err.Error())
		return refreshResult{Code: httpapi.CodeUnavailable, Message: "the replica holding the stream cannot be reached right now; retry"}
	}
	if !found {
		return unknownStream(id)
	}
	var result refreshResult
	if err := json.Unmarshal(answer, &result); err != nil {
		return refreshResult{Code: httpapi.CodeUnavailable, Message: fmt.Sprintf("the replica holding the stream answered what is not a refresh: %v; retry", err)}
	}
	return result
}

// answerReplica answers a refresh another replica forwarded (Replicas.Bind).
func (s *Server) answerReplica(request []byte) []byte {
	var req refreshRequest
	result := refreshResult{Code: httpapi.CodeInvalidRequest, Message: "not a refresh request"}
	if err := json.Unmarshal(request, &req); err == nil {
		result = s.refreshHere(req.StreamID, req.Token)
	}
	answer, _ := json.Marshal(result)
	return answer
}

// refreshHere refreshes a stream of this replica for another replica: the
// token is verified again, by this replica's verifier, which admitted the
// stream.
func (s *Server) refreshHere(id, token string) refreshResult {
	identity, err := s.verify(token)
	if err != nil {
		return refreshResult{Code: httpapi.CodeUnauthorized, Message: err.Error()}
	}
	return s.refreshStream(id, identity)
}

// refreshStream moves the expiry of stream id, of this replica, to that of
// identity, a verified token that must name the stream's user.
func (s *Server) refreshStream(id string, identity auth.Identity) refreshResult {
	st := s.streamOf(id)
	if st == nil {
		return unknownStream(id)
	}
	if identity.UserID != st.user() {
		return refreshResult{Code: httpapi.CodeForbidden, Message: "the token is for another user than the stream's"}
	}
	if !st.moveExpiry(identity.ExpiresAt) {
		return unknownStream(id)
	}
	s.logger.Debug("stream token refreshed", "user", identity.UserID, "stream", id, "expiresAt", event.Timestamp(identity.ExpiresAt))
	return refreshResult{ExpiresAt: event.Timestamp(identity.ExpiresAt)}
}

func unknownStream(id string) refreshResult {
	return refreshResult{Code: httpapi.CodeNotFound, Message: fmt.Sprintf("no open stream has the id %q: it ended, or never was; open a new one", id)}
}

// metricLabel is the result's value of the refreshes metric's label.
func (r refreshResult) metricLabel() string {
	switch r.Code {
	case "":
		return refreshOK
	case httpapi.CodeUnauthorized:
		return refreshUnauthorized
	case httpapi.CodeForbidden:
		return refreshForbidden
	case httpapi.CodeUnavailable:
		return refreshUnavailable
	default:
		return refreshUnknownStream
	}
}
