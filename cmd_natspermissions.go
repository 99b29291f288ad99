package main

import (
	"flag"
	"fmt"
	"io"
	"strings"

	"k8s.io/apimachinery/pkg/util/validation"

	"github.com/herald-notify/herald/streamer/log/jetstreamlog"
)

// runNATSPermissions implements `herald nats-permissions NAMESPACE/NAME`:
// it prints the block of a NATS server's configuration that limits a user to
// what the streamers of that channel need, for an operator of NATS to paste
// into the user the channel's credentials Secret names (README "Scaling
// out"). The subjects follow the channel's escaped names, which are easy to
// get wrong by hand.
func runNATSPermissions(args []string, stdout, _ io.Writer) error {
	fs := flag.NewFlagSet("nats-permissions", flag.ContinueOnError)
	if err := parseFlags(fs, args, stdout); err != nil {
		return err
	}
	if fs.NArg() != 1 {
		return fmt.Errorf("%w: give the channel as one argument NAMESPACE/NAME", errUsage)
	}
	namespace, name, err := parseChannelName(fs.Arg(0))
	if err != nil {
		return err
	}
	_, err = fmt.Fprintf(stdout, "# The NATS permissions of the streamers of NotificationChannel %s/%s (herald nats-permissions).\n%s",
		namespace, name, jetstreamlog.ChannelPermissions(namespace, name).ServerConfig())
	return err
}

// parseChannelName splits NAMESPACE/NAME, each a valid Kubernetes name.
func parseChannelName(arg string) (namespace, name string, err error) {
	namespace, name, ok := strings.Cut(arg, "/")
	if !ok || strings.Contains(name, "/") {
		return "", "", fmt.Errorf("%w: %q is not NAMESPACE/NAME", errUsage, arg)
	}
	if problems := validation.IsDNS1123Label(namespace); len(problems) > 0 {
		return "", "", fmt.Errorf("%w: namespace %q: %s", errUsage, namespace, strings.Join(problems, "; "))
	}
	if problems := validation.IsDNS1123Subdomain(name); len(problems) > 0 {
		return "", "", fmt.Errorf("%w: channel name %q: %s", errUsage, name, strings.Join(problems, "; "))
	}
	return namespace, name, nil
}
