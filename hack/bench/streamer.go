package main

import (
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/x509"
	"encoding/json"
	"encoding/pem"
	"errors"
	"fmt"
	"io"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"time"

	notifyv1alpha1 "github.com/herald-notify/herald/api/v1alpha1"
	"github.com/herald-notify/herald/streamer/auth"
)

// Settings of the streamers under test.
const (
	keySecretName = "bench-keys"
	keyID         = "bench"
	// tokenTTL outlasts any run: a stream closes when its token expires.
	tokenTTL = 2 * time.Hour
	// maxPerPod leaves room above the largest scenario (10,000 streams, and
	// the reconnect storm's new streams while the server notices the old ones
	// are gone).
	maxPerPod = 50000
	// startTimeout bounds the wait for the streamer's "streamer started" log.
	startTimeout = 30 * time.Second
)

// channelManifest is the channel every benchmark streamer serves: the
// defaults of the API, but for the limits a benchmark passes (streams per
// pod), a short drain, so that stopping a streamer does not take 30 s, and
// the broker of the backend (brokerManifest).
const channelManifest = `apiVersion: notify.herald.dev/v1alpha1
kind: NotificationChannel
metadata: {name: %s}
spec:
  auth:
    algorithms: [%s]
    keySecretRef: {name: %s}
  connections:
    maxPerPod: %d
  broker:
%s  drain:
    gracePeriod: 1s
    reconnectJitter: 1s
`

// logTarget is the log the streamers of a backend's scenarios use.
type logTarget struct {
	backend backend
	// nats is the backend's cluster; nil for the embedded log.
	nats *natsProcess
}

// brokerManifest is the channel's spec.broker, indented under "broker:".
func (t logTarget) brokerManifest() string {
	if t.nats == nil {
		return fmt.Sprintf("    type: %s\n", t.backend.broker)
	}
	return fmt.Sprintf("    type: %s\n    nats:\n      url: %s\n      streamReplicas: %d\n",
		t.backend.broker, t.nats.url, natsStreamReplicas)
}

// brokerPID is the process whose CPU is the log's, 0 for the embedded log
// (it is the streamer's).
func (t logTarget) brokerPID() int {
	if t.nats == nil {
		return 0
	}
	return t.nats.pid()
}

// streamerProcess is one "herald streamer --config" process under test.
type streamerProcess struct {
	*child
	// api and ops are the addresses of the stream and publish API and of
	// /metrics and /debug/pprof.
	api, ops string
	// signer mints the tokens of the channel's algorithm.
	signer *signer
	http   *http.Client
}

// buildHerald builds the herald binary into dir, with the flags of "make
// build" so that the go command reuses what that target compiled.
func buildHerald(ctx context.Context, dir string) (string, error) {
	out := filepath.Join(dir, "herald")
	cmd := exec.CommandContext(ctx, "go", "build", "-trimpath", "-o", out, "github.com/herald-notify/herald")
	cmd.Env = append(os.Environ(), "CGO_ENABLED=0")
	if output, err := cmd.CombinedOutput(); err != nil {
		return "", fmt.Errorf("failed to build herald: %w\n%s", err, output)
	}
	return out, nil
}

// startStreamer writes a channel manifest and a fresh key into a folder of
// dir and starts the streamer on loopback ports the kernel picks. The
// channel is named after the folder: on NATS every streamer then has a
// stream of its own, and none starts with the events of an earlier one.
// gomaxprocs, when above 0, is the streamer's GOMAXPROCS: how many cores its
// Go code may run on at once.
func startStreamer(ctx context.Context, herald, dir string, alg notifyv1alpha1.JWTAlgorithm, target logTarget, gomaxprocs int) (*streamerProcess, error) {
	dir, err := os.MkdirTemp(dir, "streamer-")
	if err != nil {
		return nil, err
	}
	signer, publicKey, err := newSigner(alg)
	if err != nil {
		return nil, err
	}
	secretDir := filepath.Join(dir, "secrets", keySecretName)
	if err := os.MkdirAll(secretDir, 0o700); err != nil {
		return nil, err
	}
	if err := os.WriteFile(filepath.Join(secretDir, keyID), publicKey, 0o600); err != nil {
		return nil, err
	}
	config := filepath.Join(dir, "channel.yaml")
	manifest := fmt.Sprintf(channelManifest, filepath.Base(dir), alg, keySecretName, maxPerPod, target.brokerManifest())
	if err := os.WriteFile(config, []byte(manifest), 0o600); err != nil {
		return nil, err
	}

	cmd := exec.Command(herald, "streamer", "--config", config,
		"--listen", "127.0.0.1:0", "--metrics-listen", "127.0.0.1:0", "--pprof")
	if gomaxprocs > 0 {
		cmd.Env = append(os.Environ(), "GOMAXPROCS="+strconv.Itoa(gomaxprocs))
	}
	c, line, err := startChild(ctx, "the streamer", cmd, "streamer started", startTimeout)
	if err != nil {
		return nil, err
	}
	var addrs startedLog
	if err := json.Unmarshal(line, &addrs); err != nil {
		c.stop()
		return nil, fmt.Errorf("the streamer's start line: %w", err)
	}
	return &streamerProcess{
		child: c, api: addrs.Listen, ops: addrs.MetricsListen, signer: signer,
		http: &http.Client{Timeout: time.Minute},
	}, nil
}

// startedLog is the "streamer started" log line, which names the addresses
// the streamer listens on.
type startedLog struct {
	Listen        string `json:"listen"`
	MetricsListen string `json:"metricsListen"`
}

// stop drains the streamer and waits for it (child.stop).
func (s *streamerProcess) stop() {
	s.child.stop()
	s.http.CloseIdleConnections()
}

// metrics scrapes /metrics into sample name (with its labels) → value.
func (s *streamerProcess) metrics(ctx context.Context) (map[string]float64, error) {
	body, err := s.get(ctx, "/metrics")
	if err != nil {
		return nil, err
	}
	values := map[string]float64{}
	for line := range strings.Lines(string(body)) {
		line = strings.TrimSpace(line)
		if line == "" || strings.HasPrefix(line, "#") {
			continue
		}
		i := strings.LastIndexByte(line, ' ')
		if i < 0 {
			continue
		}
		if v, err := strconv.ParseFloat(line[i+1:], 64); err == nil {
			values[line[:i]] = v
		}
	}
	return values, nil
}

// BrokerWrites are the JetStream writes of a streamer over a measurement,
// from its log's metrics: what a publish request waited for on the broker
// and how many events the group commit put in a write.
type BrokerWrites struct {
	Writes int64 `json:"writes"`
	// MeanWaitMs is the mean of herald_log_write_seconds: publish to
	// JetStream's acknowledgement.
	MeanWaitMs float64 `json:"meanWaitMs"`
	// EventsPerWrite is the mean of herald_log_appends_per_write.
	EventsPerWrite float64 `json:"eventsPerWrite"`
}

// brokerWriteTotals are the cumulative sums and counts behind BrokerWrites.
type brokerWriteTotals struct {
	writes, waitSeconds, groups, events float64
}

// brokerWrites reads the streamer's totals of its log's JetStream writes
// (zero on the embedded log, which has none).
func (s *streamerProcess) brokerWrites(ctx context.Context) (brokerWriteTotals, error) {
	m, err := s.metrics(ctx)
	if err != nil {
		return brokerWriteTotals{}, err
	}
	return brokerWriteTotals{
		writes: m["herald_log_write_seconds_count"], waitSeconds: m["herald_log_write_seconds_sum"],
		groups: m["herald_log_appends_per_write_count"], events: m["herald_log_appends_per_write_sum"],
	}, nil
}

// since is the writes between before and t, nil when there were none.
func (t brokerWriteTotals) since(before brokerWriteTotals) *BrokerWrites {
	writes := t.writes - before.writes
	if writes <= 0 {
		return nil
	}
	return &BrokerWrites{
		Writes:         int64(writes),
		MeanWaitMs:     1000 * (t.waitSeconds - before.waitSeconds) / writes,
		EventsPerWrite: ratioOf(t.events-before.events, t.groups-before.groups),
	}
}

// connections is the streamer's count of open streams.
func (s *streamerProcess) connections(ctx context.Context) (int, error) {
	m, err := s.metrics(ctx)
	if err != nil {
		return 0, err
	}
	return int(m["herald_connections"]), nil
}

// gomaxprocs is the streamer's GOMAXPROCS, from its runtime's metrics.
func (s *streamerProcess) gomaxprocs(ctx context.Context) (int, error) {
	m, err := s.metrics(ctx)
	if err != nil {
		return 0, err
	}
	procs, ok := m["go_sched_gomaxprocs_threads"]
	if !ok {
		return 0, errors.New("the streamer's /metrics has no go_sched_gomaxprocs_threads")
	}
	return int(procs), nil
}

// waitConnections waits until the streamer holds n streams: it counts a
// stream closed by the client only when its handler notices.
func (s *streamerProcess) waitConnections(ctx context.Context, n int) error {
	deadline := time.Now().Add(settleTimeout)
	for {
		got, err := s.connections(ctx)
		if err != nil {
			return err
		}
		if got == n {
			return nil
		}
		if time.Now().After(deadline) {
			return fmt.Errorf("the streamer holds %d streams after %s, expected %d", got, settleTimeout, n)
		}
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-time.After(50 * time.Millisecond):
		}
	}
}

// collectGarbage runs a full GC in the streamer: net/http/pprof's heap
// profile does so before it answers when asked with gc=1. Memory is then
// measured without the garbage the last scenario left.
func (s *streamerProcess) collectGarbage(ctx context.Context) error {
	_, err := s.get(ctx, "/debug/pprof/heap?gc=1")
	return err
}

// profile saves a profile of the streamer (path under /debug/pprof/) to file.
func (s *streamerProcess) profile(ctx context.Context, path, file string) error {
	body, err := s.get(ctx, "/debug/pprof/"+path)
	if err != nil {
		return err
	}
	return os.WriteFile(file, body, 0o600)
}

func (s *streamerProcess) get(ctx context.Context, path string) ([]byte, error) {
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, "http://"+s.ops+path, nil)
	if err != nil {
		return nil, err
	}
	resp, err := s.http.Do(req)
	if err != nil {
		return nil, err
	}
	defer func() { _ = resp.Body.Close() }()
	body, err := io.ReadAll(resp.Body)
	if err != nil {
		return nil, err
	}
	if resp.StatusCode != http.StatusOK {
		return nil, fmt.Errorf("GET %s: %s", path, resp.Status)
	}
	return body, nil
}

// signer mints tokens for the streamer's key, as an identity provider would.
type signer struct {
	alg notifyv1alpha1.JWTAlgorithm
	key []byte
}

// newSigner makes a fresh key for alg: a random HMAC secret, or an ECDSA
// P-256 key pair for ES256. It returns the signer and the Secret entry the
// streamer verifies with (the secret itself, or the PEM public key).
func newSigner(alg notifyv1alpha1.JWTAlgorithm) (*signer, []byte, error) {
	switch alg {
	case notifyv1alpha1.HS256:
		secret := make([]byte, 32)
		_, _ = rand.Read(secret)
		return &signer{alg: alg, key: secret}, secret, nil
	case notifyv1alpha1.ES256:
		key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
		if err != nil {
			return nil, nil, err
		}
		private, err := x509.MarshalPKCS8PrivateKey(key)
		if err != nil {
			return nil, nil, err
		}
		public, err := x509.MarshalPKIXPublicKey(&key.PublicKey)
		if err != nil {
			return nil, nil, err
		}
		return &signer{alg: alg, key: pem.EncodeToMemory(&pem.Block{Type: "PRIVATE KEY", Bytes: private})},
			pem.EncodeToMemory(&pem.Block{Type: "PUBLIC KEY", Bytes: public}), nil
	default:
		return nil, nil, fmt.Errorf("algorithm %s is not benchmarked: use HS256 or ES256", alg)
	}
}

// token signs a token for user, with the channel's default publish grant
// when publish is set.
func (s *signer) token(user string, publish bool) (string, error) {
	now := time.Now()
	return auth.Sign(auth.TokenClaims{
		Subject: user, IssuedAt: now, ExpiresAt: now.Add(tokenTTL), Publish: publish,
		PublishGrant: notifyv1alpha1.PublishGrantSpec{
			Claim: notifyv1alpha1.DefaultPublishGrantClaim, Value: notifyv1alpha1.DefaultPublishGrantValue,
		},
	}, s.alg, keyID, s.key)
}

// tail keeps the last lines written to it.
type tail struct {
	mu    sync.Mutex
	lines []string
}

const tailLines = 20

func (t *tail) add(line string) {
	t.mu.Lock()
	defer t.mu.Unlock()
	t.lines = append(t.lines, line)
	if len(t.lines) > tailLines {
		t.lines = t.lines[len(t.lines)-tailLines:]
	}
}

func (t *tail) String() string {
	t.mu.Lock()
	defer t.mu.Unlock()
	return strings.Join(t.lines, "\n")
}
