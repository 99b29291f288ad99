package server_test

import (
	"fmt"
	"net"
	"time"

	. "github.com/onsi/ginkgo/v2"
	. "github.com/onsi/gomega"

	"github.com/herald-notify/herald/streamer/server"
)

var _ = It("disconnects a client that stops reading, without holding up the others", func() {
	s := startStreamer(nil)
	fast := s.connectAs("fast")
	fast.next()

	By("opening a stream whose client never reads")
	conn, err := net.Dial("tcp", s.http.Listener.Addr().String())
	Expect(err).NotTo(HaveOccurred())
	DeferCleanup(conn.Close)
	_, err = fmt.Fprintf(conn, "GET %s HTTP/1.1\r\nHost: herald\r\nAuthorization: Bearer %s\r\n\r\n",
		server.StreamPath, s.token("slow", false, time.Hour))
	Expect(err).NotTo(HaveOccurred())
	Eventually(s.srv.Streams).Should(Equal(2))

	By("publishing to it until the socket buffers and then its send queue are full")
	s.overwhelm("slow")
	Eventually(s.srv.Streams).Should(Equal(1))

	By("still delivering to the client that reads")
	id := s.custom("after", "fast")
	ev, _ := fast.nextJSON()
	Expect(ev.ID).To(Equal(id))
})
