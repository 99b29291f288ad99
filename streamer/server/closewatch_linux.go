//go:build linux

package server

import (
	"sync"
	"syscall"
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
// are not read and do not wake the watcher. Events name the stream by an ID
// of the watcher's, never the file descriptor, which the kernel reuses once a
// connection is closed. A connection that this process closes (rather than
// shuts down) leaves the epoll set without an event; only the stream closes
// its connection, so that is noticed at the stream's next write at worst.
type closeWatcher struct {
	mu      sync.Mutex
	epfd    int
	running bool
	lastID  uint64
	streams map[uint64]*stream
}

// closeWatchWait is how long the watcher waits for events before it checks
// whether any stream is left to watch, in milliseconds.
const closeWatchWait = 1000

// add watches the detached stream st's socket fd and returns the ID to
// remove it with; when the client goes away, st.clientGone is called. An
// error means fd cannot be watched this way.
func (cw *closeWatcher) add(fd int, st *stream) (uint64, error) {
	cw.mu.Lock()
	defer cw.mu.Unlock()
	if !cw.running {
		epfd, err := syscall.EpollCreate1(syscall.EPOLL_CLOEXEC)
		if err != nil {
			return 0, err
		}
		cw.epfd, cw.running = epfd, true
		if cw.streams == nil {
			cw.streams = map[uint64]*stream{}
		}
		go cw.run(epfd)
	}
	cw.lastID++
	id := cw.lastID
	ev := syscall.EpollEvent{Events: syscall.EPOLLRDHUP | syscall.EPOLLONESHOT, Fd: int32(uint32(id)), Pad: int32(uint32(id >> 32))}
	if err := syscall.EpollCtl(cw.epfd, syscall.EPOLL_CTL_ADD, fd, &ev); err != nil {
		return 0, err
	}
	cw.streams[id] = st
	return id, nil
}

// remove stops watching the stream id, before its connection is closed.
// Closing the connection takes it out of the epoll instance; an event still
// on its way for id finds no stream and is dropped.
func (cw *closeWatcher) remove(id uint64) {
	cw.mu.Lock()
	defer cw.mu.Unlock()
	delete(cw.streams, id)
}

// run waits for events until no stream is left to watch, then closes the
// epoll instance; add starts a new one.
func (cw *closeWatcher) run(epfd int) {
	events := make([]syscall.EpollEvent, 256)
	var gone []*stream
	for {
		n, err := syscall.EpollWait(epfd, events, closeWatchWait)
		if err != nil {
			n = 0 // EINTR; nothing else is expected of a valid instance
		}
		cw.mu.Lock()
		for _, ev := range events[:n] {
			id := uint64(uint32(ev.Fd)) | uint64(uint32(ev.Pad))<<32
			if st, ok := cw.streams[id]; ok {
				gone = append(gone, st)
				delete(cw.streams, id)
			}
		}
		last := len(cw.streams) == 0
		if last {
			cw.running = false
			_ = syscall.Close(epfd)
		}
		cw.mu.Unlock()
		for _, st := range gone {
			st.clientGone()
		}
		clear(gone)
		gone = gone[:0]
		if last {
			return
		}
	}
}
