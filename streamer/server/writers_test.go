package server_test

import (
	"fmt"
	"net"
	"runtime"
	"strings"
	"sync"
	"syscall"
	"time"

	. "github.com/onsi/ginkgo/v2"
	. "github.com/onsi/gomega"

	"github.com/herald-notify/herald/streamer/server"
)

// openRawAll opens a detached stream for each user, and reads its head and
// connection event.
func (s *streamer) openRawAll(users []string) []*rawStream {
	GinkgoHelper()
	streams := make([]*rawStream, len(users))
	for i, user := range users {
		streams[i] = s.openRaw(user, time.Hour)
		streams[i].head()
		streams[i].chunk()
	}
	return streams
}

func usersNamed(prefix string, n int) []string {
	users := make([]string, n)
	for i := range users {
		users[i] = fmt.Sprintf("%s-%d", prefix, i)
	}
	return users
}

// openStalled opens a stream for user over a connection whose client never
// reads, with a small receive buffer.
func (s *streamer) openStalled(user string) net.Conn {
	GinkgoHelper()
	dialer := net.Dialer{Control: func(_, _ string, c syscall.RawConn) error {
		var err error
		if cerr := c.Control(func(fd uintptr) {
			err = syscall.SetsockoptInt(int(fd), syscall.SOL_SOCKET, syscall.SO_RCVBUF, 4096)
		}); cerr != nil {
			return cerr
		}
		return err
	}}
	conn, err := dialer.Dial("tcp", s.http.Listener.Addr().String())
	Expect(err).NotTo(HaveOccurred())
	DeferCleanup(func() { _ = conn.Close() })
	_, err = fmt.Fprintf(conn, "GET %s HTTP/1.1\r\nHost: herald\r\nAuthorization: Bearer %s\r\n\r\n",
		server.StreamPath, s.token(user, false, time.Hour))
	Expect(err).NotTo(HaveOccurred())
	return conn
}

var _ = Describe("the writers of detached streams", func() {
	It("keep no goroutine for an idle stream", func() {
		s := startStreamer(nil)
		s.openRawAll([]string{"warm"})
		before := runtime.NumGoroutine()
		const n = 200
		s.openRawAll(usersNamed("idle", n))
		Expect(s.srv.Streams()).To(Equal(n + 1))
		// The writers end once the streams' openings are written.
		Eventually(func() int { return runtime.NumGoroutine() - before }).Should(BeNumerically("<", n/10))
	})

	It("leave one P to what feeds them: one writer fewer than GOMAXPROCS, at least one", func() {
		s := startStreamer(nil)
		Expect(server.Writers(s.srv)).To(Equal(max(1, runtime.GOMAXPROCS(0)-1)))
		Expect(server.DefaultWriters(1)).To(Equal(1))
		Expect(server.DefaultWriters(2)).To(Equal(1))
		Expect(server.DefaultWriters(8)).To(Equal(7))
		server.SetWriters(s.srv, 3)
		Expect(server.Writers(s.srv)).To(Equal(3))
	})

	It("read their bound again each time they start from none, so that a new GOMAXPROCS applies", func() {
		s := startStreamer(nil)
		c := s.openRawAll(usersNamed("reader", 1))[0]
		delivered := func(data string) {
			GinkgoHelper()
			id := s.custom(data)
			Eventually(func() []string { return frameIDs(c.dataChunk()) }).Should(ContainElement(id))
		}
		writers := func() []int { r, b := server.WritersRunning(s.srv); return []int{r, b} }
		delivered("before")
		Eventually(writers).Should(Equal([]int{0, server.DefaultWriters(runtime.GOMAXPROCS(0))}))

		DeferCleanup(runtime.GOMAXPROCS, runtime.GOMAXPROCS(4))
		delivered("after")
		Eventually(writers).Should(Equal([]int{0, 3}))
	})

	It("serve many streams with at most their bound of writers, each stream's events in order", func() {
		s := startStreamer(nil)
		const n, events = 100, 20
		streams := s.openRawAll(usersNamed("many", n))
		ids := make([]string, events)
		for i := range ids {
			ids[i] = s.custom(fmt.Sprintf("broadcast-%d", i))
		}
		for _, c := range streams {
			var got []string
			for len(got) < events {
				got = append(got, frameIDs(c.dataChunk())...)
			}
			Expect(got).To(Equal(ids))
		}
		Expect(server.WritersPeak(s.srv)).To(And(BeNumerically(">=", 1), BeNumerically("<=", server.Writers(s.srv))))
	})

	It("deliver to the others while one client's socket is full and its write waits", func() {
		s := startStreamerTimeout(overHTTP1, nil, nil, time.Minute)
		// One writer: had it waited for the stalled client, nothing else
		// would be written until the write timeout.
		server.SetWriters(s.srv, 1)
		users := usersNamed("reader", 5)
		readers := s.openRawAll(users)
		stalled := s.openStalled("stalled")
		Eventually(s.srv.Streams).Should(Equal(len(users) + 1))
		Eventually(func() int { return server.BareStreams(s.srv) }).Should(Equal(len(users)+1),
			"the waiting write goes through the bare socket's pollable duplicate")

		By("publishing to the client that never reads until a write to it waits")
		backend := s.token("backend", true, time.Hour)
		pad := strings.Repeat("x", 30000)
		Eventually(func() int {
			status, _ := s.publish("/api/v1/custom-events", backend, map[string]any{
				"eventType": "bulk", "userIds": []string{"stalled"}, "data": map[string]any{"pad": pad},
			})
			Expect(status).To(Equal(202))
			return server.WaitingWrites(s.srv)
		}).Should(Equal(1))

		By("delivering to every other stream meanwhile")
		for i, c := range readers {
			id := s.custom("hello", users[i])
			Expect(c.dataChunk()).To(HavePrefix("id: " + id + "\n"))
		}
		Expect(server.WaitingWrites(s.srv)).To(Equal(1), "the stalled client's write still waits")

		By("ending the stalled stream when its client goes away")
		Expect(stalled.Close()).To(Succeed())
		Eventually(func() int { return server.WaitingWrites(s.srv) }).Should(BeZero())
		Eventually(s.srv.Streams).Should(Equal(len(users)))
	})

	It("hold no write buffer and a small queue once a burst is written", func() {
		s := startStreamer(nil)
		const n, publishers, each = 4, 4, 50
		streams := s.openRawAll(usersNamed("burst", n))
		By("publishing a burst from several publishers at once")
		var wg sync.WaitGroup
		for p := range publishers {
			wg.Go(func() {
				defer GinkgoRecover()
				for range each {
					s.custom(fmt.Sprintf("burst-%d", p))
				}
			})
		}
		wg.Wait()
		By("reading all of it")
		for _, c := range streams {
			got := 0
			for got < publishers*each {
				got += len(frameIDs(c.dataChunk()))
			}
		}
		Eventually(func() int { buffers, _ := server.Holdings(s.srv); return buffers }).Should(BeZero())
		_, queued := server.Holdings(s.srv)
		Expect(queued).To(BeNumerically("<=", n), "a queue grown by the burst is released: at most one frame's room each")
	})
})

// frameIDs are the ids of the frames of a chunk, which holds whole frames.
func frameIDs(chunk string) []string {
	var ids []string
	for _, frame := range strings.SplitAfter(chunk, "\n\n") {
		if id, ok := strings.CutPrefix(strings.SplitN(frame, "\n", 2)[0], "id: "); ok {
			ids = append(ids, id)
		}
	}
	return ids
}
