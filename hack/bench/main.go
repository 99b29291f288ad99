// Command bench is Herald's load generator: it starts standalone streamer
// processes ("herald streamer --config", with a generated channel and keys),
// opens thousands of real SSE streams to them over loopback, each as its own
// user, and measures what a streamer pod costs: memory per idle stream,
// authenticated connections per second, broadcast and per-user delivery
// throughput and latency, and a reconnect storm with Last-Event-ID.
//
// CPU is read from each process's own accounting, so rates are given per
// second of the streamer's CPU ("per server core") as well as per second of
// wall time; latency is measured from a timestamp the publisher puts in each
// event to the moment a client reads it.
//
//	make bench                                   # everything, into docs/
//	go run ./hack/bench -scenarios broadcast -broadcast 10000
//
// Results go to a JSON file and to the table between the markers in a
// markdown file; see docs/benchmarks.md.
package main

import (
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
)

var allScenarios = []string{scenarioMemory, scenarioConnect, scenarioBroadcast, scenarioPerUser, scenarioResume}

// config is the generator's command line: which scenarios, at which sizes.
type config struct {
	herald      string
	jsonOut     string
	markdownOut string
	profiles    string
	scenarios   []string
	backend     string
	concurrency int

	memorySteps    []int
	connect        int
	broadcastSizes []int
	pacedEvents    int
	pacedInterval  time.Duration
	burstEvents    int
	perUserConns   int
	perUserCount   int
	resumeConns    int
	resumeMissed   int
}

// defaultConfig is the full benchmark. The largest scenario, 10,000 streams,
// fits a limit of about 20,000 open files per process: the generator holds
// one socket per stream and so does the streamer.
func defaultConfig() config {
	return config{
		scenarios:      allScenarios,
		backend:        "embedded",
		concurrency:    64,
		memorySteps:    []int{1000, 2500, 5000, 10000},
		connect:        10000,
		broadcastSizes: []int{1000, 10000},
		pacedEvents:    20,
		pacedInterval:  500 * time.Millisecond,
		burstEvents:    50,
		perUserConns:   10000,
		perUserCount:   20000,
		resumeConns:    10000,
		resumeMissed:   10,
	}
}

func main() {
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
	fs.StringVar(&cfg.profiles, "profiles", "", "save the streamer's pprof CPU profiles of each scenario, and its heap with idle streams, into this folder")
	fs.StringVar(&cfg.backend, "backend", cfg.backend, "the channel's event log: embedded (a broker-backed log when the streamer has one)")
	fs.IntVar(&cfg.concurrency, "concurrency", cfg.concurrency, "streams the generator opens at once")
	scenarios := fs.String("scenarios", strings.Join(cfg.scenarios, ","), "scenarios to run, of "+strings.Join(allScenarios, ","))
	memory := fs.String("memory", joinInts(cfg.memorySteps), "idle memory: the stream counts to measure at, rising")
	fs.IntVar(&cfg.connect, "connect", cfg.connect, "connect rate: streams opened, with HS256 and with ES256 tokens")
	broadcasts := fs.String("broadcast", joinInts(cfg.broadcastSizes), "broadcast: the stream counts to broadcast to")
	fs.IntVar(&cfg.pacedEvents, "paced-events", cfg.pacedEvents, "broadcast latency: events published one per -paced-interval")
	fs.DurationVar(&cfg.pacedInterval, "paced-interval", cfg.pacedInterval, "broadcast latency: time between events")
	fs.IntVar(&cfg.burstEvents, "burst-events", cfg.burstEvents, "broadcast throughput: events published back to back")
	fs.IntVar(&cfg.perUserConns, "peruser", cfg.perUserConns, "per-user notifications: streams open")
	fs.IntVar(&cfg.perUserCount, "peruser-count", cfg.perUserCount, "per-user notifications: notifications published, one user each")
	fs.IntVar(&cfg.resumeConns, "resume", cfg.resumeConns, "resume: streams that drop and reconnect at once")
	fs.IntVar(&cfg.resumeMissed, "resume-missed", cfg.resumeMissed, "resume: events each stream misses while away")
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
	if cfg.memorySteps, err = parseInts(*memory); err != nil {
		return cfg, fmt.Errorf("-memory: %w", err)
	}
	if cfg.broadcastSizes, err = parseInts(*broadcasts); err != nil {
		return cfg, fmt.Errorf("-broadcast: %w", err)
	}
	if !slices.IsSorted(cfg.memorySteps) {
		return cfg, errors.New("-memory: the counts must rise")
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

// run runs the scenarios of cfg, each against a streamer of its own.
func run(ctx context.Context, cfg config, progress io.Writer) (*Results, error) {
	dir, err := os.MkdirTemp("", "herald-bench-")
	if err != nil {
		return nil, err
	}
	defer func() { _ = os.RemoveAll(dir) }()
	e := &env{
		herald: cfg.herald, dir: dir, backend: cfg.backend, concurrency: cfg.concurrency, profiles: cfg.profiles,
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
	report := &Results{Machine: describeMachine(), Backend: cfg.backend, Concurrency: cfg.concurrency, Command: cfg.command(""), Started: time.Now().UTC()}
	if report.Machine.Floor, err = measureFloor(); err != nil {
		return nil, fmt.Errorf("measuring the machine's floor: %w", err)
	}
	for _, name := range cfg.scenarios {
		if err := runScenario(ctx, e, cfg, name, report); err != nil {
			return nil, fmt.Errorf("scenario %s: %w", name, err)
		}
	}
	report.Seconds = time.Since(report.Started).Seconds()
	report.Machine.LoadAfter = loadAverage()
	report.Targets = targets(report)
	return report, nil
}

func runScenario(ctx context.Context, e *env, cfg config, name string, report *Results) error {
	command := cfg.command(name)
	switch name {
	case scenarioMemory:
		r, err := idleMemory(ctx, e, cfg.memorySteps)
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
			for _, mode := range []struct {
				events   int
				interval time.Duration
			}{{cfg.pacedEvents, cfg.pacedInterval}, {cfg.burstEvents, 0}} {
				r, err := broadcast(ctx, e, n, mode.events, mode.interval)
				if err != nil {
					return err
				}
				r.Command = command
				report.Broadcast = append(report.Broadcast, r)
			}
		}
	case scenarioPerUser:
		r, err := perUser(ctx, e, cfg.perUserConns, cfg.perUserCount)
		if err != nil {
			return err
		}
		r.Command = command
		report.PerUser = append(report.PerUser, r)
	case scenarioResume:
		r, err := resume(ctx, e, cfg.resumeConns, cfg.resumeMissed)
		if err != nil {
			return err
		}
		r.Command = command
		report.Resume = r
	}
	return nil
}

// command is the command line that reproduces one scenario's rows (or all,
// for ""), with the sizes of this run.
func (c config) command(scenario string) string {
	args := []string{"go run ./hack/bench"}
	if c.backend != defaultConfig().backend {
		args = append(args, "-backend "+c.backend)
	}
	sized := func(flagAndValue ...string) { args = append(args, flagAndValue...) }
	if scenario == "" {
		if slices.Equal(c.scenarios, allScenarios) && c.sameSizes(defaultConfig()) {
			return "make bench"
		}
		sized("-scenarios " + strings.Join(c.scenarios, ","))
	} else {
		sized("-scenarios " + scenario)
	}
	runs := func(name string) bool {
		return scenario == name || (scenario == "" && slices.Contains(c.scenarios, name))
	}
	if runs(scenarioMemory) {
		sized("-memory " + joinInts(c.memorySteps))
	}
	if runs(scenarioConnect) {
		sized("-connect " + strconv.Itoa(c.connect))
	}
	if runs(scenarioBroadcast) {
		sized("-broadcast "+joinInts(c.broadcastSizes), "-paced-events "+strconv.Itoa(c.pacedEvents),
			"-paced-interval "+c.pacedInterval.String(), "-burst-events "+strconv.Itoa(c.burstEvents))
	}
	if runs(scenarioPerUser) {
		sized("-peruser "+strconv.Itoa(c.perUserConns), "-peruser-count "+strconv.Itoa(c.perUserCount))
	}
	if runs(scenarioResume) {
		sized("-resume "+strconv.Itoa(c.resumeConns), "-resume-missed "+strconv.Itoa(c.resumeMissed))
	}
	return strings.Join(args, " ")
}

// sameSizes reports whether c measures what d does.
func (c config) sameSizes(d config) bool {
	return c.backend == d.backend && slices.Equal(c.memorySteps, d.memorySteps) && c.connect == d.connect &&
		slices.Equal(c.broadcastSizes, d.broadcastSizes) && c.pacedEvents == d.pacedEvents &&
		c.pacedInterval == d.pacedInterval && c.burstEvents == d.burstEvents &&
		c.perUserConns == d.perUserConns && c.perUserCount == d.perUserCount &&
		c.resumeConns == d.resumeConns && c.resumeMissed == d.resumeMissed
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
