package jsclient_test

import (
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"os"
	"time"

	. "github.com/onsi/ginkgo/v2"
	. "github.com/onsi/gomega"

	"github.com/herald-notify/herald/internal/testutil/nodeclient"
	"github.com/herald-notify/herald/internal/testutil/streamertest"
	"github.com/herald-notify/herald/streamer/server"
)

const (
	// tabsProgram drives Chromium with test/browser's playwright-core; see
	// its header for its commands.
	tabsProgram = "../browser/tabs.mjs"
	// installedPlaywright exists once hack/npm-deps.sh has run.
	installedPlaywright = "../browser/node_modules/playwright-core/package.json"
	// clientModule is the client the pages import.
	clientModule = "../../clients/js/herald.js"
	// tabsPage is the page of every tab: the client, connected to the
	// streamer of the page's origin, recording what it reports.
	tabsPage = `<!doctype html>
<meta charset="utf-8">
<title>tab</title>
<script type="module">
import { connect } from '/herald.js'
const t = (window.heraldTest = { received: [], states: [] })
t.client = connect({
  url: location.origin,
  getToken: () => fetch('/token').then((r) => r.text()),
  onNotification: (n, { id }) => t.received.push(id),
  onState: (s) => t.states.push(s.state + ':' + s.reason),
})
</script>
`
)

// origin serves the tabs' page, the client module and the user's tokens,
// and the streamer at the same origin. It holds ticket requests while held
// and records the URLs of the stream requests.
type origin struct {
	*httptest.Server
	streams chan string

	held    nodeclient.Gate // shut while ticket requests are held
	tickets chan struct{}   // a value for each ticket request that arrived held
}

func (s *streamer) serveTabs(user string) *origin {
	GinkgoHelper()
	module, err := os.ReadFile(clientModule)
	Expect(err).NotTo(HaveOccurred())
	o := &origin{streams: make(chan string, 16), tickets: make(chan struct{}, 16)}
	mux := http.NewServeMux()
	mux.HandleFunc("GET /{$}", func(w http.ResponseWriter, _ *http.Request) {
		w.Header().Set("Content-Type", "text/html; charset=utf-8")
		_, _ = io.WriteString(w, tabsPage)
	})
	mux.HandleFunc("GET /herald.js", func(w http.ResponseWriter, _ *http.Request) {
		w.Header().Set("Content-Type", "text/javascript")
		_, _ = w.Write(module)
	})
	mux.HandleFunc("GET /token", func(w http.ResponseWriter, _ *http.Request) {
		t, err := streamertest.Token(s.Secret, user, false, time.Hour)
		if err != nil {
			http.Error(w, err.Error(), http.StatusInternalServerError)
			return
		}
		_, _ = io.WriteString(w, t)
	})
	api := s.Server.Handler()
	mux.HandleFunc("/", func(w http.ResponseWriter, r *http.Request) {
		switch r.URL.Path {
		case server.TicketsPath:
			o.waitWhileHeld(r)
		case server.StreamPath:
			select {
			case o.streams <- r.URL.String():
			default:
			}
		}
		api.ServeHTTP(w, r)
	})
	o.Server = httptest.NewServer(mux)
	DeferCleanup(func() {
		o.release()
		o.CloseClientConnections()
		o.Close()
	})
	return o
}

func (o *origin) waitWhileHeld(r *http.Request) {
	held := o.held.Opening()
	if held == nil {
		return
	}
	o.tickets <- struct{}{}
	select {
	case <-held:
	case <-r.Context().Done():
	}
}

// nextStream is the URL of the next stream request.
func (o *origin) nextStream() string {
	GinkgoHelper()
	var url string
	Eventually(o.streams).Should(Receive(&url), "no stream request")
	return url
}

// hold makes ticket requests wait until release.
func (o *origin) hold() { o.held.Shut() }

func (o *origin) release() { o.held.Open() }

// browser is a running tabs.mjs.
type browser struct {
	*nodeclient.Process[map[string]json.RawMessage]
	nextID int
}

// tab is what a page's client reported.
type tab struct {
	Leader   bool     `json:"leader"`
	State    string   `json:"state"`
	States   []string `json:"states"`
	Received []string `json:"received"`
}

// startBrowser runs Chromium until the spec ends.
func startBrowser() *browser {
	GinkgoHelper()
	chromium := os.Getenv("CHROMIUM")
	Expect(chromium).NotTo(BeEmpty(), `CHROMIUM is not set: the tab specs run headless Chromium; set CHROMIUM to a Chromium binary, `+
		`as make test does: CHROMIUM="$(hack/chromium.sh)" (it installs Debian's chromium package when none is there)`)
	Expect(installedPlaywright).To(BeAnExistingFile(), "test/browser's npm packages are not installed: "+nodeclient.InstallHint)
	return &browser{Process: nodeclient.Start(node, nodeclient.Program[map[string]json.RawMessage]{
		Script: tabsProgram, Args: []string{chromium}, WaitDelay: 10 * time.Second, ExitTimeout: 20 * time.Second,
		Unparsable: func(string) map[string]json.RawMessage {
			return map[string]json.RawMessage{"event": json.RawMessage(`"unparsable"`)}
		},
		// An event line is the program's log, not an answer.
		IsLog: func(l map[string]json.RawMessage) bool { _, isEvent := l["event"]; return isEvent },
	})}
}

// do runs a command and decodes its result into result (may be nil).
func (b *browser) do(command map[string]any, result any) {
	GinkgoHelper()
	b.nextID++
	command["id"] = b.nextID
	data, err := json.Marshal(command)
	Expect(err).NotTo(HaveOccurred())
	_, err = b.Stdin.Write(append(data, '\n'))
	Expect(err).NotTo(HaveOccurred())
	var answer map[string]json.RawMessage
	Eventually(b.Lines, 30*time.Second).Should(Receive(&answer), "tabs.mjs did not answer %s", data)
	Expect(string(answer["id"])).To(Equal(fmt.Sprint(b.nextID)))
	Expect(string(answer["ok"])).To(Equal("true"), "%s: %s", data, answer["error"])
	if result != nil {
		Expect(json.Unmarshal(answer["result"], result)).To(Succeed())
	}
}

// open opens url in a new page and returns the page's number.
func (b *browser) open(url string) int {
	GinkgoHelper()
	var page int
	b.do(map[string]any{"cmd": "open", "url": url}, &page)
	return page
}

func (b *browser) read(page int) tab {
	GinkgoHelper()
	var t tab
	b.do(map[string]any{"cmd": "read", "page": page}, &t)
	return t
}

func (b *browser) close(page int) {
	GinkgoHelper()
	b.do(map[string]any{"cmd": "close", "page": page}, nil)
}

var _ = Describe("the JavaScript client in tabs of headless Chromium", func() {
	It("holds one stream for two tabs of a user, both receiving every event, and hands it over without loss when the leader closes", func() {
		// connections.maxPerUser is 1, with ReplaceOldest: two streams of the
		// user would evict each other.
		s := startStreamer(nil, nil)
		o := s.serveTabs("u1")
		b := startBrowser()

		By("opening a tab, which takes the lead and opens the stream")
		first := b.open(o.URL + "/")
		Eventually(func() tab { return b.read(first) }).Should(And(HaveField("State", "open"), HaveField("Leader", true)))
		Expect(o.nextStream()).NotTo(ContainSubstring("lastEventId"))

		By("opening a second tab, which follows the first's stream")
		second := b.open(o.URL + "/")
		Eventually(func() tab { return b.read(second) }).Should(HaveField("State", "open"))
		Expect(b.read(second).Leader).To(BeFalse())
		Consistently(o.streams, time.Second).ShouldNot(Receive(), "the second tab opens no stream")
		metrics := s.Metrics()
		Expect(metrics).To(ContainSubstring(`herald_connects_total{result="ok"} 1` + "\n"))
		Expect(metrics).To(ContainSubstring("herald_connections 1\n"))

		By("both tabs receiving every event")
		var published []string
		for range 5 {
			published = append(published, s.notify())
		}
		Eventually(func() []string { return b.read(first).Received }).Should(Equal(published))
		Eventually(func() []string { return b.read(second).Received }).Should(Equal(published))

		By("closing the leading tab while ticket requests are held, and publishing before the second tab has a stream")
		o.hold()
		b.close(first)
		Eventually(o.tickets).Should(Receive(), "the second tab took the lead and asks for a ticket")
		Eventually(s.Server.Streams).Should(BeZero(), "the first tab's stream ended with it")
		for range 5 {
			published = append(published, s.notify())
		}
		o.release()

		By("the second tab resuming from the last id it saw, and receiving what it missed, once")
		Expect(o.nextStream()).To(HaveSuffix("&lastEventId=" + published[4]))
		Eventually(func() []string { return b.read(second).Received }).Should(Equal(published))
		Expect(b.read(second)).To(And(HaveField("Leader", true), HaveField("State", "open")))
		Expect(s.Metrics()).To(ContainSubstring(`herald_connects_total{result="ok"} 2` + "\n"))
	})
})
