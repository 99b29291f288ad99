package main

import (
	"context"
	"net/url"
	"os"
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
	go func() { done <- run(ctx, filepath.Join("..", ".."), stateDir, heraldBin, out, GinkgoWriter) }()
	DeferCleanup(func() {
		cancel()
		Eventually(done, time.Minute).Should(Receive(BeNil()))
	})

	Eventually(out.String, time.Minute).Should(ContainSubstring("Press Ctrl-C to stop"), "everything printed")
	Expect(out.String()).To(HavePrefix("Herald local platform is up"))
	kubeconfig := filepath.Join(stateDir, "kubeconfig")
	Expect(out.String()).To(ContainSubstring("export KUBECONFIG=" + kubeconfig))
	Expect(out.String()).NotTo(ContainSubstring("level="), "the runner's log lines go to the log, not between the commands")

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
	streamURLs := printedStreamURLs(out.String())
	Expect(streamURLs).To(HaveLen(2), "a curl -N line for the sample channel and one for the NATS channel")
	printedURL, err := url.Parse(streamURLs[0])
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

	By("running the printed kubectl apply of a SystemEvent, as a shell would: the stream receives the announcement")
	Expect(out.String()).To(ContainSubstring(printed.SystemEvent))
	runPrintedShell(ctx, kubeconfig, printed.SystemEvent)
	Eventually(lines, time.Minute).Should(Receive(And(ContainSubstring(`"type":"system"`), ContainSubstring("Hello from kubectl"))))

	By("running the NATS channel's three pods over the platform's NATS server, opened by the same printed tokens")
	Eventually(func(g Gomega) {
		channel := &notifyv1alpha1.NotificationChannel{}
		g.Expect(c.Get(ctx, client.ObjectKey{Namespace: namespace, Name: fleetChannel}, channel)).To(Succeed())
		g.Expect(channel.Status.ReadyReplicas).To(BeEquivalentTo(3))
		g.Expect(channel.Status.Conditions).To(ContainElement(And(
			HaveField("Type", notifyv1alpha1.ConditionReady), HaveField("Status", metav1.ConditionTrue),
			HaveField("ObservedGeneration", channel.Generation))))
	}, 3*time.Minute).Should(Succeed())
	fleet := &notifyv1alpha1.NotificationChannel{}
	Expect(c.Get(ctx, client.ObjectKey{Namespace: namespace, Name: fleetChannel}, fleet)).To(Succeed())
	fleetURL, err := url.Parse(streamURLs[1])
	Expect(err).NotTo(HaveOccurred())
	printedFleet := commandsFor(kubeconfig, heraldBin, filepath.Join(stateDir, "sample-key"), fleetURL.Host, fleet)
	Expect(printedFleet.UserToken).To(Equal(printed.UserToken), "the printed tokens open the NATS channel too")
	Expect(printedFleet.Publisher).To(Equal(printed.Publisher))
	Expect(out.String()).To(ContainSubstring(printedFleet.Stream))
	Expect(out.String()).To(ContainSubstring(printedFleet.Publish))
	fleetLines := streamLines(ctx, printedFleet.StreamURL, runPrintedToken(ctx, printed.UserToken))
	Eventually(fleetLines, time.Minute).Should(Receive(ContainSubstring(`"type":"connection"`)))
	publish(ctx, printedFleet.PublishURL, runPrintedToken(ctx, printed.Publisher), sampleNotification)
	Eventually(fleetLines, time.Minute).Should(Receive(ContainSubstring("New vocab trainer available")))
})

// printedStreamURLs are the stream URLs of the printed curl -N lines, in
// order.
func printedStreamURLs(printed string) []string {
	var urls []string
	for _, line := range strings.Split(printed, "\n") {
		if fields := strings.Fields(line); len(fields) > 1 && fields[0] == "curl" && fields[1] == "-N" {
			urls = append(urls, fields[len(fields)-1])
		}
	}
	return urls
}

// runPrintedShell runs a printed command with bash, the kubectl that tests
// drive first on PATH and KUBECONFIG as the printed export sets it.
func runPrintedShell(ctx context.Context, kubeconfig, command string) {
	GinkgoHelper()
	kubectl, err := apiserver.KubectlPath()
	Expect(err).NotTo(HaveOccurred())
	cmd := exec.CommandContext(ctx, "bash", "-c", command)
	cmd.Env = append(os.Environ(), "KUBECONFIG="+kubeconfig, "PATH="+filepath.Dir(kubectl)+":"+os.Getenv("PATH"))
	output, err := cmd.CombinedOutput()
	Expect(err).NotTo(HaveOccurred(), string(output))
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
