package auth_test

import (
	"crypto/ecdh"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/x509"
	"encoding/pem"
	"errors"
	"sync"

	. "github.com/onsi/ginkgo/v2"
	. "github.com/onsi/gomega"

	"github.com/herald-notify/herald/api/v1alpha1"
	"github.com/herald-notify/herald/streamer/auth"
)

var (
	hmacOnly  = []v1alpha1.JWTAlgorithm{v1alpha1.HS256}
	rsaOnly   = []v1alpha1.JWTAlgorithm{v1alpha1.RS256}
	allPublic = []v1alpha1.JWTAlgorithm{v1alpha1.RS256, v1alpha1.ES256, v1alpha1.ES512, v1alpha1.EdDSA}
)

var ec521Key = sync.OnceValue(func() *ecdsa.PrivateKey { return must(ecdsa.GenerateKey(elliptic.P521(), rand.Reader)) })

var _ = Describe("ParseKeys", func() {
	DescribeTable("refuses an unusable entry, naming it and saying why",
		func(algorithms []v1alpha1.JWTAlgorithm, data func() []byte, why string) {
			_, err := auth.ParseKeys(algorithms, map[string][]byte{"bad-key": data()})
			var keyErr *auth.KeyError
			Expect(errors.As(err, &keyErr)).To(BeTrue(), "error: %v", err)
			Expect(keyErr.KID).To(Equal("bad-key"))
			Expect(keyErr.Error()).To(ContainSubstring(`key "bad-key": `))
			Expect(keyErr.Reason).To(ContainSubstring(why))
		},
		Entry("a short HMAC secret", hmacOnly, func() []byte { return secret(31) }, "needs at least 32 bytes"),
		Entry("an HMAC secret too short for the strongest allowed HMAC algorithm",
			[]v1alpha1.JWTAlgorithm{v1alpha1.HS256, v1alpha1.HS512}, func() []byte { return secret(48) }, "HS512 needs at least 64 bytes"),
		Entry("a public key PEM as an HMAC secret", hmacOnly,
			func() []byte { return publicPEM(&rsaKey().PublicKey) }, "holds a PEM PUBLIC KEY"),
		Entry("an empty entry", hmacOnly, func() []byte { return nil }, "is empty"),
		Entry("a whitespace-only entry", allPublic, func() []byte { return []byte(" \n") }, "is empty"),
		Entry("a 1024-bit RSA key", rsaOnly, func() []byte { return publicPEM(&weakRSAKey().PublicKey) }, "1024-bit RSA key"),
		Entry("a PKCS #8 private key", allPublic, func() []byte { return privatePEM(ec256Key()) }, "private key"),
		Entry("a PKCS #1 private key", rsaOnly, func() []byte {
			return pem.EncodeToMemory(&pem.Block{Type: "RSA PRIVATE KEY", Bytes: x509.MarshalPKCS1PrivateKey(rsaKey())})
		}, "private key"),
		Entry("a SEC 1 private key", allPublic, func() []byte {
			return pem.EncodeToMemory(&pem.Block{Type: "EC PRIVATE KEY", Bytes: must(x509.MarshalECPrivateKey(ec256Key()))})
		}, "private key"),
		Entry("garbage inside a PEM PUBLIC KEY", allPublic, func() []byte {
			return pem.EncodeToMemory(&pem.Block{Type: "PUBLIC KEY", Bytes: []byte("garbage")})
		}, "is not a valid PEM PUBLIC KEY"),
		Entry("garbage inside a PEM CERTIFICATE", allPublic, func() []byte {
			return pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: []byte("garbage")})
		}, "is not a valid PEM CERTIFICATE"),
		Entry("an unexpected PEM type", allPublic, func() []byte {
			return pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE REQUEST", Bytes: []byte("csr")})
		}, "expected PUBLIC KEY, RSA PUBLIC KEY or CERTIFICATE"),
		Entry("no PEM at all", allPublic, func() []byte { return []byte("ssh-ed25519 AAAA") }, "is not PEM"),
		Entry("two PEM blocks", allPublic, func() []byte {
			return append(publicPEM(&ec256Key().PublicKey), publicPEM(edKey().Public())...)
		}, "more than one PEM block"),
		Entry("an EC key while only RS256 is allowed", rsaOnly,
			func() []byte { return publicPEM(&ec256Key().PublicKey) }, "an EC P-256 key, usable only with ES256"),
		Entry("an EC key on an unsupported curve", allPublic, func() []byte {
			return publicPEM(&must(ecdsa.GenerateKey(elliptic.P224(), rand.Reader)).PublicKey)
		}, "curve P-224"),
		Entry("an X25519 key, which cannot sign", allPublic, func() []byte {
			return publicPEM(must(ecdh.X25519().GenerateKey(rand.Reader)).PublicKey())
		}, "which JWT verification does not support"),
	)

	It("keeps the parse error as the cause", func() {
		_, err := auth.ParseKeys(allPublic, map[string][]byte{
			"k": pem.EncodeToMemory(&pem.Block{Type: "RSA PUBLIC KEY", Bytes: []byte("garbage")}),
		})
		var keyErr *auth.KeyError
		Expect(errors.As(err, &keyErr)).To(BeTrue())
		Expect(keyErr.Err).To(HaveOccurred())
		Expect(errors.Unwrap(keyErr)).To(Equal(keyErr.Err))
		Expect(keyErr.Reason).To(HavePrefix("is not a valid PEM RSA PUBLIC KEY (PKCS #1): "))
	})

	It("reports every bad entry at once, in key id order", func() {
		_, err := auth.ParseKeys(hmacOnly, map[string][]byte{"b-short": secret(8), "a-empty": nil, "good": secret(32)})
		Expect(err).To(HaveOccurred())
		Expect(err.Error()).To(MatchRegexp(`(?s)key "a-empty": is empty.*key "b-short": is a 8-byte secret`))
		Expect(err.Error()).NotTo(ContainSubstring(`"good"`))
	})

	It("refuses a Secret without entries", func() {
		for _, data := range []map[string][]byte{nil, {}} {
			_, err := auth.ParseKeys(hmacOnly, data)
			var keyErr *auth.KeyError
			Expect(errors.As(err, &keyErr)).To(BeTrue())
			Expect(keyErr.KID).To(BeEmpty())
			Expect(keyErr.Error()).To(ContainSubstring("holds no keys"))
		}
	})

	DescribeTable("refuses an algorithm list it cannot serve safely, as a configuration error",
		func(algorithms []v1alpha1.JWTAlgorithm, why string) {
			_, err := auth.ParseKeys(algorithms, map[string][]byte{"k": secret(64)})
			Expect(err).To(MatchError(ContainSubstring(why)))
			var keyErr *auth.KeyError
			Expect(errors.As(err, &keyErr)).To(BeFalse())
		},
		Entry("HMAC mixed with public-key algorithms", []v1alpha1.JWTAlgorithm{v1alpha1.HS256, v1alpha1.RS256}, "mixes HMAC"),
		Entry("none", []v1alpha1.JWTAlgorithm{"none"}, `"none" is not a supported JWS algorithm`),
		Entry("an unknown algorithm", []v1alpha1.JWTAlgorithm{"RS1"}, `"RS1" is not a supported JWS algorithm`),
	)

	It("allows the default algorithms (HS256) when none is listed", func() {
		keys, err := auth.ParseKeys(nil, map[string][]byte{"shared": secret(32)})
		Expect(err).NotTo(HaveOccurred())
		Expect(keys.KeyIDs()).To(Equal([]string{"shared"}))

		_, err = auth.ParseKeys(nil, map[string][]byte{"pem": publicPEM(&rsaKey().PublicKey)})
		Expect(err).To(MatchError(ContainSubstring("allows only HMAC")))
	})

	It("tells whether it was parsed for an allow-list, in any order", func() {
		keys := must(auth.ParseKeys([]v1alpha1.JWTAlgorithm{v1alpha1.HS384, v1alpha1.HS256}, map[string][]byte{"shared": secret(48)}))
		Expect(keys.ParsedFor([]v1alpha1.JWTAlgorithm{v1alpha1.HS256, v1alpha1.HS384, v1alpha1.HS256})).To(BeTrue())
		Expect(keys.ParsedFor([]v1alpha1.JWTAlgorithm{v1alpha1.HS256})).To(BeFalse())
		Expect(keys.ParsedFor([]v1alpha1.JWTAlgorithm{"none"})).To(BeFalse())
		Expect(must(auth.ParseKeys(nil, map[string][]byte{"shared": secret(32)})).ParsedFor(nil)).To(BeTrue(), "the default list")
	})

	It("does not keep a reference to the Secret's bytes", func() {
		key := secret(32)
		keys := must(auth.ParseKeys(hmacOnly, map[string][]byte{"shared": key}))
		token := signed(v1alpha1.HS256, "shared", key)
		clear(key)
		_, err := newVerifier(options(keys, newClock(epoch))).Verify(token)
		Expect(err).NotTo(HaveOccurred())
	})

	DescribeTable("accepts each public key format, and verifies with it",
		func(data func() []byte, alg v1alpha1.JWTAlgorithm, privateKey func() []byte) {
			keys, err := auth.ParseKeys(allPublic, map[string][]byte{"k": data()})
			Expect(err).NotTo(HaveOccurred())
			Expect(keys.KeyIDs()).To(Equal([]string{"k"}))
			_, err = newVerifier(options(keys, newClock(epoch))).Verify(signed(alg, "k", privateKey()))
			Expect(err).NotTo(HaveOccurred())
		},
		Entry("RSA PUBLIC KEY (PKIX)", func() []byte { return publicPEM(&rsaKey().PublicKey) },
			v1alpha1.RS256, func() []byte { return privatePEM(rsaKey()) }),
		Entry("RSA PUBLIC KEY (PKCS #1)", func() []byte {
			return pem.EncodeToMemory(&pem.Block{Type: "RSA PUBLIC KEY", Bytes: x509.MarshalPKCS1PublicKey(&rsaKey().PublicKey)})
		}, v1alpha1.RS256, func() []byte { return privatePEM(rsaKey()) }),
		Entry("an RSA CERTIFICATE", func() []byte { return certificatePEM(rsaKey()) },
			v1alpha1.RS256, func() []byte { return privatePEM(rsaKey()) }),
		Entry("an EC P-256 CERTIFICATE", func() []byte { return certificatePEM(ec256Key()) },
			v1alpha1.ES256, func() []byte { return privatePEM(ec256Key()) }),
		Entry("an EC P-521 PUBLIC KEY", func() []byte { return publicPEM(&ec521Key().PublicKey) },
			v1alpha1.ES512, func() []byte { return privatePEM(ec521Key()) }),
		Entry("an Ed25519 PUBLIC KEY", func() []byte { return publicPEM(edKey().Public()) },
			v1alpha1.EdDSA, func() []byte { return privatePEM(edKey()) }),
	)
})
