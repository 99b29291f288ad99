// Package server assembles a channel's streamer: the SSE endpoint, tickets,
// the publish API, health and metrics, over one log and one hub.
package server

import (
	"context"
	crand "crypto/rand"
	"encoding/hex"
	"errors"
	"log/slog"
	"math/rand/v2"
	"net/http"
	"slices"
	"sync"
	"sync/atomic"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"
	"github.com/prometheus/client_golang/prometheus/promhttp"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	notifyv1alpha1 "github.com/herald-notify/herald/api/v1alpha1"
	"github.com/herald-notify/herald/streamer/auth"
	"github.com/herald-notify/herald/streamer/httpapi"
	"github.com/herald-notify/herald/streamer/hub"
	eventlog "github.com/herald-notify/herald/streamer/log"
	"github.com/herald-notify/herald/streamer/paths"
	"github.com/herald-notify/herald/streamer/publish"
)

// Paths of the client contract, defined in package paths, which the
// operator shares.
const (
	StreamPath  = paths.Stream
	TicketsPath = paths.Tickets
)

// Defaults of the server that the channel spec does not set.
const (
	// DefaultWriteTimeout bounds one write to a client: a client that accepts
	// nothing for this long is gone.
	DefaultWriteTimeout = 10 * time.Second
	// DefaultReconnectDelay is the first frame's retry: hint.
	DefaultReconnectDelay = 3 * time.Second
	// DefaultMaxTickets bounds the outstanding tickets.
	DefaultMaxTickets = 100000
	// replayBatch is how many events a resuming stream reads at a time.
	replayBatch = 256
)

// Config is everything a streamer serves from.
type Config struct {
	// Channel is the channel, its spec defaulted and validated.
	Channel *notifyv1alpha1.NotificationChannel
	// Keys verify the channel's tokens.
	Keys *auth.KeySet
	// Log is the channel's event log, built for spec.broker and
	// spec.history. The server closes it when it drains.
	Log eventlog.Log
	// Logger receives structured logs; nil discards them.
	Logger *slog.Logger
	// Registry receives the metrics; nil means a new registry.
	Registry *prometheus.Registry
	// Now is the clock; nil means time.Now.
	Now func() time.Time
	// WriteTimeout bounds one write to a client (default DefaultWriteTimeout).
	WriteTimeout time.Duration
	// Announcements, when set, are the SystemEvent announcements still in
	// force, which a new stream receives right after its connection event.
	Announcements Announcements
	// ServiceAccountPublishers, when set, authorizes publishers that present
	// a Kubernetes ServiceAccount token (see publish.Options.ServiceAccounts).
	ServiceAccountPublishers publish.Authenticator
	// LogUnhealthyGrace is how long a Log that is a HealthReporter may be
	// unhealthy before /readyz fails; 0 means DefaultLogUnhealthyGrace.
	LogUnhealthyGrace time.Duration
	// Tickets issues and redeems the tickets of POST /api/v1/sse/tickets.
	// nil means an in-memory store of DefaultMaxTickets, which serves one
	// replica only: with several, pass a store they share (package
	// jetstreamtickets), or a ticket issued by one is unknown to the others.
	Tickets auth.Tickets
	// Presence, when set, holds connections.maxPerUser across every replica
	// of the channel (package presence); nil holds it per process.
	Presence hub.Presence
	// Replicas, when set, forwards a token refresh to the replica holding
	// the stream (package relay); nil serves the streams of this process
	// only.
	Replicas Replicas
}

// Announcements are the announcements in force (see package announce).
type Announcements interface {
	// Active returns the data of the announcements for user whose log
	// position is in (after, upTo], oldest first.
	Active(user string, after, upTo eventlog.Position) [][]byte
}

// Server is a running streamer for one channel.
type Server struct {
	// current is the spec in use (read it with settings); SetSpec replaces
	// it, serialized by setMu.
	current  atomic.Pointer[notifyv1alpha1.NotificationChannelSpec]
	setMu    sync.Mutex
	log      eventlog.Log
	hub      *hub.Hub
	verifier *auth.Verifier
	tickets  auth.Tickets
	metrics  *metrics
	registry *prometheus.Registry
	logger   *slog.Logger
	now      func() time.Time
	// writeTimeout bounds one write to a client.
	writeTimeout time.Duration
	// announcements may be nil.
	announcements Announcements
	// serviceAccountPublishers may be nil.
	serviceAccountPublishers publish.Authenticator
	// logHealth is nil for a log that is not a HealthReporter.
	logHealth *logHealth

	ready atomic.Bool
	// streamsMu guards live, the streams being served (net/http does not
	// track a hijacked connection), and idle, closed when live drops to 0.
	streamsMu sync.Mutex
	live      int
	idle      chan struct{}
	// closes notices clients closing detached streams.
	closes closeWatcher
	// dispatched is closed when Run returns: every event of the log has been
	// handed to the streams.
	dispatched chan struct{}

	// streamIDs are the ids of this process's streams, which start with
	// its replica id; replicas, when set, reaches the others'.
	streamIDs streamIDs
	replicas  Replicas
	// writers serve the detached streams that have work; due wakes streams
	// up for their keep-alives and their token's expiry.
	writers writerPool
	due     dueStreams
}

// New builds the streamer for cfg. It does not start serving: call Run.
func New(cfg Config) (*Server, error) {
	if cfg.Channel == nil || cfg.Keys == nil || cfg.Log == nil {
		return nil, errors.New("server: a channel, its keys and its log are required")
	}
	spec := *cfg.Channel.Spec.DeepCopy()
	if cfg.Now == nil {
		cfg.Now = time.Now
	}
	if cfg.WriteTimeout <= 0 {
		cfg.WriteTimeout = DefaultWriteTimeout
	}
	if cfg.Logger == nil {
		cfg.Logger = slog.New(slog.DiscardHandler)
	}
	if cfg.Registry == nil {
		cfg.Registry = prometheus.NewRegistry()
		cfg.Registry.MustRegister(collectors.NewGoCollector(), collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}))
	}
	verifier, err := auth.NewVerifier(withClock(auth.OptionsFromSpec(spec.Auth, cfg.Keys), cfg.Now))
	if err != nil {
		return nil, err
	}
	if cfg.Tickets == nil {
		cfg.Tickets = auth.NewTicketStore(DefaultMaxTickets, cfg.Now)
	}
	m := newMetrics(cfg.Registry)
	s := &Server{
		log:      cfg.Log,
		hub:      hub.New(cfg.Log, withPresence(hubOptions(spec.Connections, m), cfg.Presence)),
		verifier: verifier,
		tickets:  cfg.Tickets,
		metrics:  m,
		registry: cfg.Registry,
		logger:   cfg.Logger,
		now:      cfg.Now,

		writeTimeout:             cfg.WriteTimeout,
		announcements:            cfg.Announcements,
		serviceAccountPublishers: cfg.ServiceAccountPublishers,
		dispatched:               make(chan struct{}),
		replicas:                 cfg.Replicas,
	}
	s.closes.gone = s.clientGone
	replica := newReplicaID()
	if cfg.Replicas != nil {
		replica = cfg.Replicas.ID()
	}
	s.streamIDs = newStreamIDs(replica)
	if cfg.Replicas != nil {
		cfg.Replicas.Bind(s.answerReplica) // after streamIDs: an answer reads them
	}
	if metrics, ok := cfg.Log.(prometheus.Collector); ok {
		cfg.Registry.MustRegister(metrics) // the log's own (the JetStream log's writes and consumers)
	}
	if reporter, ok := cfg.Log.(HealthReporter); ok {
		if cfg.LogUnhealthyGrace <= 0 {
			cfg.LogUnhealthyGrace = DefaultLogUnhealthyGrace
		}
		s.logHealth = newLogHealth(reporter, cfg.LogUnhealthyGrace, cfg.Now, cfg.Registry)
	}
	s.current.Store(&spec)
	return s, nil
}

func withPresence(opts hub.Options, presence hub.Presence) hub.Options {
	opts.Presence = presence
	return opts
}

func withClock(opts auth.Options, now func() time.Time) auth.Options {
	opts.Now = now
	return opts
}

// duration reads an optional (defaulted) duration of the spec.
func duration(d *metav1.Duration) time.Duration {
	if d == nil {
		return 0
	}
	return d.Duration
}

// SetKeys replaces the verification keys (rotation); open streams stay open.
func (s *Server) SetKeys(keys *auth.KeySet) { s.verifier.SetKeys(keys) }

// Handler serves the client and publish contracts. An HTTP/1.1 stream is
// taken off net/http once admitted (its connection hijacked), so
// http.Server's Shutdown and Close do not end it: Drain does, and
// WaitStreams waits for it.
func (s *Server) Handler() http.Handler {
	mux := http.NewServeMux()
	mux.Handle(StreamPath, s.cors(http.HandlerFunc(s.serveStream), http.MethodGet))
	mux.Handle(TicketsPath, s.cors(http.HandlerFunc(s.serveTicket), http.MethodPost))
	mux.Handle(paths.StreamToken, s.cors(http.HandlerFunc(s.serveStreamToken), http.MethodPost))
	publish.New(publish.Options{
		Log: s.log, Authenticator: s.verifier, ServiceAccounts: s.serviceAccountPublishers,
		Observer: s.metrics, Now: s.now, NewID: newNotificationID,
	}).Register(mux)
	mux.HandleFunc(paths.Healthz, s.serveHealth)
	mux.HandleFunc(paths.Readyz, s.serveReady)
	mux.HandleFunc("/", httpapi.NotFound)
	return securityHeaders(s.limitHeaders(mux))
}

// OpsHandler serves /metrics, /healthz and /readyz for the metrics address.
func (s *Server) OpsHandler() http.Handler {
	mux := http.NewServeMux()
	mux.Handle("/metrics", promhttp.HandlerFor(s.registry, promhttp.HandlerOpts{Registry: s.registry}))
	mux.HandleFunc(paths.Healthz, s.serveHealth)
	mux.HandleFunc(paths.Readyz, s.serveReady)
	return s.limitHeaders(mux)
}

// Run delivers events until ctx ends, or a drain delivered the last of them,
// and reports ready while it does. Call it once.
func (s *Server) Run(ctx context.Context) {
	defer close(s.dispatched)
	if s.logHealth != nil {
		go s.logHealth.run(ctx)
	}
	s.ready.Store(true)
	s.hub.Run(ctx)
}

// Drain shuts the streamer down without losing what it accepted: readiness
// fails, so load balancers stop sending new streams; the log refuses new
// events (publishers get 503 and retry elsewhere); every accepted event is
// dispatched to the open streams; then the streams are closed spread over the
// drain grace period, each after its queued events were written, with a
// jittered retry: hint.
func (s *Server) Drain(ctx context.Context) {
	s.ready.Store(false)
	_ = s.log.Close()
	select {
	case <-s.dispatched:
	case <-ctx.Done():
	}
	drain := s.settings().Drain
	s.hub.Drain(ctx, duration(drain.GracePeriod), duration(drain.ReconnectJitter), randomBelow)
}

// WaitStreams waits until every stream the hub admitted has ended and
// closed its connection, or ctx ends. An HTTP/1.1 stream leaves net/http once
// it starts, so http.Server.Shutdown does not wait for it: after Drain, call
// both.
func (s *Server) WaitStreams(ctx context.Context) error {
	s.streamsMu.Lock()
	if s.live == 0 {
		s.streamsMu.Unlock()
		return nil
	}
	if s.idle == nil {
		s.idle = make(chan struct{})
	}
	idle := s.idle
	s.streamsMu.Unlock()
	select {
	case <-idle:
		return nil
	case <-ctx.Done():
		return ctx.Err()
	}
}

func (s *Server) streamStarted() {
	s.streamsMu.Lock()
	defer s.streamsMu.Unlock()
	s.live++
}

func (s *Server) streamEnded() {
	s.streamsMu.Lock()
	defer s.streamsMu.Unlock()
	s.live--
	if s.live == 0 && s.idle != nil {
		close(s.idle)
		s.idle = nil
	}
}

// Streams is the number of open streams.
func (s *Server) Streams() int { return s.hub.Len() }

func randomBelow(limit time.Duration) time.Duration {
	if limit <= 0 {
		return 0
	}
	return rand.N(limit)
}

func (s *Server) serveHealth(w http.ResponseWriter, _ *http.Request) {
	w.Header().Set("Content-Type", "text/plain")
	_, _ = w.Write([]byte("ok\n"))
}

func (s *Server) serveReady(w http.ResponseWriter, _ *http.Request) {
	w.Header().Set("Content-Type", "text/plain")
	if !s.ready.Load() {
		w.WriteHeader(http.StatusServiceUnavailable)
		_, _ = w.Write([]byte("not ready\n"))
		return
	}
	if s.logHealth != nil {
		if err := s.logHealth.unready(); err != nil {
			// Open streams stay open; only new ones go elsewhere. The
			// cause is in the log's own logs, not in an answer that the
			// stream address serves too.
			w.WriteHeader(http.StatusServiceUnavailable)
			_, _ = w.Write([]byte("not ready: the channel's log is unavailable\n"))
			return
		}
	}
	_, _ = w.Write([]byte("ok\n"))
}

// newNotificationID generates an id for a notification published without one.
func newNotificationID() string {
	var b [16]byte
	_, _ = crand.Read(b[:])
	return hex.EncodeToString(b[:])
}

// securityHeaders sets the headers every answer carries.
func securityHeaders(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		h := w.Header()
		h.Set("Referrer-Policy", "no-referrer")
		h.Set("X-Content-Type-Options", "nosniff")
		next.ServeHTTP(w, r)
	})
}

// cors answers for the channel's allowed origins only, with credentials: a
// page of any other origin cannot read a user's events. The origins are read
// per request, as SetSpec changes them.
func (s *Server) cors(next http.Handler, method string) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		origin := r.Header.Get("Origin")
		w.Header().Add("Vary", "Origin")
		if origin != "" && slices.Contains(s.settings().CORS.AllowedOrigins, origin) {
			h := w.Header()
			h.Set("Access-Control-Allow-Origin", origin)
			h.Set("Access-Control-Allow-Credentials", "true")
			if r.Method == http.MethodOptions {
				h.Set("Access-Control-Allow-Methods", method)
				h.Set("Access-Control-Allow-Headers", "Authorization, Content-Type, Last-Event-ID")
				h.Set("Access-Control-Max-Age", "600")
				w.WriteHeader(http.StatusNoContent)
				return
			}
		}
		next.ServeHTTP(w, r)
	})
}
