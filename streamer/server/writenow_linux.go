//go:build linux

package server

import (
	"errors"
	"net"
	"os"
	"syscall"
	"time"
)

// socketFD is the descriptor of nc's socket when nc is a plain TCP
// connection, or -1.
func socketFD(nc net.Conn) int {
	tc, ok := nc.(*net.TCPConn)
	if !ok {
		return -1
	}
	fd := -1
	if err := controlFD(tc, func(s int) error { fd = s; return nil }); err != nil {
		return -1
	}
	return fd
}

// bareSocket duplicates the descriptor of nc, a plain TCP connection: the
// socket stays open once nc is closed, as a descriptor the caller owns, in
// non-blocking mode (a file status flag the duplicate shares).
func bareSocket(nc net.Conn) (int, error) {
	if _, ok := nc.(*net.TCPConn); !ok {
		return -1, errors.New("not a plain TCP connection")
	}
	fd := -1
	err := controlFD(nc, func(s int) error {
		var err error
		fd, err = dupCloexec(s)
		return err
	})
	return fd, err
}

func dupCloexec(fd int) (int, error) {
	for {
		r, _, errno := syscall.Syscall(syscall.SYS_FCNTL, uintptr(fd), syscall.F_DUPFD_CLOEXEC, 0)
		switch errno {
		case 0:
			return int(r), nil
		case syscall.EINTR:
			continue
		default:
			return -1, errno
		}
	}
}

// writeWaiting writes p to the bare socket fd, waiting for the client
// within timeout, through the runtime's poller: a duplicate of fd as an
// os.File, which is pollable and takes a deadline because the socket is
// non-blocking, for this write only.
func writeWaiting(fd int, p []byte, timeout time.Duration) error {
	dup, err := dupCloexec(fd)
	if err != nil {
		return err
	}
	f := os.NewFile(uintptr(dup), "stream")
	defer func() { _ = f.Close() }()
	if err := f.SetWriteDeadline(time.Now().Add(timeout)); err != nil {
		return err
	}
	_, err = f.Write(p)
	return err
}

// closeSocket closes the bare socket fd.
func closeSocket(fd int) error { return syscall.Close(fd) }

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
