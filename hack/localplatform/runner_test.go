package main

import (
	"bufio"
	"context"
	"encoding/json"
	"errors"
	"log/slog"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"syscall"
	"time"

	. "github.com/onsi/ginkgo/v2"
	. "github.com/onsi/gomega"
	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"
	ctrl "sigs.k8s.io/controller-runtime"
	"sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/controller-runtime/pkg/log/zap"

	notifyv1alpha1 "github.com/herald-notify/herald/api/v1alpha1"
	"github.com/herald-notify/herald/controllers/resources"
	"github.com/herald-notify/herald/internal/testutil/clustertest"
	"github.com/herald-notify/herald/internal/testutil/streamertest"
)

var (
	// heraldBin is the herald binary the runner's pods run, built once.
	heraldBin string
	cluster   *clustertest.Cluster
)

var _ = BeforeSuite(func(ctx SpecContext) {
	// The platforms' operators log through controller-runtime.
	ctrl.SetLogger(zap.New(zap.WriteTo(GinkgoWriter)))
	heraldBin = buildHerald(ctx, GinkgoT().TempDir())
	cluster = clustertest.Start(filepath.Join("..", "..", "config", "crd", "bases"))
}, NodeTimeout(5*time.Minute))

// buildHerald builds the repository's herald binary into dir.
func buildHerald(ctx context.Context, dir string) string {
	GinkgoHelper()
	out := filepath.Join(dir, "herald")
	cmd := exec.CommandContext(ctx, "go", "build", "-trimpath", "-o", out, "github.com/herald-notify/herald")
	cmd.Env = append(os.Environ(), "CGO_ENABLED=0")
	output, err := cmd.CombinedOutput()
	Expect(err).NotTo(HaveOccurred(), string(output))
	return out
}

// channelObjects creates, in a fresh namespace, a channel with its key and
// the objects the operator would build for it, as the operator builds them
// (controllers/resources) but without the operator: the specs change the
// Deployment directly, beyond what a channel's validation allows (several
// replicas of an embedded log). It returns the namespace and the key.
func channelObjects(ctx context.Context) (string, []byte) {
	GinkgoHelper()
	ns := cluster.Namespace(ctx)
	key := cluster.CreateChannelWithKey(ctx, ns)
	channel := &notifyv1alpha1.NotificationChannel{}
	Expect(cluster.Client.Get(ctx, client.ObjectKey{Namespace: ns, Name: "app"}, channel)).To(Succeed())
	in := resources.Inputs{Channel: channel, DefaultImage: "example.com/herald:test"}
	for _, obj := range []client.Object{
		resources.ServiceAccount(in), resources.Role(in), resources.RoleBinding(in), resources.AuthDelegatorBinding(in),
		resources.Deployment(in), resources.Service(in),
	} {
		Expect(cluster.Client.Create(ctx, obj)).To(Succeed())
	}
	DeferCleanup(func(ctx SpecContext) {
		Expect(client.IgnoreNotFound(cluster.Client.Delete(ctx, resources.AuthDelegatorBinding(in)))).To(Succeed())
	})
	return ns, key
}

// startRunner runs a runner for namespace ns until the spec ends, then
// stops it and checks that it stopped cleanly.
func startRunner(ns string) *Runner {
	GinkgoHelper()
	r := newTestRunner(ns)
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- r.Run(ctx) }()
	DeferCleanup(func() {
		cancel()
		Eventually(done, time.Minute).Should(Receive(BeNil()))
	})
	return r
}

// newTestRunner is a runner for namespace ns that logs to the spec's output.
func newTestRunner(ns string) *Runner {
	GinkgoHelper()
	r, err := NewRunner(RunnerOptions{
		Config: cluster.Config, Scheme: cluster.Scheme, Kubeconfig: cluster.Kubeconfig,
		Herald: heraldBin, Dir: GinkgoT().TempDir(), Namespace: ns,
		Logger: slog.New(slog.NewTextHandler(GinkgoWriter, nil)),
	})
	Expect(err).NotTo(HaveOccurred())
	return r
}

// scaleToTwo scales the channel's Deployment to two pods and returns them,
// once ready, with their process ids.
func scaleToTwo(ctx context.Context, r *Runner, ns string) ([]*pod, []int) {
	GinkgoHelper()
	scale(ctx, ns, 2)
	Eventually(deployment(ctx, ns), time.Minute).Should(rolledOut(2))
	pods := r.Pods(deploymentKey(ns))
	Expect(pods).To(HaveLen(2))
	return pods, []int{pods[0].PID(), pods[1].PID()}
}

// serviceAddr is the loopback address of the channel's Service "http" port,
// once the runner serves it.
func serviceAddr(r *Runner, ns string) string {
	GinkgoHelper()
	key := client.ObjectKey{Namespace: ns, Name: resources.ObjectName("app")}
	Eventually(r.ServiceAddr).WithArguments(key, resources.PortNameHTTP).WithTimeout(time.Minute).ShouldNot(BeEmpty())
	return r.ServiceAddr(key, resources.PortNameHTTP)
}

// deploymentKey names the channel's Deployment in ns.
func deploymentKey(ns string) client.ObjectKey {
	return client.ObjectKey{Namespace: ns, Name: resources.ObjectName("app")}
}

// deployment reads the channel's Deployment.
func deployment(ctx context.Context, ns string) func() (*appsv1.Deployment, error) {
	return func() (*appsv1.Deployment, error) {
		d := &appsv1.Deployment{}
		err := cluster.Client.Get(ctx, deploymentKey(ns), d)
		return d, err
	}
}

// scale sets the Deployment's replicas.
func scale(ctx context.Context, ns string, replicas int32) {
	GinkgoHelper()
	d, err := deployment(ctx, ns)()
	Expect(err).NotTo(HaveOccurred())
	patch := client.MergeFrom(d.DeepCopy())
	d.Spec.Replicas = &replicas
	Expect(cluster.Client.Patch(ctx, d, patch)).To(Succeed())
}

// rolledOut matches a Deployment whose status says the current generation
// runs on replicas ready pods, as `kubectl rollout status` reads it.
func rolledOut(replicas int32) OmegaMatcher {
	return And(
		WithTransform(func(d *appsv1.Deployment) bool { return d.Status.ObservedGeneration == d.Generation }, BeTrue()),
		HaveField("Status.Replicas", replicas),
		HaveField("Status.ReadyReplicas", replicas),
		HaveField("Status.AvailableReplicas", replicas),
		HaveField("Status.UpdatedReplicas", replicas),
		HaveField("Status.Conditions", ContainElements(
			And(HaveField("Type", appsv1.DeploymentAvailable), HaveField("Status", corev1.ConditionTrue)),
			And(HaveField("Type", appsv1.DeploymentProgressing), HaveField("Status", corev1.ConditionTrue),
				HaveField("Reason", "NewReplicaSetAvailable")),
		)),
	)
}

// readyPods counts the runner's ready pods of the channel.
func readyPods(r *Runner, ns string) int {
	n := 0
	for _, p := range r.Pods(deploymentKey(ns)) {
		if p.Ready() {
			n++
		}
	}
	return n
}

// processGone reports whether no process has pid any more (reaped: not even
// a zombie is left).
func processGone(pid int) bool {
	return errors.Is(syscall.Kill(pid, 0), syscall.ESRCH)
}

// logOf is a pod's log so far.
func logOf(p *pod) string {
	data, _ := os.ReadFile(p.LogPath())
	return string(data)
}

var _ = Describe("the runner", func() {
	It("runs the Deployment's pods as its ServiceAccount and reports them ready on its status", func(ctx SpecContext) {
		ns, _ := channelObjects(ctx)
		r := startRunner(ns)

		Eventually(deployment(ctx, ns), time.Minute).Should(rolledOut(1))
		pods := r.Pods(deploymentKey(ns))
		Expect(pods).To(HaveLen(1))
		p := pods[0]
		Expect(p.spec.name).To(HavePrefix(resources.ObjectName("app") + "-"))
		By("listening on loopback ports only")
		Expect(p.Addr(resources.PortNameHTTP)).To(HavePrefix("127.0.0.1:"))
		Expect(logOf(p)).To(ContainSubstring(`"listen":"127.0.0.1:`))
		By("reaching the API server as the pod's ServiceAccount")
		kubeconfig, err := os.ReadFile(p.kubeconfig)
		Expect(err).NotTo(HaveOccurred())
		Expect(string(kubeconfig)).To(ContainSubstring("as: system:serviceaccount:" + ns + ":" + resources.ObjectName("app")))
	}, SpecTimeout(2*time.Minute))

	It("rolls a changed pod template one pod at a time, never below the desired ready pods", func(ctx SpecContext) {
		ns, _ := channelObjects(ctx)
		r := startRunner(ns)
		before, beforePIDs := scaleToTwo(ctx, r, ns)

		// Watch the ready pods and the pod count through the roll.
		var mu sync.Mutex
		minReady, maxPods := 2, 2
		watchCtx, stopWatch := context.WithCancel(ctx)
		watched := make(chan struct{})
		go func() {
			defer close(watched)
			for watchCtx.Err() == nil {
				ready, count := readyPods(r, ns), len(r.Pods(deploymentKey(ns)))
				mu.Lock()
				minReady, maxPods = min(minReady, ready), max(maxPods, count)
				mu.Unlock()
				select {
				case <-watchCtx.Done():
				case <-time.After(10 * time.Millisecond):
				}
			}
		}()

		d, err := deployment(ctx, ns)()
		Expect(err).NotTo(HaveOccurred())
		patch := client.MergeFrom(d.DeepCopy())
		d.Spec.Template.Annotations["example.com/restartedAt"] = time.Now().Format(time.RFC3339Nano)
		Expect(cluster.Client.Patch(ctx, d, patch)).To(Succeed())

		Eventually(deployment(ctx, ns), 2*time.Minute).Should(rolledOut(2))
		stopWatch()
		<-watched
		after := r.Pods(deploymentKey(ns))
		Expect(after).To(HaveLen(2))
		for _, p := range after {
			Expect(before).NotTo(ContainElement(p), "every pod was replaced")
			Expect(p.spec.revision).To(Equal(templateHash(&d.Spec.Template)))
		}
		mu.Lock()
		defer mu.Unlock()
		Expect(minReady).To(BeNumerically(">=", 2), "maxUnavailable 0")
		Expect(maxPods).To(BeNumerically("<=", 3), "maxSurge 1")
		By("stopping the old pods with SIGTERM, so they drained")
		// The last old pod leaves the Deployment's status as it is told to
		// stop, and drains after: within its grace period.
		for i, p := range before {
			Eventually(func() string { return logOf(p) }, 30*time.Second).Should(ContainSubstring(`"msg":"draining"`))
			Eventually(func() bool { return processGone(beforePIDs[i]) }, 30*time.Second).Should(BeTrue())
		}
	}, SpecTimeout(4*time.Minute))

	It("restarts a pod whose process exits", func(ctx SpecContext) {
		ns, _ := channelObjects(ctx)
		r := startRunner(ns)
		Eventually(deployment(ctx, ns), time.Minute).Should(rolledOut(1))
		p := r.Pods(deploymentKey(ns))[0]
		pid := p.PID()
		Expect(syscall.Kill(pid, syscall.SIGKILL)).To(Succeed())

		Eventually(func() int32 { return p.restarts.Load() }, time.Minute).Should(BeEquivalentTo(1))
		Eventually(processGone).WithArguments(pid).Should(BeTrue())
		Eventually(deployment(ctx, ns), time.Minute).Should(rolledOut(1))
		Expect(r.Pods(deploymentKey(ns))).To(ConsistOf(p), "the same pod, its container restarted")
		Expect(p.PID()).NotTo(Equal(pid))
	}, SpecTimeout(2*time.Minute))

	It("stops pods on scale-in with SIGTERM, so that they drain", func(ctx SpecContext) {
		ns, _ := channelObjects(ctx)
		r := startRunner(ns)
		pods, pids := scaleToTwo(ctx, r, ns)

		scale(ctx, ns, 1)
		Eventually(deployment(ctx, ns), time.Minute).Should(rolledOut(1))
		kept := r.Pods(deploymentKey(ns))
		Expect(kept).To(HaveLen(1))
		stopped, stoppedPID := pods[1], pids[1]
		if kept[0] == pods[1] {
			stopped, stoppedPID = pods[0], pids[0]
		}
		Eventually(logOf).WithArguments(stopped).Should(ContainSubstring(`"msg":"draining"`))
		Eventually(processGone).WithArguments(stoppedPID).Should(BeTrue())
	}, SpecTimeout(2*time.Minute))

	It("serves the Service as a local port that streams the pods' events", func(ctx SpecContext) {
		ns, key := channelObjects(ctx)
		r := startRunner(ns)
		Eventually(deployment(ctx, ns), time.Minute).Should(rolledOut(1))
		addr := serviceAddr(r, ns)

		lines := openStream(ctx, addr, key, "u1")
		Eventually(lines, time.Minute).Should(Receive(ContainSubstring(`"type":"connection"`)))
		publishNotification(ctx, addr, key, "u1", "hello through the Service")
		Eventually(lines, time.Minute).Should(Receive(ContainSubstring("hello through the Service")))
	}, SpecTimeout(2*time.Minute))

	It("stops every pod and closes every port when stopped", func(ctx SpecContext) {
		ns, _ := channelObjects(ctx)
		r := newTestRunner(ns)
		runCtx, stop := context.WithCancel(context.Background())
		var runErr error
		finished := make(chan struct{})
		go func() { defer close(finished); runErr = r.Run(runCtx) }()
		DeferCleanup(func() {
			stop()
			Eventually(finished, time.Minute).Should(BeClosed())
		})
		pods, pids := scaleToTwo(ctx, r, ns)
		addr := serviceAddr(r, ns)

		stop()
		Eventually(finished, time.Minute).Should(BeClosed())
		Expect(runErr).NotTo(HaveOccurred())
		for i, pid := range pids {
			Expect(processGone(pid)).To(BeTrue(), "pid %d", pid)
			Expect(logOf(pods[i])).To(ContainSubstring(`"msg":"draining"`), "stopped with SIGTERM")
		}
		_, err := net.DialTimeout("tcp", addr, time.Second)
		Expect(err).To(HaveOccurred(), "the Service port is closed")
	}, SpecTimeout(2*time.Minute))
})

// openStream opens the SSE stream as user through addr and sends its data
// lines, until the spec ends.
func openStream(ctx context.Context, addr string, key []byte, user string) <-chan string {
	GinkgoHelper()
	token, err := streamertest.Token(key, user, false, time.Hour)
	Expect(err).NotTo(HaveOccurred())
	return streamLines(ctx, "http://"+addr+"/api/v1/sse/notifications", token)
}

// streamLines opens the SSE stream at url with token and sends its data
// lines, until the spec ends.
func streamLines(ctx context.Context, url, token string) <-chan string {
	GinkgoHelper()
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, url, nil)
	Expect(err).NotTo(HaveOccurred())
	req.Header.Set("Authorization", "Bearer "+token)
	var resp *http.Response
	Eventually(func() (int, error) {
		resp, err = http.DefaultClient.Do(req)
		if err != nil {
			return 0, err
		}
		return resp.StatusCode, nil
	}, time.Minute).Should(Equal(http.StatusOK))
	DeferCleanup(resp.Body.Close)
	lines := make(chan string, 100)
	go func() {
		defer GinkgoRecover()
		scanner := bufio.NewScanner(resp.Body)
		for scanner.Scan() {
			if data, ok := strings.CutPrefix(scanner.Text(), "data:"); ok {
				select {
				case lines <- data:
				case <-ctx.Done():
					return
				}
			}
		}
	}()
	return lines
}

// publishNotification publishes a notification for user through addr with
// a publisher token.
func publishNotification(ctx context.Context, addr string, key []byte, user, message string) {
	GinkgoHelper()
	token, err := streamertest.Token(key, "backend", true, time.Hour)
	Expect(err).NotTo(HaveOccurred())
	body := `{"recipientUserIds":["` + user + `"],"notificationId":"n1","notificationType":"VOCAB_TRAINER","action":"CREATE","priority":"LOW","data":{"message":"` + message + `"}}`
	publish(ctx, "http://"+addr+"/api/v1/notifications", token, body)
}

// publish POSTs body to url with token, expects it accepted and returns
// the decoded answer.
func publish(ctx context.Context, url, token, body string) map[string]any {
	GinkgoHelper()
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, url, strings.NewReader(body))
	Expect(err).NotTo(HaveOccurred())
	req.Header.Set("Authorization", "Bearer "+token)
	req.Header.Set("Content-Type", "application/json")
	resp, err := http.DefaultClient.Do(req)
	Expect(err).NotTo(HaveOccurred())
	defer resp.Body.Close()
	var answer map[string]any
	Expect(json.NewDecoder(resp.Body).Decode(&answer)).To(Succeed())
	Expect(resp.StatusCode).To(Equal(http.StatusAccepted), "%v", answer)
	return answer
}
