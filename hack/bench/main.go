// Command bench is Herald's load generator: it starts standalone streamer
// processes ("herald streamer --config", with a generated channel and keys),
// opens thousands of real SSE streams to them over loopback, each as its own
// user, and measures what a streamer pod costs: memory per idle stream and
// after a burst, authenticated connections per second, broadcast and
// per-user delivery throughput and latency, a reconnect storm with
// Last-Event-ID, and a broadcast's fan-out over two cores against one. It
// measures the embedded log, then the scenarios where every event goes
// through the broker against NATS JetStream: three local nodes, in a
// process of the generator's own, and stream replicas 3.
//
// CPU is read from each process's own accounting, so rates are given per
// second of the streamer's CPU ("per server core") as well as per second of
// wall time; latency is measured from a timestamp the publisher puts in each
// event to the moment a client reads it.
//
//	make bench                                   # everything, into docs/
//	go run ./hack/bench -scenarios broadcast -broadcast 10000
//	go run ./hack/bench -backend nats -scenarios broadcast,peruser
//
// Results go to a JSON file and to the table between the markers in a
// markdown file; see docs/benchmarks.md.
package main

import (
	"cmp"
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"os/signal"
	"slices"
	"strconv"
	"strings"
	"syscall"
	"time"
)

// Scenario names, the values of -scenarios.
const (
	scenarioMemory    = "memory"
	scenarioConnect   = "connect"
	scenarioBroadcast = "broadcast"
	scenarioPerUser   = "peruser"
	scenarioResume    = "resume"
	scenarioFanOut    = "fanout"
)

var allScenarios = []string{scenarioMemory, scenarioConnect, scenarioBroadcast, scenarioPerUser, scenarioResume, scenarioFanOut}

// config is the generator's command line: which scenarios, at which sizes.
type config struct {
	herald      string
	jsonOut     string
	markdownOut string
	profiles    string
	scenarios   []string
	backends    []backend
	concurrency int

	memorySteps    []int
	memoryBurst    int
	connect        int
	broadcastSizes []int
	pacedEvents    int
	pacedInterval  time.Duration
	burstEvents    int
	// burstPaced is the events a second of the paced burst, an open loop
	// (0: none).
	burstPaced   int
	perUserConns int
	perUserCount int
	// perUserInFlight are the publish requests kept in flight, one run each.
	perUserInFlight []int
	// perUserPaced are the rates published at in an open loop, one run
	// each after those of perUserInFlight.
	perUserPaced []int
	// perUserRounds is how many streamers, one after another, run them: a
	// row is the median round.
	perUserRounds int
	resumeConns   int
	resumeMissed  int
	fanOutConns   int
	fanOutEvents  int
}

// defaultConfig is the full benchmark. The largest scenario, 10,000 streams,
// fits a limit of about 20,000 open files per process: the generator holds
// one socket per stream and so does the streamer.
func defaultConfig() config {
	return config{
		scenarios:      allScenarios,
		backends:       backends,
		concurrency:    64,
		memorySteps:    []int{1000, 2500, 5000, 10000},
		memoryBurst:    50,
		connect:        10000,
		broadcastSizes: []int{1000, 10000},
		pacedEvents:    20,
		pacedInterval:  500 * time.Millisecond,
		burstEvents:    50,
		// About the pace of a NATS burst with 8 in flight here, which
		// either log keeps up with: at one pace, both logs' events reach
		// the streamer alike, and the rows compare the fan-out alone.
		burstPaced:   500,
		perUserConns: 10000,
		perUserCount: 20000,
		// As a few backend replicas publishing one at a time would, and a
		// busy application: with NATS, publishing is bound by the write's
		// acknowledgement (an fsync on each replica) until requests share
		// writes.
		perUserInFlight: []int{8, 64},
		// The same load on either log, which a closed loop is not: with 8
		// in flight the embedded log's pod is busy while a NATS pod mostly
		// waits on its broker. About what a NATS pod publishes with 8 in
		// flight here.
		perUserPaced:  []int{2000},
		perUserRounds: 3,
		resumeConns:   10000,
		resumeMissed:  10,
		fanOutConns:   10000,
		fanOutEvents:  50,
	}
}

func main() {
	if code, ok := subcommand(os.Args[1:]); ok {
		os.Exit(code)
	}
	cfg, err := parseFlags(os.Args[1:])
	if err != nil {
		if errors.Is(err, flag.ErrHelp) {
			return
		}
		fmt.Fprintln(os.Stderr, "bench:", err)
		os.Exit(2)
	}
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	if err := runAndWrite(ctx, cfg, os.Stdout, os.Stderr); err != nil {
		fmt.Fprintln(os.Stderr, "bench:", err)
		os.Exit(1)
	}
}

func parseFlags(args []string) (config, error) {
	cfg := defaultConfig()
	fs := flag.NewFlagSet("bench", flag.ContinueOnError)
	fs.StringVar(&cfg.herald, "herald", "", "herald binary to benchmark (default: go build one into a temporary folder)")
	fs.StringVar(&cfg.jsonOut, "json", "", "write the results as JSON to this file")
	fs.StringVar(&cfg.markdownOut, "markdown", "", "replace the results between the bench markers of this markdown file (default: print them)")
	fs.StringVar(&cfg.profiles, "profiles", "", "save the streamer's pprof CPU profiles of each scenario (one per round where a row is a median), and its heap with idle streams and after the burst, into this folder")
	backendList := fs.String("backend", strings.Join(backendNames(), ","), "the channel's event logs to measure, in turn, each with the scenarios of -scenarios it runs: "+backendsUsage())
	fs.IntVar(&cfg.concurrency, "concurrency", cfg.concurrency, "streams the generator opens at once")
	scenarios := fs.String("scenarios", strings.Join(cfg.scenarios, ","), "scenarios to run, of "+strings.Join(allScenarios, ","))
	memory := fs.String("memory", joinInts(cfg.memorySteps), "idle memory: the stream counts to measure at, rising")
	fs.IntVar(&cfg.memoryBurst, "memory-burst", cfg.memoryBurst, "idle memory: events broadcast in a burst to the streams of the last step before memory is read once more (0: none)")
	fs.IntVar(&cfg.connect, "connect", cfg.connect, "connect rate: streams opened, with HS256 and with ES256 tokens")
	broadcasts := fs.String("broadcast", joinInts(cfg.broadcastSizes), "broadcast: the stream counts to broadcast to")
	fs.IntVar(&cfg.pacedEvents, "paced-events", cfg.pacedEvents, "broadcast latency: events published one per -paced-interval")
	fs.DurationVar(&cfg.pacedInterval, "paced-interval", cfg.pacedInterval, "broadcast latency: time between events")
	fs.IntVar(&cfg.burstEvents, "burst-events", cfg.burstEvents, "broadcast throughput: events published with 8 requests in flight")
	fs.IntVar(&cfg.burstPaced, "burst-paced", cfg.burstPaced, "broadcast throughput: the burst again, its events published at this many a second whatever is answered (at most 1,024 in flight), one pace for every log (0: none)")
	fs.IntVar(&cfg.perUserConns, "peruser", cfg.perUserConns, "per-user notifications: streams open")
	fs.IntVar(&cfg.perUserCount, "peruser-count", cfg.perUserCount, "per-user notifications: notifications published, one user each")
	perUserInFlight := fs.String("peruser-in-flight", joinInts(cfg.perUserInFlight), "per-user notifications: publish requests kept in flight, one run for each")
	perUserPaced := fs.String("peruser-paced", joinInts(cfg.perUserPaced), "per-user notifications: notifications a second, each request started on time whatever is in flight (at most 1,024), one run for each (empty: none)")
	fs.IntVar(&cfg.perUserRounds, "peruser-rounds", cfg.perUserRounds, "per-user notifications: rounds, each on a streamer of its own (with NATS, a consumer of its own); a row is the median round")
	fs.IntVar(&cfg.resumeConns, "resume", cfg.resumeConns, "resume: streams that drop and reconnect at once")
	fs.IntVar(&cfg.resumeMissed, "resume-missed", cfg.resumeMissed, "resume: events each stream misses while away")
	fs.IntVar(&cfg.fanOutConns, "fanout", cfg.fanOutConns, "fan-out over cores: streams a burst is broadcast to, with the streamer's GOMAXPROCS at 1, then 2")
	fs.IntVar(&cfg.fanOutEvents, "fanout-events", cfg.fanOutEvents, "fan-out over cores: events of the burst")
	if err := fs.Parse(args); err != nil {
		return cfg, err
	}
	if fs.NArg() > 0 {
		return cfg, fmt.Errorf("unexpected argument %q", fs.Arg(0))
	}
	cfg.scenarios = strings.Split(*scenarios, ",")
	for _, s := range cfg.scenarios {
		if !slices.Contains(allScenarios, s) {
			return cfg, fmt.Errorf("-scenarios: unknown scenario %q (known: %s)", s, strings.Join(allScenarios, ","))
		}
	}
	var err error
	if cfg.backends, err = parseBackends(*backendList); err != nil {
		return cfg, fmt.Errorf("-backend: %w", err)
	}
	if !slices.ContainsFunc(cfg.backends, func(b backend) bool { return len(b.runs(cfg.scenarios)) > 0 }) {
		return cfg, fmt.Errorf("-backend %s runs none of -scenarios %s", *backendList, *scenarios)
	}
	if cfg.perUserInFlight, err = parseInts(*perUserInFlight); err != nil {
		return cfg, fmt.Errorf("-peruser-in-flight: %w", err)
	}
	if slices.Max(cfg.perUserInFlight) > maxInFlight {
		return cfg, fmt.Errorf("-peruser-in-flight: at most %d requests in flight", maxInFlight)
	}
	if cfg.perUserPaced = nil; *perUserPaced != "" {
		if cfg.perUserPaced, err = parseInts(*perUserPaced); err != nil {
			return cfg, fmt.Errorf("-peruser-paced: %w", err)
		}
	}
	if cfg.burstPaced < 0 {
		return cfg, fmt.Errorf("-burst-paced: %d, want a rate or 0 for none", cfg.burstPaced)
	}
	if cfg.perUserRounds < 1 {
		return cfg, fmt.Errorf("-peruser-rounds: %d, want at least 1", cfg.perUserRounds)
	}
	if cfg.memorySteps, err = parseInts(*memory); err != nil {
		return cfg, fmt.Errorf("-memory: %w", err)
	}
	if cfg.broadcastSizes, err = parseInts(*broadcasts); err != nil {
		return cfg, fmt.Errorf("-broadcast: %w", err)
	}
	if !slices.IsSorted(cfg.memorySteps) {
		return cfg, errors.New("-memory: the counts must rise")
	}
	if cfg.memoryBurst < 0 {
		return cfg, fmt.Errorf("-memory-burst: %d is negative", cfg.memoryBurst)
	}
	if cfg.fanOutConns <= 0 || cfg.fanOutEvents <= 0 {
		return cfg, fmt.Errorf("-fanout %d -fanout-events %d: both must be positive", cfg.fanOutConns, cfg.fanOutEvents)
	}
	return cfg, nil
}

// runAndWrite runs the benchmark and writes its results where cfg says.
func runAndWrite(ctx context.Context, cfg config, stdout, progress io.Writer) error {
	report, err := run(ctx, cfg, progress)
	if err != nil {
		return err
	}
	if cfg.jsonOut != "" {
		if err := writeJSON(cfg.jsonOut, report); err != nil {
			return err
		}
	}
	table := renderMarkdown(report)
	if cfg.markdownOut == "" {
		_, err := io.WriteString(stdout, table)
		return err
	}
	return replaceBetweenMarkers(cfg.markdownOut, table)
}

// run runs the scenarios of cfg, each against a streamer of its own, for
// each backend in turn.
func run(ctx context.Context, cfg config, progress io.Writer) (*Results, error) {
	dir, err := os.MkdirTemp("", "herald-bench-")
	if err != nil {
		return nil, err
	}
	defer func() { _ = os.RemoveAll(dir) }()
	e := &env{
		herald: cfg.herald, dir: dir, concurrency: cfg.concurrency, profiles: cfg.profiles,
		progress: func(format string, args ...any) {
			_, _ = fmt.Fprintf(progress, time.Now().Format("15:04:05 ")+format+"\n", args...)
		},
	}
	if err := e.mkdirProfiles(); err != nil {
		return nil, err
	}
	if e.herald == "" {
		e.progress("building herald")
		if e.herald, err = buildHerald(ctx, dir); err != nil {
			return nil, err
		}
	}
	report := &Results{Machine: describeMachine(), Concurrency: cfg.concurrency, Command: cfg.runCommand(), Started: time.Now().UTC()}
	floorConnects := 0
	if slices.Contains(cfg.scenarios, scenarioConnect) {
		floorConnects = cfg.connect
	}
	if report.Machine.Floor, err = measureFloor(ctx, floorConnects, cfg.concurrency); err != nil {
		return nil, fmt.Errorf("measuring the machine's floor: %w", err)
	}
	for _, b := range cfg.backends {
		if err := runBackend(ctx, e, cfg, b, report); err != nil {
			return nil, fmt.Errorf("backend %s: %w", b.name, err)
		}
	}
	report.Seconds = time.Since(report.Started).Seconds()
	report.Machine.LoadAfter = loadAverage()
	report.Targets = targets(report)
	return report, nil
}

// runBackend runs the scenarios of cfg that b runs, with the log of b: for
// NATS, a cluster of its own, stopped after them.
func runBackend(ctx context.Context, e *env, cfg config, b backend, report *Results) error {
	scenarios := b.runs(cfg.scenarios)
	if len(scenarios) == 0 {
		return nil
	}
	info := BackendInfo{Name: b.name, Log: b.log, Scenarios: scenarios}
	e.target = logTarget{backend: b}
	if b.nats {
		stores, err := os.MkdirTemp(e.dir, b.name+"-")
		if err != nil {
			return err
		}
		e.progress("starting NATS for %s: %s", b.name, b.log)
		if e.target.nats, err = startNATS(ctx, stores, b.periodicSync); err != nil {
			return err
		}
		defer e.target.nats.stop()
		info.StoreFilesystem = filesystem(stores)
	}
	report.Backends = append(report.Backends, info)
	for _, name := range scenarios {
		if err := runScenario(ctx, e, cfg, name, report); err != nil {
			return fmt.Errorf("scenario %s: %w", name, err)
		}
	}
	return nil
}

func runScenario(ctx context.Context, e *env, cfg config, name string, report *Results) error {
	command := cfg.command(e.target.backend, name)
	switch name {
	case scenarioMemory:
		r, err := idleMemory(ctx, e, cfg.memorySteps, cfg.memoryBurst)
		if err != nil {
			return err
		}
		r.Command = command
		report.Memory = r
	case scenarioConnect:
		for _, alg := range benchmarkedAlgorithms {
			r, err := connectRate(ctx, e, alg, cfg.connect)
			if err != nil {
				return err
			}
			r.Command = command
			report.Connect = append(report.Connect, r)
		}
	case scenarioBroadcast:
		for _, n := range cfg.broadcastSizes {
			for _, load := range cfg.broadcastLoads() {
				r, err := broadcast(ctx, e, n, load)
				if err != nil {
					return err
				}
				r.Command = command
				report.Broadcast = append(report.Broadcast, r)
			}
		}
	case scenarioPerUser:
		rows, err := perUser(ctx, e, cfg.perUserConns, cfg.perUserCount, cfg.perUserLoads(), cfg.perUserRounds)
		if err != nil {
			return err
		}
		for _, r := range rows {
			r.Command = command
		}
		report.PerUser = append(report.PerUser, rows...)
	case scenarioResume:
		r, err := resume(ctx, e, cfg.resumeConns, cfg.resumeMissed)
		if err != nil {
			return err
		}
		r.Command = command
		report.Resume = r
	case scenarioFanOut:
		r, err := fanOut(ctx, e, cfg.fanOutConns, cfg.fanOutEvents)
		if err != nil {
			return err
		}
		r.Command = command
		for _, b := range r.Runs {
			b.Command = command
		}
		report.FanOut = r
	}
	return nil
}

// runCommand is the command line that reproduces the whole run.
func (c config) runCommand() string {
	if slices.Equal(c.scenarios, allScenarios) && c.sameSizes(defaultConfig()) {
		return "make bench"
	}
	args := []string{"go run ./hack/bench"}
	if !c.sameBackends(defaultConfig()) {
		args = append(args, "-backend "+strings.Join(namesOf(c.backends), ","))
	}
	args = append(args, "-scenarios "+strings.Join(c.scenarios, ","))
	for _, s := range c.scenarios {
		args = append(args, c.sizeArgs(s)...)
	}
	return strings.Join(args, " ")
}

// command is the command line that reproduces the rows of one backend and
// scenario, with the sizes of this run. It names the backend unless no
// other backend runs the scenario.
func (c config) command(b backend, scenario string) string {
	args := []string{"go run ./hack/bench"}
	if !b.only(scenario) {
		args = append(args, "-backend "+b.name)
	}
	args = append(args, "-scenarios "+scenario)
	return strings.Join(append(args, c.sizeArgs(scenario)...), " ")
}

// sizeArgs are the flags that size scenario.
func (c config) sizeArgs(scenario string) []string {
	switch scenario {
	case scenarioMemory:
		return []string{"-memory " + joinInts(c.memorySteps), "-memory-burst " + strconv.Itoa(c.memoryBurst)}
	case scenarioConnect:
		return []string{"-connect " + strconv.Itoa(c.connect)}
	case scenarioBroadcast:
		return []string{"-broadcast " + joinInts(c.broadcastSizes), "-paced-events " + strconv.Itoa(c.pacedEvents),
			"-paced-interval " + c.pacedInterval.String(), "-burst-events " + strconv.Itoa(c.burstEvents), "-burst-paced " + strconv.Itoa(c.burstPaced)}
	case scenarioPerUser:
		return []string{"-peruser " + strconv.Itoa(c.perUserConns), "-peruser-count " + strconv.Itoa(c.perUserCount),
			"-peruser-in-flight " + joinInts(c.perUserInFlight), "-peruser-paced " + cmp.Or(joinInts(c.perUserPaced), `""`), "-peruser-rounds " + strconv.Itoa(c.perUserRounds)}
	case scenarioResume:
		return []string{"-resume " + strconv.Itoa(c.resumeConns), "-resume-missed " + strconv.Itoa(c.resumeMissed)}
	case scenarioFanOut:
		return []string{"-fanout " + strconv.Itoa(c.fanOutConns), "-fanout-events " + strconv.Itoa(c.fanOutEvents)}
	}
	return nil
}

// broadcastLoads are the broadcast runs to each size, in order.
func (c config) broadcastLoads() []broadcastLoad {
	loads := []broadcastLoad{{events: c.pacedEvents, interval: c.pacedInterval}, {events: c.burstEvents}}
	if c.burstPaced > 0 {
		loads = append(loads, broadcastLoad{events: c.burstEvents, rate: c.burstPaced})
	}
	return loads
}

// perUserLoads are the per-user runs, in order.
func (c config) perUserLoads() []perUserLoad {
	var loads []perUserLoad
	for _, n := range c.perUserInFlight {
		loads = append(loads, perUserLoad{inFlight: n})
	}
	for _, rate := range c.perUserPaced {
		loads = append(loads, perUserLoad{rate: rate})
	}
	return loads
}

// sameSizes reports whether c measures what d does.
func (c config) sameSizes(d config) bool {
	return c.sameBackends(d) && slices.Equal(c.memorySteps, d.memorySteps) && c.memoryBurst == d.memoryBurst && c.connect == d.connect &&
		slices.Equal(c.broadcastSizes, d.broadcastSizes) && c.pacedEvents == d.pacedEvents &&
		c.pacedInterval == d.pacedInterval && c.burstEvents == d.burstEvents && c.burstPaced == d.burstPaced &&
		c.perUserConns == d.perUserConns && c.perUserCount == d.perUserCount && slices.Equal(c.perUserInFlight, d.perUserInFlight) &&
		slices.Equal(c.perUserPaced, d.perUserPaced) && c.perUserRounds == d.perUserRounds &&
		c.resumeConns == d.resumeConns && c.resumeMissed == d.resumeMissed &&
		c.fanOutConns == d.fanOutConns && c.fanOutEvents == d.fanOutEvents
}

func (c config) sameBackends(d config) bool {
	return slices.Equal(namesOf(c.backends), namesOf(d.backends))
}

func namesOf(bs []backend) []string {
	names := make([]string, len(bs))
	for i, b := range bs {
		names[i] = b.name
	}
	return names
}

func parseInts(s string) ([]int, error) {
	var out []int
	for _, field := range strings.Split(s, ",") {
		n, err := strconv.Atoi(strings.TrimSpace(field))
		if err != nil || n <= 0 {
			return nil, fmt.Errorf("%q is not a positive number", field)
		}
		out = append(out, n)
	}
	return out, nil
}

func joinInts(ns []int) string {
	s := make([]string, len(ns))
	for i, n := range ns {
		s[i] = strconv.Itoa(n)
	}
	return strings.Join(s, ",")
}
