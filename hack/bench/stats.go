package main

import (
	"context"
	"fmt"
	"os"
	"runtime"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/HdrHistogram/hdrhistogram-go"
)

// Latencies are recorded in microseconds, from 1 µs to five minutes, to three
// significant digits: a p99 of 12.3 ms is told apart from 12.4 ms.
const (
	histogramMin     = 1
	histogramMax     = int64(5 * time.Minute / time.Microsecond)
	histogramDigits  = 3
	histogramShards  = 64
	bytesPerKilobyte = 1024
)

// recorder is a latency histogram that thousands of client goroutines write
// at once. One histogram behind one mutex would serialise every delivery of
// the generator, which competes for the same two cores as the streamer; so
// the clients are spread over shards, merged when a scenario reads them.
type recorder struct {
	shards [histogramShards]struct {
		mu sync.Mutex
		h  *hdrhistogram.Histogram
	}
}

func newRecorder() *recorder {
	r := &recorder{}
	for i := range r.shards {
		r.shards[i].h = hdrhistogram.New(histogramMin, histogramMax, histogramDigits)
	}
	return r
}

// record adds one latency; key spreads the writers (a client's index).
func (r *recorder) record(key int, d time.Duration) {
	s := &r.shards[key%histogramShards]
	us := max(d.Microseconds(), histogramMin)
	s.mu.Lock()
	_ = s.h.RecordValue(min(us, histogramMax)) // clamped into range, so never an error
	s.mu.Unlock()
}

// summary merges the shards.
func (r *recorder) summary() Latency {
	merged := hdrhistogram.New(histogramMin, histogramMax, histogramDigits)
	for i := range r.shards {
		s := &r.shards[i]
		s.mu.Lock()
		merged.Merge(s.h)
		s.mu.Unlock()
	}
	return latencyOf(merged)
}

// Latency is a distribution of durations, in milliseconds.
type Latency struct {
	Count int64   `json:"count"`
	P50Ms float64 `json:"p50Ms"`
	P99Ms float64 `json:"p99Ms"`
	MaxMs float64 `json:"maxMs"`
}

func latencyOf(h *hdrhistogram.Histogram) Latency {
	ms := func(us int64) float64 { return float64(us) / 1000 }
	return Latency{
		Count: h.TotalCount(),
		P50Ms: ms(h.ValueAtQuantile(50)),
		P99Ms: ms(h.ValueAtQuantile(99)),
		MaxMs: ms(h.Max()),
	}
}

// latencyOfValues summarises a few durations (one per event).
func latencyOfValues(values []time.Duration) Latency {
	h := hdrhistogram.New(histogramMin, histogramMax, histogramDigits)
	for _, v := range values {
		_ = h.RecordValue(min(max(v.Microseconds(), histogramMin), histogramMax))
	}
	return latencyOf(h)
}

// atomicMax raises v to x if x is larger.
func atomicMax(v *atomic.Int64, x int64) {
	for {
		old := v.Load()
		if x <= old || v.CompareAndSwap(old, x) {
			return
		}
	}
}

// CPU is the processor time the streamer, the generator and the broker (the
// NATS cluster's process, on the NATS backends) spent in a scenario's
// measured window, from each process's CPU-time clock (to the nanosecond).
// Cores is seconds of CPU per second of wall time: 2 is both cores of this
// machine busy. The broker's CPU is not the streamer's: the per-core rates
// divide by the streamer's alone.
type CPU struct {
	WallSeconds      float64 `json:"wallSeconds"`
	StreamerSeconds  float64 `json:"streamerSeconds"`
	GeneratorSeconds float64 `json:"generatorSeconds"`
	BrokerSeconds    float64 `json:"brokerSeconds,omitempty"`
	StreamerCores    float64 `json:"streamerCores"`
	GeneratorCores   float64 `json:"generatorCores"`
	BrokerCores      float64 `json:"brokerCores,omitempty"`
	// StreamerWrites is how many write system calls the streamer made
	// (/proc/PID/io's syscw): flushes to streams, answers to requests,
	// writes to the broker.
	StreamerWrites int64 `json:"streamerWrites"`
}

// perServerCore is count per second of the streamer's CPU: the rate one core
// would sustain if the streamer had it to itself. It is the honest figure on
// a machine where the generator shares the cores: wall-clock rates then
// measure both processes.
func (c CPU) perServerCore(count float64) float64 {
	if c.StreamerSeconds <= 0 {
		return 0
	}
	return count / c.StreamerSeconds
}

// perWallSecond is count per second of wall time.
func (c CPU) perWallSecond(count float64) float64 {
	if c.WallSeconds <= 0 {
		return 0
	}
	return count / c.WallSeconds
}

// cpuMeter reads the CPU time of the streamer, of this process and of the
// broker's, if any.
type cpuMeter struct {
	pids  [3]int // streamer, generator, broker (0: none)
	start time.Time
	t0    [3]time.Duration
	w0    int64 // the streamer's write system calls at start
}

// startCPU starts a measured window; broker is 0 when the log is the
// streamer's own.
func startCPU(streamer, broker int) (*cpuMeter, error) {
	m := &cpuMeter{pids: [3]int{streamer, os.Getpid(), broker}}
	var err error
	if m.t0, err = m.read(); err != nil {
		return nil, err
	}
	if m.w0, err = writeCalls(streamer); err != nil {
		return nil, err
	}
	m.start = time.Now()
	return m, nil
}

func (m *cpuMeter) read() ([3]time.Duration, error) {
	var t [3]time.Duration
	for i, pid := range m.pids {
		if pid == 0 {
			continue
		}
		var err error
		if t[i], err = processCPU(pid); err != nil {
			return t, err
		}
	}
	return t, nil
}

// stop ends the window.
func (m *cpuMeter) stop() (CPU, error) {
	wall := time.Since(m.start)
	t, err := m.read()
	if err != nil {
		return CPU{}, err
	}
	w, err := writeCalls(m.pids[0])
	if err != nil {
		return CPU{}, err
	}
	c := CPU{
		StreamerWrites:   w - m.w0,
		WallSeconds:      wall.Seconds(),
		StreamerSeconds:  (t[0] - m.t0[0]).Seconds(),
		GeneratorSeconds: (t[1] - m.t0[1]).Seconds(),
		BrokerSeconds:    (t[2] - m.t0[2]).Seconds(),
	}
	c.StreamerCores = c.StreamerSeconds / c.WallSeconds
	c.GeneratorCores = c.GeneratorSeconds / c.WallSeconds
	c.BrokerCores = c.BrokerSeconds / c.WallSeconds
	return c, nil
}

// processCPU is the CPU time of a process, all its threads, to the
// nanosecond: its CPU-time clock (what clock_getcpuclockid(3) gives), where
// /proc/PID/stat counts in ticks of 10 ms, and each of two readings may be
// short by up to two: a tenth of a burst's window.
func processCPU(pid int) (time.Duration, error) {
	// MAKE_PROCESS_CPUCLOCK(pid, CPUCLOCK_SCHED), from the kernel's
	// posix-timers.h: the clock of the whole process, precise.
	const cpuClockSched = 2
	clock := int64(^int32(pid))<<3 | cpuClockSched
	t, err := cpuClock(uintptr(clock))
	if err != nil {
		return 0, fmt.Errorf("the CPU time of process %d: %w", pid, err)
	}
	return t, nil
}

// writeCalls is the write system calls a process made, from /proc/PID/io.
func writeCalls(pid int) (int64, error) {
	v, err := procField(pid, "io", "syscw:")
	if err != nil {
		return 0, err
	}
	return strconv.ParseInt(v, 10, 64)
}

// residentBytes is VmRSS of a process, from /proc/PID/status.
func residentBytes(pid int) (int64, error) {
	v, err := procField(pid, "status", "VmRSS:")
	if err != nil {
		return 0, err
	}
	kb, err := strconv.ParseInt(strings.TrimSuffix(v, " kB"), 10, 64)
	return kb * bytesPerKilobyte, err
}

// procField is the value of the line of /proc/PID/file that starts with
// name, trimmed.
func procField(pid int, file, name string) (string, error) {
	data, err := os.ReadFile("/proc/" + strconv.Itoa(pid) + "/" + file)
	if err != nil {
		return "", err
	}
	for line := range strings.Lines(string(data)) {
		if rest, ok := strings.CutPrefix(line, name); ok {
			return strings.TrimSpace(rest), nil
		}
	}
	return "", fmt.Errorf("/proc/%d/%s has no %s", pid, file, strings.TrimSuffix(name, ":"))
}

// settledResident is the process's RSS once it has not changed by more than
// 64 KiB for rssStill, or after rssSettleLimit.
func settledResident(ctx context.Context, pid int) (int64, error) {
	const poll, noise = 200 * time.Millisecond, 64 << 10
	last, err := residentBytes(pid)
	if err != nil {
		return 0, err
	}
	start := time.Now()
	still := start
	for time.Since(still) < rssStill && time.Since(start) < rssSettleLimit {
		select {
		case <-ctx.Done():
			return 0, ctx.Err()
		case <-time.After(poll):
		}
		rss, err := residentBytes(pid)
		if err != nil {
			return 0, err
		}
		if rss > last+noise || rss < last-noise {
			still = time.Now()
		}
		last = rss
	}
	return last, nil
}

// slope is the least-squares slope of y over x: the cost of one more x.
func slope(x, y []float64) float64 {
	n := float64(len(x))
	if n < 2 {
		return 0
	}
	var sx, sy, sxx, sxy float64
	for i := range x {
		sx += x[i]
		sy += y[i]
		sxx += x[i] * x[i]
		sxy += x[i] * y[i]
	}
	den := n*sxx - sx*sx
	if den == 0 {
		return 0
	}
	return (n*sxy - sx*sy) / den
}

// goVersion is the toolchain the generator and the streamer are built with.
func goVersion() string { return runtime.Version() }
