// Command herald is the single binary of the Herald notification platform.
// Its subcommands are the platform's parts; operator and streamer images are
// the same build, so they never drift apart.
package main

import (
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"

	"github.com/herald-notify/herald/internal/version"
)

// command is one subcommand of herald.
type command struct {
	name    string
	summary string
	run     func(args []string, stdout, stderr io.Writer) error
}

// errUsage marks errors that are the caller's: exit status 2, as flag does.
var errUsage = errors.New("usage error")

func commands() []command {
	return []command{
		{name: "operator", summary: "run the operator: reconcile NotificationChannels into streamer fleets", run: runOperator},
		{name: "streamer", summary: "serve a channel's Server-Sent Event streams and publish API", run: runStreamer},
		{name: "token", summary: "mint a signed JWT for local development and tests", run: runToken},
		{name: "nats-permissions", summary: "print the NATS permissions a channel's streamers need, for the NATS server's configuration", run: runNATSPermissions},
		{name: "version", summary: "print the build's version", run: runVersion},
	}
}

func main() {
	os.Exit(run(os.Args[1:], os.Stdout, os.Stderr))
}

// run dispatches to a subcommand and returns the process exit status.
func run(args []string, stdout, stderr io.Writer) int {
	if len(args) == 0 || args[0] == "help" || args[0] == "-h" || args[0] == "--help" {
		usage(stdout)
		if len(args) == 0 {
			return 2
		}
		return 0
	}
	for _, c := range commands() {
		if c.name == args[0] {
			if err := c.run(args[1:], stdout, stderr); err != nil {
				if errors.Is(err, flag.ErrHelp) {
					return 0
				}
				fmt.Fprintf(stderr, "herald %s: %v\n", c.name, err)
				if errors.Is(err, errUsage) {
					return 2
				}
				return 1
			}
			return 0
		}
	}
	fmt.Fprintf(stderr, "herald: unknown command %q\n\n", args[0])
	usage(stderr)
	return 2
}

func usage(w io.Writer) {
	fmt.Fprintln(w, "Usage: herald <command> [flags]")
	fmt.Fprintln(w)
	fmt.Fprintln(w, "Commands:")
	for _, c := range commands() {
		fmt.Fprintf(w, "  %-17s %s\n", c.name, c.summary)
	}
	fmt.Fprintln(w, "\nRun 'herald <command> -h' for a command's flags.")
}

// parseFlags parses a subcommand's flags. Help goes to stdout; a bad flag is a
// usage error whose message names it, printed once by run.
func parseFlags(fs *flag.FlagSet, args []string, stdout io.Writer) error {
	fs.SetOutput(io.Discard)
	err := fs.Parse(args)
	if errors.Is(err, flag.ErrHelp) {
		fmt.Fprintf(stdout, "Usage of herald %s:\n", fs.Name())
		fs.SetOutput(stdout)
		fs.PrintDefaults()
		return err
	}
	if err != nil {
		return fmt.Errorf("%w: %v", errUsage, err)
	}
	return nil
}

func runVersion(args []string, stdout, stderr io.Writer) error {
	fs := flag.NewFlagSet("version", flag.ContinueOnError)
	output := fs.String("output", "text", "output format: text or json")
	if err := parseFlags(fs, args, stdout); err != nil {
		return err
	}
	if fs.NArg() > 0 {
		return fmt.Errorf("%w: unexpected argument %q", errUsage, fs.Arg(0))
	}
	info := version.Get()
	switch *output {
	case "text":
		_, err := fmt.Fprintln(stdout, info.String())
		return err
	case "json":
		return json.NewEncoder(stdout).Encode(info)
	default:
		return fmt.Errorf("%w: --output must be text or json, not %q", errUsage, *output)
	}
}
