package main

import (
	"context"
	"fmt"
	"io"
	"net"
	"os"
	"sync"
	"syscall"
	"time"
)

// Floor is what the machine's kernel charges for the work every delivery
// needs, measured in the generator's own process before the scenarios: it
// says how much of a scenario's cost is the streamer's and how much is the
// machine's. A virtual machine's system calls can cost ten times a bare
// one's.
type Floor struct {
	// SyscallMicros is the time of the cheapest system call (getppid).
	SyscallMicros float64 `json:"syscallMicros"`
	// WriteMicros is the wall time of one 200-byte write to a loopback TCP
	// socket, of many to 200 sockets in turn.
	WriteMicros float64 `json:"loopbackWriteMicros"`
	// WriteReadCPUMicros is the CPU time of such a write and of reading it at
	// the other end: the least one delivery costs both processes together
	// when every event is a write of its own.
	WriteReadCPUMicros float64 `json:"loopbackWriteReadCPUMicros"`
	// Broadcast is the same write as a paced broadcast sees it, to 200 and
	// to 10,000 sockets in turn, with the readers parked in this process
	// or in another (BroadcastFloor).
	Broadcast []BroadcastFloor `json:"broadcastWrites"`
	// Connect is what accepting a stream's connection costs at least
	// (ConnectFloor); measured when the connect scenario runs.
	Connect *ConnectFloor `json:"connect,omitempty"`
}

// Sizes of the floor measurement.
const (
	floorSyscalls = 200000
	floorConns    = 200
	floorRounds   = 200
	floorFrame    = 200
)

// measureFloor measures the machine's floor; connects, when above 0, is
// how many connections the connect floor opens, concurrency at a time.
func measureFloor(ctx context.Context, connects, concurrency int) (Floor, error) {
	var f Floor
	start := time.Now()
	for range floorSyscalls {
		syscall.Getppid()
	}
	f.SyscallMicros = float64(time.Since(start).Microseconds()) / floorSyscalls

	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return f, err
	}
	defer func() { _ = ln.Close() }()
	var readers sync.WaitGroup
	writers := make([]net.Conn, 0, floorConns)
	defer func() {
		for _, c := range writers {
			_ = c.Close()
		}
		readers.Wait()
	}()
	for range floorConns {
		w, err := net.Dial("tcp", ln.Addr().String())
		if err != nil {
			return f, err
		}
		writers = append(writers, w)
		r, err := ln.Accept()
		if err != nil {
			return f, err
		}
		readers.Go(func() {
			_, _ = io.Copy(io.Discard, r)
			_ = r.Close()
		})
	}
	cpu0, err := processCPU(os.Getpid())
	if err != nil {
		return f, err
	}
	frame := make([]byte, floorFrame)
	start = time.Now()
	for range floorRounds {
		for _, w := range writers {
			if _, err := w.Write(frame); err != nil {
				return f, err
			}
		}
	}
	wall := time.Since(start)
	// Let the readers drain what is in flight before reading the CPU time.
	time.Sleep(100 * time.Millisecond)
	cpu1, err := processCPU(os.Getpid())
	if err != nil {
		return f, err
	}
	const writes = floorConns * floorRounds
	f.WriteMicros = float64(wall.Microseconds()) / writes
	f.WriteReadCPUMicros = float64((cpu1 - cpu0).Microseconds()) / writes
	if f.Broadcast, err = measureBroadcastFloors(ctx); err != nil {
		return f, err
	}
	if connects > 0 {
		if f.Connect, err = measureConnectFloor(ctx, connects, concurrency); err != nil {
			return f, fmt.Errorf("the connect floor: %w", err)
		}
	}
	return f, nil
}
