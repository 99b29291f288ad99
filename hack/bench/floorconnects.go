package main

import (
	"bytes"
	"cmp"
	"context"
	"fmt"
	"io"
	"net"
	"strconv"
	"sync"
	"time"
)

// ConnectFloor is the least a new stream's connection costs the server on
// this machine: a process of its own accepts loopback connections with Go's
// net package, as the streamer does, reads a request as long as a stream
// request with its token, answers with as many bytes as the streamer's
// opening (headers and connection event), and holds the connection, with
// nothing else: no HTTP, no token check, no stream state. The connect
// scenario's streams per server core-second are read against it.
type ConnectFloor struct {
	Connections   int `json:"connections"`
	RequestBytes  int `json:"requestBytes"`
	ResponseBytes int `json:"responseBytes"`
	// ServerCPUMicros is the accepting process's CPU per connection.
	ServerCPUMicros float64 `json:"serverCPUMicros"`
	// PerServerCore is connections per second of that CPU.
	PerServerCore float64 `json:"perServerCoreSecond"`
}

// Sizes of the connect floor, those of an HS256 stream request (request
// line, Host, Accept, the bearer token) and of the streamer's answer (status
// line, the client contract's, security and CORS headers, the connection
// event as the first chunk), to within a few dozen bytes.
const (
	floorRequestBytes  = 480
	floorResponseBytes = 720
	// floorWarmConnects are opened first and kept, so that the measured
	// round runs in a warm process, as the connect scenario's does.
	floorWarmConnects = 1000
)

// measureConnectFloor opens n connections to a floor server in another
// process, concurrency at a time, after a warm-up round, and reads that
// process's CPU over the n.
func measureConnectFloor(ctx context.Context, n, concurrency int) (*ConnectFloor, error) {
	ctx, cancel := context.WithTimeout(ctx, broadcastFloorTimeout)
	defer cancel()
	server, err := startFloorChild(ctx, "the connect floor's server",
		[]string{floorAcceptsCommand, "-response", strconv.Itoa(floorResponseBytes)}, floorAcceptsStartedMsg)
	if err != nil {
		return nil, err
	}
	defer server.stop()
	var conns []net.Conn
	defer func() {
		for _, c := range conns {
			_ = c.Close()
		}
	}()
	request := floorRequest()
	warm, err := openFloorConns(ctx, server.addr, request, floorWarmConnects, concurrency)
	conns = append(conns, warm...)
	if err != nil {
		return nil, fmt.Errorf("warming up: %w", err)
	}
	serverCPU := func() (time.Duration, error) { return askCPU(server.stdin, server.stdout) }
	cpu0, err := serverCPU()
	if err != nil {
		return nil, err
	}
	measured, err := openFloorConns(ctx, server.addr, request, n, concurrency)
	conns = append(conns, measured...)
	if err != nil {
		return nil, err
	}
	cpu1, err := serverCPU()
	if err != nil {
		return nil, err
	}
	f := &ConnectFloor{Connections: n, RequestBytes: len(request), ResponseBytes: floorResponseBytes}
	f.ServerCPUMicros = float64((cpu1 - cpu0).Nanoseconds()) / 1e3 / float64(n)
	f.PerServerCore = ratioOf(1e6, f.ServerCPUMicros)
	return f, nil
}

// askCPU asks the floor's server for its process's CPU time: a line on its
// stdin, answered with 8 bytes on its stdout (cpuAcks's), to the
// nanosecond where /proc counts in ticks of 10 ms.
func askCPU(ask io.Writer, answers io.Reader) (time.Duration, error) {
	if _, err := io.WriteString(ask, "cpu\n"); err != nil {
		return 0, err
	}
	return (&floorReaders{acks: answers}).awaitRound()
}

// floorRequest is a GET of floorRequestBytes, ending its headers.
func floorRequest() []byte {
	head := "GET /api/v1/sse/notifications HTTP/1.1\r\nHost: 127.0.0.1\r\nAccept: text/event-stream\r\nAuthorization: Bearer "
	tail := "\r\n\r\n"
	return []byte(head + string(bytes.Repeat([]byte("x"), floorRequestBytes-len(head)-len(tail))) + tail)
}

// openFloorConns dials n connections, concurrency at a time; each sends
// request and reads the whole answer before the next dial of its worker.
func openFloorConns(ctx context.Context, addr string, request []byte, n, concurrency int) ([]net.Conn, error) {
	var mu sync.Mutex
	conns := make([]net.Conn, 0, n)
	var firstErr error
	var next int
	var workers sync.WaitGroup
	var dialer net.Dialer
	for range min(concurrency, n) {
		workers.Go(func() {
			answer := make([]byte, floorResponseBytes)
			for {
				mu.Lock()
				if next == n || firstErr != nil {
					mu.Unlock()
					return
				}
				next++
				mu.Unlock()
				c, err := dialer.DialContext(ctx, "tcp", addr)
				if err == nil {
					mu.Lock()
					conns = append(conns, c)
					mu.Unlock()
					if _, err = c.Write(request); err == nil {
						_, err = io.ReadFull(c, answer)
					}
				}
				if err != nil {
					mu.Lock()
					firstErr = cmp.Or(firstErr, err)
					mu.Unlock()
					return
				}
			}
		})
	}
	workers.Wait()
	return conns, firstErr
}

// floorAcceptsCommand is the generator's hidden subcommand that runs the
// connect floor's server in a process of its own.
const floorAcceptsCommand = "floor-accepts"

// floorAcceptsStartedMsg is the line the subcommand logs once it listens.
const floorAcceptsStartedMsg = "floor server listening"

// floorAcceptsMain serves the connect floor until stdin ends or a signal
// comes, answering each line on stdin with its CPU time on stdout.
func floorAcceptsMain(args []string, stdin io.Reader, stdout, stderr io.Writer) error {
	// No keep-alive, which net would set on every accepted socket: the
	// streamer sets it once on its listening socket, which accepted
	// sockets inherit, and the floor is the least a connection costs.
	return floorChildMain(floorAcceptsCommand, "response", "bytes to answer each request with", args,
		net.ListenConfig{KeepAlive: -1}, floorAcceptsStartedMsg, stdin, stdout, stderr,
		func(ln net.Listener, response int, _ *cpuAcks) error {
			return serveFloorAccepts(ln, bytes.Repeat([]byte("y"), response))
		})
}

// serveFloorAccepts answers each connection ln accepts once its request's
// headers are read, then holds it until the client closes it or ln is
// closed.
func serveFloorAccepts(ln net.Listener, answer []byte) error {
	return serveEach(ln, func(c net.Conn) {
		buf := make([]byte, 0, 1024)
		for !bytes.Contains(buf, []byte("\r\n\r\n")) {
			n, err := c.Read(buf[len(buf):cap(buf)])
			if err != nil {
				return
			}
			buf = buf[:len(buf)+n]
			if len(buf) == cap(buf) {
				return // not a request this floor sends
			}
		}
		if _, err := c.Write(answer); err != nil {
			return
		}
		// Hold the connection until the client closes it.
		_, _ = c.Read(buf[:cap(buf)])
	})
}
