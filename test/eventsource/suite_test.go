// Package eventsource_test reads Herald's stream with a third-party SSE
// client, the eventsource npm package under Node, to prove that the framing
// and the resume contract hold for a client the project did not write: a
// real streamer runs in the test process on a loopback port, client.mjs runs
// the library against it, and the specs compare what the library delivered
// with what the streamer published.
//
// The npm packages are pinned by package-lock.json and installed by
// hack/npm-deps.sh, which `make test` runs before `go test`.
package eventsource_test

import (
	"encoding/json"
	"net"
	"net/http"
	"net/http/httptest"
	"os"
	"strconv"
	"sync"
	"syscall"
	"testing"
	"time"

	. "github.com/onsi/ginkgo/v2"
	. "github.com/onsi/gomega"

	notifyv1alpha1 "github.com/herald-notify/herald/api/v1alpha1"
	"github.com/herald-notify/herald/internal/testutil"
	"github.com/herald-notify/herald/internal/testutil/nodeclient"
	"github.com/herald-notify/herald/streamer/server"
	"github.com/herald-notify/herald/streamer/sse"
)

// clientProgram runs the eventsource library; see its header for the lines
// it writes.
const clientProgram = "client.mjs"

func TestEventSource(t *testing.T) {
	testutil.RunSuite(t, "the eventsource npm package against a real streamer")
}

var node = nodeclient.SetUpSuite("the eventsource npm package", "eventsource")

// streamer is a running streamer with a second front on a loopback port:
// gated, through which the library connects, beside the direct one for the
// test's own requests, so that cutting or holding the library's connections
// leaves the test's publishing and witness streams alone.
type streamer struct {
	*nodeclient.Streamer
	gated *httptest.Server
	// gatedConns are the gated front's connections, for cutGated.
	gatedConns *recordingListener
	gate       *streamGate
}

// startStreamer serves a channel, its spec adjusted by edit, until the spec ends.
func startStreamer(edit func(spec *notifyv1alpha1.NotificationChannelSpec)) *streamer {
	s := &streamer{Streamer: nodeclient.StartStreamer(nodeclient.StreamerOptions{Edit: edit})}
	s.gate = newStreamGate(s.Server.Handler())
	s.gated = httptest.NewUnstartedServer(s.gate)
	s.gatedConns = &recordingListener{Listener: s.gated.Listener}
	s.gated.Listener = s.gatedConns
	s.gated.Start()
	// Registered after the streamer's cleanup, so it runs first: the gated
	// front's connections are cut while the streamer still serves them.
	DeferCleanup(func() {
		s.gate.release() // a request still held returns when its connection is cut
		s.cutGated()
		s.gated.CloseClientConnections()
		s.gated.Close()
	})
	return s
}

// cutGated cuts every connection of the gated front, as a network drop
// would: it shuts each one down, so that the library reads the end of the
// connection before the stream's end, and the streamer sees its client gone.
// httptest.Server.CloseClientConnections cannot: the streamer takes an
// HTTP/1.1 stream's connection over from net/http (hijacks it), which then
// no longer tracks it; on Linux the streamer then keeps the socket as a bare
// descriptor of its own and closes the net.Conn, so the socket is found by
// its inode among the process's descriptors.
func (s *streamer) cutGated() { s.gatedConns.shutdownAll() }

// recordingListener records the sockets it accepts, so that they can be cut
// whoever serves them.
type recordingListener struct {
	net.Listener
	mu    sync.Mutex
	conns []*net.TCPConn
	// inodes are the accepted sockets' inodes (Linux).
	inodes map[uint64]bool
}

func (l *recordingListener) Accept() (net.Conn, error) {
	c, err := l.Listener.Accept()
	if tcp, ok := c.(*net.TCPConn); ok {
		l.mu.Lock()
		l.conns = append(l.conns, tcp)
		if inode, ok := socketInode(tcp); ok {
			if l.inodes == nil {
				l.inodes = map[uint64]bool{}
			}
			l.inodes[inode] = true
		}
		l.mu.Unlock()
	}
	return c, err
}

// shutdownAll shuts down both directions of every socket accepted so far,
// through the connection where its server kept it, and through any of the
// process's descriptors of it. Whoever serves a connection still closes it.
func (l *recordingListener) shutdownAll() {
	l.mu.Lock()
	defer l.mu.Unlock()
	for _, c := range l.conns {
		_ = c.CloseRead()
		_ = c.CloseWrite()
	}
	shutdownSockets(l.inodes)
	l.conns, l.inodes = nil, nil
}

// socketInode is the inode of c's socket.
func socketInode(c *net.TCPConn) (uint64, bool) {
	raw, err := c.SyscallConn()
	if err != nil {
		return 0, false
	}
	var st syscall.Stat_t
	var statErr error
	if err := raw.Control(func(fd uintptr) { statErr = syscall.Fstat(int(fd), &st) }); err != nil || statErr != nil {
		return 0, false
	}
	return st.Ino, true
}

// shutdownSockets shuts down the sockets of inodes that the process holds
// a descriptor of.
func shutdownSockets(inodes map[uint64]bool) {
	entries, err := os.ReadDir("/proc/self/fd")
	if err != nil {
		return
	}
	for _, e := range entries {
		fd, err := strconv.Atoi(e.Name())
		if err != nil {
			continue
		}
		var st syscall.Stat_t
		if syscall.Fstat(fd, &st) == nil && st.Mode&syscall.S_IFMT == syscall.S_IFSOCK && inodes[st.Ino] {
			_ = syscall.Shutdown(fd, syscall.SHUT_RDWR)
		}
	}
}

// streamURL is where the library connects.
func (s *streamer) streamURL() string { return s.gated.URL + server.StreamPath }

// notification is what notify published.
type notification struct {
	eventID        string
	notificationID string
}

// notify publishes a notification to user through the publish API.
func (s *streamer) notify(user string) notification {
	GinkgoHelper()
	answer := s.Publish("/api/v1/notifications", map[string]any{
		"recipientUserIds": []string{user}, "notificationType": "VOCAB_TRAINER", "action": "CREATE", "priority": "LOW",
		"data": map[string]any{"message": "New vocab trainer available", "unicode": "größe ✓ \u2028"},
	})
	Expect(answer).To(HaveKeyWithValue("eventIds", HaveLen(1)))
	return notification{eventID: answer["eventIds"].([]any)[0].(string), notificationID: answer["notificationId"].(string)}
}

// custom publishes a custom event to users, or everyone when none, and
// returns its event id.
func (s *streamer) custom(eventType string, users ...string) string {
	GinkgoHelper()
	body := map[string]any{"eventType": eventType, "data": map[string]any{"action": "login"}}
	if len(users) > 0 {
		body["userIds"] = users
	}
	return s.Publish("/api/v1/custom-events", body)["eventId"].(string)
}

// streamGate is the gated front's handler. It sees every stream request
// before the streamer does: it records the headers the client sent, and,
// while held, makes the request wait. Holding the library's reconnect lets a
// spec publish events at a point where the library is certainly disconnected
// and has not yet reached the streamer, whatever the timing of either.
type streamGate struct {
	next http.Handler
	// requests has the headers of each stream request, in arrival order.
	requests chan http.Header
	// held is shut while stream requests wait.
	held nodeclient.Gate
}

func newStreamGate(next http.Handler) *streamGate {
	return &streamGate{next: next, requests: make(chan http.Header, 16)}
}

// hold makes stream requests wait until release.
func (g *streamGate) hold() { g.held.Shut() }

// release lets held and later stream requests through.
func (g *streamGate) release() { g.held.Open() }

func (g *streamGate) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	if r.URL.Path == server.StreamPath {
		held := g.held.Opening()
		select {
		case g.requests <- r.Header.Clone():
		case <-r.Context().Done():
			return
		}
		if held != nil {
			select {
			case <-held:
			case <-r.Context().Done():
				return
			}
		}
	}
	g.next.ServeHTTP(w, r)
}

// nextRequest is the headers of the next stream request through the gate.
func (g *streamGate) nextRequest(timeout time.Duration) http.Header {
	GinkgoHelper()
	var h http.Header
	Eventually(g.requests, timeout).Should(Receive(&h), "the client made no stream request")
	return h
}

// witnessStream reads a user's stream with the project's own spec-conformant
// SSE reader, over the direct front: what the streamer sent, for comparison
// with what the library made of it. The channel must allow the user that
// many streams, or the witness replaces the library's stream.
func (s *streamer) witnessStream(user string) <-chan sse.Event {
	GinkgoHelper()
	resp := s.OpenStream(user)

	events := make(chan sse.Event, 100)
	quit, done := make(chan struct{}), make(chan struct{})
	go func() {
		defer close(done)
		reader := sse.NewReader(resp.Body)
		for {
			ev, err := reader.Next()
			if err != nil {
				return
			}
			if ev.IsComment {
				continue
			}
			select {
			case events <- ev:
			case <-quit:
				return
			}
		}
	}()
	DeferCleanup(func() {
		close(quit)
		_ = resp.Body.Close()
		Eventually(done).Should(BeClosed())
	})
	return events
}

// clientLine is one line client.mjs wrote: what the library reported.
type clientLine struct {
	// Kind is open, message or error; unparsable for a line that is not JSON.
	Kind string `json:"kind"`
	// Type, Data and LastEventID are the MessageEvent's (kind message).
	Type        string `json:"type"`
	Data        string `json:"data"`
	LastEventID string `json:"lastEventId"`
	// Message and Code describe an error; ReadyState is the EventSource's
	// state after it (0 CONNECTING: it will reconnect, 2 CLOSED: it will not).
	Message    string `json:"message"`
	Code       *int   `json:"code"`
	ReadyState *int   `json:"readyState"`
}

// The EventSource readyState values.
const (
	connecting = 0
	closed     = 2
)

// esClient is a running client.mjs: the library reading one stream.
type esClient struct {
	*nodeclient.Process[clientLine]
}

// startClient runs the library against the streamer with token, until the
// spec ends: then its standard input is closed, on which it must exit 0.
func startClient(s *streamer, token string) *esClient {
	GinkgoHelper()
	return &esClient{nodeclient.Start(node, nodeclient.Program[clientLine]{
		Script: clientProgram, Args: []string{s.streamURL()}, Env: []string{"HERALD_TOKEN=" + token},
		Unparsable: func(text string) clientLine { return clientLine{Kind: "unparsable", Message: text} },
	})}
}

// next is the next line the client wrote.
func (c *esClient) next() clientLine {
	GinkgoHelper()
	var line clientLine
	Eventually(c.Lines).Should(Receive(&line), "client.mjs wrote no further line")
	return line
}

// expectOpen expects the library's open event next.
func (c *esClient) expectOpen() {
	GinkgoHelper()
	Expect(c.next()).To(HaveField("Kind", "open"))
}

// expectError expects the library's error event next and returns it.
func (c *esClient) expectError() clientLine {
	GinkgoHelper()
	line := c.next()
	Expect(line.Kind).To(Equal("error"), "%+v", line)
	return line
}

// nextMessage expects a message event next and returns it with its data
// decoded.
func (c *esClient) nextMessage() (clientLine, map[string]any) {
	GinkgoHelper()
	line := c.next()
	Expect(line.Kind).To(Equal("message"), "%+v", line)
	Expect(line.Type).To(Equal("message"), "Herald's events have no event: field, so onmessage receives each")
	var data map[string]any
	Expect(json.Unmarshal([]byte(line.Data), &data)).To(Succeed(), "data is one JSON object: %q", line.Data)
	return line, data
}

// expectConnected expects the connection event, the first of every stream,
// next, and returns its data.
func (c *esClient) expectConnected(user string) (clientLine, map[string]any) {
	GinkgoHelper()
	line, data := c.nextMessage()
	Expect(data).To(HaveKeyWithValue("type", "connection"))
	Expect(data).To(HaveKeyWithValue("userId", user))
	Expect(data).To(HaveKeyWithValue("message", "SSE connection established"))
	return line, data
}

// nextWitnessed is the next event of a witness stream.
func nextWitnessed(events <-chan sse.Event) sse.Event {
	GinkgoHelper()
	var ev sse.Event
	Eventually(events).Should(Receive(&ev), "the witness stream received nothing")
	return ev
}
