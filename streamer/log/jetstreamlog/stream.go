package jetstreamlog

import (
	"context"
	"errors"
	"fmt"
	"slices"

	"github.com/nats-io/nats.go/jetstream"
)

// IncompatibleStreamError says that the channel's stream exists with a
// setting Herald does not own and cannot work with. Herald never changes such
// a stream: someone made it for another purpose, or by hand.
type IncompatibleStreamError struct {
	Stream string
	Field  string
	Got    any
	Want   any
}

func (e *IncompatibleStreamError) Error() string {
	return fmt.Sprintf("stream %s exists with %s %v, Herald needs %v: delete the stream or point the channel elsewhere",
		e.Stream, e.Field, e.Got, e.Want)
}

// streamConfig is the stream Herald wants for the log's options.
func (l *Log) streamConfig() jetstream.StreamConfig {
	return jetstream.StreamConfig{
		Name:        l.stream,
		Description: "Herald channel " + l.opts.Namespace + "/" + l.opts.Channel,
		Subjects:    []string{l.subject},
		Retention:   jetstream.LimitsPolicy,
		MaxMsgs:     int64(l.opts.MaxEvents),
		MaxAge:      l.opts.MaxAge,
		Storage:     jetstream.FileStorage,
		Replicas:    l.opts.Replicas,
		Discard:     jetstream.DiscardOld,
		Duplicates:  l.opts.DuplicateWindow,
	}
}

// ensureStream creates the channel's stream, or checks the one that exists
// and updates the settings Herald owns when they differ. It does not use
// CreateOrUpdateStream: that would silently rewrite subjects, storage or
// retention of a stream that is not Herald's.
func (l *Log) ensureStream(ctx context.Context) (jetstream.Stream, error) {
	want := l.streamConfig()
	s, err := l.js.Stream(ctx, want.Name)
	if errors.Is(err, jetstream.ErrStreamNotFound) {
		s, err = l.js.CreateStream(ctx, want)
		if err == nil {
			l.logger.Info("created the channel's stream", "stream", want.Name, "replicas", want.Replicas)
			return s, nil
		}
		if !errors.Is(err, jetstream.ErrStreamNameAlreadyInUse) {
			return nil, fmt.Errorf("failed to create stream %s: %w", want.Name, err)
		}
		// Another replica created it first, with other settings: check them.
		s, err = l.js.Stream(ctx, want.Name)
	}
	if err != nil {
		return nil, fmt.Errorf("failed to look up stream %s: %w", want.Name, err)
	}
	have := s.CachedInfo().Config
	if err := checkCompatible(have, want); err != nil {
		return nil, err
	}
	updated, changed := withOwnedSettings(have, want)
	if !changed {
		return s, nil
	}
	if s, err = l.js.UpdateStream(ctx, updated); err != nil {
		return nil, fmt.Errorf("failed to update the settings of stream %s: %w", want.Name, err)
	}
	l.logger.Info("updated the channel's stream", "stream", want.Name,
		"maxEvents", updated.MaxMsgs, "maxAge", updated.MaxAge, "replicas", updated.Replicas, "duplicateWindow", updated.Duplicates)
	return s, nil
}

// checkCompatible refuses a stream whose settings, which Herald does not
// own, would break the log: other subjects would mix foreign messages in,
// other retention would delete events once consumed, memory storage would
// lose them on a restart, a mirror or source would write events of its own.
func checkCompatible(have, want jetstream.StreamConfig) error {
	incompatible := func(field string, got, wanted any) error {
		return &IncompatibleStreamError{Stream: want.Name, Field: field, Got: got, Want: wanted}
	}
	switch {
	case !slices.Equal(have.Subjects, want.Subjects):
		return incompatible("subjects", have.Subjects, want.Subjects)
	case have.Storage != want.Storage:
		return incompatible("storage", have.Storage, want.Storage)
	case have.Retention != want.Retention:
		return incompatible("retention", have.Retention, want.Retention)
	case have.NoAck:
		return incompatible("no_ack", true, false)
	case have.Mirror != nil:
		return incompatible("mirror", have.Mirror.Name, "none")
	case len(have.Sources) > 0:
		return incompatible("sources", len(have.Sources), 0)
	case have.Sealed:
		return incompatible("sealed", true, false)
	case have.MaxMsgsPerSubject > 0:
		return incompatible("max_msgs_per_subject", have.MaxMsgsPerSubject, "unlimited")
	}
	return nil
}

// withOwnedSettings is have with the settings Herald owns taken from want,
// and whether any differed. The others (limits in bytes, compression,
// placement…) are left as the operator of the NATS cluster set them.
func withOwnedSettings(have, want jetstream.StreamConfig) (jetstream.StreamConfig, bool) {
	updated := have
	updated.MaxMsgs = want.MaxMsgs
	updated.MaxAge = want.MaxAge
	updated.Replicas = want.Replicas
	updated.Discard = want.Discard
	updated.Duplicates = want.Duplicates
	changed := updated.MaxMsgs != have.MaxMsgs || updated.MaxAge != have.MaxAge ||
		updated.Replicas != have.Replicas || updated.Discard != have.Discard ||
		updated.Duplicates != have.Duplicates
	return updated, changed
}
