package main

import (
	"bufio"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"os"
	"os/exec"
	"syscall"
	"time"
)

// stopTimeout bounds the wait for a child to end after SIGTERM, before it is
// killed: a streamer drains its streams first.
const stopTimeout = 15 * time.Second

// child is a process the generator starts, waits for and stops: a streamer
// under test, or the NATS backends' cluster.
type child struct {
	name string
	cmd  *exec.Cmd
	// exited is closed when the process ended; err then says how.
	exited chan struct{}
	err    error
	// stderr keeps the last lines the process logged, for error messages.
	stderr *tail
}

// startChild starts cmd and waits, up to timeout, until it logs (as JSON on
// stderr, the way the streamer logs) a line whose msg is ready; it returns
// that line, which names what the caller needs: the addresses the process
// listens on.
func startChild(ctx context.Context, name string, cmd *exec.Cmd, ready string, timeout time.Duration) (*child, []byte, error) {
	stderr, err := cmd.StderrPipe()
	if err != nil {
		return nil, nil, err
	}
	if err := cmd.Start(); err != nil {
		return nil, nil, fmt.Errorf("failed to start %s (%s): %w", name, cmd.Path, err)
	}
	c := &child{name: name, cmd: cmd, exited: make(chan struct{}), stderr: &tail{}}
	started := make(chan []byte, 1)
	go c.readLogs(stderr, ready, started)
	go func() {
		c.err = cmd.Wait()
		close(c.exited)
	}()
	select {
	case line := <-started:
		return c, line, nil
	case <-c.exited:
		return nil, nil, fmt.Errorf("%s exited while starting: %v\n%s", name, c.err, c.stderr)
	case <-time.After(timeout):
	case <-ctx.Done():
	}
	c.stop()
	return nil, nil, fmt.Errorf("%s did not start within %s\n%s", name, timeout, c.stderr)
}

// readLogs finds the ready line, then keeps the last lines.
func (c *child) readLogs(stderr io.Reader, ready string, started chan<- []byte) {
	scanner := bufio.NewScanner(stderr)
	found := false
	for scanner.Scan() {
		line := scanner.Text()
		c.stderr.add(line)
		var entry struct {
			Msg string `json:"msg"`
		}
		if !found && json.Unmarshal([]byte(line), &entry) == nil && entry.Msg == ready {
			found = true
			started <- []byte(line)
		}
	}
}

// pid is the process's id.
func (c *child) pid() int { return c.cmd.Process.Pid }

// stop asks the process to end with SIGTERM and waits for it, killing it if
// it takes longer than it should.
func (c *child) stop() {
	_ = c.cmd.Process.Signal(syscall.SIGTERM)
	select {
	case <-c.exited:
	case <-time.After(stopTimeout):
		_ = c.cmd.Process.Kill()
		<-c.exited
	}
}

// startSelf starts this executable with args (a hidden subcommand) as a
// child named name, after prepare (pipes) when set, and waits up to timeout
// for its ready line, whose string field it returns.
func startSelf(ctx context.Context, name string, args []string, prepare func(*exec.Cmd) error,
	ready string, timeout time.Duration, field string) (*child, string, error) {
	exe, err := os.Executable()
	if err != nil {
		return nil, "", err
	}
	cmd := exec.Command(exe, args...)
	if prepare != nil {
		if err := prepare(cmd); err != nil {
			return nil, "", err
		}
	}
	c, line, err := startChild(ctx, name, cmd, ready, timeout)
	if err != nil {
		return nil, "", err
	}
	var started map[string]any
	var value string
	if err := json.Unmarshal(line, &started); err == nil {
		value, _ = started[field].(string)
	}
	if value == "" {
		c.stop()
		return nil, "", fmt.Errorf("%s named no %s: %s", name, field, line)
	}
	return c, value, nil
}
