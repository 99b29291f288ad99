package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"os"
	"os/exec"
	"os/signal"
	"strconv"
	"syscall"
	"time"

	"github.com/herald-notify/herald/internal/testutil/natstest"
)

// natsClusterCommand is the generator's hidden subcommand that runs the NATS
// backends' cluster (three JetStream nodes on loopback): the generator starts
// its own executable with it. The streamer's CPU is read from the streamer's
// process either way; with NATS in a process of its own, NATS's CPU is not
// counted as the generator's either, and is reported on its own.
const natsClusterCommand = "nats-cluster"

// natsStartedMsg is the line the subcommand logs once the cluster is ready.
const natsStartedMsg = "nats cluster started"

// natsStartTimeout bounds the cluster's start: JetStream elects a meta
// leader first, which takes several seconds on a busy machine.
const natsStartTimeout = time.Minute

// subcommand runs the hidden subcommand named by args[0], if it is one
// (the NATS cluster, the backend publishing bursts, or a floor's process);
// ok says whether it was, and code is then the exit code.
func subcommand(args []string) (code int, ok bool) {
	if len(args) == 0 {
		return 0, false
	}
	var err error
	switch args[0] {
	case natsClusterCommand:
		err = natsClusterMain(args[1:], os.Stdin, os.Stderr)
	case floorReadersCommand:
		err = floorReadersMain(args[1:], os.Stdin, os.Stdout, os.Stderr)
	case backendCommand:
		err = backendMain(args[1:], os.Stdin, os.Stdout, os.Stderr)
	case floorAcceptsCommand:
		err = floorAcceptsMain(args[1:], os.Stdin, os.Stdout, os.Stderr)
	default:
		return 0, false
	}
	if err != nil {
		fmt.Fprintln(os.Stderr, "bench "+args[0]+":", err)
		return 1, true
	}
	return 0, true
}

// natsClusterMain runs a cluster until stdin ends or a signal comes: the
// generator holds the other end of stdin, so a generator that dies, however
// it dies, does not leave NATS running.
func natsClusterMain(args []string, stdin io.Reader, stderr io.Writer) error {
	fs := flag.NewFlagSet(natsClusterCommand, flag.ContinueOnError)
	dir := fs.String("dir", "", "folder for the nodes' JetStream stores")
	periodicSync := fs.Bool("periodic-sync", false, "keep NATS's default fsync (every two minutes) instead of sync_interval: always")
	if err := fs.Parse(args); err != nil {
		return err
	}
	if *dir == "" {
		return errors.New("-dir is required")
	}
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	cluster, err := natstest.Start(natstest.Options{Dir: *dir, PeriodicSync: *periodicSync, ReadyTimeout: natsStartTimeout})
	if err != nil {
		return err
	}
	defer cluster.Shutdown()
	go func() {
		_, _ = io.Copy(io.Discard, stdin)
		stop()
	}()
	slog.New(slog.NewJSONHandler(stderr, nil)).Info(natsStartedMsg, "url", cluster.URL())
	<-ctx.Done()
	return nil
}

// natsProcess is the cluster's process, started by the generator.
type natsProcess struct {
	*child
	// url is every node's client URL, comma-separated, as the channel's
	// broker.nats.url takes them.
	url string
}

// startNATS starts a cluster whose stores are in dir.
func startNATS(ctx context.Context, dir string, periodicSync bool) (*natsProcess, error) {
	// The pipe stays open until the process ends (exec closes it after
	// Wait): the child's stdin ends only when the generator stops it or dies.
	keepStdin := func(cmd *exec.Cmd) error {
		_, err := cmd.StdinPipe()
		return err
	}
	c, url, err := startSelf(ctx, "the NATS cluster", []string{natsClusterCommand, "-dir", dir, "-periodic-sync=" + strconv.FormatBool(periodicSync)},
		keepStdin, natsStartedMsg, natsStartTimeout, "url")
	if err != nil {
		return nil, err
	}
	return &natsProcess{child: c, url: url}, nil
}
