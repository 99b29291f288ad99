package main

import (
	"context"
	"fmt"
	"io"
	"strings"
	"time"

	"sigs.k8s.io/controller-runtime/pkg/client"

	notifyv1alpha1 "github.com/herald-notify/herald/api/v1alpha1"
)

// serviceAddrTimeout bounds the wait for the runner to serve the sample
// channel's Service before the commands are printed.
const serviceAddrTimeout = time.Minute

// sampleNotification is what the printed publish command sends to the
// sample user.
const (
	sampleUser         = "u1"
	sampleNotification = `{"recipientUserIds":["u1"],"notificationId":"n1","notificationType":"VOCAB_TRAINER","action":"CREATE","priority":"LOW","data":{"message":"New vocab trainer available"}}`
)

// commands are the shell lines `make run` prints, each working as printed
// from the repository's root.
type commands struct {
	Kubeconfig  string
	UserToken   string
	Publisher   string
	Stream      string
	Publish     string
	SystemEvent string
	// StreamURL and PublishURL are where Stream and Publish go.
	StreamURL, PublishURL string
}

// commandsFor builds the commands for channel, served at addr: tokens signed
// with the sample key, with the issuer and audience the channel wants.
func commandsFor(kubeconfig, herald, keyFile, addr string, channel *notifyv1alpha1.NotificationChannel) commands {
	auth := channel.Spec.Auth
	token := []string{herald, "token", "--key", keyFile, "--kid", sampleKeyID}
	if auth.Issuer != "" {
		token = append(token, "--issuer", auth.Issuer)
	}
	for _, audience := range auth.Audiences {
		token = append(token, "--audience", audience)
	}
	publisher := append(append([]string(nil), token...), "--subject", "backend", "--publish")
	if grant := auth.PublishGrant; grant.Claim != "" {
		publisher = append(publisher, "--grant-claim", grant.Claim, "--grant-value", grant.Value)
	}
	user := append(token, "--subject", sampleUser)
	base := "http://" + addr
	c := commands{
		Kubeconfig: "export KUBECONFIG=" + kubeconfig,
		UserToken:  "TOKEN=$(" + strings.Join(user, " ") + ")",
		Publisher:  "PUBLISHER=$(" + strings.Join(publisher, " ") + ")",
		StreamURL:  base + "/api/v1/sse/notifications",
		PublishURL: base + "/api/v1/notifications",
	}
	c.Stream = `curl -N -H "Authorization: Bearer $TOKEN" ` + c.StreamURL
	c.Publish = `curl -H "Authorization: Bearer $PUBLISHER" -H 'Content-Type: application/json' -d '` +
		sampleNotification + `' ` + c.PublishURL
	c.SystemEvent = "kubectl apply -f - <<'EOF'\n" + sampleSystemEvent(channel.Name) + "EOF"
	return c
}

// sampleSystemEvent is an announcement to every user of the channel, new
// (the samples' own are applied at start).
func sampleSystemEvent(channel string) string {
	return `apiVersion: notify.herald.dev/v1alpha1
kind: SystemEvent
metadata:
  name: hello
spec:
  channelRef:
    name: ` + channel + `
  eventType: announcement
  audience:
    all: true
  data:
    message: Hello from kubectl
`
}

// printCommands writes the commands as the README shows them: the sample
// channel's in full, and the stream of the NATS channel's fleet, which the
// same tokens open.
func printCommands(out io.Writer, c, fleet commands) {
	fmt.Fprintf(out, `Point kubectl at it:
  %s
  kubectl get nch,sev -o wide

Stream the sample channel's notifications as user %s, through its Service:
  %s
  %s

In another shell, publish a notification to %s:
  %s
  %s

Announce something to every connected user:
%s

%s runs three pods over NATS: the same tokens stream and publish there,
and a stream resumes on any pod with Last-Event-ID:
  %s
  %s
`, c.Kubeconfig, sampleUser, c.UserToken, c.Stream, sampleUser, c.Publisher, c.Publish, c.SystemEvent,
		fleetChannel, fleet.Stream, fleet.Publish)
}

// waitServiceAddr waits until the runner serves the Service's port.
func waitServiceAddr(ctx context.Context, r *Runner, key client.ObjectKey, port string) (string, error) {
	ctx, cancel := context.WithTimeout(ctx, serviceAddrTimeout)
	defer cancel()
	ticker := time.NewTicker(100 * time.Millisecond)
	defer ticker.Stop()
	for {
		if addr := r.ServiceAddr(key, port); addr != "" {
			return addr, nil
		}
		select {
		case <-ctx.Done():
			return "", fmt.Errorf("the runner did not serve Service %s: %w", key, ctx.Err())
		case <-ticker.C:
		}
	}
}
