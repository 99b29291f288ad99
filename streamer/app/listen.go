package app

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"net/http/pprof"
	"sync/atomic"
	"time"

	notifyv1alpha1 "github.com/herald-notify/herald/api/v1alpha1"
	"github.com/herald-notify/herald/streamer/server"
	"github.com/herald-notify/herald/streamer/tlscert"
)

// HTTP hardening of the streamer's listeners.
const (
	readHeaderTimeout = 10 * time.Second
	// maxHeaderBytes lets the streamer's handler, not net/http, answer a
	// head over server.MaxHeaderBytes, in the contract's form.
	maxHeaderBytes = server.ReadHeaderBytes
	idleTimeout    = 2 * time.Minute
)

// switchHandler serves through the handler set last.
type switchHandler struct{ current atomic.Pointer[http.Handler] }

func (s *switchHandler) set(h http.Handler) { s.current.Store(&h) }

func (s *switchHandler) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	(*s.current.Load()).ServeHTTP(w, r)
}

// startingHandler serves the metrics address until the streamer runs:
// /healthz says alive (the kubelet must not restart a streamer that waits
// for its key Secret), everything else that it is not ready yet.
func startingHandler() http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "text/plain")
		if r.URL.Path == "/healthz" {
			_, _ = w.Write([]byte("ok\n"))
			return
		}
		w.WriteHeader(http.StatusServiceUnavailable)
		_, _ = w.Write([]byte("starting: loading the channel and its keys (see the logs)\n"))
	})
}

// listener is one running HTTP server.
type listener struct {
	server *http.Server
	addr   string
	failed chan error
}

// listen starts a plain HTTP/1.1 server with the streamer's hardening.
func listen(addr string, handler http.Handler, logger *slog.Logger) (*listener, error) {
	return listenWith(addr, handler, serving{}, logger)
}

// serving is how a listener serves, beyond plain HTTP/1.1 (spec.http).
type serving struct {
	// certificate, when set, serves TLS with it, HTTP/2 and HTTP/1.1 by ALPN.
	certificate *tlscert.Served
	// h2c also serves unencrypted HTTP/2 (prior knowledge).
	h2c bool
}

// apiServing is how the API listener serves spec.http.
func apiServing(spec notifyv1alpha1.HTTPSpec, certificate *tlscert.Served) serving {
	return serving{certificate: certificate, h2c: spec.H2C}
}

// listenWith starts an HTTP server with the streamer's hardening, serving as
// how says. Streams set their own per-write deadlines, so there is no
// server-wide write timeout. What net/http logs of a connection (a TLS
// handshake that failed, a panic) goes to logger as a warning.
func listenWith(addr string, handler http.Handler, how serving, logger *slog.Logger) (*listener, error) {
	ln, err := listenConfig().Listen(context.Background(), "tcp", addr)
	if err != nil {
		return nil, fmt.Errorf("failed to listen on %s: %w", addr, err)
	}
	l := &listener{
		server: &http.Server{
			Handler:           handler,
			ReadHeaderTimeout: readHeaderTimeout,
			MaxHeaderBytes:    maxHeaderBytes,
			IdleTimeout:       idleTimeout,
			ErrorLog:          slog.NewLogLogger(logger.With("source", "net/http").Handler(), slog.LevelWarn),
		},
		addr:   ln.Addr().String(),
		failed: make(chan error, 1),
	}
	serve := l.server.Serve
	switch {
	case how.certificate != nil:
		l.server.TLSConfig = how.certificate.ServerConfig()
		// The certificate comes from TLSConfig, swapped on rotation.
		serve = func(ln net.Listener) error { return l.server.ServeTLS(ln, "", "") }
	case how.h2c:
		l.server.Protocols = new(http.Protocols)
		l.server.Protocols.SetHTTP1(true)
		l.server.Protocols.SetUnencryptedHTTP2(true)
	}
	go func() {
		if err := serve(ln); !errors.Is(err, http.ErrServerClosed) {
			l.failed <- err
		}
	}()
	return l, nil
}

// withPprof adds the runtime profiles of net/http/pprof to the ops handler.
// They are mounted on their own mux, never on http.DefaultServeMux, so that
// nothing serves them unless asked for. The ops listener has no write
// timeout, so a 30-second CPU profile is not cut short.
func withPprof(ops http.Handler) http.Handler {
	mux := http.NewServeMux()
	mux.Handle("/", ops)
	mux.HandleFunc("/debug/pprof/", pprof.Index)
	mux.HandleFunc("/debug/pprof/cmdline", pprof.Cmdline)
	mux.HandleFunc("/debug/pprof/profile", pprof.Profile)
	mux.HandleFunc("/debug/pprof/symbol", pprof.Symbol)
	mux.HandleFunc("/debug/pprof/trace", pprof.Trace)
	return mux
}

// String names the protocols served, for the logs.
func (how serving) String() string {
	switch {
	case how.certificate != nil:
		return "TLS: HTTP/2, HTTP/1.1"
	case how.h2c:
		return "HTTP/1.1, unencrypted HTTP/2"
	}
	return "HTTP/1.1"
}
