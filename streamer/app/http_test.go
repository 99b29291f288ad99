package app_test

import (
	"context"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"io"
	"log/slog"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"time"

	. "github.com/onsi/ginkgo/v2"
	. "github.com/onsi/gomega"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"sigs.k8s.io/controller-runtime/pkg/client"

	notifyv1alpha1 "github.com/herald-notify/herald/api/v1alpha1"
	"github.com/herald-notify/herald/internal/testutil"
	"github.com/herald-notify/herald/internal/testutil/certtest"
	"github.com/herald-notify/herald/streamer/app"
	"github.com/herald-notify/herald/streamer/auth"
	"github.com/herald-notify/herald/streamer/sse"
)

// The API listener serves spec.http: TLS with HTTP/2 and HTTP/1.1 by ALPN,
// or unencrypted HTTP/2 beside HTTP/1.1. Clients are net/http's, speaking
// the protocol each spec names; the stream is read as an SSE client reads it.

// tlsStreamer is a streamer serving spec.http on loopback, from a manifest
// (fileStreamer) or a channel on the API server.
type tlsStreamer struct {
	scheme, api, metrics string
	key                  []byte
	kid                  string
	logs                 *testutil.Buffer
	// secrets is the secrets folder of a streamer run from a manifest.
	secrets string
}

// fileStreamer runs `herald streamer --config` with the spec line
// "http: <httpSpec>" and the secrets "dev-keys" (kid "local") and, when
// tlsData is set, "app-tls".
func fileStreamer(httpSpec string, tlsData map[string][]byte) *tlsStreamer {
	GinkgoHelper()
	dir := GinkgoT().TempDir()
	config := filepath.Join(dir, "channel.yaml")
	Expect(os.WriteFile(config, []byte(streamerConfig+"  http: "+httpSpec+"\n"), 0o600)).To(Succeed())
	key := make([]byte, 32)
	_, _ = rand.Read(key)
	writeSecretDir(filepath.Join(dir, "secrets", "dev-keys"), map[string][]byte{"local": key})
	scheme := "http"
	if tlsData != nil {
		writeSecretDir(filepath.Join(dir, "secrets", "app-tls"), tlsData)
		scheme = "https"
	}
	s := &tlsStreamer{scheme: scheme, key: key, kid: "local", logs: &testutil.Buffer{}, secrets: filepath.Join(dir, "secrets")}
	run(app.Options{Config: config, SecretsDir: s.secrets, SecretsPoll: 50 * time.Millisecond,
		Listen: "127.0.0.1:0", MetricsListen: "127.0.0.1:0"}, s.logs)
	s.waitStarted()
	return s
}

// run runs the streamer until the spec ends.
func run(opts app.Options, logs *testutil.Buffer) {
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- app.Run(ctx, withLogger(opts, slog.New(slog.NewJSONHandler(logs, nil)))) }()
	DeferCleanup(func() {
		cancel()
		Eventually(done, 30*time.Second).Should(Receive(BeNil()))
	})
}

func (s *tlsStreamer) waitStarted() {
	GinkgoHelper()
	Eventually(func() string { s.api = logField(s.logs, "streamer started", "listen"); return s.api }, 30*time.Second).ShouldNot(BeEmpty())
	s.metrics = logField(s.logs, "streamer started", "metricsListen")
}

func writeSecretDir(dir string, data map[string][]byte) {
	GinkgoHelper()
	Expect(os.MkdirAll(dir, 0o700)).To(Succeed())
	for name, value := range data {
		Expect(os.WriteFile(filepath.Join(dir, name), value, 0o600)).To(Succeed())
	}
}

// httpClient speaks the protocols p, trusting roots (for TLS).
func httpClient(roots *x509.CertPool, p func(*http.Protocols)) *http.Client {
	protocols := new(http.Protocols)
	p(protocols)
	transport := &http.Transport{TLSClientConfig: &tls.Config{RootCAs: roots}, Protocols: protocols}
	DeferCleanup(transport.CloseIdleConnections)
	return &http.Client{Transport: transport}
}

func http1(p *http.Protocols) { p.SetHTTP1(true) }
func http2(p *http.Protocols) { p.SetHTTP2(true) }
func h2c(p *http.Protocols)   { p.SetUnencryptedHTTP2(true) }

// sign is a token of user, a publisher's when publish is set.
func (s *tlsStreamer) sign(user string, publish bool) string {
	GinkgoHelper()
	token, err := auth.Sign(auth.TokenClaims{Subject: user, ExpiresAt: time.Now().Add(time.Hour), Publish: publish,
		PublishGrant: notifyv1alpha1.PublishGrantSpec{Claim: "scope", Value: "notifications:publish"}},
		notifyv1alpha1.HS256, s.kid, s.key)
	Expect(err).NotTo(HaveOccurred())
	return token
}

// tlsStream is an open stream and the response it is read from.
type tlsStream struct {
	resp   *http.Response
	reader *sse.Reader
}

// connect opens user's stream with c and reads its connection event.
func (s *tlsStreamer) connect(c *http.Client, user string) *tlsStream {
	GinkgoHelper()
	req, err := http.NewRequest(http.MethodGet, s.scheme+"://"+s.api+"/api/v1/sse/notifications", nil)
	Expect(err).NotTo(HaveOccurred())
	req.Header.Set("Authorization", "Bearer "+s.sign(user, false))
	resp, err := c.Do(req)
	Expect(err).NotTo(HaveOccurred())
	DeferCleanup(resp.Body.Close)
	Expect(resp.StatusCode).To(Equal(http.StatusOK))
	stream := &tlsStream{resp: resp, reader: sse.NewReader(resp.Body)}
	Expect(stream.next()).To(ContainSubstring(`"type":"connection"`))
	return stream
}

// next is the data of the stream's next event.
func (st *tlsStream) next() string {
	GinkgoHelper()
	for {
		frame, err := st.reader.Next()
		Expect(err).NotTo(HaveOccurred())
		if !frame.IsComment {
			return frame.Data
		}
	}
}

// publish publishes a custom event to everyone with c, carrying marker.
func (s *tlsStreamer) publish(c *http.Client, marker string) {
	GinkgoHelper()
	req, err := http.NewRequest(http.MethodPost, s.scheme+"://"+s.api+"/api/v1/custom-events",
		strings.NewReader(`{"eventType":"marker","data":{"marker":"`+marker+`"}}`))
	Expect(err).NotTo(HaveOccurred())
	req.Header.Set("Authorization", "Bearer "+s.sign("backend", true))
	resp, err := c.Do(req)
	Expect(err).NotTo(HaveOccurred())
	Expect(resp.StatusCode).To(Equal(http.StatusAccepted))
	Expect(resp.Body.Close()).To(Succeed())
}

// get is the status and body of a plain HTTP GET of the metrics address.
func (s *tlsStreamer) get(path string) func() string {
	return func() string {
		resp, err := http.Get("http://" + s.metrics + path)
		if err != nil {
			return err.Error()
		}
		defer resp.Body.Close()
		body, _ := io.ReadAll(resp.Body)
		return resp.Status + "\n" + string(body)
	}
}

var _ = Describe("herald streamer with spec.http", func() {
	It("serves TLS: HTTP/2 by ALPN and HTTP/1.1, whose close is noticed; probes stay plain HTTP", func() {
		ca := certtest.NewCA()
		s := fileStreamer("{tls: {secretRef: {name: app-tls}}}", ca.Issue("first"))
		Expect(logField(s.logs, "streamer started", "protocols")).To(Equal("TLS: HTTP/2, HTTP/1.1"))
		h2, h1 := httpClient(ca.Pool(), http2), httpClient(ca.Pool(), http1)

		By("streaming to an HTTP/2 client, which negotiated h2")
		u1 := s.connect(h2, "u1")
		Expect(u1.resp.Proto).To(Equal("HTTP/2.0"))
		Expect(u1.resp.TLS.NegotiatedProtocol).To(Equal("h2"))

		By("streaming to an HTTP/1.1-only client over TLS")
		u2 := s.connect(h1, "u2")
		Expect(u2.resp.Proto).To(Equal("HTTP/1.1"))
		Expect(u2.resp.TLS.PeerCertificates[0].Subject.CommonName).To(Equal("first"))
		s.publish(h2, "both")
		Expect(u1.next()).To(ContainSubstring(`"marker":"both"`))
		Expect(u2.next()).To(ContainSubstring(`"marker":"both"`))
		Expect(s.get("/metrics")()).To(ContainSubstring("herald_connections 2"))

		By("noticing the HTTP/1.1 client closing its connection, with no write to it")
		Expect(u2.resp.Body.Close()).To(Succeed())
		Eventually(s.get("/metrics")).Should(ContainSubstring("herald_connections 1"))
		s.publish(h1, "after")
		Expect(u1.next()).To(ContainSubstring(`"marker":"after"`))

		By("answering the probes on the metrics address in plain HTTP")
		Expect(s.get("/readyz")()).To(HavePrefix("200 OK"))

		By("logging a failed handshake in the streamer's own log, as a warning")
		resp, err := http.Get("http://" + s.api + "/healthz")
		if err == nil {
			Expect(resp.Body.Close()).To(Succeed())
		}
		Eventually(s.logs.String).Should(MatchRegexp(`\{"time":"[^"]+","level":"WARN","msg":"http: TLS handshake error from 127\.0\.0\.1:\d+: [^"]*","source":"net/http"\}`))
	})

	It("takes a renewed certificate and rotated keys from its secrets folders without a restart or a dropped stream", func() {
		ca := certtest.NewCA()
		s := fileStreamer("{tls: {secretRef: {name: app-tls}}}", ca.Issue("first"))
		h1 := httpClient(ca.Pool(), http1)
		open := s.connect(h1, "u1")
		handshake := func() string {
			conn, err := tls.Dial("tcp", s.api, &tls.Config{RootCAs: ca.Pool()})
			if err != nil {
				return err.Error()
			}
			defer conn.Close()
			return conn.ConnectionState().PeerCertificates[0].Subject.CommonName
		}
		Expect(handshake()).To(Equal("first"))

		By("serving the renewed certificate to new handshakes")
		writeSecretDir(filepath.Join(s.secrets, "app-tls"), ca.Issue("second"))
		Eventually(handshake).Should(Equal("second"))

		By("taking a rotated key, and refusing the one withdrawn")
		oldToken := s.sign("u2", false)
		next := make([]byte, 32)
		_, _ = rand.Read(next)
		writeSecretDir(filepath.Join(s.secrets, "dev-keys"), map[string][]byte{"next": next})
		Expect(os.Remove(filepath.Join(s.secrets, "dev-keys", "local"))).To(Succeed())
		s.kid, s.key = "next", next
		status := func(token string) func() int {
			return func() int {
				req, err := http.NewRequest(http.MethodGet, s.scheme+"://"+s.api+"/api/v1/sse/notifications", nil)
				Expect(err).NotTo(HaveOccurred())
				req.Header.Set("Authorization", "Bearer "+token)
				resp, err := h1.Do(req)
				if err != nil {
					return 0
				}
				_ = resp.Body.Close()
				return resp.StatusCode
			}
		}
		Eventually(status(s.sign("u2", false))).Should(Equal(http.StatusOK))
		Expect(status(oldToken)()).To(Equal(http.StatusUnauthorized))

		By("keeping the keys in use when a new version is unusable, and saying so")
		writeSecretDir(filepath.Join(s.secrets, "dev-keys"), map[string][]byte{"next": []byte("short")})
		Eventually(s.logs.String).Should(ContainSubstring("ignoring an unusable version of the Secret; keeping the one in use"))
		Expect(status(s.sign("u3", false))()).To(Equal(http.StatusOK))

		By("the stream opened before it all still delivering")
		s.publish(h1, "still")
		Expect(open.next()).To(ContainSubstring(`"marker":"still"`))
	})

	It("serves unencrypted HTTP/2 to a prior-knowledge client, and HTTP/1.1 beside it", func() {
		s := fileStreamer("{h2c: true}", nil)
		Expect(logField(s.logs, "streamer started", "protocols")).To(Equal("HTTP/1.1, unencrypted HTTP/2"))
		h2, h1 := httpClient(nil, h2c), httpClient(nil, http1)
		u1 := s.connect(h2, "u1")
		Expect(u1.resp.Proto).To(Equal("HTTP/2.0"))
		Expect(u1.resp.TLS).To(BeNil())
		u2 := s.connect(h1, "u2")
		Expect(u2.resp.Proto).To(Equal("HTTP/1.1"))
		s.publish(h2, "h2c")
		Expect(u1.next()).To(ContainSubstring(`"marker":"h2c"`))
		Expect(u2.next()).To(ContainSubstring(`"marker":"h2c"`))
	})

	It("serves plain HTTP/1.1 by default, without HTTP/2", func() {
		s := fileStreamer("{}", nil)
		Expect(logField(s.logs, "streamer started", "protocols")).To(Equal("HTTP/1.1"))
		req, err := http.NewRequest(http.MethodGet, "http://"+s.api+"/api/v1/sse/notifications", nil)
		Expect(err).NotTo(HaveOccurred())
		_, err = httpClient(nil, h2c).Do(req)
		Expect(err).To(HaveOccurred(), "a prior-knowledge HTTP/2 client is not understood")
	})

	It("waits, alive and not ready, for its TLS Secret on the API, and serves a rotated certificate to new handshakes without dropping a stream", func(ctx SpecContext) {
		ns := cluster.Namespace(ctx)
		key := cluster.CreateChannelWithKey(ctx, ns)
		channel := &notifyv1alpha1.NotificationChannel{}
		Expect(cluster.Client.Get(ctx, client.ObjectKey{Namespace: ns, Name: "app"}, channel)).To(Succeed())
		channel.Spec.HTTP.TLS = &notifyv1alpha1.HTTPTLSSpec{SecretRef: notifyv1alpha1.LocalSecretReference{Name: "app-tls"}}
		Expect(cluster.Client.Update(ctx, channel)).To(Succeed())
		asStreamer(ctx, ns)
		s := &tlsStreamer{scheme: "https", key: key, kid: "k1", logs: &testutil.Buffer{}}
		run(app.Options{Channel: ns + "/app", Listen: "127.0.0.1:0", MetricsListen: "127.0.0.1:0"}, s.logs)

		By("waiting for the Secret, alive and not ready, saying why")
		Eventually(s.logs.String).Should(And(ContainSubstring(`"reason":"SecretNotFound"`), ContainSubstring(`"field":"spec.http.tls.secretRef"`)))
		s.metrics = logField(s.logs, "metrics listening", "metricsListen")
		Expect(s.get("/healthz")()).To(HavePrefix("200 OK"))
		Expect(s.get("/readyz")()).To(HavePrefix("503"))

		By("starting once the Secret holds a certificate")
		ca := certtest.NewCA()
		secret := &corev1.Secret{ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: "app-tls"}, Type: corev1.SecretTypeTLS, Data: ca.Issue("first")}
		Expect(cluster.Client.Create(ctx, secret)).To(Succeed())
		s.waitStarted()
		Eventually(s.get("/readyz")).Should(HavePrefix("200 OK"))
		u1 := s.connect(httpClient(ca.Pool(), http2), "u1")
		Expect(u1.resp.TLS.PeerCertificates[0].Subject.CommonName).To(Equal("first"))

		By("rotating the certificate: a new handshake sees the new one")
		secret.Data = ca.Issue("second")
		Expect(cluster.Client.Update(ctx, secret)).To(Succeed())
		Eventually(func() string {
			// A new client: a new connection, so a new handshake.
			resp, err := httpClient(ca.Pool(), http2).Get("https://" + s.api + "/api/v1/none")
			if err != nil {
				return err.Error()
			}
			_ = resp.Body.Close()
			return resp.TLS.PeerCertificates[0].Subject.CommonName
		}).Should(Equal("second"))

		By("keeping the stream opened with the old one")
		s.publish(httpClient(ca.Pool(), http1), "rotated")
		Expect(u1.next()).To(ContainSubstring(`"marker":"rotated"`))
	})
})
