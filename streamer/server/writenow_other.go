//go:build !linux

package server

import (
	"errors"
	"net"
)

// socketFD is -1: elsewhere than on Linux, every write of a detached stream
// goes through its connection, from a goroutine of the stream's own.
func socketFD(net.Conn) int { return -1 }

func writeNow(int, []byte) (int, error) {
	return 0, errors.New("no direct socket writes on this system")
}
