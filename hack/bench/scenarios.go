package main

import (
	"cmp"
	"context"
	"errors"
	"fmt"
	"net/http"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	notifyv1alpha1 "github.com/herald-notify/herald/api/v1alpha1"
	"github.com/herald-notify/herald/streamer/publisher"
)

// Timeouts of the scenarios: generous, since the generator shares the
// machine; a scenario that needs them has failed anyway.
const (
	settleTimeout   = time.Minute
	deliveryTimeout = 2 * time.Minute
	// idleSettle lets freshly opened streams park before memory is read.
	idleSettle = 2 * time.Second
	// rssStill is how long the streamer's RSS must not change to be read:
	// the streamer gives memory back within about two seconds of going
	// quiet (memrelease.WhenQuiet checks every second), the pages of the
	// bench's own metrics request included; rssSettleLimit bounds the wait.
	rssStill       = 3 * time.Second
	rssSettleLimit = 20 * time.Second
	// settleGCs is how many full collections run before memory is read: a
	// collection halves a goroutine stack at most once, and only the stacks
	// of parked goroutines that use under a quarter of theirs.
	settleGCs = 3
)

// env is what every scenario runs with.
type env struct {
	herald string
	dir    string
	// target is the log of the backend being measured.
	target logTarget
	// concurrency is how many streams the generator opens at once.
	concurrency int
	// profiles, when set, is a folder for the streamer's pprof profiles.
	profiles string
	// gomaxprocs, when above 0, is the GOMAXPROCS of the streamers started
	// (withGOMAXPROCS); 0 leaves the runtime's default, one per core.
	gomaxprocs int
	progress   func(format string, args ...any)
}

// session is a fresh streamer and a pool of users for one scenario. Each
// scenario has its own process, so that none inherits another's heap,
// goroutines or log.
type session struct {
	env      *env
	streamer *streamerProcess
	pool     *pool
	pub      *publisher.Client
	httpc    *http.Client
	// token is the backend's; backend publishes the bursts, started on the
	// first (burstBackend).
	token   string
	backend *backendProcess
}

func (e *env) start(ctx context.Context, alg notifyv1alpha1.JWTAlgorithm, users int) (*session, error) {
	s, err := startStreamer(ctx, e.herald, e.dir, alg, e.target, e.gomaxprocs)
	if err != nil {
		return nil, err
	}
	p, err := newPool(s.api, s.signer, users)
	if err != nil {
		s.stop()
		return nil, err
	}
	token, err := s.signer.token("bench-backend", true)
	if err != nil {
		s.stop()
		return nil, err
	}
	// One connection per request in flight, kept between requests.
	httpc := &http.Client{Transport: &http.Transport{MaxIdleConnsPerHost: maxInFlight}}
	pub, err := publisher.New("http://"+s.api, publisher.WithToken(token), publisher.WithHTTPClient(httpc))
	if err != nil {
		s.stop()
		return nil, err
	}
	return &session{env: e, streamer: s, pool: p, pub: pub, httpc: httpc, token: token}, nil
}

// close closes the streams, then stops the streamer.
// startOpen starts a streamer for n users and opens a stream for each; the
// caller closes the session.
func (e *env) startOpen(ctx context.Context, alg notifyv1alpha1.JWTAlgorithm, n int) (*session, error) {
	s, err := e.start(ctx, alg, n)
	if err != nil {
		return nil, err
	}
	if err := s.openFirst(ctx, n); err != nil {
		s.close()
		return nil, err
	}
	return s, nil
}

func (s *session) close() {
	if s.backend != nil {
		s.backend.stop()
	}
	s.pool.closeAll()
	s.httpc.CloseIdleConnections()
	s.streamer.stop()
}

// openFirst opens the first n streams of the pool (those not open yet) and
// waits until the streamer counts n.
func (s *session) openFirst(ctx context.Context, n int) error {
	if _, err := s.pool.openFirst(ctx, n, s.env.concurrency, false); err != nil {
		return err
	}
	return s.streamer.waitConnections(ctx, n)
}

// measure runs the scenario's measured part and returns the CPU both
// processes spent on it. When profiles were asked for, it also records a CPU
// profile of the streamer meanwhile, named name and seconds long; the window
// ends when run returns, not when the profile does.
func (s *session) measure(ctx context.Context, name string, seconds int, run func() error) (CPU, error) {
	meter, err := startCPU(s.streamer.pid(), s.env.target.brokerPID())
	if err != nil {
		return CPU{}, err
	}
	var profiling sync.WaitGroup
	var profErr error
	if s.env.profiles != "" {
		profiling.Go(func() {
			file := filepath.Join(s.env.profiles, s.env.profileName(name)+".cpu.pprof")
			profErr = s.streamer.profile(ctx, "profile?seconds="+strconv.Itoa(seconds), file)
		})
	}
	runErr := run()
	cpu, err := meter.stop()
	profiling.Wait()
	if runErr != nil {
		return CPU{}, runErr
	}
	if err != nil {
		return CPU{}, err
	}
	return cpu, profErr
}

// measureWrites is measure, with the streamer's JetStream writes meanwhile
// (nil on the embedded log), read from its metrics before and after.
func (s *session) measureWrites(ctx context.Context, name string, seconds int, run func() error) (CPU, *BrokerWrites, error) {
	before, err := s.streamer.brokerWrites(ctx)
	if err != nil {
		return CPU{}, nil, err
	}
	cpu, err := s.measure(ctx, name, seconds, run)
	if err != nil {
		return CPU{}, nil, err
	}
	after, err := s.streamer.brokerWrites(ctx)
	if err != nil {
		return CPU{}, nil, err
	}
	return cpu, after.since(before), nil
}

// payload is the data of every event the generator publishes: its sequence
// number in the scenario and the publisher's clock when it was sent. The
// message makes the frame as large as a typical notification's.
type payload struct {
	Seq     int    `json:"seq"`
	SentAt  int64  `json:"sentAt"`
	Message string `json:"message"`
}

func newPayload(seq int) payload {
	return payload{Seq: seq, SentAt: time.Now().UnixNano(), Message: "Benchmark event: nothing to see here"}
}

// publishers is how many publish requests a broadcast burst keeps in
// flight, as a few backend replicas would.
const publishers = 8

// maxInFlight bounds the publish requests a scenario keeps in flight.
const maxInFlight = 1024

// publishPaced calls publish for 0 … count-1, starting request seq at
// seq/rate seconds whether or not those before were answered (at most
// maxInFlight at once, then as soon as one is), and returns every error and
// the most requests in flight at once.
func publishPaced(count, rate int, publish func(seq int) error) (mostInFlight int, err error) {
	var wg sync.WaitGroup
	var inFlight, most atomic.Int64
	errs := make([]error, count)
	slots := make(chan struct{}, maxInFlight)
	start := time.Now()
	for seq := range count {
		if wait := time.Until(start.Add(time.Duration(seq) * time.Second / time.Duration(rate))); wait > 0 {
			time.Sleep(wait)
		}
		slots <- struct{}{}
		now := inFlight.Add(1)
		for m := most.Load(); now > m && !most.CompareAndSwap(m, now); m = most.Load() {
		}
		wg.Go(func() {
			defer func() { inFlight.Add(-1); <-slots }()
			errs[seq] = publish(seq)
		})
	}
	wg.Wait()
	return int(most.Load()), errors.Join(errs...)
}

// publishConcurrently calls publish for 0 … count-1 from inFlight
// goroutines, each taking the next number when its request is answered, and
// returns the first error.
func publishConcurrently(count, inFlight int, publish func(seq int) error) error {
	var next atomic.Int64
	var wg sync.WaitGroup
	errs := make([]error, inFlight)
	for w := range inFlight {
		wg.Go(func() {
			for {
				seq := int(next.Add(1)) - 1
				if seq >= count {
					return
				}
				if err := publish(seq); err != nil {
					errs[w] = err
					return
				}
			}
		})
	}
	wg.Wait()
	return errors.Join(errs...)
}

// MemoryPoint is the streamer's memory with Connections idle streams open,
// after full garbage collections (settleGCs).
type MemoryPoint struct {
	Connections    int   `json:"connections"`
	RSSBytes       int64 `json:"rssBytes"`
	HeapInuseBytes int64 `json:"heapInuseBytes"`
	StackBytes     int64 `json:"stackInuseBytes"`
	Goroutines     int   `json:"goroutines"`
}

// MemoryResult is the idle-memory ladder and the cost of one more idle
// stream: the least-squares slope over the ladder.
type MemoryResult struct {
	Points           []MemoryPoint `json:"points"`
	RSSPerConn       float64       `json:"rssBytesPerConnection"`
	HeapPerConn      float64       `json:"heapBytesPerConnection"`
	StackPerConn     float64       `json:"stackBytesPerConnection"`
	GoroutinesPerCon float64       `json:"goroutinesPerConnection"`
	// AfterBurst is the memory once the streams of the last step are idle
	// again after a burst; nil when none was asked for.
	AfterBurst *BurstMemory `json:"afterBurst,omitempty"`
	Command    string       `json:"command"`
}

// BurstMemory is the streamer's memory after a burst of broadcast events to
// every stream, once each has read them all and is idle again: what the
// burst left behind. Per stream is over the streamer with no stream (the
// ladder's first point), not a slope.
type BurstMemory struct {
	Events       int         `json:"events"`
	Point        MemoryPoint `json:"point"`
	RSSPerConn   float64     `json:"rssBytesPerConnection"`
	HeapPerConn  float64     `json:"heapBytesPerConnection"`
	StackPerConn float64     `json:"stackBytesPerConnection"`
}

// idleMemory opens streams in steps and reads the streamer's memory at each:
// resident set size from the kernel, heap and stacks from the Go runtime's
// metrics. Heap plus stacks is what the streamer's code controls; RSS adds
// what the runtime holds on to. Then, when burst is above 0, it broadcasts
// burst events to the streams of the last step and reads memory again once
// they are idle.
func idleMemory(ctx context.Context, e *env, steps []int, burst int) (*MemoryResult, error) {
	s, err := e.start(ctx, notifyv1alpha1.HS256, steps[len(steps)-1])
	if err != nil {
		return nil, err
	}
	defer s.close()
	result := &MemoryResult{}
	for _, n := range append([]int{0}, steps...) {
		if err := s.openFirst(ctx, n); err != nil {
			return nil, err
		}
		point, err := s.memory(ctx, n)
		if err != nil {
			return nil, err
		}
		e.progress("idle memory: %d streams, RSS %s, heap %s, stacks %s", n,
			kib(point.RSSBytes), kib(point.HeapInuseBytes), kib(point.StackBytes))
		result.Points = append(result.Points, point)
	}
	if e.profiles != "" {
		if err := s.streamer.profile(ctx, "heap", filepath.Join(e.profiles, e.profileName("idle")+".heap.pprof")); err != nil {
			return nil, err
		}
	}
	var x, rss, heap, stack, goroutines []float64
	for _, p := range result.Points {
		x = append(x, float64(p.Connections))
		rss = append(rss, float64(p.RSSBytes))
		heap = append(heap, float64(p.HeapInuseBytes))
		stack = append(stack, float64(p.StackBytes))
		goroutines = append(goroutines, float64(p.Goroutines))
	}
	result.RSSPerConn = slope(x, rss)
	result.HeapPerConn = slope(x, heap)
	result.StackPerConn = slope(x, stack)
	result.GoroutinesPerCon = slope(x, goroutines)
	if burst > 0 {
		if result.AfterBurst, err = s.memoryAfterBurst(ctx, steps[len(steps)-1], burst, result.Points[0]); err != nil {
			return nil, err
		}
		if e.profiles != "" {
			if err := s.streamer.profile(ctx, "heap", filepath.Join(e.profiles, e.profileName("after-burst")+".heap.pprof")); err != nil {
				return nil, err
			}
		}
	}
	return result, nil
}

// memoryAfterBurst broadcasts events system events to the session's n open
// streams, with publishers requests in flight, waits until every stream has
// read them all, and reads memory as the idle ladder does.
func (s *session) memoryAfterBurst(ctx context.Context, n, events int, none MemoryPoint) (*BurstMemory, error) {
	received := newSink(events)
	s.pool.sink.Store(received)
	defer s.pool.sink.Store(nil)
	backend, err := s.burstBackend(ctx)
	if err != nil {
		return nil, err
	}
	if _, err := backend.burst(events, publishers, 0); err != nil {
		return nil, err
	}
	if err := received.wait(ctx, s.pool, int64(n*events), deliveryTimeout); err != nil {
		return nil, err
	}
	point, err := s.memory(ctx, n)
	if err != nil {
		return nil, err
	}
	per := func(after, before int64) float64 { return float64(after-before) / float64(n) }
	b := &BurstMemory{
		Events: events, Point: point, RSSPerConn: per(point.RSSBytes, none.RSSBytes),
		HeapPerConn: per(point.HeapInuseBytes, none.HeapInuseBytes), StackPerConn: per(point.StackBytes, none.StackBytes),
	}
	s.env.progress("memory after a burst of %d to %d streams: RSS %s, heap %s, stacks %s; %.1f KiB RSS per stream",
		events, n, kib(point.RSSBytes), kib(point.HeapInuseBytes), kib(point.StackBytes), b.RSSPerConn/1024)
	return b, nil
}

// publishSystemEvent publishes the system event seq of the scenario, to
// every stream.
func (s *session) publishSystemEvent(ctx context.Context, seq int) error {
	_, err := s.pub.PublishSystemEvent(ctx, publisher.SystemEvent{EventType: "bench", Data: newPayload(seq)})
	return err
}

// burstBackend is the process that publishes the session's bursts
// (backendCommand), started on the first call.
func (s *session) burstBackend(ctx context.Context) (*backendProcess, error) {
	if s.backend == nil {
		b, err := startBackend(ctx, s.streamer.api, s.token)
		if err != nil {
			return nil, err
		}
		s.backend = b
	}
	return s.backend, nil
}

// memory reads the streamer's memory once its n streams are idle.
func (s *session) memory(ctx context.Context, n int) (MemoryPoint, error) {
	select {
	case <-ctx.Done():
		return MemoryPoint{}, ctx.Err()
	case <-time.After(idleSettle):
	}
	for range settleGCs {
		if err := s.streamer.collectGarbage(ctx); err != nil {
			return MemoryPoint{}, err
		}
	}
	m, err := s.streamer.metrics(ctx)
	if err != nil {
		return MemoryPoint{}, err
	}
	rss, err := settledResident(ctx, s.streamer.pid())
	if err != nil {
		return MemoryPoint{}, err
	}
	return MemoryPoint{
		Connections:    n,
		RSSBytes:       rss,
		HeapInuseBytes: int64(m["go_memstats_heap_inuse_bytes"]),
		StackBytes:     int64(m["go_memstats_stack_inuse_bytes"]),
		Goroutines:     int(m["go_goroutines"]),
	}, nil
}

// ConnectResult is how fast the streamer admits new authenticated streams:
// TCP accept, the HTTP request, the JWT's verification, the hub's
// registration and the first frame written.
type ConnectResult struct {
	Algorithm      string  `json:"algorithm"`
	Connections    int     `json:"connections"`
	PerSecond      float64 `json:"connectionsPerSecond"`
	PerServerCore  float64 `json:"connectionsPerServerCoreSecond"`
	TimeToFirstEvt Latency `json:"timeToConnectionEvent"`
	CPU            CPU     `json:"cpu"`
	Command        string  `json:"command"`
}

// connectRate opens n streams at once, each with its own token, and divides
// by the CPU the streamer spent doing so. The streams are opened and closed
// once before, so that the measured round reuses memory the process already
// has, as a pod that has been serving for a while does: a fresh process
// spends a good part of its first round growing its heap.
func connectRate(ctx context.Context, e *env, alg notifyv1alpha1.JWTAlgorithm, n int) (*ConnectResult, error) {
	s, err := e.startOpen(ctx, alg, n)
	if err != nil {
		return nil, err
	}
	defer s.close()
	s.pool.closeAll()
	if err := s.streamer.waitConnections(ctx, 0); err != nil {
		return nil, err
	}
	var times *recorder
	cpu, err := s.measure(ctx, "connect-"+string(alg), 2, func() error {
		times, err = s.pool.openFirst(ctx, n, e.concurrency, false)
		return err
	})
	if err != nil {
		return nil, err
	}
	if err := s.streamer.waitConnections(ctx, n); err != nil {
		return nil, err
	}
	r := &ConnectResult{
		Algorithm: string(alg), Connections: n, TimeToFirstEvt: times.summary(), CPU: cpu,
		PerSecond: cpu.perWallSecond(float64(n)), PerServerCore: cpu.perServerCore(float64(n)),
	}
	e.progress("connect %s: %d streams, %.0f/s, %.0f per server core-second", alg, n, r.PerSecond, r.PerServerCore)
	return r, nil
}

// BroadcastResult is one system event published to every stream, Events
// times: how long each delivery took, how long until the last stream had
// each event, and how many deliveries the streamer made per CPU second.
type BroadcastResult struct {
	Backend     string  `json:"backend"`
	Connections int     `json:"connections"`
	Events      int     `json:"events"`
	Mode        string  `json:"mode"`
	IntervalMs  float64 `json:"intervalMs"`
	// PacedPerSecond is the events a second of a paced burst.
	PacedPerSecond int `json:"pacedPerSecond,omitempty"`
	// GOMAXPROCS is the streamer's, as its runtime reports it.
	GOMAXPROCS    int     `json:"gomaxprocs"`
	Deliveries    int64   `json:"deliveries"`
	PerSecond     float64 `json:"deliveriesPerSecond"`
	PerServerCore float64 `json:"deliveriesPerServerCoreSecond"`
	Latency       Latency `json:"latency"`
	ToLast        Latency `json:"publishToLastConnection"`
	CPU           CPU     `json:"cpu"`
	// PublishMs is how long the round's publish requests took, the first
	// sent to the last answered: how spread out the events reached the log.
	PublishMs float64 `json:"publishMs"`
	// DeliveriesPerWrite is deliveries per write system call of the
	// streamer: about how many frames a flush to a socket carried (its
	// other writes, the publish API's answers and the broker's requests,
	// are few beside one per stream).
	DeliveriesPerWrite float64 `json:"deliveriesPerWrite"`
	// BrokerWrites are the streamer's JetStream writes of the round (nil on
	// the embedded log).
	BrokerWrites *BrokerWrites `json:"brokerWrites,omitempty"`
	// RoundsPerServerCore are the deliveries per server core-second of
	// every round of a burst, of which this result is the median.
	RoundsPerServerCore []float64 `json:"roundsPerServerCore,omitempty"`
	Command             string    `json:"command"`
}

// burstRounds is how many times a burst is published to the same streams:
// one burst to 10,000 streams lasts about half a second, and its rate
// varies by a factor of 1.5–2 from one to the next on a shared 2-core
// machine, so the median round is reported (of nine: five left the NATS ÷
// embedded ratio of two medians moving by 30 points from run to run).
const burstRounds = 9

// Broadcast modes.
const (
	// paced publishes one event per interval: latency without queueing.
	modePaced = "paced"
	// burst publishes with publishers requests in flight: throughput, with
	// the frames of several events written in one flush. Requests in flight,
	// not one after another: over NATS each 202 waits for JetStream's
	// acknowledgement (replication and fsync), and a burst published one
	// request at a time would measure that round trip, not the fan-out.
	modeBurst = "burst"
	// burstPaced (modeBurstPaced) publishes a burst's events at a rate, whatever is answered
	// (an open loop): the same pace on every log. In a burst with requests
	// in flight each log sets its own pace, and a burst whose events reach
	// the streamer further apart costs more per delivery on either log
	// (fewer of them share a write), so only at one pace do two logs'
	// rows compare their fan-out alone.
	modeBurstPaced = "burst-paced"
)

// broadcastLoad is how a broadcast's events are published: one per
// interval, each answered before the next; at rate events a second (a paced
// burst); or else in a burst with publishers requests in flight.
type broadcastLoad struct {
	events   int
	interval time.Duration
	rate     int
}

func (l broadcastLoad) mode() string {
	switch {
	case l.interval > 0:
		return modePaced
	case l.rate > 0:
		return modeBurstPaced
	}
	return modeBurst
}

// broadcast opens n streams and publishes system events to all of them as
// load says.
func broadcast(ctx context.Context, e *env, n int, load broadcastLoad) (*BroadcastResult, error) {
	s, err := e.startOpen(ctx, notifyv1alpha1.HS256, n)
	if err != nil {
		return nil, err
	}
	defer s.close()
	mode := load.mode()
	procs, err := s.streamer.gomaxprocs(ctx)
	if err != nil {
		return nil, err
	}
	rounds := 1
	if mode != modePaced {
		rounds = burstRounds
	}
	var results []*BroadcastResult
	for round := range rounds {
		r, err := s.broadcastRound(ctx, n, load, roundName(fmt.Sprintf("broadcast-%d-%s", n, mode), round, rounds))
		if err != nil {
			return nil, err
		}
		r.Backend, r.GOMAXPROCS = e.target.backend.name, procs
		results = append(results, r)
	}
	r, roundRates := medianRound(results, func(r *BroadcastResult) float64 { return r.PerServerCore })
	r.RoundsPerServerCore = roundRates
	e.progress("%s broadcast %s to %d (GOMAXPROCS %d): %d deliveries, %.0f/s, %.0f per server core-second%s, published in %.0f ms, %.1f deliveries per write%s, p99 %.1f ms, to last p99 %.1f ms",
		e.target.backend.name, mode, n, procs, r.Deliveries, r.PerSecond, r.PerServerCore, roundsNote(r.RoundsPerServerCore), r.PublishMs, r.DeliveriesPerWrite, writesNote(r.BrokerWrites), r.Latency.P99Ms, r.ToLast.P99Ms)
	return r, nil
}

// broadcastRound publishes system events to the open streams as load says
// and waits until every stream has read them all; name names its profile.
func (s *session) broadcastRound(ctx context.Context, n int, load broadcastLoad, name string) (*BroadcastResult, error) {
	events, interval, mode := load.events, load.interval, load.mode()
	var backend *backendProcess
	if mode != modePaced {
		var err error
		if backend, err = s.burstBackend(ctx); err != nil {
			return nil, err
		}
	}
	received := newSink(events)
	s.pool.sink.Store(received)
	var published time.Duration
	cpu, writes, err := s.measureWrites(ctx, name, profileSeconds(events, interval), func() error {
		if backend != nil {
			var err error
			if published, err = backend.burst(events, publishers, load.rate); err != nil {
				return err
			}
		} else {
			start := time.Now()
			for seq := range events {
				if err := s.publishSystemEvent(ctx, seq); err != nil {
					return err
				}
				if seq < events-1 {
					time.Sleep(interval)
				}
			}
			published = time.Since(start)
		}
		return received.wait(ctx, s.pool, int64(n*events), deliveryTimeout)
	})
	if err != nil {
		return nil, err
	}
	deliveries := received.received.Load()
	return &BroadcastResult{
		Connections: n, Events: events, Mode: mode, IntervalMs: float64(interval) / float64(time.Millisecond), PacedPerSecond: load.rate,
		Deliveries: deliveries, Latency: received.latency.summary(), ToLast: received.toLast(), CPU: cpu,
		PerSecond: cpu.perWallSecond(float64(deliveries)), PerServerCore: cpu.perServerCore(float64(deliveries)),
		PublishMs: float64(published) / float64(time.Millisecond), DeliveriesPerWrite: ratioOf(float64(deliveries), float64(cpu.StreamerWrites)),
		BrokerWrites: writes,
	}, nil
}

// medianRound is the round of results whose rate is the median (the
// upper one of an even count), and every round's rate in ascending order
// when there were several.
func medianRound[R any](results []R, rate func(R) float64) (median R, rates []float64) {
	slices.SortFunc(results, func(a, b R) int { return cmp.Compare(rate(a), rate(b)) })
	if len(results) > 1 {
		for _, r := range results {
			rates = append(rates, rate(r))
		}
	}
	return results[len(results)/2], rates
}

// roundName is the profile name of round (from 0) of rounds: each round
// keeps its own, as one burst is too short for a profile to say much, and
// `go tool pprof` merges them.
func roundName(name string, round, rounds int) string {
	if rounds < 2 {
		return name
	}
	return fmt.Sprintf("%s-round%d", name, round+1)
}

// writesNote is a progress line's account of the JetStream writes, if any.
func writesNote(w *BrokerWrites) string {
	if w == nil {
		return ""
	}
	return fmt.Sprintf(", %d JetStream writes of %.1f events acknowledged in %.1f ms", w.Writes, w.EventsPerWrite, w.MeanWaitMs)
}

// roundsNote lists the rounds' rates after the median's, when there were
// several.
func roundsNote(rounds []float64) string {
	if len(rounds) < 2 {
		return ""
	}
	parts := make([]string, len(rounds))
	for i, r := range rounds {
		parts[i] = fmt.Sprintf("%.0f", r)
	}
	return " (median of " + strings.Join(parts, ", ") + ")"
}

// fanOutProcs are the streamer's GOMAXPROCS of the fan-out scenario, in
// order: one core, then two.
var fanOutProcs = []int{1, 2}

// FanOutResult is the same broadcast burst to a streamer allowed one core,
// then two: whether delivery spreads over cores or the hub serialises it.
type FanOutResult struct {
	Connections int `json:"connections"`
	Events      int `json:"events"`
	// Runs are the bursts, one per fanOutProcs.
	Runs []*BroadcastResult `json:"runs"`
	// Speedup is deliveries per wall second with two cores over one. The
	// generator runs on the same cores, so the machine bounds it.
	Speedup float64 `json:"speedup"`
	Command string  `json:"command"`
}

// fanOut broadcasts a burst of events to n streams of a streamer with each
// GOMAXPROCS of fanOutProcs in turn, and compares deliveries per wall
// second: per CPU second would hide a hub that serialises, since a second
// core waiting on a lock spends little CPU.
func fanOut(ctx context.Context, e *env, n, events int) (*FanOutResult, error) {
	r := &FanOutResult{Connections: n, Events: events}
	for _, procs := range fanOutProcs {
		b, err := broadcast(ctx, e.withGOMAXPROCS(procs), n, broadcastLoad{events: events})
		if err != nil {
			return nil, fmt.Errorf("GOMAXPROCS %d: %w", procs, err)
		}
		r.Runs = append(r.Runs, b)
	}
	r.Speedup = ratioOf(r.Runs[1].PerSecond, r.Runs[0].PerSecond)
	e.progress("fan-out to %d: %.2f× the deliveries per wall second with GOMAXPROCS 2 as with 1", n, r.Speedup)
	return r, nil
}

// profileSeconds is a CPU profile's length for a publishing loop: as long as
// the paced loop, or a few seconds for a burst.
func profileSeconds(events int, interval time.Duration) int {
	if interval == 0 {
		return 3
	}
	return max(1, int((time.Duration(events) * interval).Seconds()))
}

// PerUserResult is notifications to one user each, published by several
// backends at once: what a busy application's own notifications cost.
type PerUserResult struct {
	Backend       string `json:"backend"`
	Connections   int    `json:"connections"`
	Notifications int    `json:"notifications"`
	// Publishers are the requests kept in flight, in a closed loop (0 when
	// paced).
	Publishers int `json:"publishers"`
	// Paced is the rate asked for in an open loop, and MostInFlight the
	// most requests it had in flight at once (0 in a closed loop).
	Paced         int     `json:"pacedPerSecond,omitempty"`
	MostInFlight  int     `json:"mostInFlight,omitempty"`
	PerSecond     float64 `json:"notificationsPerSecond"`
	PerServerCore float64 `json:"notificationsPerServerCoreSecond"`
	Latency       Latency `json:"latency"`
	CPU           CPU     `json:"cpu"`
	// BrokerWrites are the streamer's JetStream writes of the run (nil on
	// the embedded log).
	BrokerWrites *BrokerWrites `json:"brokerWrites,omitempty"`
	// RoundsPerServerCore are the notifications per server core-second of
	// every round, of which this result is the median.
	RoundsPerServerCore []float64 `json:"roundsPerServerCore,omitempty"`
	Command             string    `json:"command"`
}

// perUserLoad is how a per-user run publishes: inFlight requests in a
// closed loop (each starts when one is answered), or rate requests a second
// in an open loop (each starts on time, whatever is in flight). A closed
// loop measures what a log does flat out: the embedded log's pod is then
// busy, while a NATS pod mostly waits on its broker and pays for being woken
// (see docs/benchmarks.md). Paced, both logs carry the same load.
type perUserLoad struct{ inFlight, rate int }

func (l perUserLoad) String() string {
	if l.rate > 0 {
		return "paced at " + thousands(float64(l.rate)) + " a second"
	}
	return strconv.Itoa(l.inFlight) + " in flight"
}

// profileName names the run's profile.
func (l perUserLoad) profileName() string {
	if l.rate > 0 {
		return "per-user-paced-" + strconv.Itoa(l.rate)
	}
	return "per-user-" + strconv.Itoa(l.inFlight)
}

// load is how r was published.
func (r *PerUserResult) load() perUserLoad {
	return perUserLoad{inFlight: r.Publishers, rate: r.Paced}
}

// perUser runs rounds of perUserRound, each against a streamer of its own,
// and reports for each load the median round: on
// this shared machine one round's rate moves by up to a third from one
// streamer to the next, on either log. (Through NATS, not because of where
// JetStream places the pod's consumer: with it held on the stream's leader
// or on a follower, eight alternated pairs measured the same median.)
func perUser(ctx context.Context, e *env, n, count int, loads []perUserLoad, rounds int) ([]*PerUserResult, error) {
	byLoad := make([][]*PerUserResult, len(loads))
	for round := range rounds {
		rows, err := perUserRound(ctx, e, n, count, loads, round, rounds)
		if err != nil {
			return nil, fmt.Errorf("round %d: %w", round+1, err)
		}
		for i, r := range rows {
			byLoad[i] = append(byLoad[i], r)
		}
	}
	medians := make([]*PerUserResult, len(loads))
	for i, results := range byLoad {
		r, roundRates := medianRound(results, func(r *PerUserResult) float64 { return r.PerServerCore })
		if r.RoundsPerServerCore = roundRates; rounds > 1 {
			e.progress("%s per-user notifications to %d, %s: %.0f per server core-second%s",
				e.target.backend.name, n, r.load(), r.PerServerCore, roundsNote(r.RoundsPerServerCore))
		}
		medians[i] = r
	}
	return medians, nil
}

// perUserRound opens n streams and publishes count notifications, each to one
// user in turn, with each of loads in turn, to the same streams. Each is one
// publish request (token check, JSON, log append) and one delivery. round
// (from 0) of rounds names the profiles.
func perUserRound(ctx context.Context, e *env, n, count int, loads []perUserLoad, round, rounds int) ([]*PerUserResult, error) {
	s, err := e.startOpen(ctx, notifyv1alpha1.HS256, n)
	if err != nil {
		return nil, err
	}
	defer s.close()
	var rows []*PerUserResult
	for _, load := range loads {
		received := newSink(count)
		s.pool.sink.Store(received)
		publish := func(seq int) error {
			_, err := s.pub.PublishNotification(ctx, publisher.Notification{
				RecipientUserIDs: []string{s.pool.clients[seq%n].user},
				NotificationType: "BENCH", Action: "CREATE", Data: newPayload(seq),
			})
			return err
		}
		var mostInFlight int
		cpu, writes, err := s.measureWrites(ctx, roundName(load.profileName(), round, rounds), 2, func() error {
			var err error
			if load.rate > 0 {
				mostInFlight, err = publishPaced(count, load.rate, publish)
			} else {
				err = publishConcurrently(count, load.inFlight, publish)
			}
			if err != nil {
				return err
			}
			return received.wait(ctx, s.pool, int64(count), deliveryTimeout)
		})
		if err != nil {
			return nil, err
		}
		r := &PerUserResult{
			Backend: e.target.backend.name, Connections: n, Notifications: count,
			Publishers: load.inFlight, Paced: load.rate, MostInFlight: mostInFlight,
			Latency: received.latency.summary(), CPU: cpu, BrokerWrites: writes,
			PerSecond: cpu.perWallSecond(float64(count)), PerServerCore: cpu.perServerCore(float64(count)),
		}
		e.progress("%s per-user notifications to %d, %s: %.0f/s, %.0f per server core-second%s, p99 %.1f ms",
			e.target.backend.name, n, load, r.PerSecond, r.PerServerCore, writesNote(r.BrokerWrites), r.Latency.P99Ms)
		rows = append(rows, r)
	}
	return rows, nil
}

// ResumeResult is a reconnect storm: every stream drops, events are
// published while they are gone, and all reconnect at once with
// Last-Event-ID and read what they missed from the log.
type ResumeResult struct {
	Connections   int     `json:"connections"`
	MissedEach    int     `json:"missedEventsEach"`
	Replayed      int64   `json:"replayedEvents"`
	PerSecond     float64 `json:"reconnectsPerSecond"`
	PerServerCore float64 `json:"reconnectsPerServerCoreSecond"`
	CPUPerResume  float64 `json:"serverCPUMicrosecondsPerReconnect"`
	TimeToResume  Latency `json:"timeToConnectionEvent"`
	CPU           CPU     `json:"cpu"`
	Command       string  `json:"command"`
}

// resume measures a reconnect storm of n streams that each missed missed
// events.
func resume(ctx context.Context, e *env, n, missed int) (*ResumeResult, error) {
	s, err := e.startOpen(ctx, notifyv1alpha1.HS256, n)
	if err != nil {
		return nil, err
	}
	defer s.close()
	s.pool.closeAll()
	if err := s.streamer.waitConnections(ctx, 0); err != nil {
		return nil, err
	}
	for seq := range missed {
		if err := s.publishSystemEvent(ctx, seq); err != nil {
			return nil, err
		}
	}
	received := newSink(missed)
	s.pool.sink.Store(received)
	var times *recorder
	cpu, err := s.measure(ctx, "resume", 2, func() error {
		times, err = s.pool.openFirst(ctx, n, e.concurrency, true)
		if err != nil {
			return err
		}
		return received.wait(ctx, s.pool, int64(n*missed), deliveryTimeout)
	})
	if err != nil {
		return nil, err
	}
	r := &ResumeResult{
		Connections: n, MissedEach: missed, Replayed: received.received.Load(), TimeToResume: times.summary(), CPU: cpu,
		PerSecond: cpu.perWallSecond(float64(n)), PerServerCore: cpu.perServerCore(float64(n)),
	}
	if n > 0 {
		r.CPUPerResume = cpu.StreamerSeconds / float64(n) * 1e6
	}
	e.progress("resume storm of %d, %d missed each: %.0f reconnects/s, %.0f per server core-second",
		n, missed, r.PerSecond, r.PerServerCore)
	return r, nil
}

// kib formats bytes for the progress log.
func kib(b int64) string { return strconv.FormatInt(b>>10, 10) + " KiB" }

// profileName is a profile's file name for the backend being measured: the
// embedded log's keep the names they had before there were other backends.
// A streamer with a GOMAXPROCS of its own adds it to the name.
func (e *env) profileName(name string) string {
	if e.gomaxprocs > 0 {
		name += "-gomaxprocs" + strconv.Itoa(e.gomaxprocs)
	}
	if e.target.backend.name == backendEmbedded {
		return name
	}
	return e.target.backend.name + "-" + name
}

// withGOMAXPROCS is e for streamers that run their Go code on at most procs
// cores.
func (e *env) withGOMAXPROCS(procs int) *env {
	limited := *e
	limited.gomaxprocs = procs
	return &limited
}

// mkdirProfiles makes the profiles folder when profiles were asked for.
func (e *env) mkdirProfiles() error {
	if e.profiles == "" {
		return nil
	}
	return os.MkdirAll(e.profiles, 0o755)
}
