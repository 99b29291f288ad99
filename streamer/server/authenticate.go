package server

import (
	"errors"
	"fmt"
	"net/http"
	"strings"
	"time"

	notifyv1alpha1 "github.com/herald-notify/herald/api/v1alpha1"
	"github.com/herald-notify/herald/streamer/auth"
	"github.com/herald-notify/herald/streamer/event"
	"github.com/herald-notify/herald/streamer/httpapi"
)

// errTicketsUnavailable wraps a ticket store's failure to redeem: the stream
// request gets 503 with Retry-After, not 401.
var errTicketsUnavailable = errors.New("the ticket store is unavailable")

// ticketsRetryAfter is the Retry-After of a 503 for an unavailable ticket
// store: a broker outage is usually short, and the client's ticket lives
// only seconds.
const ticketsRetryAfter = time.Second

// authenticateStream finds the request's token in the channel's enabled
// sources, in the contract's order (header, cookie, ticket, query parameter):
// the first one present decides, an invalid one is not skipped.
func (s *Server) authenticateStream(r *http.Request) (auth.Identity, error) {
	spec := s.settings().Auth
	sources := spec.TokenSources
	enabled := func(src notifyv1alpha1.TokenSource) bool {
		for _, e := range sources {
			if e == src {
				return true
			}
		}
		return false
	}
	if enabled(notifyv1alpha1.TokenSourceHeader) {
		if token, ok := httpapi.BearerToken(r); ok {
			return s.verify(token)
		}
	}
	if enabled(notifyv1alpha1.TokenSourceCookie) {
		if c, err := r.Cookie(spec.CookieName); err == nil && c.Value != "" {
			return s.verify(c.Value)
		}
	}
	if enabled(notifyv1alpha1.TokenSourceTicket) {
		if ticket := r.URL.Query().Get("ticket"); ticket != "" {
			identity, ok, err := s.tickets.Redeem(r.Context(), ticket)
			if err != nil {
				return auth.Identity{}, fmt.Errorf("%w: %w", errTicketsUnavailable, err)
			}
			if !ok {
				s.metrics.authFailures.WithLabelValues("invalid_ticket").Inc()
				return auth.Identity{}, errors.New("the ticket is unknown, used or expired: request a new one")
			}
			return identity, nil
		}
	}
	if enabled(notifyv1alpha1.TokenSourceQueryParameter) {
		if token := r.URL.Query().Get("access_token"); token != "" {
			return s.verify(token)
		}
	}
	s.metrics.authFailures.WithLabelValues("missing_token").Inc()
	return auth.Identity{}, errors.New("no token: send Authorization: Bearer <jwt>" + otherSources(spec))
}

// otherSources describes the enabled token sources besides the header.
func otherSources(spec notifyv1alpha1.AuthSpec) string {
	var names []string
	for _, src := range spec.TokenSources {
		switch src {
		case notifyv1alpha1.TokenSourceCookie:
			names = append(names, "the "+spec.CookieName+" cookie")
		case notifyv1alpha1.TokenSourceTicket:
			names = append(names, "a ticket from POST "+TicketsPath)
		case notifyv1alpha1.TokenSourceQueryParameter:
			names = append(names, "the access_token parameter")
		}
	}
	if len(names) == 0 {
		return ""
	}
	return ", or " + strings.Join(names, ", or ")
}

// verify checks a token, counting failures by reason.
func (s *Server) verify(token string) (auth.Identity, error) {
	identity, err := s.verifier.Verify(token)
	if err != nil {
		reason := "invalid"
		var authErr *auth.Error
		if errors.As(err, &authErr) {
			reason = string(authErr.Reason)
		}
		s.metrics.authFailures.WithLabelValues(reason).Inc()
		return auth.Identity{}, err
	}
	if !identity.ExpiresAt.After(s.now()) {
		s.metrics.authFailures.WithLabelValues(string(auth.ReasonExpired)).Inc()
		return auth.Identity{}, errors.New("the token expires now")
	}
	return identity, nil
}

// ticketResponse is the answer of POST /api/v1/sse/tickets.
type ticketResponse struct {
	Ticket    string `json:"ticket"`
	ExpiresAt string `json:"expiresAt"`
}

// serveTicket is POST /api/v1/sse/tickets: a browser trades its bearer token
// for a short-lived, single-use ticket to put in the EventSource URL.
func (s *Server) serveTicket(w http.ResponseWriter, r *http.Request) {
	if r.Method != http.MethodPost {
		httpapi.MethodNotAllowed(w, http.MethodPost)
		return
	}
	token, ok := httpapi.BearerToken(r)
	if !ok {
		httpapi.WriteError(w, httpapi.CodeUnauthorized, "an Authorization: Bearer token is required")
		return
	}
	identity, err := s.verify(token)
	if err != nil {
		httpapi.WriteError(w, httpapi.CodeUnauthorized, err.Error())
		return
	}
	ttl := duration(s.settings().Auth.TicketTTL)
	ticket, err := s.tickets.Issue(r.Context(), identity, ttl)
	switch {
	case errors.Is(err, auth.ErrTooManyTickets), errors.Is(err, auth.ErrIdentityExpired):
		httpapi.WriteRetryAfter(w, httpapi.CodeRateLimited, err.Error(), ttl)
		return
	case err != nil:
		s.logger.Warn("ticket refused: the ticket store cannot be reached", "reason", "TicketsUnavailable", "error", err.Error())
		httpapi.WriteRetryAfter(w, httpapi.CodeUnavailable, "tickets cannot be issued right now; retry", ticketsRetryAfter)
		return
	}
	expires := s.now().Add(ttl)
	if identity.ExpiresAt.Before(expires) {
		expires = identity.ExpiresAt
	}
	httpapi.WriteJSON(w, http.StatusCreated, ticketResponse{Ticket: ticket, ExpiresAt: event.Timestamp(expires)})
}
