//go:build linux

package server

import (
	"net"
	"syscall"
)

// socketFD is the descriptor of nc's socket when nc is a plain TCP
// connection, or -1.
func socketFD(nc net.Conn) int {
	tc, ok := nc.(*net.TCPConn)
	if !ok {
		return -1
	}
	raw, err := tc.SyscallConn()
	if err != nil {
		return -1
	}
	fd := -1
	if err := raw.Control(func(s uintptr) { fd = int(s) }); err != nil {
		return -1
	}
	return fd
}

// writeNow writes p to the non-blocking socket fd as far as it takes it
// now, with one write system call (again if a signal interrupts it): n <
// len(p) and no error when the socket's buffer is full.
func writeNow(fd int, p []byte) (int, error) {
	for {
		n, err := syscall.Write(fd, p)
		switch err {
		case nil:
			return n, nil
		case syscall.EINTR:
			continue
		case syscall.EAGAIN:
			return 0, nil
		default:
			return 0, err
		}
	}
}
