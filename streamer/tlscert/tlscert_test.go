package tlscert_test

import (
	"crypto/tls"
	"testing"

	. "github.com/onsi/ginkgo/v2"
	. "github.com/onsi/gomega"
	corev1 "k8s.io/api/core/v1"

	"github.com/herald-notify/herald/internal/testutil"
	"github.com/herald-notify/herald/internal/testutil/certtest"
	"github.com/herald-notify/herald/streamer/tlscert"
)

func TestTLSCert(t *testing.T) {
	testutil.RunSuite(t, "tlscert")
}

// commonName is the subject of the certificate a handshake with config gets.
func commonName(config *tls.Config) string {
	GinkgoHelper()
	cert, err := config.GetCertificate(&tls.ClientHelloInfo{})
	Expect(err).NotTo(HaveOccurred())
	return cert.Leaf.Subject.CommonName
}

var _ = Describe("the served certificate", func() {
	var ca *certtest.CA
	BeforeEach(func() { ca = certtest.NewCA() })

	It("offers HTTP/2 and HTTP/1.1, and gives new handshakes the certificate loaded last", func() {
		first, err := tlscert.Parse(ca.Issue("first"))
		Expect(err).NotTo(HaveOccurred())
		served := tlscert.NewServed(first)
		config := served.ServerConfig()
		Expect(config.NextProtos).To(Equal([]string{"h2", "http/1.1"}))
		Expect(config.MinVersion).To(BeEquivalentTo(tls.VersionTLS12))
		Expect(commonName(config)).To(Equal("first"))

		Expect(served.Load(ca.Issue("second"))).To(Succeed())
		Expect(commonName(config)).To(Equal("second"))
	})

	DescribeTable("keeps the certificate in use when a version is unusable, saying why",
		func(edit func(map[string][]byte), message string) {
			first, err := tlscert.Parse(ca.Issue("first"))
			Expect(err).NotTo(HaveOccurred())
			served := tlscert.NewServed(first)
			data := ca.Issue("second")
			edit(data)
			Expect(served.Load(data)).To(MatchError(ContainSubstring(message)))
			Expect(served.Certificate()).To(BeIdenticalTo(first))
		},
		Entry("no certificate", func(d map[string][]byte) { delete(d, corev1.TLSCertKey) }, `the entry "tls.crt" is missing or empty`),
		Entry("an empty key", func(d map[string][]byte) { d[corev1.TLSPrivateKeyKey] = nil }, `the entry "tls.key" is missing or empty`),
		Entry("the key of another certificate", func(d map[string][]byte) { d[corev1.TLSPrivateKeyKey] = ca.Issue("other")[corev1.TLSPrivateKeyKey] },
			`"tls.crt" and "tls.key" are not a PEM certificate and its private key`),
		Entry("not PEM", func(d map[string][]byte) { d[corev1.TLSCertKey] = []byte("certificate") },
			`are not a PEM certificate and its private key`),
	)
})
