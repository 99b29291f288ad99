package server_test

import (
	"bufio"
	"context"
	"crypto/tls"
	"crypto/x509"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"os"
	"runtime"
	"strconv"
	"strings"
	"time"

	. "github.com/onsi/ginkgo/v2"
	. "github.com/onsi/gomega"

	notifyv1alpha1 "github.com/herald-notify/herald/api/v1alpha1"
	"github.com/herald-notify/herald/internal/testutil/streamertest"
	"github.com/herald-notify/herald/streamer/server"
	"github.com/herald-notify/herald/streamer/sse"
)

// rawStream is a stream over an HTTP/1.1 connection, plain or TLS, read
// byte for byte as the server wrote it.
type rawStream struct {
	conn net.Conn
	r    *bufio.Reader
}

// openRaw sends a stream request for user over a new connection, with the
// extra header lines given, and returns it before reading anything.
func (s *streamer) openRaw(user string, ttl time.Duration, extra ...string) *rawStream {
	GinkgoHelper()
	var conn net.Conn
	var err error
	if s.http.TLS != nil {
		roots := x509.NewCertPool()
		roots.AddCert(s.http.Certificate())
		conn, err = tls.Dial("tcp", s.http.Listener.Addr().String(), &tls.Config{RootCAs: roots, NextProtos: []string{"http/1.1"}})
	} else {
		conn, err = net.Dial("tcp", s.http.Listener.Addr().String())
	}
	Expect(err).NotTo(HaveOccurred())
	DeferCleanup(func() { _ = conn.Close() })
	_, err = fmt.Fprintf(conn, "GET %s HTTP/1.1\r\nHost: herald\r\nAccept: text/event-stream\r\nAuthorization: Bearer %s\r\n%s\r\n",
		server.StreamPath, s.token(user, false, ttl), strings.Join(extra, ""))
	Expect(err).NotTo(HaveOccurred())
	return &rawStream{conn: conn, r: bufio.NewReader(conn)}
}

// head reads the status line and the header lines, as written.
func (c *rawStream) head() (status string, lines []string) {
	GinkgoHelper()
	Expect(c.conn.SetReadDeadline(time.Now().Add(10 * time.Second))).To(Succeed())
	status = c.line()
	for {
		l := c.line()
		if l == "" {
			return status, lines
		}
		lines = append(lines, l)
	}
}

// chunk reads one chunk of the chunked body: its data, empty for the last.
func (c *rawStream) chunk() string {
	GinkgoHelper()
	Expect(c.conn.SetReadDeadline(time.Now().Add(10 * time.Second))).To(Succeed())
	size, err := strconv.ParseUint(c.line(), 16, 64)
	Expect(err).NotTo(HaveOccurred(), "a chunk starts with its size in hex")
	data := make([]byte, size)
	_, err = io.ReadFull(c.r, data)
	Expect(err).NotTo(HaveOccurred())
	Expect(c.line()).To(BeEmpty(), "a chunk's data ends with CRLF")
	return string(data)
}

// dataChunk reads chunks until one that is not a keep-alive comment.
func (c *rawStream) dataChunk() string {
	GinkgoHelper()
	for {
		if data := c.chunk(); !strings.HasPrefix(data, ":") {
			return data
		}
	}
}

// expectClosed expects the server to close the connection, with nothing
// more to read.
func (c *rawStream) expectClosed() {
	GinkgoHelper()
	Expect(c.conn.SetReadDeadline(time.Now().Add(10 * time.Second))).To(Succeed())
	n, err := c.r.Read(make([]byte, 1))
	Expect(n).To(BeZero())
	Expect(err).To(MatchError(io.EOF))
}

func (c *rawStream) line() string {
	GinkgoHelper()
	l, err := c.r.ReadString('\n')
	Expect(err).NotTo(HaveOccurred())
	Expect(l).To(HaveSuffix("\r\n"))
	return strings.TrimSuffix(l, "\r\n")
}

var _ = Describe("an HTTP/1.1 stream, written off net/http's request path", func() {
	It("answers with exactly the stream headers and chunked framing, each write one whole chunk", func() {
		s := startStreamer(func(spec *notifyv1alpha1.NotificationChannelSpec) {
			spec.CORS.AllowedOrigins = []string{"https://app.example"}
		})
		c := s.openRaw("u1", time.Hour, "Origin: https://app.example\r\n")
		status, lines := c.head()
		Expect(status).To(Equal("HTTP/1.1 200 OK"))
		Expect(lines).To(ConsistOf(
			"Access-Control-Allow-Credentials: true",
			"Access-Control-Allow-Origin: https://app.example",
			"Cache-Control: no-cache, no-transform",
			"Connection: keep-alive",
			"Content-Type: text/event-stream",
			MatchRegexp(`^Date: \w{3}, \d{2} \w{3} \d{4} \d{2}:\d{2}:\d{2} GMT$`),
			"Referrer-Policy: no-referrer",
			"Transfer-Encoding: chunked",
			"Vary: Origin",
			"X-Accel-Buffering: no",
			"X-Content-Type-Options: nosniff",
		))

		hello := c.chunk()
		Expect(hello).To(HavePrefix("retry: 3000\n"))
		Expect(hello).To(ContainSubstring("\nid: "))
		Expect(hello).To(ContainSubstring(`"type":"connection"`))
		Expect(hello).To(HaveSuffix("\n\n"), "a chunk holds whole frames")

		id := s.custom("hello", "u1")
		Expect(c.dataChunk()).To(HavePrefix("id: " + id + "\n"))
	})

	It("is readable by Go's HTTP client and the SSE reader, keep-alives included", func() {
		s := startStreamer(func(spec *notifyv1alpha1.NotificationChannelSpec) {
			spec.Connections.KeepAliveInterval.Duration = 200 * time.Millisecond
		})
		c := s.connectAs("u1")
		Expect(c.resp.Proto).To(Equal("HTTP/1.1"))
		Expect(c.resp.TransferEncoding).To(Equal([]string{"chunked"}))
		Expect(c.resp.ContentLength).To(Equal(int64(-1)))
		Expect(c.resp.Header.Get("Connection")).To(Equal("keep-alive"))
		_, hello := c.nextJSON()
		Expect(hello).To(HaveKeyWithValue("type", "connection"))
		Eventually(c.events).Should(Receive(HaveField("IsComment", true)))
		id := s.custom("after_keepalive", "u1")
		ev, _ := c.nextJSON()
		Expect(ev.ID).To(Equal(id))
	})

	for _, t := range []transport{overHTTP1, overTLSHTTP1} {
		closeWatchSpecs(t)
	}

	It("ends the response with the last chunk and closes the connection when the token expires", func() {
		s := startStreamer(nil)
		c := s.openRaw("u1", 3*time.Second)
		c.head()
		c.chunk()
		Expect(c.dataChunk()).To(ContainSubstring(`"type":"token_expiring"`))
		Expect(c.dataChunk()).To(ContainSubstring(`"reason":"token_expired"`), "the end event, a chunk of its own")
		Expect(c.dataChunk()).To(BeEmpty(), "the terminating chunk")
		c.expectClosed()
		Eventually(s.srv.Streams).Should(Equal(0))
	})

	It("writes the drain's retry: hint as the last frame, then the last chunk, and WaitStreams returns", func() {
		s := startStreamer(func(spec *notifyv1alpha1.NotificationChannelSpec) {
			spec.Drain.GracePeriod.Duration = 200 * time.Millisecond
			spec.Drain.ReconnectJitter.Duration = 100 * time.Millisecond
		})
		c := s.openRaw("u1", time.Hour)
		c.head()
		c.chunk()
		accepted := s.custom("maintenance")

		s.srv.Drain(GinkgoT().Context())
		Expect(s.srv.WaitStreams(GinkgoT().Context())).To(Succeed())
		var body strings.Builder
		for {
			data := c.chunk()
			if data == "" {
				break // the terminating chunk
			}
			body.WriteString(data)
		}
		Expect(body.String()).To(HavePrefix("id: " + accepted + "\n"))
		Expect(body.String()).To(ContainSubstring(`"reason":"drain"`), "the end event")
		Expect(body.String()).To(MatchRegexp(`\n\nretry: \d+\n\n$`), "the retry: hint is the last frame")
		c.expectClosed()
		Expect(s.srv.Streams()).To(BeZero())
	})

	It("closes a slow consumer's connection, waiting for it to read no longer than the write timeout", func() {
		s := startStreamer(nil)
		c := s.openRaw("slow", time.Hour)
		Eventually(s.srv.Streams).Should(Equal(1))
		s.overwhelm("slow")
		Eventually(s.srv.Streams).Should(Equal(0))
		Expect(s.srv.WaitStreams(GinkgoT().Context())).To(Succeed(), "its writer gave up on the end event at the write deadline")
		By("reading what the kernel held, up to the server's close")
		Expect(c.conn.SetReadDeadline(time.Now().Add(10 * time.Second))).To(Succeed())
		_, err := io.Copy(io.Discard, c.conn)
		Expect(err).NotTo(HaveOccurred(), "the connection ends with EOF")
	})
})

var _ = Describe("a plain HTTP/1.1 stream on Linux, once open", func() {
	It("holds its socket without the net package's connection, delivers through it, and closes it when it ends", func() {
		if runtime.GOOS != "linux" {
			Skip("bare sockets are Linux's; elsewhere a detached stream keeps its connection")
		}
		s := startStreamer(nil)
		before := openDescriptors()
		users := usersNamed("bare", 10)
		streams := s.openRawAll(users)
		Eventually(func() int { return server.BareStreams(s.srv) }).Should(Equal(len(users)))

		By("delivering an event to each")
		id := s.custom("hello")
		for _, c := range streams {
			Expect(frameIDs(c.dataChunk())).To(ContainElement(id))
		}

		By("noticing each client go away, and closing each socket")
		for _, c := range streams {
			Expect(c.conn.Close()).To(Succeed())
		}
		Eventually(s.srv.Streams, 5*time.Second).Should(BeZero())
		Expect(s.srv.WaitStreams(GinkgoT().Context())).To(Succeed())
		// The close watcher's epoll instance goes too, within its wait; the
		// publish request's kept-alive connection is not the streams'.
		Eventually(func() int {
			s.client.CloseIdleConnections()
			return openDescriptors()
		}, 5*time.Second).Should(BeNumerically("<=", before), "no descriptor is left behind")
	})
})

var _ = Describe("a detached stream that ended", func() {
	It("leaves nothing that holds its state, whether its client went away or a newer stream replaced it", func() {
		s := startStreamer(nil)
		users := []string{"leaves", "replaced", "stays"}
		streams := s.openRawAll(users)
		Eventually(s.srv.Streams).Should(Equal(len(users)))
		left := server.Collected(s.srv, "leaves")
		replaced := server.Collected(s.srv, "replaced")
		stays := server.Collected(s.srv, "stays")
		Expect([]func() bool{left, replaced, stays}).NotTo(ContainElement(BeNil()))

		By("closing one client, and opening a newer stream for another user (one stream per user)")
		Expect(streams[0].conn.Close()).To(Succeed())
		newer := s.openRaw("replaced", time.Hour)
		newer.head()
		newer.chunk()
		Expect(streams[1].dataChunk()).To(ContainSubstring(`"reason":"replaced"`))
		Expect(streams[1].chunk()).To(BeEmpty(), "the last chunk")
		streams[1].expectClosed()
		Eventually(s.srv.Streams, 5*time.Second).Should(Equal(2))

		By("collecting garbage: the hub, the writers, the due instants and the close watcher let go of both")
		Eventually(left).Should(BeTrue())
		Eventually(replaced).Should(BeTrue())
		Expect(stays()).To(BeFalse(), "an open stream stays")
	})
})

// openDescriptors is how many file descriptors the process holds.
func openDescriptors() int {
	GinkgoHelper()
	entries, err := os.ReadDir("/proc/self/fd")
	Expect(err).NotTo(HaveOccurred())
	return len(entries)
}

var _ = Describe("an HTTP/2 stream", func() {
	It("stays on net/http's path: same headers, events, and the client's close noticed", func() {
		srv, secret, err := streamertest.New(nil, 2*time.Second)
		Expect(err).NotTo(HaveOccurred())
		ctx, cancel := context.WithCancel(context.Background())
		done := make(chan struct{})
		go func() { srv.Run(ctx); close(done) }()
		h2 := httptest.NewUnstartedServer(srv.Handler())
		h2.EnableHTTP2 = true
		h2.StartTLS()
		DeferCleanup(func() {
			h2.CloseClientConnections()
			h2.Close()
			cancel()
			Eventually(done).Should(BeClosed())
		})
		client := h2.Client()
		DeferCleanup(client.CloseIdleConnections)

		req, err := http.NewRequest(http.MethodGet, h2.URL+server.StreamPath, nil)
		Expect(err).NotTo(HaveOccurred())
		token, err := streamertest.Token(secret, "u1", false, time.Hour)
		Expect(err).NotTo(HaveOccurred())
		req.Header.Set("Authorization", "Bearer "+token)
		resp, err := client.Do(req)
		Expect(err).NotTo(HaveOccurred())
		Expect(resp.ProtoMajor).To(Equal(2))
		Expect(resp.TLS).NotTo(BeNil())
		Expect(resp.TLS.NegotiatedProtocol).To(Equal("h2"))
		Expect(resp.Header.Get("Content-Type")).To(Equal("text/event-stream"))
		Expect(resp.Header.Get("Cache-Control")).To(Equal("no-cache, no-transform"))
		Expect(resp.Header.Get("X-Accel-Buffering")).To(Equal("no"))
		Expect(resp.Header.Get("Connection")).To(BeEmpty(), "HTTP/2 has no Connection header")
		ev, err := sse.NewReader(resp.Body).Next()
		Expect(err).NotTo(HaveOccurred())
		Expect(ev.Data).To(ContainSubstring(`"type":"connection"`))
		Expect(srv.Streams()).To(Equal(1))

		Expect(resp.Body.Close()).To(Succeed())
		Eventually(srv.Streams).Should(Equal(0))
		Expect(srv.WaitStreams(GinkgoT().Context())).To(Succeed())
	})
})

// closeWatchSpecs are the specs of the close watcher, over t: plain or TLS
// HTTP/1.1, whose detached streams it watches through the socket.
func closeWatchSpecs(t transport) {
	It("notices a client closing its connection while the stream idles, over "+string(t), func() {
		// Keep-alive every 30s: only the close watcher can notice in time.
		s := startStreamerOn(t, nil, func(spec *notifyv1alpha1.NotificationChannelSpec) {
			spec.Connections.UserLimitPolicy = notifyv1alpha1.UserLimitReject
		})
		c := s.openRaw("u1", time.Hour)
		c.head()
		c.chunk()
		Eventually(s.srv.Streams).Should(Equal(1))
		Expect(s.metrics()).To(ContainSubstring("herald_connections 1"))

		Expect(c.conn.Close()).To(Succeed())
		Eventually(s.srv.Streams, 5*time.Second).Should(Equal(0))
		Eventually(s.metrics).Should(ContainSubstring("herald_connections 0"))
		Expect(s.metrics()).NotTo(ContainSubstring(`herald_disconnects_total{reason=`), "the client left; the server closed nothing")

		By("admitting the same user again at once: the per-user limit (1, reject) counts open streams")
		again := s.openRaw("u1", time.Hour)
		status, _ := again.head()
		Expect(status).To(Equal("HTTP/1.1 200 OK"))
	})

	It("keeps one goroutine per idle stream, over "+string(t), func() {
		if runtime.GOOS != "linux" {
			Skip("the shared close watcher is Linux's; elsewhere a stream has a watching goroutine of its own")
		}
		s := startStreamerOn(t, nil, nil)
		warm := s.openRaw("warm", time.Hour)
		warm.head()
		warm.chunk()
		before := runtime.NumGoroutine()
		const n = 40
		for i := range n {
			c := s.openRaw(fmt.Sprintf("user-%d", i), time.Hour)
			c.head()
			c.chunk()
		}
		// net/http's goroutines for each request end once the stream is detached.
		Eventually(func() int { return runtime.NumGoroutine() - before }).Should(BeNumerically("<=", n+2))
	})
}
