package jetstreamlog_test

import (
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/pem"
	"math/big"
	"time"

	"github.com/nats-io/nkeys"
	. "github.com/onsi/ginkgo/v2"
	. "github.com/onsi/gomega"

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
		opts, err := jetstreamlog.CredentialsFromSecret(entries())
		if failure != "" {
			Expect(err).To(MatchError(ContainSubstring(failure)))
			return
		}
		Expect(err).NotTo(HaveOccurred())
		Expect(opts).To(HaveLen(options))
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
