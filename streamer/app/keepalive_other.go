//go:build !linux

package app

import "net"

// listenConfig is net's default: keep-alive set on every accepted connection.
func listenConfig() *net.ListenConfig { return &net.ListenConfig{} }
