package main

import (
	"bufio"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/herald-notify/herald/streamer/event"
	"github.com/herald-notify/herald/streamer/sse"
)

// Client side of the load.
const (
	// sourceAddresses is how many loopback source addresses the clients
	// spread over. One address has about 28,000 ephemeral ports, and a run
	// opens and closes several times 10,000 streams: the ports a client
	// closed wait in TIME_WAIT for a minute.
	sourceAddresses = 8
	// handshakeTimeout bounds the wait for a stream's connection event.
	handshakeTimeout = 30 * time.Second
	// readBufferBytes is each client's read buffer: an SSE frame of the
	// benchmark is about 200 bytes.
	readBufferBytes = 2048
)

// client is one SSE stream of the generator, as one user.
type client struct {
	index int
	user  string
	token string

	conn net.Conn
	// lastID is the id of the last event the stream received, which it
	// resumes from.
	lastID lastEventID
	// done is closed when the stream's reader stopped.
	done chan struct{}
	err  error
}

// pool is the generator's streams to one streamer, each as its own user
// with a token signed in advance (signing is the identity provider's cost,
// not the streamer's).
type pool struct {
	addr    string
	clients []*client
	// sink receives the events the streams read; nil drops them.
	sink atomic.Pointer[sink]
}

// newPool signs tokens for n users.
func newPool(addr string, sign *signer, n int) (*pool, error) {
	p := &pool{addr: addr, clients: make([]*client, n)}
	for i := range p.clients {
		user := "bench-user-" + strconv.Itoa(i)
		token, err := sign.token(user, false)
		if err != nil {
			return nil, err
		}
		p.clients[i] = &client{index: i, user: user, token: token}
	}
	return p, nil
}

// connectionEvent is the part of the first event the generator checks.
type connectionEvent struct {
	Type      string `json:"type"`
	UserID    string `json:"userId"`
	Recovered *bool  `json:"recovered"`
}

// openFirst connects the first n clients that are not connected yet,
// concurrency at a time, and returns the time each took to its connection
// event. resume sends each client's last event id, as a reconnecting
// EventSource does. It fails on the first error.
func (p *pool) openFirst(ctx context.Context, n, concurrency int, resume bool) (*recorder, error) {
	connectTimes := newRecorder()
	var closed []*client
	for _, c := range p.clients[:n] {
		if c.conn == nil {
			closed = append(closed, c)
		}
	}
	var (
		next     atomic.Int64
		wg       sync.WaitGroup
		errOnce  sync.Once
		firstErr error
	)
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	for range min(concurrency, len(closed)) {
		wg.Go(func() {
			for ctx.Err() == nil {
				i := int(next.Add(1)) - 1
				if i >= len(closed) {
					return
				}
				c := closed[i]
				start := time.Now()
				err := p.open(ctx, c, resume)
				if err != nil {
					errOnce.Do(func() { firstErr = fmt.Errorf("stream of %s: %w", c.user, err); cancel() })
					return
				}
				connectTimes.record(c.index, time.Since(start))
			}
		})
	}
	wg.Wait()
	return connectTimes, firstErr
}

// open connects one client over raw HTTP/1.1, as an EventSource does, and
// starts its reader once the connection event arrived. A raw connection
// keeps the client's cost to one goroutine and two small buffers, which
// matters when 10,000 of them share the streamer's two cores.
func (p *pool) open(ctx context.Context, c *client, resume bool) error {
	dialer := net.Dialer{
		Timeout:   handshakeTimeout,
		LocalAddr: &net.TCPAddr{IP: net.IPv4(127, 0, 0, byte(1+c.index%sourceAddresses))},
	}
	conn, err := dialer.DialContext(ctx, "tcp", p.addr)
	if err != nil {
		return err
	}
	_ = conn.SetDeadline(time.Now().Add(handshakeTimeout))
	var req strings.Builder
	fmt.Fprintf(&req, "GET /api/v1/sse/notifications HTTP/1.1\r\nHost: %s\r\nAccept: text/event-stream\r\nAuthorization: Bearer %s\r\n", p.addr, c.token)
	if resume {
		fmt.Fprintf(&req, "Last-Event-ID: %s\r\n", c.lastID.load())
	}
	req.WriteString("\r\n")
	if _, err := io.WriteString(conn, req.String()); err != nil {
		_ = conn.Close()
		return err
	}
	resp, err := http.ReadResponse(bufio.NewReaderSize(conn, readBufferBytes), nil)
	if err != nil {
		_ = conn.Close()
		return err
	}
	if resp.StatusCode != http.StatusOK {
		body, _ := io.ReadAll(io.LimitReader(resp.Body, 512))
		_ = conn.Close()
		return fmt.Errorf("%s: %s", resp.Status, body)
	}
	events := sse.NewReader(resp.Body)
	first, err := events.Next()
	if err != nil {
		_ = conn.Close()
		return err
	}
	var hello connectionEvent
	if err := json.Unmarshal([]byte(first.Data), &hello); err != nil || hello.Type != event.TypeConnection || hello.UserID != c.user {
		_ = conn.Close()
		return fmt.Errorf("the first event is not %s's connection event: %s", c.user, first.Data)
	}
	if resume && (hello.Recovered == nil || !*hello.Recovered) {
		_ = conn.Close()
		return fmt.Errorf("resumed from %s without recovering: %s", c.lastID.load(), first.Data)
	}
	if first.ID != "" && !resume {
		c.lastID.store(first.ID)
	}
	_ = conn.SetDeadline(time.Time{})
	c.conn, c.done, c.err = conn, make(chan struct{}), nil
	go p.read(c, events)
	return nil
}

// read hands every event of a stream to the pool's sink until it ends.
func (p *pool) read(c *client, events *sse.Reader) {
	defer close(c.done)
	for {
		ev, err := events.Next()
		if err != nil {
			c.err = err
			return
		}
		if ev.IsComment {
			continue
		}
		received := time.Now()
		if ev.ID != "" {
			c.lastID.store(ev.ID)
		}
		if s := p.sink.Load(); s != nil {
			s.receive(c.index, ev.Data, received)
		}
	}
}

// closeAll closes every open stream and waits for its reader.
func (p *pool) closeAll() {
	for _, c := range p.clients {
		if c.conn != nil {
			_ = c.conn.Close()
			<-c.done
			c.conn = nil
		}
	}
}

// broken names the streams that ended while they should be open.
func (p *pool) broken() error {
	var errs []error
	for _, c := range p.clients {
		if c.conn == nil {
			continue
		}
		select {
		case <-c.done:
			errs = append(errs, fmt.Errorf("the stream of %s ended: %w", c.user, c.err))
		default:
		}
		if len(errs) == 3 {
			break
		}
	}
	return errors.Join(errs...)
}

// sink counts and times the events a scenario publishes. Every event carries
// its sequence number in the scenario and the publisher's clock reading when
// it was sent, so latency is measured from publish to read, on one machine's
// clock.
type sink struct {
	latency  *recorder
	received atomic.Int64
	// lastRead is when the latest event was read (Unix nanoseconds).
	lastRead atomic.Int64
	// slowest is, per event, the latency to the last stream that read it.
	slowest []atomic.Int64
	// foreign counts events that were not the scenario's: a bug.
	foreign atomic.Int64
}

func newSink(events int) *sink {
	return &sink{latency: newRecorder(), slowest: make([]atomic.Int64, events)}
}

// receive records one event read by client index.
func (s *sink) receive(index int, data string, at time.Time) {
	seq, sentAt, ok := parsePayload(data)
	if !ok || seq < 0 || seq >= len(s.slowest) {
		s.foreign.Add(1)
		return
	}
	d := at.Sub(time.Unix(0, sentAt))
	s.latency.record(index, d)
	atomicMax(&s.slowest[seq], int64(d))
	atomicMax(&s.lastRead, at.UnixNano())
	s.received.Add(1)
}

// toLast is the distribution over events of the time from publish to the
// last stream that read it.
func (s *sink) toLast() Latency {
	values := make([]time.Duration, len(s.slowest))
	for i := range s.slowest {
		values[i] = time.Duration(s.slowest[i].Load())
	}
	return latencyOfValues(values)
}

// wait waits until want events were read, or the streams broke, or timeout.
func (s *sink) wait(ctx context.Context, p *pool, want int64, timeout time.Duration) error {
	deadline := time.Now().Add(timeout)
	for s.received.Load() < want {
		if err := p.broken(); err != nil {
			return err
		}
		if time.Now().After(deadline) {
			return fmt.Errorf("%d of %d events read after %s", s.received.Load(), want, timeout)
		}
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-time.After(5 * time.Millisecond):
		}
	}
	if n := s.foreign.Load(); n > 0 {
		return fmt.Errorf("%d events read that the scenario did not publish", n)
	}
	return nil
}

// payloadKeys mark the benchmark's fields inside an event's JSON.
const (
	seqKey    = `"seq":`
	sentAtKey = `"sentAt":`
)

// parsePayload finds seq and sentAt in an event's JSON. The generator reads
// every delivery on the streamer's machine, so it scans for the two numbers
// instead of decoding the whole event: the generator's CPU is taken from the
// two cores the streamer runs on.
func parsePayload(data string) (seq int, sentAt int64, ok bool) {
	number := func(key string) (int64, bool) {
		i := strings.Index(data, key)
		if i < 0 {
			return 0, false
		}
		rest := data[i+len(key):]
		end := strings.IndexAny(rest, ",}")
		if end < 0 {
			return 0, false
		}
		v, err := strconv.ParseInt(rest[:end], 10, 64)
		return v, err == nil
	}
	s, ok1 := number(seqKey)
	t, ok2 := number(sentAtKey)
	return int(s), t, ok1 && ok2
}

// lastEventID is the id of the last event a stream received; its reader
// stores it, a reconnect reads it.
type lastEventID struct {
	mu sync.Mutex
	id string
}

func (l *lastEventID) store(id string) {
	l.mu.Lock()
	l.id = id
	l.mu.Unlock()
}

func (l *lastEventID) load() string {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.id
}
