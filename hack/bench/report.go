package main

import (
	"encoding/json"
	"fmt"
	"os"
	"runtime"
	"strings"
	"syscall"
	"time"

	notifyv1alpha1 "github.com/herald-notify/herald/api/v1alpha1"
)

// benchmarkedAlgorithms are the token algorithms of the connect scenario: the
// usual shared secret, and the usual public-key one.
var benchmarkedAlgorithms = []notifyv1alpha1.JWTAlgorithm{notifyv1alpha1.HS256, notifyv1alpha1.ES256}

// Results are one run of the generator, as written to the JSON file.
type Results struct {
	Machine Machine `json:"machine"`
	Command string  `json:"command"`
	// Backends are the logs measured, in order.
	Backends []BackendInfo `json:"backends"`
	// Concurrency is how many streams the generator opened at once.
	Concurrency int                `json:"concurrency"`
	Started     time.Time          `json:"started"`
	Seconds     float64            `json:"seconds"`
	Memory      *MemoryResult      `json:"idleMemory,omitempty"`
	Connect     []*ConnectResult   `json:"connectRate,omitempty"`
	Broadcast   []*BroadcastResult `json:"broadcast,omitempty"`
	PerUser     []*PerUserResult   `json:"perUserNotifications,omitempty"`
	Resume      *ResumeResult      `json:"resume,omitempty"`
	FanOut      *FanOutResult      `json:"fanOut,omitempty"`
	Targets     []Target           `json:"targets,omitempty"`
}

// Machine describes where the numbers were taken. The generator and the
// streamer share its cores.
type Machine struct {
	CPUModel       string `json:"cpuModel"`
	Cores          int    `json:"cores"`
	GoVersion      string `json:"goVersion"`
	Kernel         string `json:"kernel"`
	OpenFilesLimit uint64 `json:"openFilesLimit"`
	// LoadBefore and LoadAfter are /proc/loadavg when the run started and
	// ended: other work on the machine skews the numbers.
	LoadBefore string `json:"loadBefore"`
	LoadAfter  string `json:"loadAfter"`
	// Floor is the kernel's price of the work a delivery needs.
	Floor Floor `json:"floor"`
}

func describeMachine() Machine {
	m := Machine{Cores: runtime.NumCPU(), GoVersion: goVersion(), LoadBefore: loadAverage()}
	if data, err := os.ReadFile("/proc/cpuinfo"); err == nil {
		for line := range strings.Lines(string(data)) {
			if name, value, ok := strings.Cut(line, ":"); ok && strings.TrimSpace(name) == "model name" {
				m.CPUModel = strings.TrimSpace(value)
				break
			}
		}
	}
	if data, err := os.ReadFile("/proc/sys/kernel/osrelease"); err == nil {
		m.Kernel = strings.TrimSpace(string(data))
	}
	var limit syscall.Rlimit
	if syscall.Getrlimit(syscall.RLIMIT_NOFILE, &limit) == nil {
		m.OpenFilesLimit = limit.Cur
	}
	return m
}

// loadAverage is the 1, 5 and 15 minute load averages.
func loadAverage() string {
	data, err := os.ReadFile("/proc/loadavg")
	if err != nil {
		return ""
	}
	fields := strings.Fields(string(data))
	if len(fields) < 3 {
		return ""
	}
	return strings.Join(fields[:3], " ")
}

// Target is one of the goals the streamer is measured against: issue #6's
// for the embedded log, issue #11's for NATS against the embedded log, and
// issue #13's for memory after a burst and fan-out over cores.
type Target struct {
	Name     string `json:"name"`
	Goal     string `json:"goal"`
	Measured string `json:"measured"`
	Met      bool   `json:"met"`
	// Information marks a row measured next to a target, with no goal of
	// its own.
	Information bool `json:"information,omitempty"`
}

// The goals, per server core.
const (
	// goalIdleBytes is issue #13's (issue #6 asked for 8 KiB).
	goalIdleBytes = 2 << 10
	// goalFixedBytes is the streamer's RSS with no stream: the pod's
	// fixed cost.
	goalFixedBytes    = 32 << 20
	goalDeliveries    = 400000
	goalToLastMs      = 30
	goalToLastStreams = 10000
	// goalFloorShare is issue #13's paced broadcast deliveries per server
	// core-second over one per floor write.
	goalFloorShare = 0.9
	// busyWallOverCPU is how far the floor's write time (wall) may exceed
	// the writer's CPU for the same write before the run says the machine
	// was busy: a writer that waits for a core makes the floor look slower
	// and the ratios to it better.
	busyWallOverCPU = 1.25
	// goalToLastFloorFactor is issue #13's p99 to the last stream over the
	// time of one floor write per stream, spread over the server's cores.
	goalToLastFloorFactor = 1.5
	goalConnects          = 20000
	// goalBurstIdleBytes is RSS per stream once idle again after a burst:
	// the buffers a burst grew go back.
	goalBurstIdleBytes = 3 << 10
	// goalFanOutSpeedup is deliveries per wall second with two cores over
	// one: the hub must not serialise delivery.
	goalFanOutSpeedup = 1.8
	// goalNATSBroadcast is NATS's broadcast rate over the embedded log's,
	// both bursts published at one pace: within 10 %, since a broadcast
	// costs a replica one read from the broker, whatever the number of
	// streams.
	goalNATSBroadcast = 0.9
	// goalNATSPerUser is NATS's per-user rate over the embedded log's.
	goalNATSPerUser = 0.5
)

// targets compares the run with the goals it measured.
func targets(r *Results) []Target {
	var out []Target
	if m := r.Memory; m != nil {
		out = append(out, Target{
			Name: "memory per idle stream", Goal: "≤ 2 KiB",
			Measured: fmt.Sprintf("%.1f KiB RSS (heap %.1f + stacks %.1f KiB)", m.RSSPerConn/1024, m.HeapPerConn/1024, m.StackPerConn/1024),
			Met:      m.RSSPerConn <= goalIdleBytes,
		})
		if len(m.Points) > 0 && m.Points[0].Connections == 0 {
			rss := m.Points[0].RSSBytes
			out = append(out, Target{
				Name: "streamer RSS with no stream (the pod's fixed cost)", Goal: "≤ 32 MiB",
				Measured: fmt.Sprintf("%.1f MiB (heap %.1f MiB)", float64(rss)/(1<<20), float64(m.Points[0].HeapInuseBytes)/(1<<20)),
				Met:      rss <= goalFixedBytes,
			})
		}
		if b := m.AfterBurst; b != nil {
			out = append(out, Target{
				Name: fmt.Sprintf("RSS per stream after a burst of %d, idle again", b.Events), Goal: "≤ 3 KiB",
				Measured: fmt.Sprintf("%.1f KiB (heap %.1f + stacks %.1f KiB, over the streamer with no stream, %s streams; idle slope %.1f KiB)",
					b.RSSPerConn/1024, b.HeapPerConn/1024, b.StackPerConn/1024, thousands(float64(b.Point.Connections)), m.RSSPerConn/1024),
				Met: b.RSSPerConn <= goalBurstIdleBytes,
			})
		}
	}
	if b := largestBroadcast(r.Broadcast, backendEmbedded, modeBurst); b != nil {
		out = append(out, Target{
			Name: "broadcast deliveries per server core-second", Goal: "≥ 400,000",
			Measured: fmt.Sprintf("%s (to %s streams)", thousands(b.PerServerCore), thousands(float64(b.Connections))),
			Met:      b.PerServerCore >= goalDeliveries,
		})
	}
	if b := largestBroadcast(r.Broadcast, backendEmbedded, modePaced); b != nil {
		out = append(out, Target{
			Name: "broadcast p99, publish to the last of 10,000 streams", Goal: "≤ 30 ms",
			Measured: fmt.Sprintf("%.1f ms (to %s streams; p99 of all deliveries %.1f ms)", b.ToLast.P99Ms, thousands(float64(b.Connections)), b.Latency.P99Ms),
			Met:      b.Connections >= goalToLastStreams && b.ToLast.P99Ms <= goalToLastMs,
		})
		out = append(out, pacedFloorTargets(b, r.Machine)...)
	}
	for _, c := range r.Connect {
		if c.Algorithm == string(notifyv1alpha1.HS256) {
			out = append(out, Target{
				Name: "new HS256 streams per server core-second", Goal: "≥ 20,000",
				Measured: thousands(c.PerServerCore) + connectFloorNote(r.Machine.Floor.Connect, c.PerServerCore), Met: c.PerServerCore >= goalConnects,
			})
		}
	}
	if f := r.FanOut; f != nil {
		out = append(out, Target{
			Name: "fan-out with 2 cores vs 1 (GOMAXPROCS), deliveries per wall second", Goal: "≥ 1.8×",
			Measured: fmt.Sprintf("%.2f× (%s ÷ %s, a burst of %d to %s streams; the generator shares the machine's %d cores, which bounds the ratio)",
				f.Speedup, thousands(f.Runs[1].PerSecond), thousands(f.Runs[0].PerSecond), f.Events, thousands(float64(f.Connections)), r.Machine.Cores),
			Met: f.Speedup >= goalFanOutSpeedup,
		})
	}
	return append(out, natsTargets(r)...)
}

// pacedFloorTargets are issue #13's targets of the paced broadcast, each
// against the floor's write of the same run: deliveries per server
// core-second at least 90 % of one per write time, and the p99 to the last
// stream at most 1.5 × (streams × write time ÷ server cores). The goal is
// the floor (200 sockets in turn, readers in the same process);
// each row also gives its ratio to the floor at the broadcast's scale
// (BroadcastFloor), which a broadcast cannot go below.
func pacedFloorTargets(b *BroadcastResult, m Machine) []Target {
	write := m.Floor.WriteMicros
	if write <= 0 {
		return nil
	}
	cpuPerDelivery := ratioOf(1e6, b.PerServerCore)
	ratio := ratioOf(b.PerServerCore, 1e6/write)
	perCore := Target{
		Name: "paced broadcast to 10,000 streams, deliveries per server core-second ÷ one per floor write",
		Goal: fmt.Sprintf("≥ 90 %% of 1 ÷ %.1f µs = %s", write, thousands(goalFloorShare*1e6/write)),
		Measured: fmt.Sprintf("%.0f %% (%s to %s streams, %.1f µs of streamer CPU per delivery)", 100*ratio,
			thousands(b.PerServerCore), thousands(float64(b.Connections)), cpuPerDelivery),
		Met: b.Connections >= goalToLastStreams && ratio >= goalFloorShare,
	}
	cores := b.GOMAXPROCS
	if cores <= 0 {
		cores = m.Cores
	}
	bound := func(micros float64) float64 {
		return goalToLastFloorFactor * float64(b.Connections) * micros / 1e3 / float64(cores)
	}
	toLast := Target{
		Name:     "paced broadcast p99, publish to the last of 10,000 streams, against the floor",
		Goal:     fmt.Sprintf("≤ 1.5 × (%s × %.1f µs ÷ %d) = %.1f ms", thousands(float64(b.Connections)), write, cores, bound(write)),
		Measured: fmt.Sprintf("%.1f ms, %.2f× the bound", b.ToLast.P99Ms, ratioOf(b.ToLast.P99Ms, bound(write))),
		Met:      b.Connections >= goalToLastStreams && b.ToLast.P99Ms <= bound(write),
	}
	if busy := m.Floor.busyNote(); busy != "" {
		perCore.Measured += busy
		toLast.Measured += busy
	}
	if atScale := m.Floor.atScale(); atScale != nil {
		perCore.Measured += fmt.Sprintf("; against the floor at scale (%s sockets, readers in another process: %.1f µs of the writer's CPU per write) %.0f %%",
			thousands(float64(atScale.Sockets)), atScale.WriterCPUMicros, 100*ratioOf(b.PerServerCore, 1e6/atScale.WriterCPUMicros))
		toLast.Measured += fmt.Sprintf("; against the floor at scale (%.1f µs per write: %.1f ms) %.2f×",
			atScale.WallMicros, bound(atScale.WallMicros), ratioOf(b.ToLast.P99Ms, bound(atScale.WallMicros)))
	}
	return []Target{perCore, toLast}
}

// natsTargets compares the NATS rows (sync_interval: always) with the
// embedded log's of the same run and the same sizes.
func natsTargets(r *Results) []Target {
	var out []Target
	for _, mode := range []string{modeBurstPaced, modeBurst} {
		if t := natsBroadcastTarget(r, mode); t != nil {
			out = append(out, *t)
		}
	}
	for _, nats := range r.PerUser {
		embedded := perUserOf(r.PerUser, backendEmbedded, nats.load())
		if nats.Backend != backendNATS || embedded == nil {
			continue
		}
		ratio := ratioOf(nats.PerServerCore, embedded.PerServerCore)
		out = append(out, Target{
			Name: fmt.Sprintf("NATS ÷ embedded, per-user notifications per server core-second, %s", nats.load()), Goal: "≥ 50 %",
			Measured: fmt.Sprintf("%.0f %% (%s ÷ %s; per wall second %.0f %%, %s ÷ %s)", 100*ratio,
				thousands(nats.PerServerCore), thousands(embedded.PerServerCore),
				100*ratioOf(nats.PerSecond, embedded.PerSecond), thousands(nats.PerSecond), thousands(embedded.PerSecond)),
			Met: ratio >= goalNATSPerUser,
		})
	}
	return out
}

// natsBroadcastTarget compares the NATS and embedded bursts of mode to the
// most streams, nil without both. Only paced bursts, at one pace on both
// logs, carry the goal: with requests in flight each log sets its own pace,
// NATS's slower for its acknowledged writes, and a burst whose events reach
// the streamer further apart costs either log more per delivery.
func natsBroadcastTarget(r *Results, mode string) *Target {
	embedded, nats := largestBroadcast(r.Broadcast, backendEmbedded, mode), largestBroadcast(r.Broadcast, backendNATS, mode)
	if nats == nil || embedded == nil || nats.Connections != embedded.Connections {
		return nil
	}
	ratio := ratioOf(nats.PerServerCore, embedded.PerServerCore)
	t := &Target{
		Name: "NATS ÷ embedded, broadcast deliveries per server core-second, " + burstLoad(nats),
		Goal: "≥ 90 % (within 10 %)",
		Measured: fmt.Sprintf("%.0f %% (%s ÷ %s, burst to %s streams; %.1f ÷ %.1f deliveries per write, the burst published in %.0f ms ÷ %.0f ms)", 100*ratio,
			thousands(nats.PerServerCore), thousands(embedded.PerServerCore), thousands(float64(nats.Connections)),
			nats.DeliveriesPerWrite, embedded.DeliveriesPerWrite, nats.PublishMs, embedded.PublishMs),
		Met: ratio >= goalNATSBroadcast,
	}
	if mode != modeBurstPaced {
		t.Goal, t.Met, t.Information = "none: each log's own pace", false, true
	}
	return t
}

// burstLoad says how a burst was published.
func burstLoad(b *BroadcastResult) string {
	if b.Mode == modeBurstPaced {
		return fmt.Sprintf("burst paced at %s a second", thousands(float64(b.PacedPerSecond)))
	}
	return fmt.Sprintf("burst with %d in flight", publishers)
}

// largestBroadcast is the backend's broadcast row of mode to the most
// streams.
func largestBroadcast(rows []*BroadcastResult, backend, mode string) *BroadcastResult {
	var largest *BroadcastResult
	for _, b := range rows {
		if b.Backend == backend && b.Mode == mode && (largest == nil || b.Connections > largest.Connections) {
			largest = b
		}
	}
	return largest
}

// perUserOf is the backend's per-user row of load.
func perUserOf(rows []*PerUserResult, backend string, load perUserLoad) *PerUserResult {
	for _, u := range rows {
		if u.Backend == backend && u.load() == load {
			return u
		}
	}
	return nil
}

func ratioOf(a, b float64) float64 {
	if b <= 0 {
		return 0
	}
	return a / b
}

func writeJSON(file string, r *Results) error {
	data, err := json.MarshalIndent(r, "", "  ")
	if err != nil {
		return err
	}
	return os.WriteFile(file, append(data, '\n'), 0o644)
}

// Markers delimit the generated part of the markdown file; the prose around
// them is left alone.
const (
	beginMarker = "<!-- bench:begin (generated by make bench; edits between the markers are overwritten) -->"
	endMarker   = "<!-- bench:end -->"
)

// replaceBetweenMarkers puts table between the markers of file, or writes a
// new file with just the table when there is none.
func replaceBetweenMarkers(file, table string) error {
	data, err := os.ReadFile(file)
	if os.IsNotExist(err) {
		return os.WriteFile(file, []byte(beginMarker+"\n"+table+endMarker+"\n"), 0o644)
	}
	if err != nil {
		return err
	}
	text := string(data)
	begin := strings.Index(text, beginMarker)
	end := strings.Index(text, endMarker)
	if begin < 0 || end < begin {
		return fmt.Errorf("%s has no %q … %q markers to put the results between", file, beginMarker, endMarker)
	}
	text = text[:begin+len(beginMarker)] + "\n" + table + text[end:]
	return os.WriteFile(file, []byte(text), 0o644)
}

// connectFloorNote sets a connect rate against the connect floor, if
// measured: the goal's and the rate's shares of it.
func connectFloorNote(f *ConnectFloor, perServerCore float64) string {
	if f == nil {
		return ""
	}
	return fmt.Sprintf(" (%.0f %% of the connect floor, %s accepts per core-second of a bare Go server, %.1f µs each; the goal is %.0f %% of it)",
		100*ratioOf(perServerCore, f.PerServerCore), thousands(f.PerServerCore), f.ServerCPUMicros, 100*ratioOf(goalConnects, f.PerServerCore))
}

// renderMarkdown is the results as markdown tables.
func renderMarkdown(r *Results) string {
	var b strings.Builder
	p := func(format string, args ...any) { fmt.Fprintf(&b, format, args...) }
	m := r.Machine
	p("Measured %s with `%s` (%.0f s).\n\n", r.Started.Format("2006-01-02 15:04 MST"), r.Command, r.Seconds)
	p("Logs: %s.\n\n", describeBackends(r.Backends))
	p("Machine: %d × %s, %s, Linux %s, %d open files per process; load average %s at the start, %s at the end. "+
		"The generator runs on the same cores as the streamer.\n\n", m.Cores, m.CPUModel, m.GoVersion, m.Kernel, m.OpenFilesLimit, m.LoadBefore, m.LoadAfter)
	p("The machine's floor, measured by the generator before the scenarios: a getppid system call takes %.2f µs; "+
		"a %d-byte write to a loopback TCP socket %.1f µs, and %.1f µs of CPU with the read at the other end.\n\n",
		m.Floor.SyscallMicros, floorFrame, m.Floor.WriteMicros, m.Floor.WriteReadCPUMicros)
	if len(m.Floor.Broadcast) > 0 {
		p("The same write as a paced broadcast sees it (a round of one write per socket, the readers parked between rounds):\n\n")
		p("| sockets | readers | writes | wall per write | writer CPU per write | readers' CPU per write | first write to last read, median round |\n| ---: | --- | ---: | ---: | ---: | ---: | ---: |\n")
		for _, f := range m.Floor.Broadcast {
			readers := "same process"
			if f.OtherProcess {
				readers = "another process"
			}
			p("| %s | %s | %s | %.1f µs | **%.1f µs** | %.1f µs | %s ms |\n", thousands(float64(f.Sockets)), readers, thousands(float64(f.Writes)),
				f.WallMicros, f.WriterCPUMicros, f.ReaderCPUMicros, ms(f.ToLastReadMs))
		}
		p("\n")
	}
	if c := m.Floor.Connect; c != nil {
		p("The connect floor: a bare Go server in a process of its own accepts %s loopback connections (%d at a time, after %s to warm it), "+
			"reads a %d-byte request from each and answers %d bytes, as long as a stream request and the streamer's opening, then holds it: "+
			"**%.1f µs** of its CPU per connection, %s per core-second.\n\n",
			thousands(float64(c.Connections)), r.Concurrency, thousands(floorWarmConnects), c.RequestBytes, c.ResponseBytes, c.ServerCPUMicros, thousands(c.PerServerCore))
	}

	if len(r.Targets) > 0 {
		p("| target (per server core) | goal | measured | met |\n| --- | --- | --- | --- |\n")
		for _, t := range r.Targets {
			met := yesNo(t.Met)
			if t.Information {
				met = "—"
			}
			p("| %s | %s | %s | %s |\n", t.Name, t.Goal, t.Measured, met)
		}
		p("\n")
	}
	if mem := r.Memory; mem != nil {
		p("**Idle streams** (after forced garbage collections; the slope is the least-squares cost of one more stream): "+
			"%.1f KiB RSS, %.1f KiB heap, %.1f KiB goroutine stacks, %.1f goroutines per stream. `%s`\n\n",
			mem.RSSPerConn/1024, mem.HeapPerConn/1024, mem.StackPerConn/1024, mem.GoroutinesPerCon, mem.Command)
		p("| streams | RSS | heap in use | stacks | goroutines |\n| ---: | ---: | ---: | ---: | ---: |\n")
		for _, pt := range mem.Points {
			p("| %s | %s | %s | %s | %s |\n", thousands(float64(pt.Connections)), mib(pt.RSSBytes), mib(pt.HeapInuseBytes),
				mib(pt.StackBytes), thousands(float64(pt.Goroutines)))
		}
		p("\n")
		if b := mem.AfterBurst; b != nil {
			pt := b.Point
			p("**After a burst** of %d system events (%d publish requests in flight, from a backend process) to the %s streams, once every stream has read them all and is idle again "+
				"(same forced collections): RSS %s, heap %s, stacks %s, %s goroutines; over the streamer with no stream, "+
				"%.1f KiB RSS, %.1f KiB heap, %.1f KiB stacks per stream (idle slope: %.1f KiB RSS).\n\n",
				b.Events, publishers, thousands(float64(pt.Connections)), mib(pt.RSSBytes), mib(pt.HeapInuseBytes), mib(pt.StackBytes),
				thousands(float64(pt.Goroutines)), b.RSSPerConn/1024, b.HeapPerConn/1024, b.StackPerConn/1024, mem.RSSPerConn/1024)
		}
	}
	if len(r.Connect) > 0 {
		p("**Connect rate**: streams opened %d at a time, each with its own token; a stream counts once its connection event is read.\n\n", r.Concurrency)
		p("| tokens | streams | per second | per server core-second | to connection event p50 / p99 | streamer CPU | generator CPU | command |\n")
		p("| --- | ---: | ---: | ---: | ---: | ---: | ---: | --- |\n")
		for _, c := range r.Connect {
			p("| %s | %s | %s | **%s** | %s | %s | %s | `%s` |\n", c.Algorithm, thousands(float64(c.Connections)),
				thousands(c.PerSecond), thousands(c.PerServerCore), p50p99(c.TimeToFirstEvt), cores(c.CPU.StreamerCores),
				cores(c.CPU.GeneratorCores), c.Command)
		}
		p("\n")
	}
	if len(r.Broadcast) > 0 {
		p("**Broadcast**: system events to every stream, paced (one per interval) or in a burst from a backend process of its own, with %d publish requests in flight or paced at a rate (each request started on time, whatever is answered: one pace on every log); %d bursts to the same streams, the row is the median by deliveries per server core-second; latency from publish to read.\n\n", publishers, burstRounds)
		p("| log | streams | events | deliveries / s | per server core-second | latency p50 / p99 / max | publish to last stream p50 / p99 / max | published in | deliveries per write | JetStream writes | streamer CPU | generator CPU | NATS CPU | command |\n")
		p("| --- | ---: | --- | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | --- |\n")
		for _, c := range r.Broadcast {
			events := fmt.Sprintf("%d burst", c.Events)
			switch c.Mode {
			case modePaced:
				events = fmt.Sprintf("%d, one per %g ms", c.Events, c.IntervalMs)
			case modeBurstPaced:
				events = fmt.Sprintf("%d burst, %s a second", c.Events, thousands(float64(c.PacedPerSecond)))
			}
			p("| %s | %s | %s | %s | **%s** | %s | %s | %.0f ms | %.1f | %s | %s | %s | %s | `%s` |\n", c.Backend, thousands(float64(c.Connections)), events,
				thousands(c.PerSecond), thousands(c.PerServerCore), p50p99max(c.Latency), p50p99max(c.ToLast), c.PublishMs, c.DeliveriesPerWrite,
				brokerWritesCell(c.BrokerWrites), cores(c.CPU.StreamerCores), cores(c.CPU.GeneratorCores), brokerCores(c.Backend, c.CPU), c.Command)
		}
		p("\n")
	}
	if len(r.PerUser) > 0 {
		p("**Per-user notifications**: each to one user, with a number of publish requests in flight (a closed loop: a request starts when one is answered), or paced (an open loop: a request starts on time, whatever is in flight); one run each, to the same streams; each is a publish request and a delivery. Paced, both logs carry the same load; in a closed loop the embedded log's pod is busy while a NATS pod mostly waits on its broker.")
		if rounds := len(r.PerUser[0].RoundsPerServerCore); rounds > 1 {
			p(" The runs are repeated in %d rounds, each on a streamer of its own (through NATS, a consumer of its own, which JetStream places anew); a row is the median round by notifications per server core-second, and its last column lists every round's.", rounds)
		}
		p("\n\n")
		p("| log | streams | notifications | load | per second | per server core-second | latency p50 / p99 / max | JetStream writes | streamer CPU | generator CPU | NATS CPU | command | rounds per server core-second |\n")
		p("| --- | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | --- | ---: |\n")
		for _, u := range r.PerUser {
			p("| %s | %s | %s | %s | %s | **%s** | %s | %s | %s | %s | %s | `%s` | %s |\n", u.Backend, thousands(float64(u.Connections)),
				thousands(float64(u.Notifications)), loadCell(u), thousands(u.PerSecond), thousands(u.PerServerCore), p50p99max(u.Latency),
				brokerWritesCell(u.BrokerWrites), cores(u.CPU.StreamerCores), cores(u.CPU.GeneratorCores), brokerCores(u.Backend, u.CPU), u.Command, roundsList(u.RoundsPerServerCore))
		}
		p("\n")
	}
	if rs := r.Resume; rs != nil {
		p("**Resume storm**: every stream drops, events are published, and all reconnect at once with `Last-Event-ID`.\n\n")
		p("| streams | missed each | reconnects / s | per server core-second | server CPU per reconnect | to connection event p50 / p99 | streamer CPU | generator CPU | command |\n")
		p("| ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | --- |\n")
		p("| %s | %d | %s | **%s** | %.0f µs | %s | %s | %s | `%s` |\n\n", thousands(float64(rs.Connections)), rs.MissedEach,
			thousands(rs.PerSecond), thousands(rs.PerServerCore), rs.CPUPerResume, p50p99(rs.TimeToResume),
			cores(rs.CPU.StreamerCores), cores(rs.CPU.GeneratorCores), rs.Command)
	}
	if f := r.FanOut; f != nil {
		p("**Fan-out over cores**: a burst of %d system events (%d publish requests in flight, from a backend process) to %s streams, the streamer's GOMAXPROCS at 1, then 2; "+
			"two cores deliver **%.2f×** as many per wall second as one. The generator runs on the same %d cores, so the machine bounds the ratio. `%s`\n\n",
			f.Events, publishers, thousands(float64(f.Connections)), f.Speedup, r.Machine.Cores, f.Command)
		p("| GOMAXPROCS | deliveries / s | per server core-second | latency p50 / p99 / max | publish to last stream p50 / p99 / max | streamer CPU | generator CPU |\n")
		p("| ---: | ---: | ---: | ---: | ---: | ---: | ---: |\n")
		for _, b := range f.Runs {
			p("| %d | **%s** | %s | %s | %s | %s | %s |\n", b.GOMAXPROCS, thousands(b.PerSecond), thousands(b.PerServerCore),
				p50p99max(b.Latency), p50p99max(b.ToLast), cores(b.CPU.StreamerCores), cores(b.CPU.GeneratorCores))
		}
		p("\n")
	}
	return b.String()
}

// describeBackends is the logs of a run, each with its name in the tables.
func describeBackends(bs []BackendInfo) string {
	parts := make([]string, len(bs))
	for i, b := range bs {
		parts[i] = fmt.Sprintf("`%s`, %s", b.Name, b.Log)
		if b.StoreFilesystem != "" {
			parts[i] += ", stores on " + b.StoreFilesystem
		}
		parts[i] += " (" + strings.Join(b.Scenarios, ", ") + ")"
	}
	return strings.Join(parts, "; ")
}

// brokerCores is the NATS cluster's CPU of a row, "—" for the embedded log,
// which is the streamer's own.
// brokerWritesCell says how many JetStream writes a row's publishing took,
// of how many events each, and their mean wait for acknowledgement.
func brokerWritesCell(w *BrokerWrites) string {
	if w == nil {
		return "—"
	}
	return fmt.Sprintf("%s of %.1f events, acknowledged in %.1f ms", thousands(float64(w.Writes)), w.EventsPerWrite, w.MeanWaitMs)
}

func brokerCores(backend string, c CPU) string {
	if backend == backendEmbedded {
		return "—"
	}
	return cores(c.BrokerCores)
}

func yesNo(ok bool) string {
	if ok {
		return "yes"
	}
	return "**no**"
}

func cores(c float64) string { return fmt.Sprintf("%.2f cores", c) }

func mib(b int64) string { return fmt.Sprintf("%.1f MiB", float64(b)/(1<<20)) }

func p50p99(l Latency) string { return fmt.Sprintf("%s / %s ms", ms(l.P50Ms), ms(l.P99Ms)) }

func p50p99max(l Latency) string {
	return fmt.Sprintf("%s / %s / %s ms", ms(l.P50Ms), ms(l.P99Ms), ms(l.MaxMs))
}

func ms(v float64) string {
	if v < 10 {
		return fmt.Sprintf("%.2f", v)
	}
	return fmt.Sprintf("%.0f", v)
}

// thousands formats a count with thousands separators.
func thousands(v float64) string {
	s := fmt.Sprintf("%.0f", v)
	if len(s) <= 3 {
		return s
	}
	var b strings.Builder
	lead := len(s) % 3
	if lead > 0 {
		b.WriteString(s[:lead])
	}
	for i := lead; i < len(s); i += 3 {
		if b.Len() > 0 {
			b.WriteByte(',')
		}
		b.WriteString(s[i : i+3])
	}
	return b.String()
}

// roundsList is the rounds' rates, in order, or "—" for a single round.
func roundsList(rounds []float64) string {
	if len(rounds) < 2 {
		return "—"
	}
	parts := make([]string, len(rounds))
	for i, r := range rounds {
		parts[i] = thousands(r)
	}
	return strings.Join(parts, ", ")
}

// loadCell is how a per-user row was published.
func loadCell(u *PerUserResult) string {
	if u.Paced > 0 {
		return fmt.Sprintf("%s a second (at most %d in flight)", thousands(float64(u.Paced)), u.MostInFlight)
	}
	return fmt.Sprintf("%d in flight", u.Publishers)
}
