package jetstreamtickets_test

import (
	"context"
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"net/url"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
	. "github.com/onsi/ginkgo/v2"
	. "github.com/onsi/gomega"

	"github.com/herald-notify/herald/internal/testutil/natstest"
	"github.com/herald-notify/herald/internal/testutil/streamertest"
	"github.com/herald-notify/herald/streamer/auth/jetstreamtickets"
	"github.com/herald-notify/herald/streamer/server"
	"github.com/herald-notify/herald/streamer/sse"
)

var _ = Describe("two streamers sharing a channel's tickets", func() {
	// replica is a streamer serving over loopback HTTP, with its HMAC key.
	type replica struct {
		url    string
		secret []byte
	}
	start := func(store *jetstreamtickets.Store) replica {
		GinkgoHelper()
		srv, secret, err := streamertest.NewWith(streamertest.Options{Tickets: store, WriteTimeout: 2 * time.Second})
		Expect(err).NotTo(HaveOccurred())
		ctx, cancel := context.WithCancel(context.Background())
		done := make(chan struct{})
		go func() { srv.Run(ctx); close(done) }()
		web := httptest.NewServer(srv.Handler())
		DeferCleanup(func() {
			web.CloseClientConnections()
			web.Close()
			cancel()
			Eventually(done).Should(BeClosed())
		})
		return replica{url: web.URL, secret: secret}
	}
	ticketFrom := func(r replica, user string) string {
		GinkgoHelper()
		token, err := streamertest.Token(r.secret, user, false, time.Hour)
		Expect(err).NotTo(HaveOccurred())
		req, err := http.NewRequest(http.MethodPost, r.url+server.TicketsPath, nil)
		Expect(err).NotTo(HaveOccurred())
		req.Header.Set("Authorization", "Bearer "+token)
		resp, err := http.DefaultClient.Do(req)
		Expect(err).NotTo(HaveOccurred())
		defer resp.Body.Close()
		Expect(resp.StatusCode).To(Equal(http.StatusCreated))
		var answer map[string]string
		Expect(json.NewDecoder(resp.Body).Decode(&answer)).To(Succeed())
		return answer["ticket"]
	}
	streamWith := func(r replica, ticket string) *http.Response {
		GinkgoHelper()
		resp, err := http.Get(r.url + server.StreamPath + "?ticket=" + url.QueryEscape(ticket))
		Expect(err).NotTo(HaveOccurred())
		DeferCleanup(resp.Body.Close)
		return resp
	}

	It("opens a stream on one with a ticket the other issued, once", func() {
		channel := newChannel()
		first, second := start(open(channel, nil)), start(open(channel, nil))
		ticket := ticketFrom(first, "browser-user")

		resp := streamWith(second, ticket)
		Expect(resp.StatusCode).To(Equal(http.StatusOK))
		hello, err := sse.NewReader(resp.Body).Next()
		Expect(err).NotTo(HaveOccurred())
		var data map[string]any
		Expect(json.Unmarshal([]byte(hello.Data), &data)).To(Succeed())
		Expect(data).To(HaveKeyWithValue("userId", "browser-user"))

		for _, r := range []replica{first, second} {
			Expect(streamWith(r, ticket).StatusCode).To(Equal(http.StatusUnauthorized), "a ticket is single-use")
		}
	})

	It("answers 503 with Retry-After, not 401, while the broker cannot say", func() {
		lone, err := natstest.Start(natstest.Options{Nodes: 1, Dir: GinkgoT().TempDir()})
		Expect(err).NotTo(HaveOccurred())
		DeferCleanup(lone.Shutdown)
		nc, err := nats.Connect(lone.URL(), nats.MaxReconnects(-1))
		Expect(err).NotTo(HaveOccurred())
		DeferCleanup(nc.Close)
		// Requests of the stream handler have no deadline: the client's
		// default timeout bounds them.
		js, err := jetstream.New(nc, jetstream.WithDefaultTimeout(time.Second))
		Expect(err).NotTo(HaveOccurred())
		store, err := jetstreamtickets.Open(context.Background(), jetstreamtickets.Options{JetStream: js, Namespace: "test", Channel: newChannel()})
		Expect(err).NotTo(HaveOccurred())
		r := start(store)
		ticket := ticketFrom(r, "browser-user")

		lone.StopAll()
		resp := streamWith(r, ticket)
		Expect(resp.StatusCode).To(Equal(http.StatusServiceUnavailable))
		Expect(resp.Header.Get("Retry-After")).NotTo(BeEmpty())
	})
})
