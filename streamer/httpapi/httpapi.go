// Package httpapi holds the JSON conventions shared by the streamer's HTTP
// endpoints: every error is {"error":{"code":"…","message":"…"}} with the
// status that matches its code.
package httpapi

import (
	"encoding/json"
	"net/http"
	"strconv"
	"strings"
	"time"
)

// Error codes, stable for clients to switch on.
const (
	CodeInvalidRequest   = "invalid_request"
	CodeUnauthorized     = "unauthorized"
	CodeForbidden        = "forbidden"
	CodeNotFound         = "not_found"
	CodeMethodNotAllowed = "method_not_allowed"
	CodeTooLarge         = "too_large"
	CodeHeadersTooLarge  = "headers_too_large"
	CodeRateLimited      = "rate_limited"
	CodeUnavailable      = "unavailable"
)

// statusOf maps each code to its HTTP status.
var statusOf = map[string]int{
	CodeInvalidRequest:   http.StatusBadRequest,
	CodeUnauthorized:     http.StatusUnauthorized,
	CodeForbidden:        http.StatusForbidden,
	CodeNotFound:         http.StatusNotFound,
	CodeMethodNotAllowed: http.StatusMethodNotAllowed,
	CodeTooLarge:         http.StatusRequestEntityTooLarge,
	CodeHeadersTooLarge:  http.StatusRequestHeaderFieldsTooLarge,
	CodeRateLimited:      http.StatusTooManyRequests,
	CodeUnavailable:      http.StatusServiceUnavailable,
}

type errorBody struct {
	Error errorDetail `json:"error"`
}

type errorDetail struct {
	Code    string `json:"code"`
	Message string `json:"message"`
}

// WriteError answers with the JSON error for code. 401 answers carry
// WWW-Authenticate, so that clients know a bearer token is expected.
func WriteError(w http.ResponseWriter, code, message string) {
	status, ok := statusOf[code]
	if !ok {
		status = http.StatusInternalServerError
	}
	if status == http.StatusUnauthorized {
		w.Header().Set("WWW-Authenticate", `Bearer realm="herald", error="invalid_token"`)
	}
	WriteJSON(w, status, errorBody{Error: errorDetail{Code: code, Message: message}})
}

// WriteRetryAfter answers like WriteError, telling the client when to retry.
func WriteRetryAfter(w http.ResponseWriter, code, message string, after time.Duration) {
	w.Header().Set("Retry-After", strconv.Itoa(max(1, int(after.Round(time.Second)/time.Second))))
	WriteError(w, code, message)
}

// WriteJSON answers with v as JSON.
func WriteJSON(w http.ResponseWriter, status int, v any) {
	w.Header().Set("Content-Type", "application/json")
	w.Header().Set("Cache-Control", "no-store")
	w.Header().Set("X-Content-Type-Options", "nosniff")
	w.WriteHeader(status)
	_ = json.NewEncoder(w).Encode(v)
}

// MethodNotAllowed answers 405 naming the allowed method.
func MethodNotAllowed(w http.ResponseWriter, allowed string) {
	w.Header().Set("Allow", allowed)
	WriteError(w, CodeMethodNotAllowed, "use "+allowed)
}

// NotFound answers 404 for a path nothing is served at, in the contract's
// form rather than net/http's plain text.
func NotFound(w http.ResponseWriter, r *http.Request) {
	WriteError(w, CodeNotFound, "nothing is served at "+r.URL.Path)
}

// BearerToken is the token of an "Authorization: Bearer <token>" header.
func BearerToken(r *http.Request) (string, bool) {
	scheme, token, ok := strings.Cut(r.Header.Get("Authorization"), " ")
	token = strings.TrimSpace(token)
	return token, ok && strings.EqualFold(scheme, "Bearer") && token != ""
}
