package publisher

import (
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"strconv"
	"strings"
	"time"
	"unicode"
	"unicode/utf8"
)

// Sentinels for errors.Is, one per kind of refusal. An [*APIError] matches the
// sentinel of its status code; a request the client refuses to send matches
// ErrInvalidRequest.
var (
	// ErrInvalidRequest: 400, the request is malformed or fails validation,
	// or the client refused to send it. Retrying the same request will fail.
	ErrInvalidRequest = errors.New("invalid request")
	// ErrUnauthorized: 401, the token is missing, invalid or expired.
	ErrUnauthorized = errors.New("unauthorized")
	// ErrForbidden: 403, the token is valid but lacks the publish grant.
	ErrForbidden = errors.New("forbidden")
	// ErrNotFound: 404, no publish API at this URL: check the base URL.
	ErrNotFound = errors.New("not found")
	// ErrTooLarge: 413, the request body exceeds the streamer's limit.
	ErrTooLarge = errors.New("request too large")
	// ErrRateLimited: 429, retry after APIError.RetryAfter.
	ErrRateLimited = errors.New("rate limited")
	// ErrUnavailable: 503, or 502 and 504 from a proxy in front of the
	// streamer: the streamer cannot take the event now; retry after
	// APIError.RetryAfter, or with backoff when it is zero.
	ErrUnavailable = errors.New("unavailable")
)

// maxQuotedBytes bounds how much of a server's message an APIError quotes,
// so that an HTML error page from a proxy cannot flood a log line.
const maxQuotedBytes = 256

// APIError is an answer of the streamer (or of a proxy in front of it) other
// than success. It never contains the request's token.
type APIError struct {
	// StatusCode is the HTTP status.
	StatusCode int
	// Code is the error code of the JSON error body, such as "forbidden";
	// empty when the body was not the streamer's JSON error.
	Code string
	// Message is the JSON error's message or, for another body, the start
	// of the body as one line. Empty when the body was empty.
	Message string
	// RetryAfter is the answer's Retry-After header, which the streamer sends
	// with 429 and 503; zero when absent, unparsable or in the past.
	RetryAfter time.Duration
}

// Error implements error: status, code, message and retry hint.
func (e *APIError) Error() string {
	var b strings.Builder
	fmt.Fprintf(&b, "streamer answered %d %s", e.StatusCode, http.StatusText(e.StatusCode))
	if e.Code != "" {
		fmt.Fprintf(&b, " (%s)", e.Code)
	}
	if e.Message != "" {
		b.WriteString(": ")
		b.WriteString(e.Message)
	}
	if e.RetryAfter > 0 {
		fmt.Fprintf(&b, "; retry after %s", e.RetryAfter)
	}
	return b.String()
}

// Is reports whether target is the sentinel of the error's status code, so
// that errors.Is(err, ErrRateLimited) and the like work. The status decides,
// not the code, so that answers of proxies are classified too.
func (e *APIError) Is(target error) bool {
	sentinel := sentinelFor(e.StatusCode)
	return sentinel != nil && target == sentinel
}

// sentinelFor maps a status code to its sentinel, nil when it has none.
func sentinelFor(status int) error {
	switch status {
	case http.StatusBadRequest:
		return ErrInvalidRequest
	case http.StatusUnauthorized:
		return ErrUnauthorized
	case http.StatusForbidden:
		return ErrForbidden
	case http.StatusNotFound:
		return ErrNotFound
	case http.StatusRequestEntityTooLarge:
		return ErrTooLarge
	case http.StatusTooManyRequests:
		return ErrRateLimited
	case http.StatusBadGateway, http.StatusServiceUnavailable, http.StatusGatewayTimeout:
		return ErrUnavailable
	default:
		return nil
	}
}

// errorBody is the streamer's JSON error.
type errorBody struct {
	Error *struct {
		Code    string `json:"code"`
		Message string `json:"message"`
	} `json:"error"`
}

// newAPIError builds the APIError of a failed answer whose (bounded) body is
// body.
func newAPIError(resp *http.Response, body []byte) *APIError {
	apiErr := &APIError{
		StatusCode: resp.StatusCode,
		RetryAfter: parseRetryAfter(resp.Header.Get("Retry-After"), time.Now()),
	}
	var parsed errorBody
	if json.Unmarshal(body, &parsed) == nil && parsed.Error != nil {
		apiErr.Code = oneLine(parsed.Error.Code)
		apiErr.Message = oneLine(parsed.Error.Message)
	} else {
		apiErr.Message = oneLine(string(body))
	}
	return apiErr
}

// parseRetryAfter reads a Retry-After header: delay seconds or an HTTP date
// (RFC 9110 §10.2.3). Anything else, and a date in the past, is zero.
func parseRetryAfter(header string, now time.Time) time.Duration {
	header = strings.TrimSpace(header)
	if header == "" {
		return 0
	}
	if seconds, err := strconv.ParseInt(header, 10, 64); err == nil {
		if seconds <= 0 || seconds > int64(time.Duration(1<<63-1)/time.Second) {
			return 0
		}
		return time.Duration(seconds) * time.Second
	}
	if date, err := http.ParseTime(header); err == nil && date.After(now) {
		return date.Sub(now).Round(time.Second)
	}
	return 0
}

// oneLine makes server text fit a log line: white space runs collapsed,
// control characters and invalid UTF-8 dropped, at most maxQuotedBytes kept.
func oneLine(s string) string {
	var b strings.Builder
	space := false
	for _, r := range s {
		switch {
		case unicode.IsSpace(r):
			space = true
			continue
		case r == utf8.RuneError, unicode.IsControl(r):
			continue
		}
		if space && b.Len() > 0 {
			b.WriteByte(' ')
		}
		space = false
		if b.Len()+utf8.RuneLen(r) > maxQuotedBytes {
			b.WriteString("...")
			break
		}
		b.WriteRune(r)
	}
	return b.String()
}
