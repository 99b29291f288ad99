// Package publisher is the Go client of the streamer's publish API: it sends
// notifications, system events and custom events to a Herald channel, as the
// NestJS module's publisher did in-process.
//
// A [Client] posts to a streamer's /api/v1/notifications, /api/v1/system-events
// and /api/v1/custom-events with a Bearer token that carries the channel's
// publish grant, or, in the cluster, a ServiceAccount token ([TokenFile]).
// Requests are checked before they are sent; a refusal by the streamer is an
// [*APIError] that errors.Is matches against [ErrInvalidRequest],
// [ErrUnauthorized] and the other sentinels, so callers can decide whether
// to retry without parsing messages.
package publisher

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"os"
	"strings"
	"time"

	"github.com/herald-notify/herald/internal/version"
)

const (
	// DefaultTimeout bounds each publish call unless WithTimeout says
	// otherwise: a publish is one small POST, and a backend should not hang
	// on a stuck streamer.
	DefaultTimeout = 10 * time.Second
	// MaxResponseBytes is the most of a response body the client reads. The
	// streamer's answers are a few hundred bytes; the bound keeps a
	// misbehaving server or proxy from making the client buffer without end.
	MaxResponseBytes = 1 << 20
)

// The publish API's paths, relative to the base URL.
const (
	notificationsPath = "api/v1/notifications"
	systemEventsPath  = "api/v1/system-events"
	customEventsPath  = "api/v1/custom-events"
)

// TokenSource returns the Bearer token for a request. It is called once per
// publish, so it can hand out rotated tokens; it must be safe for concurrent
// use and should cache what is expensive to get.
type TokenSource func(ctx context.Context) (string, error)

// Client publishes events to one streamer endpoint. It is safe for concurrent
// use; create one per endpoint and reuse it.
type Client struct {
	notificationsURL string
	systemEventsURL  string
	customEventsURL  string

	token       string
	tokenSource TokenSource
	httpClient  *http.Client
	timeout     time.Duration
	userAgent   string
}

// Option configures a Client in New.
type Option func(*Client)

// WithToken authenticates every request with a fixed token. It replaces an
// earlier WithToken or WithTokenSource.
func WithToken(token string) Option {
	return func(c *Client) {
		c.token = token
		c.tokenSource = nil
	}
}

// WithTokenSource authenticates each request with the token source returns,
// for tokens that rotate. It replaces an earlier WithToken or
// WithTokenSource.
func WithTokenSource(source TokenSource) Option {
	return func(c *Client) {
		c.tokenSource = source
		c.token = ""
	}
}

// WithHTTPClient sends requests with client instead of a client of its own
// over http.DefaultTransport, for custom TLS, proxies or instrumentation. Its
// Timeout, if any, applies on top of WithTimeout. A nil client is ignored.
func WithHTTPClient(client *http.Client) Option {
	return func(c *Client) {
		if client != nil {
			c.httpClient = client
		}
	}
}

// WithTimeout bounds each publish call, token source and response included;
// the default is DefaultTimeout. Zero or a negative duration sets no bound of
// the client's own. A deadline on the call's context applies either way.
func WithTimeout(timeout time.Duration) Option {
	return func(c *Client) { c.timeout = timeout }
}

// TokenFile is a TokenSource that reads the token from a file on every call,
// trimmed of surrounding white space. It suits Kubernetes projected
// ServiceAccount tokens, which the kubelet rewrites before they expire.
func TokenFile(path string) TokenSource {
	return func(context.Context) (string, error) {
		data, err := os.ReadFile(path)
		if err != nil {
			return "", fmt.Errorf("read token file: %w", err)
		}
		return strings.TrimSpace(string(data)), nil
	}
}

// New returns a Client for the streamer at baseURL, such as
// "https://notify.example.com" or "http://herald-app.apps.svc" (a path
// prefix is kept, for streamers behind a routing proxy). The URL must be
// http or https, with a host and without query, fragment or user info.
// WithToken or WithTokenSource is required: the publish API always
// authenticates.
func New(baseURL string, opts ...Option) (*Client, error) {
	base, err := parseBaseURL(baseURL)
	if err != nil {
		return nil, err
	}
	c := &Client{
		notificationsURL: base.JoinPath(notificationsPath).String(),
		systemEventsURL:  base.JoinPath(systemEventsPath).String(),
		customEventsURL:  base.JoinPath(customEventsPath).String(),
		httpClient:       &http.Client{},
		timeout:          DefaultTimeout,
		userAgent:        "herald-publisher/" + version.Version,
	}
	for _, opt := range opts {
		opt(c)
	}
	if c.token == "" && c.tokenSource == nil {
		return nil, errors.New("publisher: no token: pass WithToken or WithTokenSource")
	}
	return c, nil
}

// parseBaseURL checks the streamer's base URL. Errors quote the URL only
// after its user info is redacted.
func parseBaseURL(raw string) (*url.URL, error) {
	base, err := url.Parse(raw)
	if err != nil {
		return nil, fmt.Errorf("publisher: base URL: %w", err)
	}
	switch {
	case base.Scheme != "http" && base.Scheme != "https":
		return nil, fmt.Errorf("publisher: base URL %q: scheme must be http or https", base.Redacted())
	case base.Host == "":
		return nil, fmt.Errorf("publisher: base URL %q: no host", base.Redacted())
	case base.User != nil:
		return nil, fmt.Errorf("publisher: base URL %q: user info is not allowed: authenticate with WithToken or WithTokenSource", base.Redacted())
	case base.RawQuery != "" || base.ForceQuery:
		return nil, fmt.Errorf("publisher: base URL %q: query is not allowed", base.Redacted())
	case base.Fragment != "":
		return nil, fmt.Errorf("publisher: base URL %q: fragment is not allowed", base.Redacted())
	}
	return base, nil
}

// post sends body as JSON to endpoint and decodes a 2xx answer into result.
// Any other answer is an *APIError.
func (c *Client) post(ctx context.Context, endpoint string, body, result any) error {
	payload, err := json.Marshal(body)
	if err != nil {
		return fmt.Errorf("encode request: %w", err)
	}
	if c.timeout > 0 {
		var cancel context.CancelFunc
		ctx, cancel = context.WithTimeout(ctx, c.timeout)
		defer cancel()
	}
	token, err := c.bearerToken(ctx)
	if err != nil {
		return err
	}
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, endpoint, bytes.NewReader(payload))
	if err != nil {
		return fmt.Errorf("build request: %w", err)
	}
	req.Header.Set("Authorization", "Bearer "+token)
	req.Header.Set("Content-Type", "application/json")
	req.Header.Set("Accept", "application/json")
	req.Header.Set("User-Agent", c.userAgent)
	resp, err := c.httpClient.Do(req)
	if err != nil {
		return err // *url.Error: names the method and URL, wraps the cause.
	}
	defer func() { _ = resp.Body.Close() }()
	return decodeResponse(resp, result)
}

// bearerToken returns the token for one request. The token is checked here
// so that a bad one fails with a message that does not quote it, rather than
// with whatever net/http says about the header.
func (c *Client) bearerToken(ctx context.Context) (string, error) {
	token := c.token
	if c.tokenSource != nil {
		var err error
		if token, err = c.tokenSource(ctx); err != nil {
			return "", fmt.Errorf("get token: %w", err)
		}
	}
	switch {
	case token == "":
		return "", errors.New("get token: the token is empty")
	case strings.ContainsFunc(token, notTokenChar):
		return "", errors.New("get token: the token holds white space or control characters, which a Bearer header cannot carry")
	}
	return token, nil
}

// notTokenChar reports whether r cannot appear in a Bearer token: JWTs and
// ServiceAccount tokens are printable ASCII without spaces.
func notTokenChar(r rune) bool { return r <= ' ' || r > '~' }

// decodeResponse reads a bounded response body and decodes a success into
// result, or turns a failure into an *APIError.
func decodeResponse(resp *http.Response, result any) error {
	body, err := io.ReadAll(io.LimitReader(resp.Body, MaxResponseBytes+1))
	tooLarge := len(body) > MaxResponseBytes
	body = body[:min(len(body), MaxResponseBytes)]
	if resp.StatusCode < 200 || resp.StatusCode > 299 {
		// A failure is reported from what could be read: a cut or broken
		// body still leaves the status.
		return newAPIError(resp, body)
	}
	switch {
	case err != nil:
		return fmt.Errorf("read response (status %d): %w", resp.StatusCode, err)
	case tooLarge:
		return fmt.Errorf("read response (status %d): body exceeds %d bytes", resp.StatusCode, MaxResponseBytes)
	}
	if err := json.Unmarshal(body, result); err != nil {
		return fmt.Errorf("decode response (status %d): %w", resp.StatusCode, err)
	}
	return nil
}
