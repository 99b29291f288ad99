package main

import (
	"bufio"
	"context"
	"encoding/binary"
	"errors"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"net"
	"os"
	"os/exec"
	"os/signal"
	"runtime"
	"slices"
	"strconv"
	"sync"
	"sync/atomic"
	"syscall"
	"time"
	"unsafe"
)

// BroadcastFloor is the floor's write as a broadcast sees it: a 200-byte
// write to each of Sockets loopback sockets in turn, one round per event,
// with the readers idle (their goroutines parked in the poller's
// epoll_wait) when a round starts, as a paced broadcast finds the clients.
// The rows differ in one thing at a time: the number of sockets, and
// whether the readers are goroutines of the writer's process or of another
// process, as the generator's clients are for the streamer.
type BroadcastFloor struct {
	Sockets int `json:"sockets"`
	// OtherProcess: the readers are in a child process of the generator.
	OtherProcess bool `json:"readersInOtherProcess"`
	// Writes is how many writes were timed.
	Writes int `json:"writes"`
	// WallMicros is the wall time of one write, over the rounds' write
	// loops only.
	WallMicros float64 `json:"wallMicros"`
	// WriterCPUMicros is the writing thread's CPU time of one write: what
	// the write costs the process that broadcasts, the kernel's loopback
	// delivery to the reader included.
	WriterCPUMicros float64 `json:"writerCPUMicros"`
	// ReaderCPUMicros is the readers' CPU time per write: waking up,
	// reading, parking again.
	ReaderCPUMicros float64 `json:"readerCPUMicros"`
	// ToLastReadMs is the median round's time from its first write to the
	// readers having read every socket's frame: a paced broadcast's
	// "publish to the last stream" with nothing but the writes, by one
	// thread.
	ToLastReadMs float64 `json:"toLastReadMs"`
}

// atScale is the broadcast floor a broadcast to many streams is measured
// against: the most sockets, readers in another process; nil if none was
// measured.
func (f Floor) atScale() *BroadcastFloor {
	var largest *BroadcastFloor
	for i, b := range f.Broadcast {
		if b.OtherProcess && (largest == nil || b.Sockets > largest.Sockets) {
			largest = &f.Broadcast[i]
		}
	}
	return largest
}

// busyNote is a note for the rows compared with the floor's write when its
// wall time was well above the CPU time of the same write (200 sockets,
// readers in the same process, paced), or "".
func (f Floor) busyNote() string {
	for _, b := range f.Broadcast {
		if !b.OtherProcess && b.Sockets == floorConns && b.WriterCPUMicros > 0 && f.WriteMicros > busyWallOverCPU*b.WriterCPUMicros {
			return fmt.Sprintf("; a busy machine: the floor's write took %.1f µs of wall time for %.1f µs of CPU, which flatters the ratio", f.WriteMicros, b.WriterCPUMicros)
		}
	}
	return ""
}

// Sizes of the broadcast floors. The largest is the broadcast scenario's
// 10,000 streams: with its readers in a child process, each process holds
// 10,000 sockets, within the 20,000 open files a process may have here (the
// same count in one process would not fit). A round at 10,000 sockets takes
// about 0.1 s; the whole measurement a few seconds.
var broadcastFloorSizes = []struct {
	sockets      int
	otherProcess bool
}{{floorConns, false}, {floorConns, true}, {goalToLastStreams, true}}

const (
	// broadcastFloorWrites is about how many writes each row times: the
	// rounds are this ÷ its sockets, at least broadcastFloorMinRounds.
	broadcastFloorWrites    = 40000
	broadcastFloorMinRounds = 8
	// broadcastFloorIdle is the pause before each round, in which the
	// readers, done with the round before, park: a paced broadcast's
	// clients wait for the next event in epoll_wait, not spinning.
	broadcastFloorIdle = 2 * time.Millisecond
	// broadcastFloorTimeout bounds a row: a reader that stops reading must
	// not hang the run.
	broadcastFloorTimeout = time.Minute
)

// clockThreadCPUTime is CLOCK_THREAD_CPUTIME_ID. Linux's clocks of CPU time
// (this one and processCPU's) are exact at the moment of the call, where
// getrusage's thread time lags by up to a scheduler tick (4 ms), longer than
// a round of 200 writes.
const clockThreadCPUTime = 3

// measureBroadcastFloors measures every size of broadcastFloorSizes.
func measureBroadcastFloors(ctx context.Context) ([]BroadcastFloor, error) {
	var out []BroadcastFloor
	for _, size := range broadcastFloorSizes {
		f, err := measureBroadcastFloor(ctx, size.sockets, size.otherProcess)
		if err != nil {
			return nil, fmt.Errorf("%d sockets (readers in another process: %t): %w", size.sockets, size.otherProcess, err)
		}
		out = append(out, f)
	}
	return out, nil
}

// measureBroadcastFloor opens sockets connections to readers, in this
// process or in a child, and times the rounds of writes to them.
func measureBroadcastFloor(ctx context.Context, sockets int, otherProcess bool) (BroadcastFloor, error) {
	f := BroadcastFloor{Sockets: sockets, OtherProcess: otherProcess}
	ctx, cancel := context.WithTimeout(ctx, broadcastFloorTimeout)
	defer cancel()
	var readers *floorReaders
	var err error
	if otherProcess {
		readers, err = startFloorReaderProcess(ctx, sockets)
	} else {
		readers, err = startFloorReadersHere(sockets)
	}
	if err != nil {
		return f, err
	}
	defer readers.close()
	conns := make([]net.Conn, 0, sockets)
	defer func() {
		for _, c := range conns {
			_ = c.Close()
		}
	}()
	var dialer net.Dialer
	for range sockets {
		c, err := dialer.DialContext(ctx, "tcp", readers.addr)
		if err != nil {
			return f, err
		}
		conns = append(conns, c)
	}
	rounds := max(broadcastFloorMinRounds, broadcastFloorWrites/sockets)
	// Cancelling ctx ends a wait for the readers' acknowledgement.
	stop := context.AfterFunc(ctx, readers.close)
	defer stop()
	return timeRounds(f, conns, rounds, readers)
}

// timeRounds writes a frame to every connection, once untimed and then
// rounds times, each round after the readers acknowledged the one before
// and had broadcastFloorIdle to park.
func timeRounds(f BroadcastFloor, conns []net.Conn, rounds int, readers *floorReaders) (BroadcastFloor, error) {
	// The writer's CPU is its thread's: it stays on one.
	runtime.LockOSThread()
	defer runtime.UnlockOSThread()
	frame := make([]byte, floorFrame)
	var wall, writerCPU time.Duration
	var readerStart, readerEnd time.Duration
	toLastRead := make([]time.Duration, 0, rounds)
	for round := range rounds + 1 {
		time.Sleep(broadcastFloorIdle)
		cpu0, err := threadCPU()
		if err != nil {
			return f, err
		}
		start := time.Now()
		for _, c := range conns {
			if _, err := c.Write(frame); err != nil {
				return f, err
			}
		}
		elapsed := time.Since(start)
		cpu1, err := threadCPU()
		if err != nil {
			return f, err
		}
		readerCPU, err := readers.awaitRound()
		if err != nil {
			return f, fmt.Errorf("waiting for the readers of round %d: %w", round, err)
		}
		read := time.Since(start)
		if round == 0 {
			// The first round warms the connections up; the readers' CPU
			// is counted from its end.
			readerStart = readerCPU
			continue
		}
		wall += elapsed
		writerCPU += cpu1 - cpu0
		readerEnd = readerCPU
		toLastRead = append(toLastRead, read)
	}
	slices.Sort(toLastRead)
	f.ToLastReadMs = float64(toLastRead[len(toLastRead)/2].Microseconds()) / 1e3
	f.Writes = len(conns) * rounds
	writes := float64(f.Writes)
	f.WallMicros = float64(wall.Nanoseconds()) / 1e3 / writes
	f.WriterCPUMicros = float64(writerCPU.Nanoseconds()) / 1e3 / writes
	readerCPU := readerEnd - readerStart
	if !readers.otherProcess {
		// The readers' process is the writer's: its CPU includes the
		// writer thread's.
		readerCPU -= writerCPU
	}
	f.ReaderCPUMicros = float64(readerCPU.Nanoseconds()) / 1e3 / writes
	return f, nil
}

// threadCPU is the calling thread's CPU time.
func threadCPU() (time.Duration, error) { return cpuClock(clockThreadCPUTime) }

func cpuClock(clock uintptr) (time.Duration, error) {
	var ts syscall.Timespec
	if _, _, errno := syscall.Syscall(syscall.SYS_CLOCK_GETTIME, clock, uintptr(unsafe.Pointer(&ts)), 0); errno != 0 {
		return 0, errno
	}
	return time.Duration(ts.Nano()), nil
}

// floorReaders are the readers of a broadcast floor: they accept
// connections at addr and acknowledge each round (every socket's frame
// read) with their process's CPU time so far, 8 bytes on acks.
type floorReaders struct {
	addr         string
	otherProcess bool
	acks         io.Reader
	closeOnce    sync.Once
	closeFn      func()
}

// noCPUTime is the acknowledgement of readers that could not read their
// CPU time.
const noCPUTime = ^uint64(0)

// awaitRound waits for the readers to have read a round, and returns
// their process's CPU time then.
func (r *floorReaders) awaitRound() (time.Duration, error) {
	var ack [8]byte
	if _, err := io.ReadFull(r.acks, ack[:]); err != nil {
		return 0, err
	}
	cpu := binary.LittleEndian.Uint64(ack[:])
	if cpu == noCPUTime {
		return 0, errors.New("the readers could not read their CPU time")
	}
	return time.Duration(cpu), nil
}

func (r *floorReaders) close() { r.closeOnce.Do(r.closeFn) }

// startFloorReadersHere runs the readers as goroutines of this process.
func startFloorReadersHere(sockets int) (*floorReaders, error) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return nil, err
	}
	acks, ackWriter := io.Pipe()
	done := make(chan struct{})
	go func() {
		defer close(done)
		_ = serveFloorReaders(ln, sockets, &cpuAcks{w: ackWriter})
	}()
	return &floorReaders{addr: ln.Addr().String(), acks: acks, closeFn: func() {
		_ = ln.Close()
		_ = acks.Close()
		<-done
	}}, nil
}

// floorReadersCommand is the generator's hidden subcommand that runs the
// readers of a broadcast floor in a process of their own.
const floorReadersCommand = "floor-readers"

// floorReadersStartedMsg is the line the subcommand logs once it listens.
const floorReadersStartedMsg = "floor readers listening"

// startFloorReaderProcess starts the readers as a child process, which ends
// when its stdin does.
func startFloorReaderProcess(ctx context.Context, sockets int) (*floorReaders, error) {
	c, err := startFloorChild(ctx, "the floor's readers", []string{floorReadersCommand, "-sockets", strconv.Itoa(sockets)}, floorReadersStartedMsg)
	if err != nil {
		return nil, err
	}
	return &floorReaders{addr: c.addr, otherProcess: true, acks: c.stdout, closeFn: c.stop}, nil
}

// floorChild is a floor's process: one of the generator's hidden
// subcommands, listening at addr, which ends when its stdin does.
type floorChild struct {
	*child
	addr   string
	stdin  io.WriteCloser
	stdout io.ReadCloser
}

// startFloorChild starts the generator's subcommand args, which logs ready
// with its address once it listens.
func startFloorChild(ctx context.Context, name string, args []string, ready string) (*floorChild, error) {
	f := &floorChild{}
	pipes := func(cmd *exec.Cmd) (err error) {
		if f.stdin, err = cmd.StdinPipe(); err != nil {
			return err
		}
		f.stdout, err = cmd.StdoutPipe()
		return err
	}
	var err error
	if f.child, f.addr, err = startSelf(ctx, name, args, pipes, ready, startTimeout, "addr"); err != nil {
		return nil, err
	}
	return f, nil
}

// stop closes the child's stdin, which ends it, and waits for it.
func (f *floorChild) stop() {
	_ = f.stdin.Close()
	f.child.stop()
}

// floorReadersMain serves the readers of one broadcast floor until stdin
// ends or a signal comes, acknowledging rounds on stdout.
func floorReadersMain(args []string, stdin io.Reader, stdout, stderr io.Writer) error {
	return floorChildMain(floorReadersCommand, "sockets", "connections a round writes a frame to", args,
		net.ListenConfig{}, floorReadersStartedMsg, stdin, stdout, stderr, serveFloorReaders)
}

// floorChildMain is the main of a floor's subcommand: it parses its one
// flag, a positive number, listens on loopback with lc, logs ready with its
// address, answers each line of stdin with the process's CPU time on
// stdout, and serves with serve (which acknowledges on the same stdout)
// until stdin ends or a signal comes.
func floorChildMain(command, flagName, usage string, args []string, lc net.ListenConfig, ready string,
	stdin io.Reader, stdout, stderr io.Writer, serve func(ln net.Listener, n int, acks *cpuAcks) error) error {
	fs := flag.NewFlagSet(command, flag.ContinueOnError)
	n := fs.Int(flagName, 0, usage)
	if err := fs.Parse(args); err != nil {
		return err
	}
	if *n <= 0 {
		return fmt.Errorf("-%s %d: must be positive", flagName, *n)
	}
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	ln, err := lc.Listen(ctx, "tcp", "127.0.0.1:0")
	if err != nil {
		return err
	}
	acks := &cpuAcks{w: stdout}
	go func() {
		defer stop()
		for lines := bufio.NewScanner(stdin); lines.Scan(); {
			acks.send()
		}
	}()
	context.AfterFunc(ctx, func() { _ = ln.Close() })
	slog.New(slog.NewJSONHandler(stderr, nil)).Info(ready, "addr", ln.Addr().String())
	return serve(ln, *n, acks)
}

// serveFloorReaders reads every connection ln accepts, each in a goroutine
// of its own (as the generator's clients do), until ln is closed; each time
// the bytes read reach a round (a frame from each of sockets connections),
// it writes the process's CPU time to acks.
func serveFloorReaders(ln net.Listener, sockets int, acks *cpuAcks) error {
	roundBytes := int64(sockets * floorFrame)
	var total atomic.Int64
	return serveEach(ln, func(c net.Conn) {
		buf := make([]byte, 2*floorFrame)
		for {
			n, err := c.Read(buf)
			if n > 0 {
				now := total.Add(int64(n))
				if now/roundBytes > (now-int64(n))/roundBytes {
					acks.send()
				}
			}
			if err != nil {
				return
			}
		}
	})
}

// serveEach serves every connection ln accepts with serve, each in a
// goroutine of its own, until ln is closed; then it closes the connections
// still open and waits for their goroutines. serve need not close its
// connection.
func serveEach(ln net.Listener, serve func(net.Conn)) error {
	var served sync.WaitGroup
	var conns sync.Map
	defer func() {
		conns.Range(func(c, _ any) bool {
			_ = c.(net.Conn).Close()
			return true
		})
		served.Wait()
	}()
	for {
		c, err := ln.Accept()
		if err != nil {
			if errors.Is(err, net.ErrClosed) {
				return nil
			}
			return err
		}
		conns.Store(c, nil)
		served.Go(func() {
			defer conns.Delete(c)
			defer func() { _ = c.Close() }()
			serve(c)
		})
	}
}

// cpuAcks are a floor process's acknowledgements: its CPU time so far,
// 8 bytes each (noCPUTime if it could not read it).
type cpuAcks struct {
	mu sync.Mutex
	w  io.Writer
}

// send writes the process's CPU time.
func (a *cpuAcks) send() {
	cpu := noCPUTime
	if t, err := processCPU(os.Getpid()); err == nil {
		cpu = uint64(t)
	}
	var ack [8]byte
	binary.LittleEndian.PutUint64(ack[:], cpu)
	a.mu.Lock()
	defer a.mu.Unlock()
	_, _ = a.w.Write(ack[:])
}
