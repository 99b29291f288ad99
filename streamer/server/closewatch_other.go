//go:build !linux

package server

import (
	"errors"

	"github.com/herald-notify/herald/streamer/hub"
)

// closeWatcher is the shared watcher of closed connections, on Linux only:
// elsewhere each detached stream watches its own (stream.watch).
type closeWatcher struct {
	gone func(hub.StreamID)
}

func (*closeWatcher) add(int, hub.StreamID) error {
	return errors.New("no shared close watcher on this system")
}

func (*closeWatcher) remove() {}
