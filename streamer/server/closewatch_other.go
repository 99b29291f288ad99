//go:build !linux

package server

import "errors"

// closeWatcher is the shared watcher of closed connections, on Linux only:
// elsewhere each detached stream watches its own (stream.watch).
type closeWatcher struct{}

func (*closeWatcher) add(int, *stream) (uint64, error) {
	return 0, errors.New("no shared close watcher on this system")
}

func (*closeWatcher) remove(uint64) {}
