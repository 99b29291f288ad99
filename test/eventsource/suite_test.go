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
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"os"
	"os/exec"
	"strconv"
	"sync"
	"syscall"
	"testing"
	"time"

	. "github.com/onsi/ginkgo/v2"
	. "github.com/onsi/gomega"
	"go.uber.org/goleak"

	notifyv1alpha1 "github.com/herald-notify/herald/api/v1alpha1"
	"github.com/herald-notify/herald/internal/testutil/streamertest"
	"github.com/herald-notify/herald/streamer/server"
	"github.com/herald-notify/herald/streamer/sse"

	"github.com/herald-notify/herald/internal/testutil"
)

const (
	// clientProgram runs the eventsource library; see its header for the
	// lines it writes.
	clientProgram = "client.mjs"
	// installedLibrary exists once hack/npm-deps.sh has run.
	installedLibrary = "node_modules/eventsource/package.json"
	installHint      = "run make test, which installs them via hack/npm-deps.sh"
)

var (
	nodeBin     string
	leaksBefore goleak.Option
	// httpClient makes the test's own requests (publish, metrics, witness
	// streams). Without keep-alive no idle connection outlives a spec, so
	// the leak check at the end sees none.
	httpClient = &http.Client{Transport: &http.Transport{DisableKeepAlives: true}}
)

func TestEventSource(t *testing.T) {
	testutil.RunSuite(t, "the eventsource npm package against a real streamer")
}

var _ = BeforeSuite(func() {
	SetDefaultEventuallyTimeout(10 * time.Second)
	var err error
	nodeBin, err = exec.LookPath("node")
	// A missing Node fails the suite rather than skipping it: a skipped
	// suite would let CI pass without ever running the third-party client.
	Expect(err).NotTo(HaveOccurred(), "node is not on PATH: this suite runs the eventsource npm package under Node.js 20 or newer; "+
		"install Node.js and npm (Debian: apt-get install nodejs npm), then "+installHint)
	Expect(installedLibrary).To(BeAnExistingFile(), "the suite's npm packages are not installed: "+installHint)
	leaksBefore = goleak.IgnoreCurrent()
})

var _ = AfterSuite(func() {
	// Every stream, reader goroutine and Node process of the suite has ended.
	Eventually(func() error { return goleak.Find(leaksBefore) }).Should(Succeed())
})

// streamer is a running server with two fronts on loopback ports: gated,
// through which the library connects, and direct, for the test's own
// requests, so that cutting or holding the library's connections leaves
// the test's publishing and witness streams alone.
type streamer struct {
	srv   *server.Server
	gated *httptest.Server
	// gatedConns are the gated front's connections, for cutGated.
	gatedConns *recordingListener
	direct     *httptest.Server
	ops        *httptest.Server
	gate       *streamGate
	secret     []byte
}

// startStreamer serves a channel, its spec adjusted by edit, until the spec ends.
func startStreamer(edit func(spec *notifyv1alpha1.NotificationChannelSpec)) *streamer {
	srv, secret, err := streamertest.New(edit, 0)
	Expect(err).NotTo(HaveOccurred())

	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() { srv.Run(ctx); close(done) }()
	gate := newStreamGate(srv.Handler())
	gated := httptest.NewUnstartedServer(gate)
	gatedConns := &recordingListener{Listener: gated.Listener}
	gated.Listener = gatedConns
	gated.Start()
	s := &streamer{
		srv: srv, gated: gated, gatedConns: gatedConns, direct: httptest.NewServer(srv.Handler()),
		ops: httptest.NewServer(srv.OpsHandler()), gate: gate, secret: secret,
	}
	DeferCleanup(func() {
		gate.release() // a request still held returns when its connection is cut
		s.cutGated()
		for _, front := range []*httptest.Server{s.gated, s.direct} {
			front.CloseClientConnections()
			front.Close()
		}
		s.ops.Close()
		cancel()
		Eventually(done).Should(BeClosed())
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

// token signs a token for user, valid for an hour, with the publish grant
// when publish is set.
func (s *streamer) token(user string, publish bool) string {
	return signToken(user, publish, s.secret)
}

func signToken(user string, publish bool, secret []byte) string {
	GinkgoHelper()
	t, err := streamertest.Token(secret, user, publish, time.Hour)
	Expect(err).NotTo(HaveOccurred())
	return t
}

// publish POSTs body to a publish endpoint with a publisher's token, expects
// 202 and returns the decoded answer.
func (s *streamer) publish(path string, body map[string]any) map[string]any {
	GinkgoHelper()
	payload, err := json.Marshal(body)
	Expect(err).NotTo(HaveOccurred())
	req, err := http.NewRequest(http.MethodPost, s.direct.URL+path, bytes.NewReader(payload))
	Expect(err).NotTo(HaveOccurred())
	req.Header.Set("Content-Type", "application/json")
	req.Header.Set("Authorization", "Bearer "+s.token("backend", true))
	resp, err := httpClient.Do(req)
	Expect(err).NotTo(HaveOccurred())
	defer resp.Body.Close()
	var answer map[string]any
	Expect(json.NewDecoder(resp.Body).Decode(&answer)).To(Succeed())
	Expect(resp.StatusCode).To(Equal(http.StatusAccepted), "%s answered %v", path, answer)
	return answer
}

// notification is what notify published.
type notification struct {
	eventID        string
	notificationID string
}

// notify publishes a notification to user through the publish API.
func (s *streamer) notify(user string) notification {
	GinkgoHelper()
	answer := s.publish("/api/v1/notifications", map[string]any{
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
	return s.publish("/api/v1/custom-events", body)["eventId"].(string)
}

// metrics returns the text of the streamer's /metrics page.
func (s *streamer) metrics() string {
	GinkgoHelper()
	resp, err := httpClient.Get(s.ops.URL + "/metrics")
	Expect(err).NotTo(HaveOccurred())
	defer resp.Body.Close()
	body, err := io.ReadAll(resp.Body)
	Expect(err).NotTo(HaveOccurred())
	return string(body)
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

	mu   sync.Mutex
	held chan struct{} // closed on release; nil while requests pass
}

func newStreamGate(next http.Handler) *streamGate {
	return &streamGate{next: next, requests: make(chan http.Header, 16)}
}

// hold makes stream requests wait until release.
func (g *streamGate) hold() {
	g.mu.Lock()
	defer g.mu.Unlock()
	if g.held == nil {
		g.held = make(chan struct{})
	}
}

// release lets held and later stream requests through.
func (g *streamGate) release() {
	g.mu.Lock()
	defer g.mu.Unlock()
	if g.held != nil {
		close(g.held)
		g.held = nil
	}
}

func (g *streamGate) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	if r.URL.Path == server.StreamPath {
		g.mu.Lock()
		held := g.held
		g.mu.Unlock()
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
	req, err := http.NewRequest(http.MethodGet, s.direct.URL+server.StreamPath, nil)
	Expect(err).NotTo(HaveOccurred())
	req.Header.Set("Authorization", "Bearer "+s.token(user, false))
	resp, err := httpClient.Do(req)
	Expect(err).NotTo(HaveOccurred())
	Expect(resp.StatusCode).To(Equal(http.StatusOK))

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
	lines chan clientLine
}

// startClient runs the library against the streamer with token, until the
// spec ends: then its standard input is closed, on which it must exit 0.
func startClient(s *streamer, token string) *esClient {
	GinkgoHelper()
	ctx, kill := context.WithCancel(context.Background())
	// Runs last: whatever happened, no Node process outlives the spec.
	DeferCleanup(kill)
	cmd := exec.CommandContext(ctx, nodeBin, clientProgram, s.streamURL())
	cmd.Env = append(os.Environ(), "HERALD_TOKEN="+token)
	cmd.Stderr = GinkgoWriter
	cmd.WaitDelay = 5 * time.Second // Wait returns even if Node hangs on to its pipes
	stdin, err := cmd.StdinPipe()
	Expect(err).NotTo(HaveOccurred())
	stdout, err := cmd.StdoutPipe()
	Expect(err).NotTo(HaveOccurred())
	Expect(cmd.Start()).To(Succeed())

	c := &esClient{lines: make(chan clientLine, 100)}
	quit, exited := make(chan struct{}), make(chan struct{})
	var waitErr error
	go func() {
		defer close(exited)
		scanner := bufio.NewScanner(stdout)
		scanner.Buffer(nil, 1<<20)
		for scanner.Scan() {
			var line clientLine
			if err := json.Unmarshal(scanner.Bytes(), &line); err != nil {
				line = clientLine{Kind: "unparsable", Message: scanner.Text()}
			}
			select {
			case c.lines <- line:
			case <-quit: // the spec is over: read on, so that Node never blocks writing
			}
		}
		// Wait closes stdout: only now that every line was read.
		waitErr = cmd.Wait()
	}()
	DeferCleanup(func() {
		close(quit)
		_ = stdin.Close()
		Eventually(exited).Should(BeClosed(), "client.mjs exits when its standard input closes")
		Expect(waitErr).NotTo(HaveOccurred(), "client.mjs exits 0")
	})
	return c
}

// next is the next line the client wrote.
func (c *esClient) next() clientLine {
	GinkgoHelper()
	var line clientLine
	Eventually(c.lines).Should(Receive(&line), "client.mjs wrote no further line")
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
