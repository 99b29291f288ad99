//go:build !linux

package server

import (
	"errors"
	"net"
	"time"
)

// socketFD is -1: elsewhere than on Linux, every write of a detached stream
// goes through its connection, from a goroutine of the stream's own.
func socketFD(net.Conn) int { return -1 }

var errNoBareSockets = errors.New("no direct socket writes on this system")

func writeNow(int, []byte) (int, error) { return 0, errNoBareSockets }

// bareSocket fails: a detached stream keeps its connection.
func bareSocket(net.Conn) (int, error) { return -1, errNoBareSockets }

func writeWaiting(int, []byte, time.Duration) error { return errNoBareSockets }

func closeSocket(int) error { return errNoBareSockets }
