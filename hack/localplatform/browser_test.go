package main

import (
	"encoding/json"
	"fmt"
	"net/url"
	"os"
	"path/filepath"
	"strings"
	"syscall"
	"time"

	. "github.com/onsi/ginkgo/v2"
	. "github.com/onsi/gomega"
	"sigs.k8s.io/controller-runtime/pkg/client"

	"github.com/herald-notify/herald/controllers/resources"
	"github.com/herald-notify/herald/internal/testutil/nodeclient"
)

const (
	// browserSuite is the npm suite whose page.mjs drives Chromium.
	browserSuite = "../../test/browser"
	// chromiumHint says how to provide the browser the spec needs.
	chromiumHint = `set CHROMIUM to a Chromium binary, as make test does: CHROMIUM="$(hack/chromium.sh)" ` +
		`(it installs Debian's chromium package when none is there)`
	// screenshotDir keeps the page's screenshot after the test, under the
	// repository's root.
	screenshotDir = "../../bin/test-output/browser"
	// browserCommandTimeout bounds one command to the driver.
	browserCommandTimeout = 30 * time.Second
	// pageTimeout bounds the wait for the page to show something: a
	// reconnect waits a backoff of up to a few seconds, after a pod restart
	// several.
	pageTimeout = time.Minute
)

var _ = It("shows a user's notifications and kubectl's announcements in a real browser, resumes after its stream breaks, and yields to a newer stream", func(ctx SpecContext) {
	chromium := os.Getenv("CHROMIUM")
	Expect(chromium).NotTo(BeEmpty(), "CHROMIUM is not set: "+chromiumHint)
	Expect(filepath.Join(browserSuite, "node_modules", "playwright-core", "package.json")).To(BeAnExistingFile(),
		"test/browser's npm packages are not installed: run make test, which installs them via hack/npm-deps.sh")

	p := startTestPlatform(ctx)
	Expect(p.servePage(ctx)).To(Succeed())
	addr, _, err := p.servedChannel(ctx, sampleChannel)
	Expect(err).NotTo(HaveOccurred())
	kubectl := func(stdin string, args ...string) {
		GinkgoHelper()
		res := p.Server.Kubectl(ctx, stdin, args...)
		Expect(res.Err).NotTo(HaveOccurred(), "kubectl %s: %s", strings.Join(args, " "), res.Stderr)
	}
	tokens := tokenMinter{herald: heraldBin, keyFile: p.KeyFile}
	browser := startBrowser(chromium)
	DeferCleanup(browser.saveScreenshot, "page")

	By("opening the page printed by make run, which connects with a ticket")
	browser.do("open", map[string]any{"url": p.Page.URL()})
	Eventually(browser.read, pageTimeout).Should(And(
		HaveField("State", "connected"), HaveField("User", sampleUser), HaveField("Streams", 1)))

	By("showing a notification published to its user, and not one to another user published before it")
	publisher := tokens.publisher(ctx)
	notify := func(user, id, message string) string {
		GinkgoHelper()
		body := fmt.Sprintf(`{"recipientUserIds":[%q],"notificationId":%q,"notificationType":"VOCAB_TRAINER","action":"CREATE","priority":"LOW","data":{"message":%q}}`,
			user, id, message)
		answer := publish(ctx, "http://"+addr+"/api/v1/notifications", publisher, body)
		Expect(answer["eventIds"]).To(HaveLen(1))
		return answer["eventIds"].([]any)[0].(string)
	}
	notify("u2", "for-u2", "Not for the page's user")
	first := notify(sampleUser, "for-u1", "New vocab trainer available")
	// Events reach a stream in log order: once the later one shows, the
	// earlier one would have.
	Eventually(browser.read, pageTimeout).Should(HaveField("Notifications", ContainElement(And(
		HaveField("NotificationID", "for-u1"), HaveField("EventID", first),
		HaveField("Text", ContainSubstring("New vocab trainer available"))))))
	page := browser.view()
	Expect(page.Notifications).To(HaveLen(1), "no notification of u2")
	Expect(page.LastEventID).To(Equal(first))

	By("showing a SystemEvent applied with kubectl as a banner")
	announcement := sampleSystemEvent(sampleChannel)
	kubectl(announcement, "apply", "-n", namespace, "-f", "-")
	Eventually(browser.read, pageTimeout).Should(HaveField("Banners", ConsistOf(And(
		HaveField("Name", "hello"), HaveField("Revision", "1"), HaveField("Action", "CREATE"),
		HaveField("Text", ContainSubstring("Hello from kubectl"))))))
	browser.saveScreenshot("banner")

	By("replacing the banner when the SystemEvent is edited, and taking it down when it is deleted")
	edited := strings.Replace(announcement, "Hello from kubectl", "Hello again, edited with kubectl", 1)
	kubectl(edited, "apply", "-n", namespace, "-f", "-")
	Eventually(browser.read, pageTimeout).Should(HaveField("Banners", ConsistOf(And(
		HaveField("Name", "hello"), HaveField("Revision", "2"), HaveField("Action", "UPDATE"),
		HaveField("Text", ContainSubstring("Hello again, edited with kubectl"))))))
	kubectl("", "delete", "-n", namespace, "systemevent", "hello")
	Eventually(browser.read, pageTimeout).Should(HaveField("Banners", BeEmpty()))
	seen := browser.view().LastEventID

	By("resuming with a new ticket after its connection dropped, receiving what it missed")
	// The page's reconnect waits at its token request until the
	// notification is published: it certainly missed it. (Another stream of
	// the user would not do: the client stays closed when one replaces its
	// stream, as the end event says.)
	browser.do("holdTokens", nil)
	service := client.ObjectKey{Namespace: namespace, Name: resources.ObjectName(sampleChannel)}
	Expect(p.Runner.DropConnections(service)).To(BeTrue())
	Eventually(browser.read, pageTimeout).Should(And(
		HaveField("State", "reconnecting"), HaveField("Detail", ContainSubstring("resuming after "+seen))))
	missed := notify(sampleUser, "missed", "Published while the page was away")
	browser.do("releaseTokens", nil)
	Eventually(browser.read, pageTimeout).Should(And(
		HaveField("State", "connected"), HaveField("Streams", 2), HaveField("Recovered", "true"),
		HaveField("LastEventID", missed),
		HaveField("Notifications", ContainElement(And(HaveField("NotificationID", "missed"), HaveField("EventID", missed))))))

	By("reconnecting after the streamer pod is killed, saying honestly that the new pod's log could not recover")
	pods := p.Runner.Pods(service)
	Expect(pods).To(HaveLen(1))
	Expect(syscall.Kill(pods[0].PID(), syscall.SIGKILL)).To(Succeed())
	// The runner restarts the pod; its embedded log starts a new epoch.
	Eventually(browser.read, 2*pageTimeout).Should(And(
		HaveField("State", "connected"), HaveField("Streams", 3), HaveField("Recovered", "false")))
	after := notify(sampleUser, "after-restart", "Published to the restarted pod")
	Eventually(browser.read, pageTimeout).Should(And(
		HaveField("LastEventID", after),
		HaveField("Notifications", ContainElement(HaveField("NotificationID", "after-restart")))))
	Expect(after).NotTo(Equal(missed))
	Expect(browser.view().Notifications).To(HaveLen(3), "u1's three notifications, each once")

	By("having opened each stream with a ticket of its own, never a token, and resumed from the last id")
	var requests []string
	Expect(json.Unmarshal(browser.do("streamRequests", nil), &requests)).To(Succeed())
	Expect(requests).To(HaveLen(3), "one request per stream: the browser's own retry never ran")
	tickets := map[string]bool{}
	for i, raw := range requests {
		u, err := url.Parse(raw)
		Expect(err).NotTo(HaveOccurred())
		query := u.Query()
		Expect(query.Get("ticket")).NotTo(BeEmpty(), raw)
		Expect(query).NotTo(HaveKey("access_token"), raw)
		tickets[query.Get("ticket")] = true
		resumeFrom := map[int]string{0: "", 1: seen, 2: missed}[i]
		Expect(query.Get("lastEventId")).To(Equal(resumeFrom), raw)
	}
	Expect(tickets).To(HaveLen(3), "a new ticket for each stream")

	By("staying closed, saying why, once another stream of the user took the page's place")
	otherTab := streamLines(ctx, "http://"+addr+"/api/v1/sse/notifications", tokens.user(ctx, sampleUser))
	Eventually(otherTab, pageTimeout).Should(Receive(ContainSubstring(`"type":"connection"`)))
	Eventually(browser.read, pageTimeout).Should(And(
		HaveField("State", "closed"), HaveField("Detail", ContainSubstring("replaced: a newer stream of the same user"))))
})

// pageView is what the page shows, as page.mjs reads it from the DOM.
type pageView struct {
	State         string         `json:"state"`
	Detail        string         `json:"detail"`
	User          string         `json:"user"`
	LastEventID   string         `json:"lastEventId"`
	Streams       int            `json:"streams"`
	Recovered     string         `json:"recovered"`
	Notifications []pageItem     `json:"notifications"`
	Banners       []bannerOnPage `json:"banners"`
}

// pageItem is one entry of the page's notification list.
type pageItem struct {
	Type           string `json:"type"`
	EventID        string `json:"eventId"`
	NotificationID string `json:"notificationId"`
	Text           string `json:"text"`
}

// bannerOnPage is one system announcement banner.
type bannerOnPage struct {
	Name     string `json:"name"`
	Revision string `json:"revision"`
	Action   string `json:"action"`
	Text     string `json:"text"`
}

// browserDriver is a running page.mjs: headless Chromium, one page.
type browserDriver struct {
	stdin  *json.Encoder
	lines  <-chan driverLine
	nextID int
}

// driverLine is one line page.mjs writes: an answer (with an id), or a
// report of what the page did (an event: "ready" once Chromium runs).
type driverLine struct {
	ID     *int            `json:"id"`
	OK     bool            `json:"ok"`
	Result json.RawMessage `json:"result"`
	Error  string          `json:"error"`
	Event  string          `json:"event"`
	Text   string          `json:"text"`
}

// startBrowser runs page.mjs with chromium until the spec ends: then its
// standard input closes, on which it closes Chromium and exits 0. It is
// killed if it does not. Its reports but "ready" go to GinkgoWriter.
func startBrowser(chromium string) *browserDriver {
	GinkgoHelper()
	node, err := nodeclient.Lookup()
	Expect(err).NotTo(HaveOccurred(), "node is not on PATH: the browser test drives Chromium from Node.js 20 or newer")
	page := nodeclient.Start(node, nodeclient.Program[driverLine]{
		Script: "page.mjs", Args: []string{chromium}, Dir: browserSuite,
		ExitTimeout: browserCommandTimeout, Buffer: 16,
		Unparsable: func(text string) driverLine { return driverLine{Text: text} },
		IsLog:      func(l driverLine) bool { return l.ID == nil && l.Event != "ready" },
	})
	d := &browserDriver{stdin: json.NewEncoder(page.Stdin), lines: page.Lines}
	Eventually(d.lines, browserCommandTimeout).Should(Receive(HaveField("Event", "ready")), "Chromium did not start")
	return d
}

// do sends a command and returns its result once answered.
func (d *browserDriver) do(command string, args map[string]any) json.RawMessage {
	GinkgoHelper()
	result, err := d.try(command, args)
	Expect(err).NotTo(HaveOccurred())
	return result
}

// try sends a command and returns its result, or why there is none.
func (d *browserDriver) try(command string, args map[string]any) (json.RawMessage, error) {
	d.nextID++
	id := d.nextID
	request := map[string]any{"id": id, "cmd": command}
	for k, v := range args {
		request[k] = v
	}
	if err := d.stdin.Encode(request); err != nil {
		return nil, fmt.Errorf("page.mjs %s: %w", command, err)
	}
	timeout := time.After(browserCommandTimeout)
	for {
		select {
		case answer := <-d.lines:
			if answer.ID == nil || *answer.ID != id {
				continue // a late answer to a command that timed out
			}
			if !answer.OK {
				return nil, fmt.Errorf("page.mjs %s: %s", command, answer.Error)
			}
			return answer.Result, nil
		case <-timeout:
			return nil, fmt.Errorf("page.mjs %s: no answer within %s", command, browserCommandTimeout)
		}
	}
}

// read is what the page shows now.
func (d *browserDriver) read() (pageView, error) {
	var page pageView
	result, err := d.try("read", nil)
	if err != nil {
		return page, err
	}
	return page, json.Unmarshal(result, &page)
}

// view is what the page shows now; it must be readable.
func (d *browserDriver) view() pageView {
	GinkgoHelper()
	page, err := d.read()
	Expect(err).NotTo(HaveOccurred())
	return page
}

// saveScreenshot keeps a picture of the page as name.png in screenshotDir,
// and reports where. A page that cannot be pictured fails nothing: the
// screenshot is there to look at a failure.
func (d *browserDriver) saveScreenshot(name string) {
	GinkgoHelper()
	dir, err := filepath.Abs(screenshotDir)
	Expect(err).NotTo(HaveOccurred())
	Expect(os.MkdirAll(dir, 0o755)).To(Succeed())
	path := filepath.Join(dir, name+".png")
	if _, err := d.try("screenshot", map[string]any{"path": path}); err != nil {
		fmt.Fprintf(GinkgoWriter, "no screenshot: %v\n", err)
		return
	}
	AddReportEntry("screenshot of the browser page", path)
	fmt.Fprintf(GinkgoWriter, "screenshot of the browser page: %s\n", path)
}
