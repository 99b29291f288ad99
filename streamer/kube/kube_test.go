package kube_test

import (
	"context"
	"crypto/rand"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"path/filepath"
	"strings"
	"testing"
	"time"

	. "github.com/onsi/ginkgo/v2"
	. "github.com/onsi/gomega"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/client-go/kubernetes"

	notifyv1alpha1 "github.com/herald-notify/herald/api/v1alpha1"
	"github.com/herald-notify/herald/internal/apiserver"
	"github.com/herald-notify/herald/internal/testutil"
	"github.com/herald-notify/herald/streamer/auth"
	"github.com/herald-notify/herald/streamer/kube"
	eventlog "github.com/herald-notify/herald/streamer/log"
	"github.com/herald-notify/herald/streamer/server"
	"github.com/herald-notify/herald/streamer/sse"
)

func TestKube(t *testing.T) {
	testutil.RunSuite(t, "streamer in-cluster mode on a real API server")
}

var api *apiserver.Server

var _ = BeforeSuite(func() {
	SetDefaultEventuallyTimeout(20 * time.Second)
	var err error
	api, err = apiserver.Start(filepath.Join("..", "..", "config", "crd", "bases"), GinkgoT().TempDir())
	Expect(err).NotTo(HaveOccurred())
	DeferCleanup(func() { Expect(api.Stop()).To(Succeed()) })
})

func randomKey() []byte {
	key := make([]byte, 32)
	_, _ = rand.Read(key)
	return key
}

func sign(kid string, key []byte, user string) string {
	token, err := auth.Sign(auth.TokenClaims{Subject: user, ExpiresAt: time.Now().Add(time.Hour)}, notifyv1alpha1.HS256, kid, key)
	Expect(err).NotTo(HaveOccurred())
	return token
}

// open opens a stream with token and returns its status; a 200 stream is
// returned open, with a reader on it.
func open(url, token string) (int, *sse.Reader) {
	req, err := http.NewRequest(http.MethodGet, url+server.StreamPath, nil)
	Expect(err).NotTo(HaveOccurred())
	req.Header.Set("Authorization", "Bearer "+token)
	resp, err := http.DefaultClient.Do(req)
	Expect(err).NotTo(HaveOccurred())
	if resp.StatusCode != http.StatusOK {
		Expect(resp.Body.Close()).To(Succeed())
		return resp.StatusCode, nil
	}
	DeferCleanup(resp.Body.Close)
	return resp.StatusCode, sse.NewReader(resp.Body)
}

var _ = Describe("ParseChannelRef", func() {
	It("takes NAMESPACE/NAME and names anything else", func() {
		ref, err := kube.ParseChannelRef("apps/notifications")
		Expect(err).NotTo(HaveOccurred())
		Expect(ref).To(Equal(types.NamespacedName{Namespace: "apps", Name: "notifications"}))
		for _, bad := range []string{"", "notifications", "/x", "x/", "a/b/c"} {
			_, err := kube.ParseChannelRef(bad)
			Expect(err).To(MatchError(ContainSubstring("must be NAMESPACE/NAME")), bad)
		}
	})
})

var _ = Describe("a streamer reading its channel from the API", func() {
	It("serves the channel and applies a rotated key while an old stream stays open", func(ctx SpecContext) {
		ns := &corev1.Namespace{ObjectMeta: metav1.ObjectMeta{GenerateName: "kube-"}}
		Expect(api.Client.Create(ctx, ns)).To(Succeed())
		oldKey, newKey := randomKey(), randomKey()
		secret := &corev1.Secret{
			ObjectMeta: metav1.ObjectMeta{Namespace: ns.Name, Name: "app-keys"},
			Data:       map[string][]byte{"2026-10": oldKey},
		}
		Expect(api.Client.Create(ctx, secret)).To(Succeed())
		channel := &notifyv1alpha1.NotificationChannel{
			ObjectMeta: metav1.ObjectMeta{Namespace: ns.Name, Name: "app"},
			Spec: notifyv1alpha1.NotificationChannelSpec{Auth: notifyv1alpha1.AuthSpec{
				KeySecretRef: notifyv1alpha1.LocalSecretReference{Name: "app-keys"},
			}},
		}
		Expect(api.Client.Create(ctx, channel)).To(Succeed())

		By("reading the channel, defaulted by the API server, and its keys")
		loaded, err := kube.LoadChannel(ctx, api.Client, types.NamespacedName{Namespace: ns.Name, Name: "app"})
		Expect(err).NotTo(HaveOccurred())
		Expect(loaded.Spec.Connections.KeepAliveInterval.Duration).To(Equal(notifyv1alpha1.DefaultKeepAliveInterval))
		clientset, err := kubernetes.NewForConfig(api.Config)
		Expect(err).NotTo(HaveOccurred())
		logs := &testutil.Buffer{}
		var srv *server.Server
		watcher := kube.NewKeyWatcher(clientset, loaded, func(k *auth.KeySet) { srv.SetKeys(k) }, slog.New(slog.NewJSONHandler(logs, nil)))
		keys, err := watcher.LoadKeys(ctx)
		Expect(err).NotTo(HaveOccurred())
		srv, err = server.New(server.Config{Channel: loaded, Keys: keys, Log: eventlog.NewEmbedded(eventlog.Options{})})
		Expect(err).NotTo(HaveOccurred())

		runCtx, stop := context.WithCancel(context.Background())
		running := make(chan struct{}, 2)
		go func() { srv.Run(runCtx); running <- struct{}{} }()
		go func() { _ = watcher.Run(runCtx); running <- struct{}{} }()
		web := httptest.NewServer(srv.Handler())
		DeferCleanup(func() {
			web.CloseClientConnections()
			web.Close()
			stop()
			Eventually(running).Should(Receive())
			Eventually(running).Should(Receive())
		})
		Eventually(logs.String).Should(ContainSubstring(`"msg":"keys loaded"`))

		status, old := open(web.URL, sign("2026-10", oldKey, "u1"))
		Expect(status).To(Equal(http.StatusOK))
		_, err = old.Next()
		Expect(err).NotTo(HaveOccurred())

		By("rotating: the new key admits streams, the removed one no longer does")
		secret.Data = map[string][]byte{"2026-11": newKey}
		Expect(api.Client.Update(ctx, secret)).To(Succeed())
		Eventually(func() int { status, _ := open(web.URL, sign("2026-11", newKey, "u2")); return status }).Should(Equal(http.StatusOK))
		status, _ = open(web.URL, sign("2026-10", oldKey, "u3"))
		Expect(status).To(Equal(http.StatusUnauthorized))

		By("keeping the stream opened with the old key: it receives the next broadcast")
		publisher, err := auth.Sign(auth.TokenClaims{
			Subject: "backend", ExpiresAt: time.Now().Add(time.Hour), Publish: true,
			PublishGrant: loaded.Spec.Auth.PublishGrant,
		}, notifyv1alpha1.HS256, "2026-11", newKey)
		Expect(err).NotTo(HaveOccurred())
		req, err := http.NewRequest(http.MethodPost, web.URL+"/api/v1/system-events", strings.NewReader(`{"eventType":"maintenance"}`))
		Expect(err).NotTo(HaveOccurred())
		req.Header.Set("Authorization", "Bearer "+publisher)
		resp, err := http.DefaultClient.Do(req)
		Expect(err).NotTo(HaveOccurred())
		Expect(resp.StatusCode).To(Equal(http.StatusAccepted))
		Expect(resp.Body.Close()).To(Succeed())
		ev, err := old.Next()
		Expect(err).NotTo(HaveOccurred())
		Expect(ev.Data).To(ContainSubstring(`"eventType":"maintenance"`))

		By("ignoring an invalid version, keeping the keys in use")
		secret.Data = map[string][]byte{"2026-12": []byte("short")}
		Expect(api.Client.Update(ctx, secret)).To(Succeed())
		Eventually(logs.String).Should(ContainSubstring("ignoring an invalid version of the key Secret"))
		status, _ = open(web.URL, sign("2026-11", newKey, "u4"))
		Expect(status).To(Equal(http.StatusOK))
		Expect(strings.Count(logs.String(), `"msg":"keys loaded"`)).To(Equal(2))
	})
})
