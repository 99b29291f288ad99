package channelspec_test

import (
	"context"
	"errors"
	"os"
	"path/filepath"
	"runtime"
	"strings"
	"testing"
	"time"

	. "github.com/onsi/ginkgo/v2"
	. "github.com/onsi/gomega"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"sigs.k8s.io/controller-runtime/pkg/client"

	notifyv1alpha1 "github.com/herald-notify/herald/api/v1alpha1"
	"github.com/herald-notify/herald/internal/apiserver"
	"github.com/herald-notify/herald/streamer/channelspec"

	"github.com/herald-notify/herald/internal/testutil"
)

// The suite holds the file decoder to the API server itself: for the same
// manifest both must default the same way and reject the same fields.

var (
	server   *apiserver.Server
	repoRoot = filepath.Join("..", "..")
)

func TestChannelSpec(t *testing.T) {
	testutil.RunSuite(t, "channel spec files")
}

var _ = BeforeSuite(func() {
	var err error
	server, err = apiserver.Start(filepath.Join(repoRoot, "config", "crd", "bases"), GinkgoT().TempDir())
	Expect(err).NotTo(HaveOccurred())
	DeferCleanup(func() { Expect(server.Stop()).To(Succeed()) })
})

func newNamespace(ctx context.Context) string {
	ns := &corev1.Namespace{ObjectMeta: metav1.ObjectMeta{GenerateName: "channelspec-"}}
	Expect(server.Client.Create(ctx, ns)).To(Succeed())
	return ns.Name
}

const minimal = `
apiVersion: notify.herald.dev/v1alpha1
kind: NotificationChannel
metadata: {name: app}
spec:
  auth:
    keySecretRef: {name: app-keys}
`

var _ = Describe("Decode", func() {
	It("defaults every sample exactly as the API server does", func(ctx SpecContext) {
		namespace := newNamespace(ctx)
		files, err := filepath.Glob(filepath.Join(repoRoot, "config", "samples", "*notificationchannel*.yaml"))
		Expect(err).NotTo(HaveOccurred())
		Expect(files).NotTo(BeEmpty())
		manifests := map[string][]byte{"minimal": []byte(minimal)}
		for _, file := range files {
			manifests[file], err = os.ReadFile(file)
			Expect(err).NotTo(HaveOccurred())
		}
		for source, manifest := range manifests {
			local, err := channelspec.Decode(ctx, source, manifest)
			Expect(err).NotTo(HaveOccurred())

			objs, err := apiserver.ReadManifestsFrom(manifest)
			Expect(err).NotTo(HaveOccurred())
			Expect(apiserver.Apply(ctx, server.Client, namespace, "test", objs...)).To(Succeed())
			stored := &notifyv1alpha1.NotificationChannel{}
			Expect(server.Client.Get(ctx, client.ObjectKey{Namespace: namespace, Name: local.Name}, stored)).To(Succeed())
			Expect(local.Spec).To(Equal(stored.Spec), "defaults differ for %s", source)
		}
	})

	It("applies the named default constants", func(ctx SpecContext) {
		channel, err := channelspec.Decode(ctx, "minimal", []byte(minimal))
		Expect(err).NotTo(HaveOccurred())
		Expect(channel.Name).To(Equal("app"))
		Expect(channel.Spec.Connections.KeepAliveInterval.Duration).To(Equal(notifyv1alpha1.DefaultKeepAliveInterval))
		Expect(channel.Spec.History.MaxAge.Duration).To(Equal(time.Hour))
	})

	DescribeTable("rejects what the API server rejects, naming the same field",
		func(ctx SpecContext, edit func(string) string, field string) {
			manifest := edit(minimal)
			_, err := channelspec.Decode(ctx, "channel.yaml", []byte(manifest))
			Expect(err).To(HaveOccurred())
			var invalid *channelspec.InvalidError
			Expect(errors.As(err, &invalid)).To(BeTrue())
			Expect(err.Error()).To(HavePrefix("channel.yaml is invalid:"))
			Expect(err.Error()).To(ContainSubstring(field + ": "))

			objs, err := apiserver.ReadManifestsFrom([]byte(manifest))
			Expect(err).NotTo(HaveOccurred())
			apiErr := apiserver.Apply(ctx, server.Client, newNamespace(ctx), "test", objs...)
			Expect(apiErr).To(HaveOccurred())
			Expect(apiErr.Error()).To(ContainSubstring(field + ": "))
		},
		Entry("a CEL rule", func(m string) string { return strings.Replace(m, "spec:\n", "spec:\n  replicas: 2\n", 1) }, "spec.replicas"),
		Entry("an enum", func(m string) string { return m + "  broker: {type: Kafka}\n" }, "spec.broker.type"),
		Entry("a bound", func(m string) string { return m + "  connections: {maxPerUser: 0}\n" }, "spec.connections.maxPerUser"),
		Entry("a duration", func(m string) string { return m + "  history: {maxAge: 1000h}\n" }, "spec.history.maxAge"),
		Entry("a required field", func(m string) string { return strings.Replace(m, "{name: app-keys}", "{}", 1) }, "spec.auth.keySecretRef.name"),
	)

	It("reports a misspelt setting instead of silently using its default", func(ctx SpecContext) {
		_, err := channelspec.Decode(ctx, "channel.yaml", []byte(minimal+"  conections: {maxPerUser: 5}\n"))
		Expect(err).To(MatchError(ContainSubstring("spec.conections: Forbidden: unknown field")))
	})

	It("names a document of another kind and a missing spec", func(ctx SpecContext) {
		_, err := channelspec.Decode(ctx, "channel.yaml", []byte("apiVersion: v1\nkind: Secret\n"))
		Expect(err).To(MatchError(And(
			ContainSubstring(`apiVersion: Unsupported value: "v1"`),
			ContainSubstring(`kind: Unsupported value: "Secret"`),
			ContainSubstring("spec: Required value"),
		)))
	})

	It("lets the compiled schema go once decoding is done, and compiles it again when needed", func(ctx SpecContext) {
		_, err := channelspec.Decode(ctx, "minimal", []byte(minimal))
		Expect(err).NotTo(HaveOccurred())
		Eventually(func() bool {
			runtime.GC()
			return channelspec.SchemaHeld()
		}).Should(BeFalse(), "the compiled schema outlives the decoding")
		_, err = channelspec.Decode(ctx, "channel.yaml", []byte(minimal+"  connections: {maxPerUser: 0}\n"))
		Expect(err).To(MatchError(ContainSubstring("spec.connections.maxPerUser")))
	})

	It("says which file is not YAML", func(ctx SpecContext) {
		_, err := channelspec.Decode(ctx, "channel.yaml", []byte("spec: [unclosed"))
		Expect(err).To(MatchError(HavePrefix("channel.yaml is not a valid YAML or JSON document")))
		_, err = channelspec.LoadFile(ctx, filepath.Join(GinkgoT().TempDir(), "missing.yaml"))
		Expect(err).To(MatchError(ContainSubstring("failed to read the channel config")))
	})
})
