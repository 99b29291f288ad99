package main

import (
	"encoding/json"
	"io"
	"os"
	"path/filepath"
	"testing"
	"time"

	. "github.com/onsi/ginkgo/v2"
	. "github.com/onsi/gomega"

	"github.com/herald-notify/herald/internal/testutil"
)

func TestBench(t *testing.T) {
	testutil.RunSuite(t, "load generator")
}

// tinyConfig runs every scenario with about 100 streams: enough to go
// through every code path, far too little to measure anything.
func tinyConfig(herald, dir string) config {
	cfg := defaultConfig()
	cfg.herald = herald
	cfg.jsonOut = filepath.Join(dir, "benchmarks.json")
	cfg.markdownOut = filepath.Join(dir, "benchmarks.md")
	cfg.concurrency = 16
	cfg.memorySteps = []int{50, 100}
	cfg.connect = 100
	cfg.broadcastSizes = []int{100}
	cfg.pacedEvents, cfg.pacedInterval, cfg.burstEvents = 3, 20*time.Millisecond, 5
	cfg.perUserConns, cfg.perUserCount = 100, 200
	cfg.resumeConns, cfg.resumeMissed = 100, 3
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
			Expect(r.Command).To(HavePrefix("go run ./hack/bench -scenarios memory,connect,broadcast,peruser,resume"))

			By("measuring memory at each step, from none")
			Expect(r.Memory.Points).To(HaveLen(3))
			for i, n := range []int{0, 50, 100} {
				Expect(r.Memory.Points[i].Connections).To(Equal(n))
				Expect(r.Memory.Points[i].RSSBytes).To(BeNumerically(">", 0))
				Expect(r.Memory.Points[i].HeapInuseBytes).To(BeNumerically(">", 0))
			}
			Expect(r.Memory.Points[2].Goroutines).To(BeNumerically(">", r.Memory.Points[0].Goroutines))

			By("connecting every stream, with HS256 and with ES256 tokens")
			Expect(r.Connect).To(HaveLen(2))
			for _, c := range r.Connect {
				Expect(c.Connections).To(Equal(100))
				Expect(c.TimeToFirstEvt.Count).To(BeEquivalentTo(100))
				expectLatency(c.TimeToFirstEvt)
			}
			Expect(r.Connect[0].Algorithm).To(Equal("HS256"))
			Expect(r.Connect[1].Algorithm).To(Equal("ES256"))

			By("delivering every broadcast to every stream")
			Expect(r.Broadcast).To(HaveLen(2))
			for _, b := range r.Broadcast {
				Expect(b.Deliveries).To(BeEquivalentTo(b.Connections * b.Events))
				Expect(b.Latency.Count).To(Equal(b.Deliveries))
				Expect(b.ToLast.Count).To(BeEquivalentTo(b.Events))
				expectLatency(b.Latency)
				expectLatency(b.ToLast)
			}
			Expect(r.Broadcast[0].Mode).To(Equal(modePaced))
			Expect(r.Broadcast[1].Mode).To(Equal(modeBurst))

			By("delivering every notification to its user")
			Expect(r.PerUser).To(HaveLen(1))
			Expect(r.PerUser[0].Backend).To(Equal("embedded"))
			Expect(r.PerUser[0].Latency.Count).To(BeEquivalentTo(200))
			expectLatency(r.PerUser[0].Latency)

			By("replaying what every stream missed when it resumed")
			Expect(r.Resume.Replayed).To(BeEquivalentTo(100 * 3))
			Expect(r.Resume.TimeToResume.Count).To(BeEquivalentTo(100))
			expectLatency(r.Resume.TimeToResume)

			By("comparing with the targets and writing the tables between the markers")
			Expect(r.Targets).To(HaveLen(4))
			md, err := os.ReadFile(cfg.markdownOut)
			Expect(err).NotTo(HaveOccurred())
			Expect(string(md)).To(HavePrefix("# Benchmarks\n\nprose\n" + beginMarker + "\nMeasured "))
			Expect(string(md)).To(HaveSuffix(endMarker + "\nmore prose\n"))
			Expect(string(md)).NotTo(ContainSubstring("\nold\n"))
			Expect(string(md)).To(ContainSubstring("| ES256 | 100 |"))
		}, SpecTimeout(3*time.Minute))
	})

	It("names the command that reproduces a run", func() {
		cfg, err := parseFlags(nil)
		Expect(err).NotTo(HaveOccurred())
		Expect(cfg.command("")).To(Equal("make bench"))
		Expect(cfg.command(scenarioResume)).To(Equal("go run ./hack/bench -scenarios resume -resume 10000 -resume-missed 10"))

		cfg, err = parseFlags([]string{"-scenarios", "connect", "-connect", "500"})
		Expect(err).NotTo(HaveOccurred())
		Expect(cfg.command("")).To(Equal("go run ./hack/bench -scenarios connect -connect 500"))
	})

	It("refuses unknown scenarios and backends", func(ctx SpecContext) {
		_, err := parseFlags([]string{"-scenarios", "memory,fanout"})
		Expect(err).To(MatchError(ContainSubstring(`unknown scenario "fanout"`)))
		_, err = startStreamer(ctx, "unused", GinkgoT().TempDir(), "HS256", "kafka")
		Expect(err).To(MatchError(ContainSubstring(`backend "kafka" is not available`)))
	})
})

// expectLatency checks that a distribution holds real, ordered values.
func expectLatency(l Latency) {
	GinkgoHelper()
	Expect(l.P50Ms).To(BeNumerically(">", 0))
	Expect(l.P99Ms).To(BeNumerically(">=", l.P50Ms))
	Expect(l.MaxMs).To(BeNumerically(">=", l.P99Ms))
}
