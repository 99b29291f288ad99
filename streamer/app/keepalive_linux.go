package app

import (
	"errors"
	"net"
	"syscall"
)

// keepAlive are the TCP keep-alive settings of accepted connections: net's
// defaults (15 s idle, then a probe every 15 s, dropped after 9 unanswered).
var keepAlive = struct{ idleSeconds, intervalSeconds, count int }{15, 15, 9}

// listenConfig is how the streamer's listeners open their socket. A socket
// accepted on Linux inherits the listening socket's keep-alive settings, so
// they are set once on the listener, instead of by net with four setsockopt
// calls on every accepted connection (about 5 % of a connect's CPU).
func listenConfig() *net.ListenConfig {
	return &net.ListenConfig{
		KeepAlive: -1,
		Control: func(_, _ string, c syscall.RawConn) error {
			var setErr error
			err := c.Control(func(fd uintptr) { setErr = setKeepAlive(int(fd)) })
			return errors.Join(err, setErr)
		},
	}
}

// setKeepAlive enables TCP keep-alive on socket fd with keepAlive's settings.
func setKeepAlive(fd int) error {
	return errors.Join(
		syscall.SetsockoptInt(fd, syscall.SOL_SOCKET, syscall.SO_KEEPALIVE, 1),
		syscall.SetsockoptInt(fd, syscall.IPPROTO_TCP, syscall.TCP_KEEPIDLE, keepAlive.idleSeconds),
		syscall.SetsockoptInt(fd, syscall.IPPROTO_TCP, syscall.TCP_KEEPINTVL, keepAlive.intervalSeconds),
		syscall.SetsockoptInt(fd, syscall.IPPROTO_TCP, syscall.TCP_KEEPCNT, keepAlive.count),
	)
}
