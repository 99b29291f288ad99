package fleettest

import (
	"context"
	"fmt"
	"io"
	"log/slog"
	"time"

	"github.com/herald-notify/herald/streamer/app"
)

// InProcess is a streamer running inside the test process (app.Run): fast
// to start and covered by the test's race detector, but it can only be
// stopped gracefully.
type InProcess struct {
	Addrs
	cancel context.CancelFunc
	done   chan error
}

// StartInProcess runs app.Run for the manifest at path on loopback ports
// the kernel picks, logging JSON lines to logs, and returns once it serves.
func StartInProcess(path string, logs io.Writer) (*InProcess, error) {
	lines := newLogLines(logs, "")
	ctx, cancel := context.WithCancel(context.Background())
	r := &InProcess{cancel: cancel, done: make(chan error, 1)}
	go func() {
		r.done <- app.Run(ctx, app.Options{
			Config: path, Listen: "127.0.0.1:0", MetricsListen: "127.0.0.1:0",
			Logger: slog.New(slog.NewJSONHandler(lines, nil)),
		})
	}()
	select {
	case r.Addrs = <-lines.started:
		return r, nil
	case err := <-r.done:
		cancel()
		return nil, fmt.Errorf("the streamer stopped while starting: %v", err)
	case <-time.After(startTimeout):
		cancel()
		return nil, fmt.Errorf("the streamer did not start within %s", startTimeout)
	}
}

// Stop drains the streamer and waits up to timeout for app.Run to return,
// with its error.
func (r *InProcess) Stop(timeout time.Duration) error {
	r.cancel()
	select {
	case err := <-r.done:
		return err
	case <-time.After(timeout):
		return fmt.Errorf("the streamer did not stop within %s", timeout)
	}
}
