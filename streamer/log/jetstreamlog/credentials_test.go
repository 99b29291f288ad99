package jetstreamlog_test

import (
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/pem"
	"errors"
	"math/big"
	"sync/atomic"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nkeys"
	. "github.com/onsi/ginkgo/v2"
	. "github.com/onsi/gomega"

	"github.com/herald-notify/herald/internal/testutil/natstest"
	eventlog "github.com/herald-notify/herald/streamer/log"
	"github.com/herald-notify/herald/streamer/log/jetstreamlog"
)

// credsFile is a NATS credentials file with a real user seed (the JWT is
// not checked when parsed, only when the server verifies it).
func credsFile() []byte {
	user, err := nkeys.CreateUser()
	Expect(err).NotTo(HaveOccurred())
	seed, err := user.Seed()
	Expect(err).NotTo(HaveOccurred())
	return []byte("-----BEGIN NATS USER JWT-----\neyJhbGciOiJlZDI1NTE5LW5rZXkifQ.e30.c2ln\n------END NATS USER JWT------\n\n" +
		"-----BEGIN USER NKEY SEED-----\n" + string(seed) + "\n------END USER NKEY SEED------\n")
}

func caPEM() []byte {
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	Expect(err).NotTo(HaveOccurred())
	tmpl := &x509.Certificate{SerialNumber: big.NewInt(1), Subject: pkix.Name{CommonName: "nats ca"}, IsCA: true,
		NotBefore: time.Now(), NotAfter: time.Now().Add(time.Hour), BasicConstraintsValid: true}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &key.PublicKey, key)
	Expect(err).NotTo(HaveOccurred())
	return pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der})
}

var _ = DescribeTable("credentials from the channel's NATS Secret",
	func(entries func() map[string][]byte, options int, failure string) {
		creds, err := jetstreamlog.NewCredentials(entries())
		if failure != "" {
			Expect(err).To(MatchError(ContainSubstring(failure)))
			return
		}
		Expect(err).NotTo(HaveOccurred())
		Expect(creds.Options()).To(HaveLen(options))
	},
	Entry("no Secret", func() map[string][]byte { return nil }, 0, ""),
	Entry("a credentials file", func() map[string][]byte { return map[string][]byte{"nats.creds": credsFile()} }, 1, ""),
	Entry("a token", func() map[string][]byte { return map[string][]byte{"token": []byte("s3cret\n")} }, 1, ""),
	Entry("user and password, and a CA", func() map[string][]byte {
		return map[string][]byte{"username": []byte("herald"), "password": []byte("pw"), "ca.crt": caPEM()}
	}, 2, ""),
	Entry("a CA only", func() map[string][]byte { return map[string][]byte{"ca.crt": caPEM()} }, 1, ""),
	Entry("two ways to authenticate", func() map[string][]byte {
		return map[string][]byte{"token": []byte("t"), "username": []byte("u"), "password": []byte("p")}
	}, 0, `entries "token" and "username" each name a way to authenticate`),
	Entry("a user without a password", func() map[string][]byte { return map[string][]byte{"username": []byte("u")} },
		0, `"username" and "password" go together`),
	Entry("an empty token", func() map[string][]byte { return map[string][]byte{"token": []byte("\n")} }, 0, `entry "token" is empty`),
	Entry("a credentials file without a seed", func() map[string][]byte {
		return map[string][]byte{"nats.creds": []byte("not a creds file")}
	}, 0, `entry "nats.creds" is not a NATS credentials file`),
	Entry("a CA that is not PEM", func() map[string][]byte { return map[string][]byte{"ca.crt": []byte("nope")} },
		0, `entry "ca.crt" holds no PEM certificate`),
)

var _ = Describe("credentials rotated while the log runs", func() {
	It("reconnects with the Secret's new version, however long NATS refused the old one, without reopening the log", func(ctx SpecContext) {
		secured, err := natstest.Start(natstest.Options{Nodes: 1, Dir: GinkgoT().TempDir(), Token: "first"})
		Expect(err).NotTo(HaveOccurred())
		DeferCleanup(secured.Shutdown)
		var refused atomic.Int64 // times the server refused the rotated log's credentials
		openWith := func(creds *jetstreamlog.Credentials, refusals *atomic.Int64) *jetstreamlog.Log {
			opts := testOptions(newChannel(), 100)
			opts.URL, opts.Replicas = secured.URL(), 1
			opts.NATSOptions = append(fastReconnect(), creds.Options()...)
			opts.NATSOptions = append(opts.NATSOptions, nats.ErrorHandler(func(_ *nats.Conn, _ *nats.Subscription, err error) {
				if errors.Is(err, nats.ErrAuthorization) {
					refusals.Add(1)
				}
			}))
			return open(opts)
		}
		rotated, err := jetstreamlog.NewCredentials(map[string][]byte{"token": []byte("first")})
		Expect(err).NotTo(HaveOccurred())
		kept, err := jetstreamlog.NewCredentials(map[string][]byte{"token": []byte("first\n")})
		Expect(err).NotTo(HaveOccurred())
		l, stale := openWith(rotated, &refused), openWith(kept, new(atomic.Int64))
		_, err = l.Append(ctx, eventlog.Event{Type: "custom", Data: []byte(`{"n":1}`)}, "")
		Expect(err).NotTo(HaveOccurred())

		// The server stops accepting the old token before the Secret is
		// rotated: the node comes back with the new one only.
		secured.SetToken("second")
		secured.Stop(0)
		Expect(secured.Restart(0)).To(Succeed())
		Expect(secured.WaitReady()).To(Succeed())
		Eventually(l.LastError).Should(MatchError(ContainSubstring("Authorization Violation")))
		// nats.go gives up on a server after two refusals unless told not to.
		Eventually(refused.Load).Should(BeNumerically(">=", 3))

		// Refused many times over, the log still takes the rotated Secret.
		Expect(rotated.Update(map[string][]byte{"token": []byte("second")})).To(Succeed())
		Eventually(func() error {
			_, err := l.Append(ctx, eventlog.Event{Type: "custom", Data: []byte(`{"n":2}`)}, "")
			return err
		}).Should(Succeed())
		Eventually(l.Healthy).Should(BeTrue())
		Eventually(stale.LastError).Should(MatchError(ContainSubstring("Authorization Violation")), "the log that kept the old token")
	})

	It("refuses a version that changes the way to authenticate or the CA, and keeps the current one", func() {
		creds, err := jetstreamlog.NewCredentials(map[string][]byte{"token": []byte("t")})
		Expect(err).NotTo(HaveOccurred())
		Expect(creds.Update(map[string][]byte{"username": []byte("u"), "password": []byte("p")})).To(MatchError(
			`the Secret now names a user and password (entries "username" and "password") instead of a token (entry "token"): the way to authenticate is set when a pod starts; restart the channel's pods to apply it`))
		Expect(creds.Update(map[string][]byte{"token": []byte("t"), "ca.crt": caPEM()})).To(MatchError(
			`the Secret now has an entry "ca.crt": whether NATS is reached over TLS with the Secret's CA is set when a pod starts; restart the channel's pods to apply it`))
		Expect(creds.Update(map[string][]byte{"token": []byte("\n")})).To(MatchError(`entry "token" is empty`))
		Expect(creds.Update(map[string][]byte{"token": []byte("u")})).To(Succeed())
	})
})
