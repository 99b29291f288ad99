package main

import (
	"context"
	"net/url"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	. "github.com/onsi/ginkgo/v2"
	. "github.com/onsi/gomega"
	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/tools/clientcmd"
	"sigs.k8s.io/controller-runtime/pkg/client"

	notifyv1alpha1 "github.com/herald-notify/herald/api/v1alpha1"
	"github.com/herald-notify/herald/internal/apiserver"
	"github.com/herald-notify/herald/internal/testutil"
)

func TestLocalPlatform(t *testing.T) {
	testutil.RunSuite(t, "local platform")
}

var _ = It("serves the CRDs and the samples until interrupted", func() {
	ctx, cancel := context.WithCancel(context.Background())
	stateDir := GinkgoT().TempDir()
	out := &testutil.Buffer{}
	done := make(chan error, 1)
	go func() { done <- run(ctx, filepath.Join("..", ".."), stateDir, heraldBin, out) }()
	DeferCleanup(func() {
		cancel()
		Eventually(done, time.Minute).Should(Receive(BeNil()))
	})

	Eventually(out.String, time.Minute).Should(ContainSubstring("Herald local platform is up"))
	kubeconfig := filepath.Join(stateDir, "kubeconfig")
	Expect(out.String()).To(ContainSubstring("export KUBECONFIG=" + kubeconfig))

	cfg, err := clientcmd.BuildConfigFromFlags("", kubeconfig)
	Expect(err).NotTo(HaveOccurred())
	scheme, err := apiserver.NewScheme()
	Expect(err).NotTo(HaveOccurred())
	c, err := client.New(cfg, client.Options{Scheme: scheme})
	Expect(err).NotTo(HaveOccurred())

	channels := &notifyv1alpha1.NotificationChannelList{}
	Expect(c.List(ctx, channels, client.InNamespace(namespace))).To(Succeed())
	Expect(channels.Items).To(ContainElement(HaveField("Name", "app-notifications")))
	events := &notifyv1alpha1.SystemEventList{}
	Expect(c.List(ctx, events, client.InNamespace(namespace))).To(Succeed())
	Expect(events.Items).To(ContainElement(HaveField("Name", "maintenance")))

	By("providing the key Secret the sample channel names, with a fresh key")
	Expect(channels.Items).To(ContainElement(HaveField("Spec.Auth.KeySecretRef.Name", sampleKeySecret)))
	secret := &corev1.Secret{}
	Expect(c.Get(ctx, client.ObjectKey{Namespace: namespace, Name: sampleKeySecret}, secret)).To(Succeed())
	Expect(secret.Data).To(HaveKeyWithValue("local", HaveLen(64)))

	By("running the operator, which reconciles the sample channel")
	Eventually(func() (int64, error) {
		channel := &notifyv1alpha1.NotificationChannel{}
		err := c.Get(ctx, client.ObjectKey{Namespace: namespace, Name: "app-notifications"}, channel)
		return channel.Status.ObservedGeneration, err
	}, time.Minute).Should(BeNumerically(">=", 1))
	Expect(c.Get(ctx, client.ObjectKey{Namespace: namespace, Name: "app-notifications-streamer"}, &appsv1.Deployment{})).To(Succeed())

	By("running the streamer pods the operator asks for, so that the sample channel becomes Ready")
	Eventually(func() ([]metav1.Condition, error) {
		channel := &notifyv1alpha1.NotificationChannel{}
		err := c.Get(ctx, client.ObjectKey{Namespace: namespace, Name: "app-notifications"}, channel)
		return channel.Status.Conditions, err
	}, 2*time.Minute).Should(ContainElement(And(
		HaveField("Type", notifyv1alpha1.ConditionReady), HaveField("Status", metav1.ConditionTrue))))

	By("printing commands that work as printed: a stream through the Service that receives a published notification")
	sample := &notifyv1alpha1.NotificationChannel{}
	Expect(c.Get(ctx, client.ObjectKey{Namespace: namespace, Name: sampleChannel}, sample)).To(Succeed())
	printedURL, err := url.Parse(streamURL(out.String()))
	Expect(err).NotTo(HaveOccurred())
	printed := commandsFor(kubeconfig, heraldBin, filepath.Join(stateDir, "sample-key"), printedURL.Host, sample)
	Expect(out.String()).To(ContainSubstring(printed.UserToken))
	Expect(out.String()).To(ContainSubstring(printed.Publisher))
	Expect(out.String()).To(ContainSubstring(printed.Stream))
	Expect(out.String()).To(ContainSubstring(printed.Publish))
	Expect(out.String()).To(MatchRegexp(`Open the browser page, which streams as user u1:\n  http://127\.0\.0\.1:\d+/\n`))
	lines := streamLines(ctx, printed.StreamURL, runPrintedToken(ctx, printed.UserToken))
	Eventually(lines, time.Minute).Should(Receive(ContainSubstring(`"type":"connection"`)))
	publish(ctx, printed.PublishURL, runPrintedToken(ctx, printed.Publisher), sampleNotification)
	Eventually(lines, time.Minute).Should(Receive(ContainSubstring("New vocab trainer available")))
})

// streamURL is the stream URL of the printed curl -N line.
func streamURL(printed string) string {
	GinkgoHelper()
	for _, line := range strings.Split(printed, "\n") {
		if fields := strings.Fields(line); len(fields) > 0 && fields[0] == "curl" && fields[1] == "-N" {
			return fields[len(fields)-1]
		}
	}
	Fail("no curl -N line printed:\n" + printed)
	return ""
}

// runPrintedToken runs the herald token command of a printed NAME=$(...)
// line, as a shell would, and returns the token it prints.
func runPrintedToken(ctx context.Context, line string) string {
	GinkgoHelper()
	_, command, _ := strings.Cut(line, "=$(")
	args := strings.Fields(strings.TrimSuffix(command, ")"))
	output, err := exec.CommandContext(ctx, args[0], args[1:]...).Output()
	Expect(err).NotTo(HaveOccurred())
	return strings.TrimSpace(string(output))
}
