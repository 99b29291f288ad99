// Package freeport finds loopback ports for test servers that a test stops
// and starts again on the same ports.
package freeport

import (
	"fmt"
	"math/rand/v2"
	"net"
	"os"
	"strconv"
	"strings"
)

// Stable returns n distinct loopback ports, free now, below the kernel's
// range of ephemeral ports. A port the kernel picks for a listener (port 0)
// is in that range, where any outgoing connection made meanwhile (a client
// reconnecting to another server) may take it as its source port, and a
// server started again on it then fails with "address already in use".
// Where the range is not known (not Linux), the kernel picks them.
func Stable(n int) ([]int, error) {
	listeners := make([]net.Listener, 0, n)
	defer func() {
		for _, l := range listeners {
			_ = l.Close()
		}
	}()
	// Listening on each until all are found keeps them distinct.
	low, known := ephemeralLow()
	first := max(1024, low-16384)
	for attempts := 0; len(listeners) < n; attempts++ {
		addr := "127.0.0.1:0"
		if known {
			if attempts == 100*n {
				return nil, fmt.Errorf("no %d free loopback ports in %d-%d", n, first, low-1)
			}
			addr = net.JoinHostPort("127.0.0.1", strconv.Itoa(first+rand.IntN(low-first)))
		}
		l, err := net.Listen("tcp", addr)
		if err != nil {
			if known {
				continue
			}
			return nil, fmt.Errorf("failed to find a free loopback port: %w", err)
		}
		listeners = append(listeners, l)
	}
	ports := make([]int, n)
	for i, l := range listeners {
		ports[i] = l.Addr().(*net.TCPAddr).Port
	}
	return ports, nil
}

// StableAddr is one loopback address ("127.0.0.1:port") of Stable.
func StableAddr() (string, error) {
	ports, err := Stable(1)
	if err != nil {
		return "", err
	}
	return net.JoinHostPort("127.0.0.1", strconv.Itoa(ports[0])), nil
}

// ephemeralLow is the first port of the kernel's ephemeral range.
func ephemeralLow() (int, bool) {
	data, err := os.ReadFile("/proc/sys/net/ipv4/ip_local_port_range")
	if err != nil {
		return 0, false
	}
	fields := strings.Fields(string(data))
	if len(fields) != 2 {
		return 0, false
	}
	low, err := strconv.Atoi(fields[0])
	return low, err == nil && low > 2048
}
