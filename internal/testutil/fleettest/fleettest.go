// Package fleettest runs the streamers of one channel for the suites that
// test a fleet over NATS: it writes the channel's manifest and key Secret in
// file mode, runs streamers inside the test process (app.Run) or as child
// processes of the built herald binary (which a test can kill), and speaks
// their publish API and readiness probe.
//
// It asserts nothing: every helper returns an error, so that the callers'
// suites (Ginkgo or not) decide what a failure means.
package fleettest

import (
	"bytes"
	"crypto/rand"
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"text/template"
	"time"

	"github.com/herald-notify/herald/internal/testutil/streamertest"
)

// ChannelOptions shape the channel the streamers serve. Zero values are the
// defaults.
type ChannelOptions struct {
	// Namespace and Name name the channel, and so its JetStream stream;
	// required.
	Namespace, Name string
	// NATSURL is the cluster's comma-separated client URLs; required.
	NATSURL string
	// StreamReplicas is the stream's replica count; 0 means 3.
	StreamReplicas int
	// MaxEvents is history.maxEvents; 0 means 1000.
	MaxEvents int
	// MaxPerUser is connections.maxPerUser (a per-pod limit today); 0 means
	// 10.
	MaxPerUser int
	// KeepAlive is connections.keepAliveInterval; 0 means 1 s, so that an
	// outage shows keep-alives within a spec's patience.
	KeepAlive time.Duration
	// NATSUser and NATSPassword, when set, are the streamers' NATS user,
	// held by the channel's credentials Secret ("secrets/nats-credentials").
	NATSUser, NATSPassword string
}

func (o ChannelOptions) withDefaults() ChannelOptions {
	if o.StreamReplicas == 0 {
		o.StreamReplicas = 3
	}
	if o.MaxEvents == 0 {
		o.MaxEvents = 1000
	}
	if o.MaxPerUser == 0 {
		o.MaxPerUser = 10
	}
	if o.KeepAlive == 0 {
		o.KeepAlive = time.Second
	}
	return o
}

// manifest is the channel: NATS, three replicas, and a short drain so that a
// streamer stopped at the end of a suite does not hold it for 30 s.
var manifest = template.Must(template.New("channel").Parse(`
apiVersion: notify.herald.dev/v1alpha1
kind: NotificationChannel
metadata: {namespace: {{.Namespace}}, name: {{.Name}}}
spec:
  replicas: 3
  auth:
    keySecretRef: {name: keys}
  connections:
    maxPerUser: {{.MaxPerUser}}
    keepAliveInterval: {{.KeepAlive}}
  history:
    maxEvents: {{.MaxEvents}}
  drain:
    gracePeriod: 1s
    reconnectJitter: 1s
  broker:
    type: NATS
    nats:
      url: {{printf "%q" .NATSURL}}
      streamReplicas: {{.StreamReplicas}}
{{- if .NATSUser}}
      credentialsSecretRef: {name: nats-credentials}
{{- end}}
`))

// Channel is a channel manifest written to a folder, with its key Secret's
// folder ("secrets/keys") beside it, as the streamer reads them in file mode.
type Channel struct {
	// Path is the manifest's path, the streamer's --config.
	Path string
	// Key is the channel's HS256 key (kid streamertest.KeyID).
	Key []byte
}

// WriteChannel writes a channel with a fresh key into dir.
func WriteChannel(dir string, opts ChannelOptions) (*Channel, error) {
	opts = opts.withDefaults()
	if opts.Namespace == "" || opts.Name == "" || opts.NATSURL == "" {
		return nil, fmt.Errorf("a channel needs a namespace, a name and a NATS URL, got %+v", opts)
	}
	key := make([]byte, 32)
	_, _ = rand.Read(key)
	secrets := filepath.Join(dir, "secrets", "keys")
	if err := os.MkdirAll(secrets, 0o700); err != nil {
		return nil, err
	}
	if err := os.WriteFile(filepath.Join(secrets, streamertest.KeyID), key, 0o600); err != nil {
		return nil, err
	}
	if opts.NATSUser != "" {
		if err := writeSecret(filepath.Join(dir, "secrets", "nats-credentials"),
			map[string]string{"username": opts.NATSUser, "password": opts.NATSPassword}); err != nil {
			return nil, err
		}
	}
	var text bytes.Buffer
	if err := manifest.Execute(&text, opts); err != nil {
		return nil, err
	}
	path := filepath.Join(dir, "channel.yaml")
	if err := os.WriteFile(path, text.Bytes(), 0o600); err != nil {
		return nil, err
	}
	return &Channel{Path: path, Key: key}, nil
}

// writeSecret writes a Secret's folder as Kubernetes mounts it: one file per
// entry.
func writeSecret(dir string, entries map[string]string) error {
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return err
	}
	for name, value := range entries {
		if err := os.WriteFile(filepath.Join(dir, name), []byte(value), 0o600); err != nil {
			return err
		}
	}
	return nil
}

// tokenTTL outlasts any suite: a stream closes when its token expires.
const tokenTTL = 2 * time.Hour

// Token signs a token for user with the channel's key, carrying the
// publish grant when publish is set.
func (c *Channel) Token(user string, publish bool) (string, error) {
	return streamertest.Token(c.Key, user, publish, tokenTTL)
}

// startedLog is what the "streamer started" log record says of the
// addresses the streamer listens on.
type startedLog struct {
	Msg           string `json:"msg"`
	Listen        string `json:"listen"`
	MetricsListen string `json:"metricsListen"`
}

// Addrs are a streamer's base URLs.
type Addrs struct {
	// API serves the streams and the publish API.
	API string
	// Ops serves /metrics, /healthz and /readyz.
	Ops string
}

// HostPorts are the addresses (host:port) behind the URLs, to start a
// streamer again on the same ones.
func (a Addrs) HostPorts() (api, ops string) {
	return strings.TrimPrefix(a.API, "http://"), strings.TrimPrefix(a.Ops, "http://")
}

func addrsOf(started startedLog) Addrs {
	return Addrs{API: "http://" + started.Listen, Ops: "http://" + started.MetricsListen}
}

// parseStarted reads a JSON log line, and reports whether it is the
// "streamer started" record.
func parseStarted(line []byte) (startedLog, bool) {
	var entry startedLog
	if json.Unmarshal(line, &entry) != nil || entry.Msg != "streamer started" {
		return startedLog{}, false
	}
	return entry, true
}

// startTimeout bounds the wait for a streamer's "streamer started" record:
// it comes once the log has read the stream.
const startTimeout = time.Minute
