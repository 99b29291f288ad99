package main

import (
	"encoding/json"
	"io"
	"net/http"
	"os"
	"path/filepath"
	"time"

	. "github.com/onsi/ginkgo/v2"
	. "github.com/onsi/gomega"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/apimachinery/pkg/runtime"

	notifyv1alpha1 "github.com/herald-notify/herald/api/v1alpha1"
	"github.com/herald-notify/herald/internal/apiserver"
	"github.com/herald-notify/herald/streamer/auth"
)

var _ = Describe("the browser page's server", func() {
	var (
		channel *notifyv1alpha1.NotificationChannel
		keyFile string
		page    *pageServer
	)
	BeforeEach(func() {
		channel = sampleChannelSpec()
		keyFile = filepath.Join(GinkgoT().TempDir(), "sample-key")
		Expect(os.WriteFile(keyFile, []byte("a sample key that is long enough for HS256, and then some"), 0o600)).To(Succeed())
		tokens, err := newTokenSigner(keyFile, sampleKeyID, channel)
		Expect(err).NotTo(HaveOccurred())
		page, err = listenPage()
		Expect(err).NotTo(HaveOccurred())
		page.serve(pageHandler(filepath.Join("..", ".."), pageConfig{HeraldURL: "http://127.0.0.1:1", User: sampleUser}, tokens))
		DeferCleanup(func() { Expect(page.Close()).To(Succeed()) })
	})

	get := func(path string) (*http.Response, string) {
		GinkgoHelper()
		resp, err := http.Get(page.URL() + path)
		Expect(err).NotTo(HaveOccurred())
		defer resp.Body.Close()
		body, err := io.ReadAll(resp.Body)
		Expect(err).NotTo(HaveOccurred())
		return resp, string(body)
	}

	It("serves examples/browser at its root, the module as JavaScript", func() {
		Expect(page.URL()).To(MatchRegexp(`^http://127\.0\.0\.1:\d+/$`))
		resp, body := get("")
		Expect(resp.StatusCode).To(Equal(http.StatusOK))
		Expect(body).To(ContainSubstring(`<script type="module" src="app.js">`))
		resp, body = get("app.js")
		Expect(resp.StatusCode).To(Equal(http.StatusOK))
		Expect(resp.Header.Get("Content-Type")).To(HavePrefix("text/javascript"), "browsers run a module only with a JavaScript type")
		Expect(body).To(ContainSubstring(`from '/clients/js/herald.js'`))
		resp, _ = get("missing.js")
		Expect(resp.StatusCode).To(Equal(http.StatusNotFound))
	})

	It("serves Herald's JavaScript client from clients/js, as JavaScript", func() {
		resp, body := get("clients/js/herald.js")
		Expect(resp.StatusCode).To(Equal(http.StatusOK))
		Expect(resp.Header.Get("Content-Type")).To(HavePrefix("text/javascript"))
		client, err := os.ReadFile(filepath.Join("..", "..", clientDir, "herald.js"))
		Expect(err).NotTo(HaveOccurred())
		Expect(body).To(Equal(string(client)), "the file itself, not a copy")
		resp, _ = get("clients/js/missing.js")
		Expect(resp.StatusCode).To(Equal(http.StatusNotFound))
	})

	It("tells the page where Herald is and who the user is", func() {
		resp, body := get("config.json")
		Expect(resp.StatusCode).To(Equal(http.StatusOK))
		Expect(resp.Header.Get("Content-Type")).To(Equal("application/json"))
		Expect(body).To(MatchJSON(`{"heraldUrl":"http://127.0.0.1:1","user":"u1"}`))
	})

	It("signs, on POST only, a short-lived token for the page's user that the channel accepts", func() {
		resp, err := http.Post(page.URL()+"dev/token", "", nil)
		Expect(err).NotTo(HaveOccurred())
		defer resp.Body.Close()
		Expect(resp.StatusCode).To(Equal(http.StatusOK))
		Expect(resp.Header.Get("Cache-Control")).To(Equal("no-store"))
		var answer tokenResponse
		Expect(json.NewDecoder(resp.Body).Decode(&answer)).To(Succeed())

		By("verifying it as the channel's streamer does: its key by kid, its issuer and audience")
		key, err := os.ReadFile(keyFile)
		Expect(err).NotTo(HaveOccurred())
		keys, err := auth.ParseKeys(channel.Spec.Auth.Algorithms, map[string][]byte{sampleKeyID: key})
		Expect(err).NotTo(HaveOccurred())
		verifier, err := auth.NewVerifier(auth.OptionsFromSpec(channel.Spec.Auth, keys))
		Expect(err).NotTo(HaveOccurred())
		identity, err := verifier.Verify(answer.Token)
		Expect(err).NotTo(HaveOccurred())
		Expect(identity.UserID).To(Equal(sampleUser))
		Expect(identity.CanPublish).To(BeFalse(), "the page's user may not publish")
		Expect(identity.ExpiresAt).To(BeTemporally("~", time.Now().Add(pageTokenTTL), time.Minute))

		resp, _ = get("dev/token")
		Expect(resp.StatusCode).To(Equal(http.StatusNotFound), "no token on a GET, which a link or an image could make")
	})
})

var _ = Describe("allowOrigin", func() {
	It("adds the page's origin to the sample channel's allowed origins, keeping the others", func() {
		objs, err := apiserver.ReadManifests(filepath.Join("..", "..", "config", "samples", "notify_v1alpha1_notificationchannel.yaml"))
		Expect(err).NotTo(HaveOccurred())
		Expect(allowOrigin(objs, sampleChannel, "http://127.0.0.1:8123")).To(Succeed())
		origins, _, err := unstructured.NestedStringSlice(objs[0].Object, "spec", "cors", "allowedOrigins")
		Expect(err).NotTo(HaveOccurred())
		Expect(origins).To(Equal([]string{"https://app.example.com", "https://admin.example.com", "http://127.0.0.1:8123"}))
	})

	It("names the channel it could not find", func() {
		Expect(allowOrigin(nil, sampleChannel, "http://127.0.0.1:8123")).To(MatchError(ContainSubstring("no NotificationChannel app-notifications")))
	})
})

// sampleChannelSpec is the sample channel as config/samples has it.
func sampleChannelSpec() *notifyv1alpha1.NotificationChannel {
	GinkgoHelper()
	objs, err := apiserver.ReadManifests(filepath.Join("..", "..", "config", "samples", "notify_v1alpha1_notificationchannel.yaml"))
	Expect(err).NotTo(HaveOccurred())
	Expect(objs).To(HaveLen(1))
	channel := &notifyv1alpha1.NotificationChannel{}
	Expect(runtime.DefaultUnstructuredConverter.FromUnstructured(objs[0].Object, channel)).To(Succeed())
	return channel
}
