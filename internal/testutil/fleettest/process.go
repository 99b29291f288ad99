package fleettest

import (
	"cmp"
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"time"
)

// BuildHerald builds the herald binary into dir. Under the race detector
// (go test -race) the binary is built with it too, so that the streamers a
// test kills and restarts are checked for races as the test process is; it
// needs cgo then. Otherwise it is built as "make build" does (no cgo).
func BuildHerald(ctx context.Context, dir string) (string, error) {
	out := filepath.Join(dir, "herald")
	args := []string{"build", "-o", out}
	env := os.Environ()
	if raceEnabled {
		args = append(args, "-race")
	} else {
		env = append(env, "CGO_ENABLED=0")
	}
	cmd := exec.CommandContext(ctx, "go", append(args, "github.com/herald-notify/herald")...)
	cmd.Env = env
	if output, err := cmd.CombinedOutput(); err != nil {
		return "", fmt.Errorf("failed to build herald (%s): %w\n%s", strings.Join(cmd.Args, " "), err, output)
	}
	return out, nil
}

// Process is a "herald streamer --config" child process, which a test can
// kill (SIGKILL: no drain, no goodbye to NATS or to clients) and start again
// on the same ports.
type Process struct {
	Addrs
	cmd    *exec.Cmd
	lines  *logLines
	exited chan struct{} // closed once the process ended; err then says how
	err    error
}

// ProcessOptions say how to run a streamer process.
type ProcessOptions struct {
	// Binary is the herald binary (BuildHerald).
	Binary string
	// Config is the channel manifest's path.
	Config string
	// Listen and MetricsListen are the addresses to listen on (host:port);
	// empty means a loopback port the kernel picks.
	Listen, MetricsListen string
	// Logs receives the streamer's JSON log lines, each prefixed by Name.
	Logs io.Writer
	Name string
}

// StartProcess starts a streamer and returns once it serves.
func StartProcess(opts ProcessOptions) (*Process, error) {
	listen, metrics := cmp.Or(opts.Listen, "127.0.0.1:0"), cmp.Or(opts.MetricsListen, "127.0.0.1:0")
	cmd := exec.Command(opts.Binary, "streamer", "--config", opts.Config,
		"--listen", listen, "--metrics-listen", metrics)
	p := &Process{cmd: cmd, lines: newLogLines(opts.Logs, "["+opts.Name+"] "), exited: make(chan struct{})}
	// The race detector and the runtime write to stderr too: one writer
	// sees every line.
	cmd.Stderr = p.lines
	if err := cmd.Start(); err != nil {
		return nil, fmt.Errorf("failed to start %s: %w", opts.Binary, err)
	}
	go func() {
		p.err = cmd.Wait()
		close(p.exited)
	}()
	select {
	case p.Addrs = <-p.lines.started:
		return p, nil
	case <-p.exited:
		return nil, fmt.Errorf("streamer %s exited while starting: %v (its last line: %s)", opts.Name, p.err, p.lines.lastLine())
	case <-time.After(startTimeout):
		_ = p.Kill()
		return nil, fmt.Errorf("streamer %s did not start within %s", opts.Name, startTimeout)
	}
}

// Kill ends the process with SIGKILL and waits until it is gone.
func (p *Process) Kill() error {
	if err := p.cmd.Process.Signal(syscall.SIGKILL); err != nil && !errors.Is(err, os.ErrProcessDone) {
		return err
	}
	<-p.exited
	return p.raceErr()
}

// Stop drains the process with SIGTERM and waits up to timeout for it to
// exit, then kills it. It fails if the streamer did not exit cleanly
// (under -race, exit status 66 is a race it found) or reported a race.
func (p *Process) Stop(timeout time.Duration) error {
	if err := p.cmd.Process.Signal(syscall.SIGTERM); err != nil && !errors.Is(err, os.ErrProcessDone) {
		return err
	}
	select {
	case <-p.exited:
	case <-time.After(timeout):
		_ = p.Kill()
		return fmt.Errorf("the streamer did not stop within %s of SIGTERM", timeout)
	}
	if err := p.raceErr(); err != nil {
		return err
	}
	return p.err
}

func (p *Process) raceErr() error {
	if p.lines.raceReported() {
		return errors.New("the race detector reported a data race in the streamer (see its log)")
	}
	return nil
}
