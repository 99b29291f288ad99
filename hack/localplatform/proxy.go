package main

import (
	"errors"
	"io"
	"log/slog"
	"net"
	"sync"
	"sync/atomic"
	"time"
)

// backendDialTimeout bounds the dial of one pod; a pod that does not answer
// in time is skipped for the next.
const backendDialTimeout = 2 * time.Second

// serviceProxy is one Service port as a loopback TCP port: each connection
// goes to the next ready pod (round robin), as kube-proxy spreads them. A pod
// that refuses is skipped; with no ready pod the connection is closed at once,
// so that a client retries rather than hangs.
type serviceProxy struct {
	listener  net.Listener
	endpoints func() []string
	logger    *slog.Logger

	next  atomic.Uint64
	mu    sync.Mutex
	conns map[net.Conn]struct{}
	wg    sync.WaitGroup
}

// listenServiceProxy listens on addr ("127.0.0.1:0" for a free port).
func listenServiceProxy(addr string, endpoints func() []string, logger *slog.Logger) (*serviceProxy, error) {
	l, err := net.Listen("tcp", addr)
	if err != nil {
		return nil, err
	}
	p := &serviceProxy{listener: l, endpoints: endpoints, logger: logger, conns: map[net.Conn]struct{}{}}
	p.wg.Go(p.serve)
	return p, nil
}

// Addr is the proxy's loopback address.
func (p *serviceProxy) Addr() string { return p.listener.Addr().String() }

func (p *serviceProxy) serve() {
	for {
		conn, err := p.listener.Accept()
		if err != nil {
			if !errors.Is(err, net.ErrClosed) {
				p.logger.Error("the Service proxy stopped accepting", "error", err.Error())
			}
			return
		}
		if !p.track(conn) {
			_ = conn.Close()
			return
		}
		p.wg.Go(func() { p.forward(conn) })
	}
}

// track registers conn for Close; false once the proxy is closed.
func (p *serviceProxy) track(conn net.Conn) bool {
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.conns == nil {
		return false
	}
	p.conns[conn] = struct{}{}
	return true
}

func (p *serviceProxy) untrack(conn net.Conn) {
	p.mu.Lock()
	defer p.mu.Unlock()
	delete(p.conns, conn)
}

// forward copies between client and a backend until either side closes.
func (p *serviceProxy) forward(client net.Conn) {
	defer p.untrack(client)
	defer client.Close()
	backend := p.dialBackend()
	if backend == nil {
		return
	}
	if !p.track(backend) {
		_ = backend.Close()
		return
	}
	defer p.untrack(backend)
	defer backend.Close()
	// The client's end of sending is passed on as a half-close, so that a
	// request body's end reaches the pod; the pod's end of sending (its
	// response done, or the pod gone) ends the connection, so that no
	// client is left on a half-open one.
	p.wg.Go(func() {
		_, _ = io.Copy(backend, client)
		if tcp, ok := backend.(*net.TCPConn); ok {
			_ = tcp.CloseWrite()
		}
	})
	_, _ = io.Copy(client, backend)
}

// dialBackend connects to the next ready pod that answers, nil when none
// does.
func (p *serviceProxy) dialBackend() net.Conn {
	endpoints := p.endpoints()
	if len(endpoints) == 0 {
		return nil
	}
	start := p.next.Add(1)
	for i := range endpoints {
		addr := endpoints[(start+uint64(i))%uint64(len(endpoints))]
		conn, err := net.DialTimeout("tcp", addr, backendDialTimeout)
		if err == nil {
			return conn
		}
	}
	return nil
}

// Close stops listening, closes every connection and waits for them.
func (p *serviceProxy) Close() {
	_ = p.listener.Close()
	p.mu.Lock()
	conns := p.conns
	p.conns = nil
	p.mu.Unlock()
	for conn := range conns {
		_ = conn.Close()
	}
	p.wg.Wait()
}

// DropConnections closes every connection and keeps listening: what a
// client sees when the network between it and a pod fails.
func (p *serviceProxy) DropConnections() {
	p.mu.Lock()
	defer p.mu.Unlock()
	for conn := range p.conns {
		_ = conn.Close()
	}
}
