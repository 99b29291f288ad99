package auth_test

import (
	"crypto/ecdh"
	"crypto/rand"
	"crypto/x509"
	"encoding/pem"

	"github.com/golang-jwt/jwt/v5"
	. "github.com/onsi/ginkgo/v2"
	. "github.com/onsi/gomega"

	"github.com/herald-notify/herald/api/v1alpha1"
	"github.com/herald-notify/herald/streamer/auth"
)

var _ = Describe("Sign", func() {
	verifyWith := func(alg v1alpha1.JWTAlgorithm, public []byte, token string) (auth.Identity, error) {
		keys := must(auth.ParseKeys([]v1alpha1.JWTAlgorithm{alg}, map[string][]byte{"k": public}))
		return newVerifier(options(keys, newClock(epoch))).Verify(token)
	}

	It("reads PKCS #1 RSA and SEC 1 EC private keys", func() {
		pkcs1 := pem.EncodeToMemory(&pem.Block{Type: "RSA PRIVATE KEY", Bytes: x509.MarshalPKCS1PrivateKey(rsaKey())})
		_, err := verifyWith(v1alpha1.PS256, publicPEM(&rsaKey().PublicKey), signed(v1alpha1.PS256, "k", pkcs1))
		Expect(err).NotTo(HaveOccurred())

		sec1 := pem.EncodeToMemory(&pem.Block{Type: "EC PRIVATE KEY", Bytes: must(x509.MarshalECPrivateKey(ec384Key()))})
		_, err = verifyWith(v1alpha1.ES384, publicPEM(&ec384Key().PublicKey), signed(v1alpha1.ES384, "k", sec1))
		Expect(err).NotTo(HaveOccurred())
	})

	It("writes kid only when given, and the publish grant where asked", func() {
		token, err := auth.Sign(auth.TokenClaims{
			Subject:      "alice",
			Publish:      true,
			PublishGrant: v1alpha1.PublishGrantSpec{Claim: "roles", Value: "publisher"},
			Extra:        map[string]any{"tenant": "acme"},
		}, v1alpha1.HS256, "", secret(32))
		Expect(err).NotTo(HaveOccurred())
		parsed, _, err := jwt.NewParser().ParseUnverified(token, jwt.MapClaims{})
		Expect(err).NotTo(HaveOccurred())
		Expect(parsed.Header).NotTo(HaveKey("kid"))
		Expect(parsed.Claims).To(Equal(jwt.MapClaims{"sub": "alice", "roles": "publisher", "tenant": "acme"}))
	})

	DescribeTable("refuses what it cannot sign safely",
		func(claims auth.TokenClaims, alg v1alpha1.JWTAlgorithm, key func() []byte, why string) {
			token, err := auth.Sign(claims, alg, "k", key())
			Expect(err).To(MatchError(ContainSubstring(why)))
			Expect(token).To(BeEmpty())
		},
		Entry("alg none", validClaims(), v1alpha1.JWTAlgorithm("none"), func() []byte { return secret(32) },
			`"none" is not a supported JWS algorithm`),
		Entry("a short HMAC secret", validClaims(), v1alpha1.HS384, func() []byte { return secret(47) },
			"HS384 needs at least 48"),
		Entry("a PEM key as an HMAC secret", validClaims(), v1alpha1.HS256,
			func() []byte { return publicPEM(&rsaKey().PublicKey) }, "takes a raw shared secret"),
		Entry("a public key", validClaims(), v1alpha1.RS256,
			func() []byte { return publicPEM(&rsaKey().PublicKey) }, "expected PRIVATE KEY"),
		Entry("no PEM", validClaims(), v1alpha1.EdDSA, func() []byte { return secret(32) }, "not PEM"),
		Entry("garbage in a PEM private key", validClaims(), v1alpha1.ES256, func() []byte {
			return pem.EncodeToMemory(&pem.Block{Type: "EC PRIVATE KEY", Bytes: []byte("garbage")})
		}, "not a valid PEM EC PRIVATE KEY"),
		Entry("an RSA key for ES256", validClaims(), v1alpha1.ES256,
			func() []byte { return privatePEM(rsaKey()) }, "an RSA key, which signs only RS256"),
		Entry("a P-256 key for ES384", validClaims(), v1alpha1.ES384,
			func() []byte { return privatePEM(ec256Key()) }, "an EC P-256 key, which signs only ES256"),
		Entry("a weak RSA key", validClaims(), v1alpha1.RS256, func() []byte {
			return privatePEM(weakRSAKey())
		}, "1024-bit RSA key"),
		Entry("an X25519 key", validClaims(), v1alpha1.EdDSA, func() []byte {
			return privatePEM(must(ecdh.X25519().GenerateKey(rand.Reader)))
		}, "which cannot sign"),
		Entry("an Extra claim that a field also sets", auth.TokenClaims{Subject: "alice", Extra: map[string]any{"sub": "bob"}},
			v1alpha1.HS256, func() []byte { return secret(32) }, `claim "sub" is set both`),
	)

	It("signs an Ed25519 key only as EdDSA", func() {
		_, err := auth.Sign(validClaims(), v1alpha1.ES256, "k", privatePEM(edKey()))
		Expect(err).To(MatchError(ContainSubstring("an Ed25519 key, which signs only EdDSA")))
	})
})
