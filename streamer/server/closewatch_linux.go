//go:build linux

package server

import (
	"sync"
	"syscall"

	"github.com/herald-notify/herald/streamer/hub"
)

// closeWatcher notices when clients close the connections of detached
// streams, for all of a server's streams at once: one epoll instance of its
// own, and one goroutine waiting on it while any stream is watched, instead
// of a goroutine per stream parked in a read (2 KiB of stack and a
// goroutine descriptor each; docs/benchmarks.md).
//
// A connection is registered for EPOLLRDHUP (the client shut down its
// side), and the kernel adds EPOLLHUP and EPOLLERR (reset): what net/http's
// background reader noticed as the end of its read. Bytes the client sends
// are not read and do not wake the watcher. Events name the stream by its
// hub id, never the file descriptor, which the kernel reuses once a
// connection is closed; the hub, which never reuses an id, finds the stream
// (gone): the watcher keeps no index of its own. A connection that this
// process closes (rather than shuts down) leaves the epoll set without an
// event; only the stream closes its connection, so that is noticed at the
// stream's next write at worst.
type closeWatcher struct {
	// gone ends the stream of an id whose client went away, if it is still
	// open. Set once, before any stream is watched.
	gone func(hub.StreamID)

	mu      sync.Mutex
	epfd    int
	running bool
	// watched counts the streams added and not yet removed.
	watched int
}

// closeWatchWait is how long the watcher waits for events before it checks
// whether any stream is left to watch, in milliseconds.
const closeWatchWait = 1000

// add watches the socket fd of the detached stream id, until remove; when
// the client goes away, gone(id) is called. An error means fd cannot be
// watched this way.
func (cw *closeWatcher) add(fd int, id hub.StreamID) error {
	cw.mu.Lock()
	defer cw.mu.Unlock()
	if !cw.running {
		epfd, err := syscall.EpollCreate1(syscall.EPOLL_CLOEXEC)
		if err != nil {
			return err
		}
		cw.epfd, cw.running = epfd, true
		go cw.run(epfd)
	}
	ev := syscall.EpollEvent{Events: syscall.EPOLLRDHUP | syscall.EPOLLONESHOT, Fd: int32(uint32(id)), Pad: int32(uint32(id >> 32))}
	if err := syscall.EpollCtl(cw.epfd, syscall.EPOLL_CTL_ADD, fd, &ev); err != nil {
		return err
	}
	cw.watched++
	return nil
}

// remove stops counting a stream that add watched, before its connection is
// closed. Closing the connection takes it out of the epoll instance; an
// event still on its way finds the stream closed in the hub.
func (cw *closeWatcher) remove() {
	cw.mu.Lock()
	defer cw.mu.Unlock()
	cw.watched--
}

// run waits for events until no stream is left to watch, then closes the
// epoll instance; add starts a new one.
func (cw *closeWatcher) run(epfd int) {
	events := make([]syscall.EpollEvent, 256)
	for {
		n, err := syscall.EpollWait(epfd, events, closeWatchWait)
		if err != nil {
			n = 0 // EINTR; nothing else is expected of a valid instance
		}
		for _, ev := range events[:n] {
			cw.gone(hub.StreamID(uint64(uint32(ev.Fd)) | uint64(uint32(ev.Pad))<<32))
		}
		cw.mu.Lock()
		last := cw.watched == 0
		if last {
			cw.running = false
			_ = syscall.Close(epfd)
		}
		cw.mu.Unlock()
		if last {
			return
		}
	}
}
