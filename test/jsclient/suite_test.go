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
	"encoding/json"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	. "github.com/onsi/ginkgo/v2"
	. "github.com/onsi/gomega"

	notifyv1alpha1 "github.com/herald-notify/herald/api/v1alpha1"
	"github.com/herald-notify/herald/internal/testutil"
	"github.com/herald-notify/herald/internal/testutil/nodeclient"
	"github.com/herald-notify/herald/internal/testutil/streamertest"
	eventlog "github.com/herald-notify/herald/streamer/log"
	"github.com/herald-notify/herald/streamer/server"
)

// clientProgram runs the client; see its header for the lines it writes.
const clientProgram = "client.mjs"

func TestJSClient(t *testing.T) {
	testutil.RunSuite(t, "the JavaScript client against real streamers")
}

var node = nodeclient.SetUpSuite("clients/js", "eventsource")

// streamer is a running streamer: the specs' clients connect to its direct
// front, or through a front of their own.
type streamer struct {
	*nodeclient.Streamer
}

// startStreamer serves a channel over log (nil: an embedded one), its spec
// adjusted by edit, until the spec ends: then every stream it served has
// ended.
func startStreamer(log eventlog.Log, edit func(spec *notifyv1alpha1.NotificationChannelSpec)) *streamer {
	GinkgoHelper()
	s := &streamer{nodeclient.StartStreamer(nodeclient.StreamerOptions{Log: log, Edit: edit, WaitStreams: true})}
	// Each request on a connection of its own: a client's pooled connection
	// never carries a request to a streamer the front no longer points at.
	s.Direct.Config.SetKeepAlivesEnabled(false)
	return s
}

// notify publishes a notification to u1, the user of the specs' clients,
// and returns its event id.
func (s *streamer) notify() string {
	GinkgoHelper()
	answer := s.Publish("/api/v1/notifications", map[string]any{
		"recipientUserIds": []string{"u1"}, "notificationType": "VOCAB_TRAINER", "action": "CREATE", "priority": "LOW",
		"data": map[string]any{"message": "New vocab trainer available"},
	})
	Expect(answer).To(HaveKeyWithValue("eventIds", HaveLen(1)))
	return answer["eventIds"].([]any)[0].(string)
}

// openStream opens a stream of user over the direct front, which the spec
// holds until it ends, and waits for its first bytes.
func (s *streamer) openStream(user string) {
	GinkgoHelper()
	resp := s.OpenStream(user)
	_, err := bufio.NewReader(resp.Body).ReadString('\n')
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
		secret := i.streamer.Load().Secret
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
	stalled nodeclient.Gate // shut while the streamer's bytes are held back
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
	addr := strings.TrimPrefix(s.Direct.URL, "http://")
	f.upstream.Store(&addr)
}

func (f *front) stall() { f.stalled.Shut() }

func (f *front) unstall() { f.stalled.Open() }

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
		if stalled := f.stalled.Opening(); stalled != nil {
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
	*nodeclient.Process[line]
}

// startClient runs the client against base with tokens from issuer, with
// extra merged into connect's options, until the spec ends: then its
// standard input is closed, on which it must close the client and exit 0.
func startClient(base string, issuer *tokenIssuer, extra map[string]any) *jsClient {
	GinkgoHelper()
	options, err := json.Marshal(extra)
	Expect(err).NotTo(HaveOccurred())
	return &jsClient{nodeclient.Start(node, nodeclient.Program[line]{
		Script: clientProgram, Args: []string{base, issuer.URL, string(options)}, Buffer: 10000,
		Unparsable: func(text string) line { return line{Kind: "unparsable", Reason: text} },
	})}
}

// next is the next line of one of kinds, the others skipped.
func (c *jsClient) next(kinds ...string) line {
	GinkgoHelper()
	for {
		var l line
		Eventually(c.Lines, 20*time.Second).Should(Receive(&l), "client.mjs wrote no further %v line", kinds)
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
