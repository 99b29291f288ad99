package resources_test

import (
	"context"
	"strings"
	"testing"

	. "github.com/onsi/ginkgo/v2"
	. "github.com/onsi/gomega"

	notifyv1alpha1 "github.com/herald-notify/herald/api/v1alpha1"
	"github.com/herald-notify/herald/controllers/resources"
	"github.com/herald-notify/herald/streamer/channelspec"

	"github.com/herald-notify/herald/internal/testutil"
)

// The builders are pure, so the suite needs no API server. Channels are
// decoded with channelspec.Decode, which applies the CRD's defaults exactly as
// the API server does: the builders see what the reconciler will see.

func TestResources(t *testing.T) {
	testutil.RunSuite(t, "resources")
}

const (
	channelName   = "chat"
	namespace     = "apps"
	defaultImage  = "ghcr.io/herald-notify/herald:v1.2.3"
	objectName    = "chat-streamer"
	minimalSpec   = "auth: {keySecretRef: {name: chat-keys}}"
	natsBrokerYML = "broker: {type: NATS, nats: {url: 'nats://nats.nats:4222'}}"
	// cpuRequestYML goes with autoscaling, which the API requires it for.
	cpuRequestYML = "pod: {resources: {requests: {cpu: 100m}}}"
)

// decodeNamed decodes a channel of the given name in namespace whose spec is
// the YAML lines of spec, with the API server's defaults applied.
func decodeNamed(name string, spec ...string) *notifyv1alpha1.NotificationChannel {
	GinkgoHelper()
	var doc strings.Builder
	doc.WriteString("apiVersion: notify.herald.dev/v1alpha1\nkind: NotificationChannel\n")
	doc.WriteString("metadata: {name: " + name + ", namespace: " + namespace + "}\nspec:\n")
	for _, line := range spec {
		for l := range strings.SplitSeq(line, "\n") {
			doc.WriteString("  " + l + "\n")
		}
	}
	channel, err := channelspec.Decode(context.Background(), "test channel", []byte(doc.String()))
	Expect(err).NotTo(HaveOccurred())
	return channel
}

// decode is decodeNamed for the channel "chat"; the minimal spec comes first
// unless spec has its own auth.
func decode(spec ...string) *notifyv1alpha1.NotificationChannel {
	GinkgoHelper()
	if len(spec) == 0 || !strings.HasPrefix(spec[0], "auth:") {
		spec = append([]string{minimalSpec}, spec...)
	}
	return decodeNamed(channelName, spec...)
}

// inputs are the builders' inputs for decode(spec...) and the default image.
func inputs(spec ...string) resources.Inputs {
	GinkgoHelper()
	return resources.Inputs{Channel: decode(spec...), DefaultImage: defaultImage}
}
