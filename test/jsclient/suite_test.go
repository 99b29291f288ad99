// Package jsclient_test runs Herald's JavaScript client (clients/js) under
// Node against real streamers: each streamer runs in the test process on a
// loopback port behind a TCP front that the test can stall (a client that
// stops reading) or point at another streamer (a rolling update);
// client.mjs runs the client with the eventsource package as its EventSource
// and reports what it did; the specs compare that with what was published
// and with what the streamer counted.
//
// The npm packages are pinned by package-lock.json and installed by
// hack/npm-deps.sh, which `make test` runs before `go test`.
package jsclient_test

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"os/exec"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	. "github.com/onsi/ginkgo/v2"
	. "github.com/onsi/gomega"
	"go.uber.org/goleak"

	notifyv1alpha1 "github.com/herald-notify/herald/api/v1alpha1"
	"github.com/herald-notify/herald/internal/testutil"
	"github.com/herald-notify/herald/internal/testutil/streamertest"
	eventlog "github.com/herald-notify/herald/streamer/log"
	"github.com/herald-notify/herald/streamer/server"
)

const (
	// clientProgram runs the client; see its header for the lines it writes.
	clientProgram = "client.mjs"
	// installedLibrary exists once hack/npm-deps.sh has run.
	installedLibrary = "node_modules/eventsource/package.json"
	installHint      = "run make test, which installs them via hack/npm-deps.sh"
)

var (
	nodeBin     string
	leaksBefore goleak.Option
	// httpClient makes the test's own requests. Without keep-alive no idle
	// connection outlives a spec, so the leak check at the end sees none.
	httpClient = &http.Client{Transport: &http.Transport{DisableKeepAlives: true}}
)

func TestJSClient(t *testing.T) {
	testutil.RunSuite(t, "the JavaScript client against real streamers")
}

var _ = BeforeSuite(func() {
	SetDefaultEventuallyTimeout(10 * time.Second)
	var err error
	nodeBin, err = exec.LookPath("node")
	// A missing Node fails the suite rather than skipping it.
	Expect(err).NotTo(HaveOccurred(), "node is not on PATH: this suite runs clients/js under Node.js 20 or newer; "+
		"install Node.js and npm (Debian: apt-get install nodejs npm), then "+installHint)
	Expect(installedLibrary).To(BeAnExistingFile(), "the suite's npm packages are not installed: "+installHint)
	leaksBefore = goleak.IgnoreCurrent()
})

var _ = AfterSuite(func() {
	Eventually(func() error { return goleak.Find(leaksBefore) }).Should(Succeed())
})

// streamer is a running server: direct serves the test's own requests, ops
// its metrics.
type streamer struct {
	srv    *server.Server
	direct *httptest.Server
	ops    *httptest.Server
	secret []byte
}

// startStreamer serves a channel over log (nil: an embedded one), its spec
// adjusted by edit, until the spec ends.
func startStreamer(log eventlog.Log, edit func(spec *notifyv1alpha1.NotificationChannelSpec)) *streamer {
	GinkgoHelper()
	srv, secret, err := streamertest.NewOver(log, edit, 0)
	Expect(err).NotTo(HaveOccurred())
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() { srv.Run(ctx); close(done) }()
	s := &streamer{srv: srv, direct: httptest.NewServer(srv.Handler()), ops: httptest.NewServer(srv.OpsHandler()), secret: secret}
	// Each request on a connection of its own: a client's pooled connection
	// never carries a request to a streamer the front no longer points at.
	s.direct.Config.SetKeepAlivesEnabled(false)
	DeferCleanup(func() {
		s.direct.CloseClientConnections()
		s.direct.Close()
		s.ops.Close()
		cancel()
		Eventually(done).Should(BeClosed())
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		Expect(srv.WaitStreams(ctx)).To(Succeed(), "every stream ended")
	})
	return s
}

// token signs a token for user valid for ttl, with the publish grant when
// publish is set.
func (s *streamer) token(user string, publish bool, ttl time.Duration) string {
	GinkgoHelper()
	t, err := streamertest.Token(s.secret, user, publish, ttl)
	Expect(err).NotTo(HaveOccurred())
	return t
}

// publish POSTs body to a publish endpoint, expects 202 and returns the
// decoded answer.
func (s *streamer) publish(path string, body map[string]any) map[string]any {
	GinkgoHelper()
	payload, err := json.Marshal(body)
	Expect(err).NotTo(HaveOccurred())
	req, err := http.NewRequest(http.MethodPost, s.direct.URL+path, bytes.NewReader(payload))
	Expect(err).NotTo(HaveOccurred())
	req.Header.Set("Content-Type", "application/json")
	req.Header.Set("Authorization", "Bearer "+s.token("backend", true, time.Hour))
	resp, err := httpClient.Do(req)
	Expect(err).NotTo(HaveOccurred())
	defer resp.Body.Close()
	var answer map[string]any
	Expect(json.NewDecoder(resp.Body).Decode(&answer)).To(Succeed())
	Expect(resp.StatusCode).To(Equal(http.StatusAccepted), "%s answered %v", path, answer)
	return answer
}

// notify publishes a notification to u1, the user of the specs' clients,
// and returns its event id.
func (s *streamer) notify() string {
	GinkgoHelper()
	answer := s.publish("/api/v1/notifications", map[string]any{
		"recipientUserIds": []string{"u1"}, "notificationType": "VOCAB_TRAINER", "action": "CREATE", "priority": "LOW",
		"data": map[string]any{"message": "New vocab trainer available"},
	})
	Expect(answer).To(HaveKeyWithValue("eventIds", HaveLen(1)))
	return answer["eventIds"].([]any)[0].(string)
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

// openStream opens a stream of user over the direct front, which the spec
// holds until it ends, and waits for its first bytes.
func (s *streamer) openStream(user string) {
	GinkgoHelper()
	req, err := http.NewRequest(http.MethodGet, s.direct.URL+server.StreamPath, nil)
	Expect(err).NotTo(HaveOccurred())
	req.Header.Set("Authorization", "Bearer "+s.token(user, false, time.Hour))
	resp, err := httpClient.Do(req)
	Expect(err).NotTo(HaveOccurred())
	DeferCleanup(resp.Body.Close)
	Expect(resp.StatusCode).To(Equal(http.StatusOK))
	_, err = bufio.NewReader(resp.Body).ReadString('\n')
	Expect(err).NotTo(HaveOccurred())
}

// tokenIssuer is where client.mjs's getToken fetches the user's current
// token: a fresh one, valid for ttl, signed with the key of the streamer it
// issues for, on every request.
type tokenIssuer struct {
	*httptest.Server
	ttl time.Duration
	// streamer is the one whose key signs the tokens.
	streamer atomic.Pointer[streamer]
	// spoilNext makes the next token one signed with another key.
	spoilNext atomic.Bool
}

// issueTokens issues tokens of user for s.
func (s *streamer) issueTokens(user string, ttl time.Duration) *tokenIssuer {
	i := &tokenIssuer{ttl: ttl}
	i.streamer.Store(s)
	i.Server = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) {
		secret := i.streamer.Load().secret
		if i.spoilNext.CompareAndSwap(true, false) {
			secret = []byte("not the channel's key, but long enough")
		}
		t, err := streamertest.Token(secret, user, false, i.ttl)
		if err != nil {
			http.Error(w, err.Error(), http.StatusInternalServerError)
			return
		}
		_, _ = io.WriteString(w, t)
	}))
	DeferCleanup(i.Close)
	return i
}

// front is the TCP front the client connects through: it forwards each
// connection to the streamer it points at when the connection is accepted,
// and, while stalled, stops reading from the streamers, as a client that
// does not keep up would.
type front struct {
	listener net.Listener
	upstream atomic.Pointer[string]

	mu      sync.Mutex
	conns   []net.Conn
	stalled gate // shut while the streamer's bytes are held back
	// accepting is closed when the accept loop has returned.
	accepting chan struct{}
	// copies are the goroutines copying the connections' bytes.
	copies sync.WaitGroup
}

func startFront(to *streamer) *front {
	GinkgoHelper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	Expect(err).NotTo(HaveOccurred())
	f := &front{listener: l, accepting: make(chan struct{})}
	f.pointAt(to)
	go f.accept()
	DeferCleanup(func() {
		_ = l.Close()
		<-f.accepting
		f.unstall()
		f.mu.Lock()
		for _, c := range f.conns {
			_ = c.Close()
		}
		f.mu.Unlock()
		f.copies.Wait()
	})
	return f
}

// url is the base URL the client connects to.
func (f *front) url() string { return "http://" + f.listener.Addr().String() }

// pointAt sends new connections to s.
func (f *front) pointAt(s *streamer) {
	addr := strings.TrimPrefix(s.direct.URL, "http://")
	f.upstream.Store(&addr)
}

func (f *front) stall() { f.stalled.close() }

func (f *front) unstall() { f.stalled.open() }

// cut closes every connection through the front, as a network drop would.
func (f *front) cut() {
	f.mu.Lock()
	defer f.mu.Unlock()
	for _, c := range f.conns {
		_ = c.Close()
	}
	f.conns = nil
}

// track records c for the cleanup.
func (f *front) track(c net.Conn) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.conns = append(f.conns, c)
}

func (f *front) accept() {
	defer close(f.accepting)
	for {
		client, err := f.listener.Accept()
		if err != nil {
			return
		}
		streamerConn, err := net.Dial("tcp", *f.upstream.Load())
		if err != nil {
			_ = client.Close()
			continue
		}
		f.track(client)
		f.track(streamerConn)
		f.copies.Add(2)
		go func() {
			defer f.copies.Done()
			_, _ = io.Copy(streamerConn, client)
			_ = streamerConn.(*net.TCPConn).CloseWrite()
		}()
		go func() {
			defer f.copies.Done()
			f.copyDown(client, streamerConn)
			_ = client.Close()
			_ = streamerConn.Close()
		}()
	}
}

// copyDown copies what the streamer sends to the client, waiting before
// each read while the front is stalled.
func (f *front) copyDown(client, streamerConn net.Conn) {
	buf := make([]byte, 32<<10)
	for {
		if stalled := f.stalled.closed(); stalled != nil {
			<-stalled
		}
		n, err := streamerConn.Read(buf)
		if n > 0 {
			if _, werr := client.Write(buf[:n]); werr != nil {
				return
			}
		}
		if err != nil {
			return
		}
	}
}

// line is one line client.mjs wrote.
type line struct {
	Kind string `json:"kind"`
	// State, Reason and RetryInMs are a state change's.
	State     string   `json:"state"`
	Reason    string   `json:"reason"`
	RetryInMs *float64 `json:"retryInMs"`
	// Type, ID and Data are an event's (kind event, notification, system,
	// custom).
	Type string         `json:"type"`
	ID   string         `json:"id"`
	Data map[string]any `json:"data"`
	// Method and URL are a request's.
	Method string `json:"method"`
	URL    string `json:"url"`
	// T is when, in Unix milliseconds.
	T int64 `json:"t"`
}

func (l line) at() time.Time { return time.UnixMilli(l.T) }

// jsClient is a running client.mjs.
type jsClient struct {
	lines chan line
}

// startClient runs the client against base with tokens from issuer, with
// extra merged into connect's options, until the spec ends: then its
// standard input is closed, on which it must close the client and exit 0.
func startClient(base string, issuer *tokenIssuer, extra map[string]any) *jsClient {
	GinkgoHelper()
	options, err := json.Marshal(extra)
	Expect(err).NotTo(HaveOccurred())
	ctx, kill := context.WithCancel(context.Background())
	DeferCleanup(kill) // runs last: no Node process outlives the spec
	cmd := exec.CommandContext(ctx, nodeBin, clientProgram, base, issuer.URL, string(options))
	cmd.Stderr = GinkgoWriter
	cmd.WaitDelay = 5 * time.Second
	stdin, err := cmd.StdinPipe()
	Expect(err).NotTo(HaveOccurred())
	stdout, err := cmd.StdoutPipe()
	Expect(err).NotTo(HaveOccurred())
	Expect(cmd.Start()).To(Succeed())

	c := &jsClient{lines: make(chan line, 10000)}
	quit, exited := make(chan struct{}), make(chan struct{})
	var waitErr error
	go func() {
		defer close(exited)
		scanner := bufio.NewScanner(stdout)
		scanner.Buffer(nil, 1<<20)
		for scanner.Scan() {
			var l line
			if err := json.Unmarshal(scanner.Bytes(), &l); err != nil {
				l = line{Kind: "unparsable", Reason: scanner.Text()}
			}
			select {
			case c.lines <- l:
			case <-quit: // read on, so that Node never blocks writing
			}
		}
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

// next is the next line of one of kinds, the others skipped.
func (c *jsClient) next(kinds ...string) line {
	GinkgoHelper()
	for {
		var l line
		Eventually(c.lines, 20*time.Second).Should(Receive(&l), "client.mjs wrote no further %v line", kinds)
		Expect(l.Kind).NotTo(Equal("unparsable"), l.Reason)
		for _, k := range kinds {
			if l.Kind == k {
				return l
			}
		}
	}
}

// expectState expects the next state change to be state for reason.
func (c *jsClient) expectState(state, reason string) line {
	GinkgoHelper()
	l := c.next("state")
	Expect(l).To(And(HaveField("State", state), HaveField("Reason", reason)), "%+v", l)
	return l
}

// expectEvent expects the next event of the stream (of any kind but state
// and request lines) to be of type typ, and returns it.
func (c *jsClient) expectEvent(typ string) line {
	GinkgoHelper()
	l := c.next("event", "notification", "system", "custom")
	if l.Kind != "event" {
		l.Type = l.Kind
	}
	Expect(l.Type).To(Equal(typ), "%+v", l)
	return l
}

// expectOpened expects the client to trade a token for a ticket and open a
// stream with it, resuming from lastID ("" for none), and returns the
// stream's connection event and its request.
func (c *jsClient) expectOpened(lastID string) (hello, request line) {
	GinkgoHelper()
	Expect(c.next("token")).NotTo(BeZero())
	ticket := c.next("request")
	Expect(ticket.Method).To(Equal(http.MethodPost))
	Expect(ticket.URL).To(HaveSuffix(server.TicketsPath))
	stream := c.next("request")
	Expect(stream.Method).To(Equal(http.MethodGet))
	Expect(stream.URL).To(ContainSubstring(server.StreamPath + "?ticket="))
	if lastID == "" {
		Expect(stream.URL).NotTo(ContainSubstring("lastEventId"))
	} else {
		Expect(stream.URL).To(HaveSuffix("&lastEventId=" + lastID))
	}
	hello = c.expectEvent("connection")
	c.expectState("open", "connected")
	return hello, stream
}
