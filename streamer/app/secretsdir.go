package app

import (
	"bytes"
	"context"
	"log/slog"
	"maps"
	"time"

	"k8s.io/apimachinery/pkg/util/wait"

	"github.com/herald-notify/herald/streamer/announce"
	"github.com/herald-notify/herald/streamer/auth"
	"github.com/herald-notify/herald/streamer/server"
)

// DefaultSecretsPoll is how often a streamer run from a manifest reads its
// secrets folders again.
const DefaultSecretsPoll = 5 * time.Second

// secretDir is one Secret's folder of a streamer run from a manifest, and
// what to do with each new version of it.
type secretDir struct {
	name, field string
	dir         string
	// apply takes a version in, or says why it is unusable (the one in use
	// is then kept).
	apply func(map[string][]byte) error
	held  map[string][]byte
}

// watchSecretDirs reads the folders of the channel's Secrets every poll
// until ctx ends, and applies each changed version: rotated keys, a renewed
// TLS certificate and new NATS credentials take effect without a restart,
// as they do from the Kubernetes API (a mounted Secret volume is such a
// folder, updated in place by the kubelet). An unusable version is logged
// and the one in use kept.
func watchSecretDirs(ctx context.Context, dirs []*secretDir, poll time.Duration, logger *slog.Logger) {
	wait.UntilWithContext(ctx, func(context.Context) {
		for _, d := range dirs {
			d.reload(logger)
		}
	}, poll)
}

// reload reads d's folder and applies it if it changed.
func (d *secretDir) reload(logger *slog.Logger) {
	logger = logger.With("secret", d.name, "field", d.field, "dir", d.dir)
	data, err := readSecretDir(d.dir)
	if err != nil {
		logger.Error("cannot read the Secret's folder; keeping the version in use", "reason", "SecretUnusable", "error", err.Error())
		return
	}
	if maps.EqualFunc(data, d.held, bytes.Equal) {
		return
	}
	d.held = data // an unusable version is reported once, not every poll
	if err := d.apply(data); err != nil {
		logger.Error("ignoring an unusable version of the Secret; keeping the one in use", "reason", "SecretUnusable", "error", err.Error())
		return
	}
	logger.Info("Secret loaded")
}

// watchFiles is the channelSource.watch of a streamer run from a manifest:
// it keeps the server's keys, the TLS certificate and the NATS credentials
// equal to their folders (the versions held are those loadFromFile read).
func (s *channelSource) watchFiles(keys, certificate, credentials *secretDir, poll time.Duration, logger *slog.Logger) func(context.Context, *server.Server, *announce.Announcer) error {
	return func(ctx context.Context, srv *server.Server, _ *announce.Announcer) error {
		keys.apply = func(data map[string][]byte) error {
			parsed, err := auth.ParseKeys(s.channel.Spec.Auth.Algorithms, data)
			if err != nil {
				return err
			}
			srv.SetKeys(parsed)
			return nil
		}
		dirs := []*secretDir{keys}
		if s.certificate != nil {
			certificate.apply = s.certificate.Load
			dirs = append(dirs, certificate)
		}
		if s.brokerCredentials != nil {
			credentials.apply = s.brokerCredentials.Update
			dirs = append(dirs, credentials)
		}
		watchSecretDirs(ctx, dirs, poll, logger)
		return nil
	}
}
