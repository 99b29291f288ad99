package app

import (
	"context"
	"net"
	"syscall"

	. "github.com/onsi/ginkgo/v2"
	. "github.com/onsi/gomega"
)

var _ = Describe("listenConfig", func() {
	It("gives accepted connections the keep-alive settings net gives them, set once on the listener", func(ctx SpecContext) {
		ours, err := listenConfig().Listen(ctx, "tcp", "127.0.0.1:0")
		Expect(err).NotTo(HaveOccurred())
		defer func() { _ = ours.Close() }()
		nets, err := net.Listen("tcp", "127.0.0.1:0")
		Expect(err).NotTo(HaveOccurred())
		defer func() { _ = nets.Close() }()

		got := acceptedKeepAlive(ctx, ours)
		Expect(got).To(Equal([4]int{1, keepAlive.idleSeconds, keepAlive.intervalSeconds, keepAlive.count}))
		Expect(got).To(Equal(acceptedKeepAlive(ctx, nets)), "net's own settings")
	})
})

// acceptedKeepAlive connects to ln and returns the accepted socket's
// SO_KEEPALIVE, TCP_KEEPIDLE, TCP_KEEPINTVL and TCP_KEEPCNT.
func acceptedKeepAlive(ctx context.Context, ln net.Listener) [4]int {
	GinkgoHelper()
	client, err := (&net.Dialer{}).DialContext(ctx, "tcp", ln.Addr().String())
	Expect(err).NotTo(HaveOccurred())
	defer func() { _ = client.Close() }()
	conn, err := ln.Accept()
	Expect(err).NotTo(HaveOccurred())
	defer func() { _ = conn.Close() }()
	raw, err := conn.(*net.TCPConn).SyscallConn()
	Expect(err).NotTo(HaveOccurred())
	var values [4]int
	var errs [4]error
	Expect(raw.Control(func(fd uintptr) {
		for i, opt := range [4][2]int{
			{syscall.SOL_SOCKET, syscall.SO_KEEPALIVE},
			{syscall.IPPROTO_TCP, syscall.TCP_KEEPIDLE},
			{syscall.IPPROTO_TCP, syscall.TCP_KEEPINTVL},
			{syscall.IPPROTO_TCP, syscall.TCP_KEEPCNT},
		} {
			values[i], errs[i] = syscall.GetsockoptInt(int(fd), opt[0], opt[1])
		}
	})).To(Succeed())
	for _, err := range errs {
		Expect(err).NotTo(HaveOccurred())
	}
	return values
}
