package app

import (
	"errors"
	"fmt"
	"net"
	"net/http"
	"net/http/pprof"
	"sync/atomic"
	"time"

	"github.com/herald-notify/herald/streamer/server"
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

// listen starts an HTTP server with the streamer's hardening. Streams set
// their own per-write deadlines, so there is no server-wide write timeout.
func listen(addr string, handler http.Handler) (*listener, error) {
	ln, err := net.Listen("tcp", addr)
	if err != nil {
		return nil, fmt.Errorf("failed to listen on %s: %w", addr, err)
	}
	l := &listener{
		server: &http.Server{
			Handler:           handler,
			ReadHeaderTimeout: readHeaderTimeout,
			MaxHeaderBytes:    maxHeaderBytes,
			IdleTimeout:       idleTimeout,
		},
		addr:   ln.Addr().String(),
		failed: make(chan error, 1),
	}
	go func() {
		if err := l.server.Serve(ln); !errors.Is(err, http.ErrServerClosed) {
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
