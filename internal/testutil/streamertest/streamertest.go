// Package streamertest builds streamers for the test suites that drive one
// over real HTTP: a minimal channel, defaulted as the API server does, with
// one random HS256 key.
package streamertest

import (
	"context"
	"crypto/rand"
	"time"

	notifyv1alpha1 "github.com/herald-notify/herald/api/v1alpha1"
	"github.com/herald-notify/herald/streamer/app"
	"github.com/herald-notify/herald/streamer/auth"
	"github.com/herald-notify/herald/streamer/channelspec"
	"github.com/herald-notify/herald/streamer/hub"
	eventlog "github.com/herald-notify/herald/streamer/log"
	"github.com/herald-notify/herald/streamer/server"
)

// KeyID is the kid of the streamer's only key.
const KeyID = "k1"

// minimalChannel is the smallest valid channel: every other setting defaulted.
const minimalChannel = `
apiVersion: notify.herald.dev/v1alpha1
kind: NotificationChannel
metadata: {name: test}
spec:
  auth:
    keySecretRef: {name: keys}
`

// New builds a streamer for the minimal channel with its spec adjusted by
// edit (may be nil), over an embedded log, and returns it with its HMAC key.
func New(edit func(spec *notifyv1alpha1.NotificationChannelSpec), writeTimeout time.Duration) (*server.Server, []byte, error) {
	return NewOver(nil, edit, writeTimeout)
}

// NewOver is New over log, or an embedded log for the channel's history
// when log is nil.
func NewOver(log eventlog.Log, edit func(spec *notifyv1alpha1.NotificationChannelSpec), writeTimeout time.Duration) (*server.Server, []byte, error) {
	return NewWith(Options{Log: log, Edit: edit, WriteTimeout: writeTimeout})
}

// Options are what NewWith builds a streamer from; zero fields are New's.
type Options struct {
	// Log is the channel's log; nil means an embedded one.
	Log eventlog.Log
	// Edit adjusts the minimal channel's spec.
	Edit func(spec *notifyv1alpha1.NotificationChannelSpec)
	// WriteTimeout is the server's.
	WriteTimeout time.Duration
	// Tickets is the server's ticket store; nil means its in-memory one.
	Tickets auth.Tickets
	// Presence holds the per-user limit across replicas; nil: per process.
	Presence hub.Presence
}

// NewWith builds a streamer for the minimal channel from opts, and returns
// it with its HMAC key.
func NewWith(opts Options) (*server.Server, []byte, error) {
	log := opts.Log
	channel, err := channelspec.Decode(context.Background(), "test", []byte(minimalChannel))
	if err != nil {
		return nil, nil, err
	}
	if opts.Edit != nil {
		opts.Edit(&channel.Spec)
	}
	secret := make([]byte, 32)
	_, _ = rand.Read(secret)
	keys, err := auth.ParseKeys(channel.Spec.Auth.Algorithms, map[string][]byte{KeyID: secret})
	if err != nil {
		return nil, nil, err
	}
	if log == nil {
		log = eventlog.NewEmbedded(app.EmbeddedOptions(channel.Spec.History))
	}
	srv, err := server.New(server.Config{Channel: channel, Keys: keys, Log: log, WriteTimeout: opts.WriteTimeout, Tickets: opts.Tickets, Presence: opts.Presence})
	return srv, secret, err
}

// Token signs a token for user with the streamer's key, valid for ttl, with
// the channel's default publish grant when publish is set.
func Token(secret []byte, user string, publish bool, ttl time.Duration) (string, error) {
	now := time.Now()
	return auth.Sign(auth.TokenClaims{
		Subject: user, IssuedAt: now, ExpiresAt: now.Add(ttl), Publish: publish,
		PublishGrant: notifyv1alpha1.PublishGrantSpec{
			Claim: notifyv1alpha1.DefaultPublishGrantClaim, Value: notifyv1alpha1.DefaultPublishGrantValue,
		},
	}, notifyv1alpha1.HS256, KeyID, secret)
}
