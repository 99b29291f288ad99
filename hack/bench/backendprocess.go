package main

import (
	"bufio"
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"os"
	"os/exec"
	"os/signal"
	"syscall"
	"time"

	"github.com/herald-notify/herald/streamer/publisher"
)

// backendCommand is the generator's hidden subcommand that publishes the
// broadcast bursts, as a backend does, from a process of its own. In the
// generator's process the publish requests would be goroutines among those of
// the thousands of readers a burst keeps busy: a goroutine the network wakes
// waits there for the runtime's 10 ms poll while others are runnable, so the
// burst would reach the streamer as slowly as the generator's scheduler lets
// it, and the slower a log's acknowledgement the more such waits its burst
// would take.
const backendCommand = "backend"

// backendStartedMsg is the line the subcommand logs once it is ready.
const backendStartedMsg = "backend started"

// backendTokenEnv carries the backend's token to the subcommand: not in its
// arguments, which every user of the machine can read.
const backendTokenEnv = "HERALD_BENCH_BACKEND_TOKEN"

// burstRequest asks the backend process for a burst, with InFlight requests
// in flight or, when Rate is set, paced (see publishPaced); burstAnswer is
// its answer, each one JSON line.
type burstRequest struct {
	Events   int `json:"events"`
	InFlight int `json:"inFlight"`
	Rate     int `json:"rate,omitempty"`
}

type burstAnswer struct {
	// PublishNanos is the time from the first request sent to the last
	// answered.
	PublishNanos int64  `json:"publishNanos"`
	Error        string `json:"error,omitempty"`
}

// backendMain publishes a burst for each request line on stdin and answers
// it on stdout, until stdin ends or a signal comes.
func backendMain(args []string, stdin io.Reader, stdout, stderr io.Writer) error {
	fs := flag.NewFlagSet(backendCommand, flag.ContinueOnError)
	api := fs.String("api", "", "the streamer's API address (host:port)")
	if err := fs.Parse(args); err != nil {
		return err
	}
	if *api == "" {
		return errors.New("-api is required")
	}
	token := os.Getenv(backendTokenEnv)
	if token == "" {
		return fmt.Errorf("%s is not set", backendTokenEnv)
	}
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	// One connection per request in flight, kept between requests.
	httpc := &http.Client{Transport: &http.Transport{MaxIdleConnsPerHost: maxInFlight}}
	pub, err := publisher.New("http://"+*api, publisher.WithToken(token), publisher.WithHTTPClient(httpc))
	if err != nil {
		return err
	}
	slog.New(slog.NewJSONHandler(stderr, nil)).Info(backendStartedMsg, "api", *api)
	answers := json.NewEncoder(stdout)
	for lines := bufio.NewScanner(stdin); lines.Scan(); {
		var req burstRequest
		if err := json.Unmarshal(lines.Bytes(), &req); err != nil {
			return fmt.Errorf("unexpected request %q: %w", lines.Text(), err)
		}
		start := time.Now()
		publish := func(seq int) error {
			_, err := pub.PublishSystemEvent(ctx, publisher.SystemEvent{EventType: "bench", Data: newPayload(seq)})
			return err
		}
		var err error
		if req.Rate > 0 {
			_, err = publishPaced(req.Events, req.Rate, publish)
		} else {
			err = publishConcurrently(req.Events, req.InFlight, publish)
		}
		answer := burstAnswer{PublishNanos: int64(time.Since(start))}
		if err != nil {
			answer.Error = err.Error()
		}
		if err := answers.Encode(answer); err != nil {
			return err
		}
	}
	return nil
}

// backendProcess is the backend subcommand's process, started by a session
// that publishes a burst.
type backendProcess struct {
	*child
	stdin   io.WriteCloser
	answers *json.Decoder
}

// startBackend starts a backend process that publishes to the streamer's
// API at api with token.
func startBackend(ctx context.Context, api, token string) (*backendProcess, error) {
	b := &backendProcess{}
	pipes := func(cmd *exec.Cmd) error {
		cmd.Env = append(os.Environ(), backendTokenEnv+"="+token)
		var err error
		if b.stdin, err = cmd.StdinPipe(); err != nil {
			return err
		}
		stdout, err := cmd.StdoutPipe()
		if err != nil {
			return err
		}
		b.answers = json.NewDecoder(stdout)
		return nil
	}
	var err error
	if b.child, _, err = startSelf(ctx, "the backend", []string{backendCommand, "-api", api}, pipes, backendStartedMsg, startTimeout, "api"); err != nil {
		return nil, err
	}
	return b, nil
}

// burst publishes events system events with inFlight requests in flight,
// or at rate a second when rate is set, and returns how long the publishing
// took.
func (b *backendProcess) burst(events, inFlight, rate int) (time.Duration, error) {
	if err := json.NewEncoder(b.stdin).Encode(burstRequest{Events: events, InFlight: inFlight, Rate: rate}); err != nil {
		return 0, fmt.Errorf("the backend: %w", err)
	}
	var answer burstAnswer
	if err := b.answers.Decode(&answer); err != nil {
		return 0, fmt.Errorf("the backend ended: %w\n%s", err, b.child.stderr)
	}
	if answer.Error != "" {
		return 0, fmt.Errorf("the backend: %s", answer.Error)
	}
	return time.Duration(answer.PublishNanos), nil
}

// stop closes the process's stdin, which ends it, and waits for it.
func (b *backendProcess) stop() {
	_ = b.stdin.Close()
	b.child.stop()
}
