package main

import (
	"bufio"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"time"

	. "github.com/onsi/ginkgo/v2"
	. "github.com/onsi/gomega"
	appsv1 "k8s.io/api/apps/v1"
	"sigs.k8s.io/controller-runtime/pkg/client"

	"github.com/herald-notify/herald/controllers/resources"
	"github.com/herald-notify/herald/internal/testutil/fleettest"
	"github.com/herald-notify/herald/streamer/paths"
	"github.com/herald-notify/herald/streamer/sse"
)

// The platform as a user meets it: kubectl applies a NATS channel of three
// pods, real SSE clients stream through its Service port (one with a header,
// one with tickets), a backend publishes, kubectl announces, and a pod is
// killed under the clients.
var _ = Describe("the local platform end to end", func() {
	It("delivers to the right users through kubectl-applied objects, and loses nothing when a pod is killed", func(ctx SpecContext) {
		p := startTestPlatform(ctx)
		kubectl := func(stdin string, args ...string) string {
			GinkgoHelper()
			res := p.Server.Kubectl(ctx, stdin, args...)
			Expect(res.Err).NotTo(HaveOccurred(), "kubectl %s: %s", strings.Join(args, " "), res.Stderr)
			return res.Stdout
		}

		By("applying a NATS channel of three pods, its Secrets and namespace with kubectl, and waiting for Ready")
		kubectl("", "create", "namespace", "e2e")
		kubectl("", "-n", "e2e", "create", "secret", "generic", "orders-keys", "--from-file=local="+p.KeyFile)
		kubectl("", "-n", "e2e", "create", "secret", "generic", "orders-nats", "--from-literal=token="+p.NATS.Token)
		kubectl(ordersChannel(p.NATS.URL()), "apply", "-f", "-")
		kubectl("", "-n", "e2e", "wait", "--for=condition=Ready", "nch/orders", "--timeout=3m")
		service := client.ObjectKey{Namespace: "e2e", Name: resources.ObjectName("orders")}
		addr, err := waitServiceAddr(ctx, p.Runner, service, resources.PortNameHTTP)
		Expect(err).NotTo(HaveOccurred())
		api := "http://" + addr
		deployment := client.ObjectKey{Namespace: "e2e", Name: resources.ObjectName("orders")}
		Expect(p.Runner.Pods(deployment)).To(HaveLen(3))

		By("streaming through the Service as alice with a header and as bob with tickets")
		tokens := tokenMinter{herald: heraldBin, keyFile: p.KeyFile}
		alice := startSSEClient(ctx, api, "alice", tokens.user(ctx, "alice"), false)
		bob := startSSEClient(ctx, api, "bob", tokens.user(ctx, "bob"), true)
		Eventually(alice.connections).Should(HaveLen(1))
		Eventually(bob.connections).Should(HaveLen(1))

		By("publishing notifications that reach only their recipient")
		backend := &publisher{api: api, token: tokens.publisher(ctx)}
		backend.notify(ctx, "bob", "b-1")
		backend.notify(ctx, "alice", "a-1")
		backend.notify(ctx, "bob", "b-2")
		// Each stream delivers in log order: once a user has the last one
		// published to them, an earlier one addressed to someone else
		// would have arrived already.
		Eventually(alice.notificationIDs).Should(Equal([]string{"a-1"}))
		Eventually(bob.notificationIDs).Should(Equal([]string{"b-1", "b-2"}))

		By("announcing with kubectl apply: every connected user receives it once, and kubectl get sev shows it Delivered")
		kubectl(helloSystemEvent, "apply", "-f", "-")
		Eventually(func() string {
			return kubectl("", "-n", "e2e", "get", "sev", "hello", "--no-headers")
		}).Should(MatchRegexp(`^hello\s+orders\s+announcement\s+Delivered\s`))
		backend.notify(ctx, "alice", "a-2")
		backend.notify(ctx, "bob", "b-3")
		Eventually(alice.notificationIDs).Should(Equal([]string{"a-1", "a-2"}))
		Eventually(bob.notificationIDs).Should(Equal([]string{"b-1", "b-2", "b-3"}))
		for _, c := range []*sseClient{alice, bob} {
			Expect(c.systemEvents()).To(ConsistOf(And(
				HaveKeyWithValue("name", "hello"), HaveKeyWithValue("action", "CREATE"),
				HaveKeyWithValue("data", HaveKeyWithValue("message", "Hello from kubectl")))), c.user)
		}

		By("killing a pod that holds a stream, while notifications are published before and after")
		var batchA, batchB []string
		for i := range 10 {
			for _, c := range []*sseClient{alice, bob} {
				id := fmt.Sprintf("%s-before-%d", c.user, i)
				backend.notify(ctx, c.user, id)
				batchA = append(batchA, id)
			}
		}
		victim := podWithStreams(p.Runner.Pods(deployment))
		opens := alice.opens() + bob.opens()
		killed := victim.PID()
		Expect(syscall.Kill(killed, syscall.SIGKILL)).To(Succeed())
		// Until the process is gone its listening socket still completes
		// handshakes, and a publish sent there would be cut off unanswered.
		Eventually(func() bool { return processGone(killed) }).Should(BeTrue())
		for i := range 10 {
			for _, c := range []*sseClient{alice, bob} {
				id := fmt.Sprintf("%s-after-%d", c.user, i)
				backend.notify(ctx, c.user, id)
				batchB = append(batchB, id)
			}
		}

		By("the killed pod's clients reconnecting through the Service with Last-Event-ID, losing nothing")
		Eventually(func() int { return alice.opens() + bob.opens() }).Should(BeNumerically(">", opens))
		earlier := map[*sseClient][]string{alice: {"a-1", "a-2"}, bob: {"b-1", "b-2", "b-3"}}
		for _, c := range []*sseClient{alice, bob} {
			want := earlier[c]
			for _, id := range append(batchA, batchB...) {
				if strings.HasPrefix(id, c.user+"-") {
					want = append(want, id)
				}
			}
			Eventually(c.notificationIDs, time.Minute).Should(Equal(want), "%s: every notification once, in publish order", c.user)
		}
		var resumed []map[string]any
		for _, c := range []*sseClient{alice, bob} {
			resumed = append(resumed, c.connections()[1:]...)
		}
		Expect(resumed).NotTo(BeEmpty())
		Expect(resumed).To(HaveEach(HaveKeyWithValue("recovered", true)), "every resume found what it missed in the log")

		By("the runner restarting the killed pod, the channel Ready again")
		Eventually(func() bool {
			pid := victim.PID()
			return pid != 0 && pid != killed && victim.Ready()
		}, 2*time.Minute).Should(BeTrue(), "the killed pod runs a new, ready process")
		Eventually(func(g Gomega) {
			d := &appsv1.Deployment{}
			g.Expect(p.Server.Client.Get(ctx, deployment, d)).To(Succeed())
			g.Expect(d.Status.ReadyReplicas).To(BeEquivalentTo(3))
		}, 2*time.Minute).Should(Succeed())
		kubectl("", "-n", "e2e", "wait", "--for=condition=Ready", "nch/orders", "--timeout=2m")
	}, SpecTimeout(8*time.Minute))
})

// startTestPlatform starts the whole local platform for the spec and stops
// it when the spec ends.
func startTestPlatform(ctx context.Context) *platform {
	GinkgoHelper()
	platformCtx, cancel := context.WithCancel(context.WithoutCancel(ctx))
	p, err := startPlatform(platformCtx, platformOptions{
		Root: filepath.Join("..", ".."), StateDir: GinkgoT().TempDir(), Herald: heraldBin, Log: GinkgoWriter,
	})
	Expect(err).NotTo(HaveOccurred())
	DeferCleanup(func() {
		p.Stop(GinkgoWriter)
		cancel()
	})
	return p
}

// ordersChannel is the end-to-end test's channel: three pods over the
// platform's NATS server at natsURL, tokens as the sample key signs them.
func ordersChannel(natsURL string) string {
	return `apiVersion: notify.herald.dev/v1alpha1
kind: NotificationChannel
metadata:
  name: orders
  namespace: e2e
spec:
  replicas: 3
  auth:
    algorithms: [HS256]
    keySecretRef: {name: orders-keys}
    issuer: https://auth.example.com
    audiences: [notifications]
    tokenSources: [Header, Ticket]
  connections:
    maxPerUser: 2
  broker:
    type: NATS
    nats:
      url: ` + natsURL + `
      credentialsSecretRef: {name: orders-nats}
      streamReplicas: 1
  drain: {gracePeriod: 5s, reconnectJitter: 1s}
`
}

// helloSystemEvent is an announcement to every user of the orders channel.
const helloSystemEvent = `apiVersion: notify.herald.dev/v1alpha1
kind: SystemEvent
metadata:
  name: hello
  namespace: e2e
spec:
  channelRef: {name: orders}
  eventType: announcement
  audience: {all: true}
  data: {message: Hello from kubectl}
`

// tokenMinter signs tokens with `herald token`, as the printed commands do.
type tokenMinter struct {
	herald, keyFile string
}

func (m tokenMinter) mint(ctx context.Context, args ...string) string {
	GinkgoHelper()
	args = append([]string{"token", "--key", m.keyFile, "--kid", sampleKeyID,
		"--issuer", "https://auth.example.com", "--audience", "notifications"}, args...)
	out, err := exec.CommandContext(ctx, m.herald, args...).Output()
	Expect(err).NotTo(HaveOccurred())
	return strings.TrimSpace(string(out))
}

func (m tokenMinter) user(ctx context.Context, user string) string {
	return m.mint(ctx, "--subject", user)
}

func (m tokenMinter) publisher(ctx context.Context) string {
	return m.mint(ctx, "--subject", "backend", "--publish")
}

// publisher publishes notifications through the Service, each on a new
// connection: a kept-alive connection to a pod that was killed would fail a
// request that the pod never saw.
type publisher struct {
	api, token string
}

// notify publishes notification id to user and expects it stored.
func (p *publisher) notify(ctx context.Context, user, id string) {
	GinkgoHelper()
	httpClient := &http.Client{Transport: &http.Transport{DisableKeepAlives: true}, Timeout: 30 * time.Second}
	res, err := fleettest.Notify(ctx, httpClient, p.api, p.token, fleettest.Notification{
		RecipientUserIDs: []string{user}, NotificationID: id, NotificationType: "E2E",
	})
	Expect(err).NotTo(HaveOccurred())
	Expect(res.Status).To(Equal(http.StatusAccepted), res.Message)
}

// podWithStreams is a pod whose herald_connections gauge is above zero.
func podWithStreams(pods []*pod) *pod {
	GinkgoHelper()
	var found *pod
	Eventually(func() error {
		for _, p := range pods {
			n, err := connectionsOf(p)
			if err != nil {
				return err
			}
			if n > 0 {
				found = p
				return nil
			}
		}
		return fmt.Errorf("no pod of %d reports a stream", len(pods))
	}).Should(Succeed())
	return found
}

// connectionsOf reads the pod's herald_connections gauge.
func connectionsOf(p *pod) (int, error) {
	resp, err := http.Get("http://" + p.Addr(resources.PortNameMetrics) + "/metrics")
	if err != nil {
		return 0, err
	}
	defer resp.Body.Close()
	scanner := bufio.NewScanner(resp.Body)
	for scanner.Scan() {
		if value, ok := strings.CutPrefix(scanner.Text(), "herald_connections "); ok {
			f, err := strconv.ParseFloat(value, 64)
			return int(f), err
		}
	}
	return 0, fmt.Errorf("no herald_connections in %s's metrics", p.Addr(resources.PortNameMetrics))
}

// sseClient is a user's stream that reconnects whenever it ends, resuming
// with Last-Event-ID, as a browser's EventSource does. With tickets it trades
// its token for a new ticket before each connection.
type sseClient struct {
	api, user, token string
	tickets          bool

	mu       sync.Mutex
	lastID   string
	opened   int
	received []map[string]any
}

// startSSEClient streams as user until the spec ends.
func startSSEClient(ctx context.Context, api, user, token string, tickets bool) *sseClient {
	c := &sseClient{api: api, user: user, token: token, tickets: tickets}
	ctx, cancel := context.WithCancel(ctx)
	done := make(chan struct{})
	go func() {
		defer GinkgoRecover()
		defer close(done)
		c.run(ctx)
	}()
	DeferCleanup(func() {
		cancel()
		<-done
	})
	return c
}

func (c *sseClient) run(ctx context.Context) {
	for ctx.Err() == nil {
		if err := c.stream(ctx); err != nil && ctx.Err() == nil {
			fmt.Fprintf(GinkgoWriter, "%s: stream ended: %v\n", c.user, err)
		}
		select {
		case <-ctx.Done():
		case <-time.After(100 * time.Millisecond): // a reconnect delay, as EventSource's retry
		}
	}
}

// stream runs one connection until it ends.
func (c *sseClient) stream(ctx context.Context) error {
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, c.api+paths.Stream, nil)
	if err != nil {
		return err
	}
	if c.tickets {
		ticket, err := c.ticket(ctx)
		if err != nil {
			return err
		}
		req.URL.RawQuery = url.Values{"ticket": {ticket}}.Encode()
	} else {
		req.Header.Set("Authorization", "Bearer "+c.token)
	}
	c.mu.Lock()
	if c.lastID != "" {
		req.Header.Set("Last-Event-ID", c.lastID)
	}
	c.mu.Unlock()
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		return err
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		body, _ := io.ReadAll(resp.Body)
		return fmt.Errorf("%s: %s", resp.Status, body)
	}
	c.mu.Lock()
	c.opened++
	c.mu.Unlock()
	reader := sse.NewReader(resp.Body)
	for {
		ev, err := reader.Next()
		if err != nil {
			return err
		}
		if ev.IsComment {
			continue
		}
		var data map[string]any
		if err := json.Unmarshal([]byte(ev.Data), &data); err != nil {
			return fmt.Errorf("undecodable event %q: %w", ev.Data, err)
		}
		c.mu.Lock()
		c.received = append(c.received, data)
		c.lastID = reader.LastEventID()
		c.mu.Unlock()
	}
}

// ticket trades the token for a single-use ticket.
func (c *sseClient) ticket(ctx context.Context) (string, error) {
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, c.api+paths.Tickets, nil)
	if err != nil {
		return "", err
	}
	req.Header.Set("Authorization", "Bearer "+c.token)
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		return "", err
	}
	defer resp.Body.Close()
	var answer struct {
		Ticket string `json:"ticket"`
	}
	if resp.StatusCode != http.StatusOK && resp.StatusCode != http.StatusCreated {
		body, _ := io.ReadAll(resp.Body)
		return "", fmt.Errorf("ticket: %s: %s", resp.Status, body)
	}
	if err := json.NewDecoder(resp.Body).Decode(&answer); err != nil {
		return "", err
	}
	return answer.Ticket, nil
}

func (c *sseClient) opens() int {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.opened
}

// ofType are the received events of one type.
func (c *sseClient) ofType(typ string) []map[string]any {
	c.mu.Lock()
	defer c.mu.Unlock()
	var events []map[string]any
	for _, e := range c.received {
		if e["type"] == typ {
			events = append(events, e)
		}
	}
	return events
}

func (c *sseClient) connections() []map[string]any  { return c.ofType("connection") }
func (c *sseClient) systemEvents() []map[string]any { return c.ofType("system") }

// notificationIDs are the received notifications' ids, in arrival order.
func (c *sseClient) notificationIDs() []string {
	ids := []string{}
	for _, e := range c.ofType("notification") {
		id, _ := e["notificationId"].(string)
		ids = append(ids, id)
	}
	return ids
}
