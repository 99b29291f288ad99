package main

import (
	"encoding/json"
	"fmt"
	"io"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	. "github.com/onsi/ginkgo/v2"
	. "github.com/onsi/gomega"

	"github.com/herald-notify/herald/internal/testutil"
)

// TestMain lets the test binary serve the generator's hidden subcommand: the
// NATS backends start the running executable as their cluster's process.
func TestMain(m *testing.M) {
	if code, ok := subcommand(os.Args[1:]); ok {
		os.Exit(code)
	}
	os.Exit(m.Run())
}

func TestBench(t *testing.T) {
	testutil.RunSuite(t, "load generator")
}

// tinyConfig runs every scenario with about 100 streams on the embedded log:
// enough to go through every code path, far too little to measure anything.
func tinyConfig(herald, dir string) config {
	cfg := defaultConfig()
	cfg.backends = backendsNamed(backendEmbedded)
	cfg.herald = herald
	cfg.jsonOut = filepath.Join(dir, "benchmarks.json")
	cfg.markdownOut = filepath.Join(dir, "benchmarks.md")
	cfg.concurrency = 16
	cfg.memorySteps = []int{50, 100}
	cfg.memoryBurst = 5
	cfg.connect = 100
	cfg.broadcastSizes = []int{100}
	cfg.pacedEvents, cfg.pacedInterval, cfg.burstEvents = 3, 20*time.Millisecond, 5
	cfg.perUserConns, cfg.perUserCount, cfg.perUserInFlight, cfg.perUserPaced = 100, 200, []int{2, 8}, []int{2000}
	cfg.resumeConns, cfg.resumeMissed = 100, 3
	cfg.fanOutConns, cfg.fanOutEvents = 100, 5
	return cfg
}

// The smoke test keeps the generator working; it asserts that the results
// are complete and well-formed, never how fast anything was.
var _ = Describe("the load generator", func() {
	Context("against a built herald", func() {
		var dir, herald string
		// Building the binary is not what the spec's timeout bounds: on a busy
		// machine it can take minutes when the build cache is cold.
		BeforeEach(func(ctx SpecContext) {
			dir = GinkgoT().TempDir()
			var err error
			herald, err = buildHerald(ctx, dir)
			Expect(err).NotTo(HaveOccurred())
		}, NodeTimeout(15*time.Minute))

		It("runs every scenario against a real streamer and writes complete results", func(ctx SpecContext) {
			cfg := tinyConfig(herald, dir)
			Expect(os.WriteFile(cfg.markdownOut, []byte("# Benchmarks\n\nprose\n"+beginMarker+"\nold\n"+endMarker+"\nmore prose\n"), 0o600)).To(Succeed())

			Expect(runAndWrite(ctx, cfg, io.Discard, GinkgoWriter)).To(Succeed())

			data, err := os.ReadFile(cfg.jsonOut)
			Expect(err).NotTo(HaveOccurred())
			var r Results
			Expect(json.Unmarshal(data, &r)).To(Succeed())
			Expect(r.Machine.Cores).To(BeNumerically(">", 0))
			Expect(r.Machine.Floor.SyscallMicros).To(BeNumerically(">", 0))
			Expect(r.Machine.Floor.WriteMicros).To(BeNumerically(">", 0))
			expectBroadcastFloors(r.Machine.Floor)
			By("timing the connect floor, since the connect scenario ran")
			c := r.Machine.Floor.Connect
			Expect(c).NotTo(BeNil())
			Expect(c.Connections).To(Equal(cfg.connect))
			Expect(c.RequestBytes).To(Equal(floorRequestBytes))
			Expect(c.ResponseBytes).To(Equal(floorResponseBytes))
			Expect(c.ServerCPUMicros).To(BeNumerically(">", 0))
			Expect(c.PerServerCore).To(BeNumerically("~", 1e6/c.ServerCPUMicros, 1e-6))
			Expect(r.Command).To(HavePrefix("go run ./hack/bench -backend embedded -scenarios memory,connect,broadcast,peruser,resume,fanout"))
			Expect(r.Backends).To(HaveLen(1))
			Expect(r.Backends[0].Scenarios).To(Equal(allScenarios))

			By("measuring memory at each step, from none")
			Expect(r.Memory.Points).To(HaveLen(3))
			for i, n := range []int{0, 50, 100} {
				Expect(r.Memory.Points[i].Connections).To(Equal(n))
				Expect(r.Memory.Points[i].RSSBytes).To(BeNumerically(">", 0))
				Expect(r.Memory.Points[i].HeapInuseBytes).To(BeNumerically(">", 0))
				// An idle stream no longer needs a goroutine of its own: the
				// count is read, not compared between steps.
				Expect(r.Memory.Points[i].Goroutines).To(BeNumerically(">", 0))
			}

			By("measuring memory once the streams of the last step are idle again after a burst")
			burst := r.Memory.AfterBurst
			Expect(burst).NotTo(BeNil())
			Expect(burst.Events).To(Equal(5))
			Expect(burst.Point.Connections).To(Equal(100))
			Expect(burst.Point.RSSBytes).To(BeNumerically(">", 0))
			Expect(burst.Point.HeapInuseBytes).To(BeNumerically(">", 0))
			Expect(burst.RSSPerConn).To(BeNumerically("~", float64(burst.Point.RSSBytes-r.Memory.Points[0].RSSBytes)/100, 1e-6))

			By("connecting every stream, with HS256 and with ES256 tokens")
			Expect(r.Connect).To(HaveLen(2))
			for _, c := range r.Connect {
				Expect(c.Connections).To(Equal(100))
				Expect(c.TimeToFirstEvt.Count).To(BeEquivalentTo(100))
				expectLatency(c.TimeToFirstEvt)
			}
			Expect(r.Connect[0].Algorithm).To(Equal("HS256"))
			Expect(r.Connect[1].Algorithm).To(Equal("ES256"))

			By("delivering every broadcast to every stream, paced, in a burst, and in a burst paced at a rate")
			Expect(r.Broadcast).To(HaveLen(3))
			for _, b := range r.Broadcast {
				expectBroadcast(b)
			}
			Expect(r.Broadcast[0].Mode).To(Equal(modePaced))
			Expect(r.Broadcast[1].Mode).To(Equal(modeBurst))
			Expect(r.Broadcast[2].Mode).To(Equal(modeBurstPaced))
			Expect(r.Broadcast[2].PacedPerSecond).To(Equal(cfg.burstPaced))

			By("delivering every notification to its user, in rounds of which each row is the median")
			Expect(r.PerUser).To(HaveLen(3), "one row per number of requests in flight, then per rate")
			for i, u := range r.PerUser {
				Expect(u.Backend).To(Equal("embedded"))
				Expect(u.load()).To(Equal([]perUserLoad{{inFlight: 2}, {inFlight: 8}, {rate: 2000}}[i]))
				Expect(u.Latency.Count).To(BeEquivalentTo(200))
				expectLatency(u.Latency)
				Expect(u.RoundsPerServerCore).To(HaveLen(cfg.perUserRounds))
				Expect(slices.IsSorted(u.RoundsPerServerCore)).To(BeTrue())
				Expect(u.PerServerCore).To(Equal(u.RoundsPerServerCore[cfg.perUserRounds/2]))
			}

			By("replaying what every stream missed when it resumed")
			Expect(r.Resume.Replayed).To(BeEquivalentTo(100 * 3))
			Expect(r.Resume.TimeToResume.Count).To(BeEquivalentTo(100))
			expectLatency(r.Resume.TimeToResume)

			By("broadcasting the same burst to a streamer with GOMAXPROCS 1, then 2")
			Expect(r.FanOut.Runs).To(HaveLen(2))
			for i, b := range r.FanOut.Runs {
				Expect(b.GOMAXPROCS).To(Equal(fanOutProcs[i]))
				Expect(b.Connections).To(Equal(100))
				Expect(b.Mode).To(Equal(modeBurst))
				expectBroadcast(b)
			}
			Expect(r.FanOut.Speedup).To(BeNumerically("~", r.FanOut.Runs[1].PerSecond/r.FanOut.Runs[0].PerSecond, 1e-9))

			By("comparing with the targets and writing the tables between the markers")
			Expect(r.Targets).To(HaveLen(9))
			var names []string
			for _, t := range r.Targets {
				names = append(names, t.Name)
			}
			Expect(names).To(ContainElements(
				"streamer RSS with no stream (the pod's fixed cost)",
				"RSS per stream after a burst of 5, idle again",
				"fan-out with 2 cores vs 1 (GOMAXPROCS), deliveries per wall second",
				"paced broadcast to 10,000 streams, deliveries per server core-second ÷ one per floor write",
				"paced broadcast p99, publish to the last of 10,000 streams, against the floor"))
			By("comparing the paced broadcast with the floor, as the issue defines it and at scale")
			floorTargets := slices.DeleteFunc(slices.Clone(r.Targets), func(t Target) bool {
				return !strings.HasPrefix(t.Name, "paced broadcast")
			})
			Expect(floorTargets).To(HaveLen(2))
			for _, t := range floorTargets {
				Expect(t.Goal).To(ContainSubstring(fmt.Sprintf("%.1f µs", r.Machine.Floor.WriteMicros)))
				Expect(t.Measured).To(ContainSubstring("against the floor at scale"))
				// 100 streams are not the 10,000 the targets are about.
				Expect(t.Met).To(BeFalse())
			}
			md, err := os.ReadFile(cfg.markdownOut)
			Expect(err).NotTo(HaveOccurred())
			Expect(string(md)).To(HavePrefix("# Benchmarks\n\nprose\n" + beginMarker + "\nMeasured "))
			Expect(string(md)).To(HaveSuffix(endMarker + "\nmore prose\n"))
			Expect(string(md)).NotTo(ContainSubstring("\nold\n"))
			Expect(string(md)).To(ContainSubstring("| ES256 | 100 |"))
			Expect(string(md)).To(ContainSubstring("| 10,000 | another process | "))
			Expect(string(md)).To(ContainSubstring("**After a burst** of 5 system events"))
			Expect(string(md)).To(ContainSubstring("repeated in 3 rounds, each on a streamer of its own"))
			Expect(string(md)).To(ContainSubstring("The connect floor: a bare Go server"))
			Expect(string(md)).To(MatchRegexp(`new HS256 streams per server core-second \| ≥ 20,000 \| [0-9,]+ \(\d+ % of the connect floor`))
			Expect(string(md)).To(ContainSubstring("`go run ./hack/bench -scenarios fanout -fanout 100 -fanout-events 5`"))
		}, SpecTimeout(3*time.Minute))

		It("measures broadcast and per-user notifications through a local NATS cluster next to the embedded log, and compares them", func(ctx SpecContext) {
			cfg := tinyConfig(herald, dir)
			cfg.backends = backends
			cfg.scenarios = []string{scenarioBroadcast, scenarioPerUser}
			cfg.broadcastSizes = []int{20}
			cfg.pacedEvents, cfg.burstEvents = 2, 3
			cfg.perUserConns, cfg.perUserCount = 20, 40

			Expect(runAndWrite(ctx, cfg, io.Discard, GinkgoWriter)).To(Succeed())

			data, err := os.ReadFile(cfg.jsonOut)
			Expect(err).NotTo(HaveOccurred())
			var r Results
			Expect(json.Unmarshal(data, &r)).To(Succeed())
			Expect(r.Command).To(HavePrefix("go run ./hack/bench -scenarios broadcast,peruser -broadcast 20 "))

			By("running each backend's scenarios, the NATS ones on stores of a real filesystem")
			Expect(r.Backends).To(HaveLen(3))
			Expect(namesOfInfo(r.Backends)).To(Equal([]string{backendEmbedded, backendNATS, backendNATSDefaultSync}))
			Expect(r.Backends[1].Scenarios).To(Equal([]string{scenarioBroadcast, scenarioPerUser}))
			Expect(r.Backends[1].Log).To(ContainSubstring("sync_interval: always"))
			Expect(r.Backends[2].Scenarios).To(Equal([]string{scenarioPerUser}))
			Expect(r.Backends[2].Log).To(ContainSubstring("default sync"))
			for _, b := range r.Backends[1:] {
				Expect(b.StoreFilesystem).NotTo(BeEmpty())
			}

			By("delivering every broadcast to every stream through NATS, counting its JetStream writes")
			Expect(r.Broadcast).To(HaveLen(6))
			for i, b := range r.Broadcast {
				Expect(b.Backend).To(Equal([]string{backendEmbedded, backendNATS}[i/3]))
				expectBroadcast(b)
				expectBrokerWrites(b.BrokerWrites, b.Backend, b.Events)
			}
			Expect(r.Broadcast[0].CPU.BrokerSeconds).To(BeZero())
			Expect(r.Machine.Floor.Connect).To(BeNil(), "no connect scenario, no connect floor")

			By("delivering every notification to its user, with either fsync")
			Expect(r.PerUser).To(HaveLen(9))
			for i, u := range r.PerUser {
				Expect(u.Backend).To(Equal(r.Backends[i/3].Name))
				Expect(u.load()).To(Equal([]perUserLoad{{inFlight: 2}, {inFlight: 8}, {rate: 2000}}[i%3]))
				Expect(u.Latency.Count).To(BeEquivalentTo(40))
				expectLatency(u.Latency)
				expectBrokerWrites(u.BrokerWrites, u.Backend, u.Notifications)
			}

			By("comparing NATS with the embedded log of the same run")
			var names []string
			for _, t := range r.Targets {
				names = append(names, t.Name)
			}
			Expect(names).To(ContainElements(
				"NATS ÷ embedded, broadcast deliveries per server core-second, burst paced at 500 a second",
				"NATS ÷ embedded, broadcast deliveries per server core-second, burst with 8 in flight",
				"NATS ÷ embedded, per-user notifications per server core-second, 2 in flight",
				"NATS ÷ embedded, per-user notifications per server core-second, 8 in flight",
				"NATS ÷ embedded, per-user notifications per server core-second, paced at 2,000 a second"))
			md, err := os.ReadFile(cfg.markdownOut)
			Expect(err).NotTo(HaveOccurred())
			Expect(string(md)).To(ContainSubstring("| nats | 20 |"))
			Expect(string(md)).To(ContainSubstring("| nats | 20 | 3 burst, 500 a second |"))
			Expect(string(md)).To(MatchRegexp(`\| NATS ÷ embedded, broadcast deliveries per server core-second, burst with 8 in flight \| none: each log's own pace \| [^|]+ \| — \|`))
			Expect(string(md)).To(ContainSubstring("| nats-default-sync | 20 | 40 | 8 in flight |"))
			Expect(string(md)).To(MatchRegexp(`\| nats \| 20 \| 40 \| 2,000 a second \(at most \d+ in flight\) \|`))
		}, SpecTimeout(3*time.Minute))
	})

	It("holds NATS's broadcast to the embedded log's at one pace, and shows the bursts each log paced itself beside it", func() {
		row := func(backend, mode string, perCore float64) *BroadcastResult {
			b := &BroadcastResult{Backend: backend, Mode: mode, Connections: 10000, Events: 50, PerServerCore: perCore}
			if mode == modeBurstPaced {
				b.PacedPerSecond = 500
			}
			return b
		}
		r := &Results{Broadcast: []*BroadcastResult{
			row(backendEmbedded, modeBurst, 2_500_000), row(backendEmbedded, modeBurstPaced, 2_000_000),
			row(backendNATS, modeBurst, 1_500_000), row(backendNATS, modeBurstPaced, 1_900_000),
		}}
		ts := natsTargets(r)
		Expect(ts).To(HaveLen(2))
		Expect(ts[0].Name).To(Equal("NATS ÷ embedded, broadcast deliveries per server core-second, burst paced at 500 a second"))
		Expect(ts[0].Measured).To(HavePrefix("95 % (1,900,000 ÷ 2,000,000"))
		Expect(ts[0].Met).To(BeTrue())
		Expect(ts[0].Information).To(BeFalse())
		Expect(ts[1].Name).To(Equal("NATS ÷ embedded, broadcast deliveries per server core-second, burst with 8 in flight"))
		Expect(ts[1].Measured).To(HavePrefix("60 % "))
		Expect(ts[1].Information).To(BeTrue(), "each log set its own pace: no goal")
		Expect(ts[1].Met).To(BeFalse())

		By("failing the goal below 90 % at one pace")
		r.Broadcast[3].PerServerCore = 1_700_000
		Expect(natsTargets(r)[0].Met).To(BeFalse())

		By("comparing nothing without both logs' rows")
		r.Broadcast = r.Broadcast[:3]
		Expect(natsTargets(r)).To(HaveLen(1))
	})

	It("keeps one profile per round where a row is the median of rounds, under the name it had otherwise", func() {
		Expect(roundName("broadcast-10000-burst", 0, burstRounds)).To(Equal("broadcast-10000-burst-round1"))
		Expect(roundName("broadcast-10000-burst", burstRounds-1, burstRounds)).To(Equal("broadcast-10000-burst-round9"))
		Expect(roundName("per-user-8", 0, 1)).To(Equal("per-user-8"), "one round, one profile")
	})

	It("derives a measurement's JetStream writes from the log's metrics before and after it", func() {
		before := brokerWriteTotals{writes: 10, waitSeconds: 0.05, groups: 10, events: 30}
		after := brokerWriteTotals{writes: 14, waitSeconds: 0.074, groups: 14, events: 50}
		w := after.since(before)
		Expect(w.Writes).To(BeEquivalentTo(4))
		Expect(w.MeanWaitMs).To(BeNumerically("~", 6, 1e-9), "24 ms over 4 writes")
		Expect(w.EventsPerWrite).To(BeNumerically("~", 5, 1e-9), "20 events over 4 writes")
		Expect(before.since(before)).To(BeNil(), "no writes, as on the embedded log")
	})

	It("names the command that reproduces a run, and each row's backend when another runs its scenario too", func() {
		cfg, err := parseFlags(nil)
		Expect(err).NotTo(HaveOccurred())
		Expect(cfg.runCommand()).To(Equal("make bench"))
		embedded, nats := backendsNamed(backendEmbedded)[0], backendsNamed(backendNATS)[0]
		Expect(cfg.command(embedded, scenarioResume)).To(Equal("go run ./hack/bench -scenarios resume -resume 10000 -resume-missed 10"))
		Expect(cfg.command(embedded, scenarioPerUser)).To(Equal("go run ./hack/bench -backend embedded -scenarios peruser -peruser 10000 -peruser-count 20000 -peruser-in-flight 8,64 -peruser-paced 2000 -peruser-rounds 3"))
		Expect(cfg.command(embedded, scenarioMemory)).To(Equal("go run ./hack/bench -scenarios memory -memory 1000,2500,5000,10000 -memory-burst 50"))
		Expect(cfg.command(embedded, scenarioFanOut)).To(Equal("go run ./hack/bench -scenarios fanout -fanout 10000 -fanout-events 50"))
		Expect(cfg.command(nats, scenarioBroadcast)).To(And(HavePrefix("go run ./hack/bench -backend nats -scenarios broadcast -broadcast 1000,10000 "),
			HaveSuffix(" -burst-events 50 -burst-paced 500")))

		cfg, err = parseFlags([]string{"-scenarios", "broadcast", "-burst-paced", "0"})
		Expect(err).NotTo(HaveOccurred())
		Expect(cfg.broadcastLoads()).To(Equal([]broadcastLoad{{events: 20, interval: 500 * time.Millisecond}, {events: 50}}), "no paced burst")

		cfg, err = parseFlags([]string{"-scenarios", "connect", "-connect", "500"})
		Expect(err).NotTo(HaveOccurred())
		Expect(cfg.runCommand()).To(Equal("go run ./hack/bench -scenarios connect -connect 500"))

		cfg, err = parseFlags([]string{"-scenarios", "peruser", "-peruser-paced", ""})
		Expect(err).NotTo(HaveOccurred())
		Expect(cfg.perUserLoads()).To(Equal([]perUserLoad{{inFlight: 8}, {inFlight: 64}}), "no paced runs")
		Expect(cfg.runCommand()).To(ContainSubstring(` -peruser-paced "" `))

		cfg, err = parseFlags([]string{"-backend", "nats", "-scenarios", "broadcast,peruser"})
		Expect(err).NotTo(HaveOccurred())
		Expect(cfg.runCommand()).To(HavePrefix("go run ./hack/bench -backend nats -scenarios broadcast,peruser -broadcast "))
	})

	It("compares the paced broadcast to 10,000 streams with the floor's write, as issue #13 defines it and at scale", func() {
		m := Machine{Cores: 2, Floor: Floor{WriteMicros: 5, Broadcast: []BroadcastFloor{
			{Sockets: 200, WallMicros: 5, WriterCPUMicros: 5},
			{Sockets: 200, OtherProcess: true, WallMicros: 6, WriterCPUMicros: 6},
			{Sockets: 10000, OtherProcess: true, WallMicros: 10, WriterCPUMicros: 8},
		}}}
		// 180,000 per core-second is 90 % of one per 5 µs write, and 144 %
		// of one per 8 µs; 10,000 writes of 5 µs over 2 cores take 25 ms,
		// and 1.5 × that is 37.5 ms.
		b := &BroadcastResult{Connections: 10000, Mode: modePaced, GOMAXPROCS: 2, PerServerCore: 180000, ToLast: Latency{P99Ms: 75}}
		ts := pacedFloorTargets(b, m)
		Expect(ts).To(HaveLen(2))
		Expect(ts[0].Goal).To(Equal("≥ 90 % of 1 ÷ 5.0 µs = 180,000"))
		Expect(ts[0].Measured).To(HavePrefix("90 % (180,000 to 10,000 streams, 5.6 µs of streamer CPU per delivery)"))
		Expect(ts[0].Measured).To(HaveSuffix("(10,000 sockets, readers in another process: 8.0 µs of the writer's CPU per write) 144 %"))
		Expect(ts[0].Met).To(BeTrue())
		Expect(ts[1].Goal).To(Equal("≤ 1.5 × (10,000 × 5.0 µs ÷ 2) = 37.5 ms"))
		Expect(ts[1].Measured).To(Equal("75.0 ms, 2.00× the bound; against the floor at scale (10.0 µs per write: 75.0 ms) 1.00×"))
		Expect(ts[1].Met).To(BeFalse())

		b.PerServerCore, b.ToLast.P99Ms = 170000, 37
		ts = pacedFloorTargets(b, m)
		Expect(ts[0].Met).To(BeFalse())
		Expect(ts[1].Met).To(BeTrue())

		By("saying so when the floor's write took much longer than its CPU time")
		m.Floor.WriteMicros = 10
		ts = pacedFloorTargets(b, m)
		for _, t := range ts {
			Expect(t.Measured).To(ContainSubstring("; a busy machine: the floor's write took 10.0 µs of wall time for 5.0 µs of CPU"))
		}
	})

	It("publishes bursts from a process of its own, which says why a burst failed and serves the next", func(ctx SpecContext) {
		// Nothing listens at addr: every request of a burst is refused.
		ln, err := net.Listen("tcp", "127.0.0.1:0")
		Expect(err).NotTo(HaveOccurred())
		addr := ln.Addr().String()
		Expect(ln.Close()).To(Succeed())
		b, err := startBackend(ctx, addr, "a-token")
		Expect(err).NotTo(HaveOccurred())
		defer b.stop()
		for _, rate := range []int{0, 1000} { // in flight, then paced
			_, err = b.burst(3, 2, rate)
			Expect(err).To(MatchError(And(ContainSubstring("the backend: "), ContainSubstring(addr))))
		}

		Expect(backendMain(nil, strings.NewReader(""), io.Discard, io.Discard)).To(MatchError("-api is required"))
		Expect(backendMain([]string{"-api", addr}, strings.NewReader(""), io.Discard, io.Discard)).To(MatchError(backendTokenEnv + " is not set"))
	})

	It("reads another process's CPU time to the nanosecond, where /proc counts ticks of 10 ms", func(ctx SpecContext) {
		busy := exec.CommandContext(ctx, "sh", "-c", "while :; do :; done")
		Expect(busy.Start()).To(Succeed())
		DeferCleanup(func() { _ = busy.Process.Kill(); _ = busy.Wait() })
		var spent time.Duration
		Eventually(func() (err error) { spent, err = processCPU(busy.Process.Pid); return err }).Should(Succeed())
		Eventually(func() (time.Duration, error) { return processCPU(busy.Process.Pid) }).Should(BeNumerically(">", spent+50*time.Millisecond))
		spent, err := processCPU(busy.Process.Pid)
		Expect(err).NotTo(HaveOccurred())
		Expect(spent%(10*time.Millisecond)).NotTo(BeZero(), "a reading finer than a tick")

		Expect(busy.Process.Kill()).To(Succeed())
		_ = busy.Wait()
		_, err = processCPU(busy.Process.Pid)
		Expect(err).To(MatchError(ContainSubstring(fmt.Sprintf("process %d", busy.Process.Pid))))
	})

	It("counts every thread of a process in its CPU time", func() {
		before, err := processCPU(os.Getpid())
		Expect(err).NotTo(HaveOccurred())
		// Two threads each spin for 30 ms of their own CPU time.
		threads := make([]time.Duration, 2)
		var spinning sync.WaitGroup
		for i := range threads {
			spinning.Go(func() {
				defer GinkgoRecover()
				runtime.LockOSThread()
				defer runtime.UnlockOSThread()
				start, err := threadCPU()
				Expect(err).NotTo(HaveOccurred())
				for threads[i] < 30*time.Millisecond {
					now, err := threadCPU()
					Expect(err).NotTo(HaveOccurred())
					threads[i] = now - start
				}
			})
		}
		spinning.Wait()
		after, err := processCPU(os.Getpid())
		Expect(err).NotTo(HaveOccurred())
		Expect(after - before).To(BeNumerically(">=", threads[0]+threads[1]))
	})

	It("refuses unknown scenarios and backends, and backends that run none of the scenarios", func() {
		_, err := parseFlags([]string{"-scenarios", "memory,fanin"})
		Expect(err).To(MatchError(ContainSubstring(`unknown scenario "fanin"`)))
		_, err = parseFlags([]string{"-backend", "embedded,kafka"})
		Expect(err).To(MatchError(ContainSubstring(`backend "kafka" is not available`)))
		_, err = parseFlags([]string{"-backend", "nats", "-scenarios", "memory"})
		Expect(err).To(MatchError(ContainSubstring("runs none of -scenarios memory")))
		_, err = parseFlags([]string{"-peruser-rounds", "0"})
		Expect(err).To(MatchError("-peruser-rounds: 0, want at least 1"))
		_, err = parseFlags([]string{"-burst-paced", "-1"})
		Expect(err).To(MatchError("-burst-paced: -1, want a rate or 0 for none"))
		_, err = parseFlags([]string{"-peruser-paced", "2000,fast"})
		Expect(err).To(MatchError(`-peruser-paced: "fast" is not a positive number`))
	})
})

// expectBrokerWrites checks a row's JetStream writes: none on the embedded
// log; through NATS, at most one per event, each acknowledged after a wait.
func expectBrokerWrites(w *BrokerWrites, backend string, events int) {
	GinkgoHelper()
	if backend == backendEmbedded {
		Expect(w).To(BeNil())
		return
	}
	Expect(w).NotTo(BeNil())
	Expect(w.Writes).To(BeNumerically(">", 0))
	Expect(w.Writes).To(BeNumerically("<=", events))
	Expect(w.EventsPerWrite).To(BeNumerically(">=", 1))
	Expect(w.MeanWaitMs).To(BeNumerically(">", 0))
}

// expectBroadcastFloors checks that the floor's write was timed at every
// size, with the readers where each size says.
func expectBroadcastFloors(f Floor) {
	GinkgoHelper()
	Expect(f.Broadcast).To(HaveLen(len(broadcastFloorSizes)))
	for i, b := range f.Broadcast {
		Expect(b.Sockets).To(Equal(broadcastFloorSizes[i].sockets))
		Expect(b.OtherProcess).To(Equal(broadcastFloorSizes[i].otherProcess))
		Expect(b.Writes).To(BeNumerically(">=", b.Sockets*broadcastFloorMinRounds))
		Expect(b.WallMicros).To(BeNumerically(">", 0))
		Expect(b.WriterCPUMicros).To(BeNumerically(">", 0))
		Expect(b.ReaderCPUMicros).To(BeNumerically(">", 0))
		Expect(b.ToLastReadMs).To(BeNumerically(">", 0))
	}
	Expect(f.atScale()).To(Equal(&f.Broadcast[len(f.Broadcast)-1]))
	Expect(f.atScale().Sockets).To(Equal(goalToLastStreams))
}

// expectBroadcast checks that every stream had every event.
func expectBroadcast(b *BroadcastResult) {
	GinkgoHelper()
	Expect(b.Deliveries).To(BeEquivalentTo(b.Connections * b.Events))
	Expect(b.Latency.Count).To(Equal(b.Deliveries))
	Expect(b.ToLast.Count).To(BeEquivalentTo(b.Events))
	expectLatency(b.Latency)
	expectLatency(b.ToLast)
	// Every stream was written to at least once, and a write carries at
	// most every event of the round.
	Expect(b.CPU.StreamerWrites).To(BeNumerically(">=", b.Connections))
	Expect(b.DeliveriesPerWrite).To(BeNumerically("~", float64(b.Deliveries)/float64(b.CPU.StreamerWrites), 1e-9))
	Expect(b.DeliveriesPerWrite).To(BeNumerically("<=", b.Events))
	Expect(b.PublishMs).To(BeNumerically(">", 0))
	if b.Mode != modePaced {
		// The median of its bursts, which are sorted.
		Expect(b.RoundsPerServerCore).To(HaveLen(burstRounds))
		Expect(slices.IsSorted(b.RoundsPerServerCore)).To(BeTrue())
		Expect(b.PerServerCore).To(Equal(b.RoundsPerServerCore[burstRounds/2]))
	} else {
		Expect(b.RoundsPerServerCore).To(BeEmpty())
	}
}

func namesOfInfo(bs []BackendInfo) []string {
	names := make([]string, len(bs))
	for i, b := range bs {
		names[i] = b.Name
	}
	return names
}

// backendsNamed are the backends of a -backend list.
func backendsNamed(list string) []backend {
	GinkgoHelper()
	bs, err := parseBackends(list)
	Expect(err).NotTo(HaveOccurred())
	return bs
}

// expectLatency checks that a distribution holds real, ordered values.
func expectLatency(l Latency) {
	GinkgoHelper()
	Expect(l.P50Ms).To(BeNumerically(">", 0))
	Expect(l.P99Ms).To(BeNumerically(">=", l.P50Ms))
	Expect(l.MaxMs).To(BeNumerically(">=", l.P99Ms))
}
