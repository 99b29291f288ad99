package server

import (
	"errors"
	"fmt"
	"strings"

	notifyv1alpha1 "github.com/herald-notify/herald/api/v1alpha1"
	"github.com/herald-notify/herald/streamer/auth"
	"github.com/herald-notify/herald/streamer/hub"
)

// RestartError is the answer of SetSpec to a spec that changes settings the
// server reads only at start: they keep their values until the server is
// replaced, while the other settings were applied.
type RestartError struct {
	// Fields are the paths of the changed settings, such as "spec.history".
	Fields []string
}

// Error implements error.
func (e *RestartError) Error() string {
	return fmt.Sprintf("%s cannot change while the streamer runs, and keep their values until its pod is replaced "+
		"(the operator rolls the pods on such a change); the other settings were applied", strings.Join(e.Fields, ", "))
}

// SetSpec applies a new version of the channel's spec without dropping a
// stream. keys are the channel's keys parsed for the new spec's algorithms
// (auth.ParseKeys(spec.Auth.Algorithms, ...)); they replace the keys in use,
// as SetKeys does.
//
// What changes, and for whom:
//   - auth (issuer, audiences, user-id claim, leeway, token sources, cookie
//     name, ticket TTL, publish grant, algorithms): the next stream, ticket
//     and publish request; open streams are not verified again;
//   - auth.expiryWarning: a stream from its next token (connect or refresh);
//   - connections.maxPerUser, userLimitPolicy, maxPerPod, sendQueueBytes: the
//     next stream. Open streams are not closed when a limit is lowered (that
//     would make their clients reconnect at once, all together); a user over
//     the new per-user limit is brought back to it at their next connect;
//   - connections.keepAliveInterval: every stream, from its next keep-alive;
//   - cors.allowedOrigins: the next request;
//   - drain: the next drain.
//
// A spec that changes a start-only setting (notifyv1alpha1.StartOnlySettings:
// spec.broker, spec.history, spec.auth.keySecretRef, spec.http) gets a *RestartError
// naming them, after the other settings were applied. Any other error means nothing was applied. SetSpec is
// safe for concurrent use with every other method.
func (s *Server) SetSpec(spec notifyv1alpha1.NotificationChannelSpec, keys *auth.KeySet) error {
	if keys == nil {
		return errors.New("server: SetSpec needs the channel's keys, parsed for the spec's algorithms")
	}
	s.setMu.Lock()
	defer s.setMu.Unlock()
	current := s.settings()
	// live is spec with the start-only settings in use, so that settings()
	// always describes what the server runs with.
	live := *spec.DeepCopy()
	live.KeepStartOnly(current)
	if err := s.verifier.SetOptions(withClock(auth.OptionsFromSpec(live.Auth, keys), s.now)); err != nil {
		return fmt.Errorf("server: spec.auth cannot be applied, nothing was: %w", err)
	}
	s.hub.SetLimits(hubOptions(live.Connections, nil))
	s.current.Store(&live)
	if changed := current.StartOnlyChanges(&spec); len(changed) > 0 {
		return &RestartError{Fields: changed}
	}
	return nil
}

// Spec is a copy of the spec the server runs with: the last one SetSpec
// applied, with the start-only settings it started with.
func (s *Server) Spec() notifyv1alpha1.NotificationChannelSpec {
	return *s.settings().DeepCopy()
}

// settings is the spec in use, shared: never modify it. A request reads it
// once, so that it sees one version throughout.
func (s *Server) settings() *notifyv1alpha1.NotificationChannelSpec {
	return s.current.Load()
}

// hubOptions are the hub's limits of a channel's connection settings.
func hubOptions(c notifyv1alpha1.ConnectionsSpec, observer hub.Observer) hub.Options {
	policy := hub.ReplaceOldest
	if c.UserLimitPolicy == notifyv1alpha1.UserLimitReject {
		policy = hub.Reject
	}
	return hub.Options{
		MaxPerUser: int(c.MaxPerUser), Policy: policy,
		MaxConnections: int(c.MaxPerPod), SendQueueBytes: int(c.SendQueueBytes),
		Observer: observer,
	}
}
