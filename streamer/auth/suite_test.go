package auth_test

import (
	"crypto"
	"crypto/ecdsa"
	"crypto/ed25519"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/rsa"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/base64"
	"encoding/json"
	"encoding/pem"
	"errors"
	"math/big"
	"sync"
	"testing"
	"time"

	. "github.com/onsi/gomega"

	"github.com/herald-notify/herald/api/v1alpha1"
	"github.com/herald-notify/herald/internal/testutil"
	"github.com/herald-notify/herald/streamer/auth"
)

func TestAuth(t *testing.T) {
	testutil.RunSuite(t, "JWT verification and tickets")
}

// Keys are generated once per run, on first use: none is committed.
var (
	rsaKey      = sync.OnceValue(func() *rsa.PrivateKey { return must(rsa.GenerateKey(rand.Reader, 2048)) })
	otherRSAKey = sync.OnceValue(func() *rsa.PrivateKey { return must(rsa.GenerateKey(rand.Reader, 2048)) })
	weakRSAKey  = sync.OnceValue(func() *rsa.PrivateKey { return must(rsa.GenerateKey(rand.Reader, 1024)) })
	ec256Key    = sync.OnceValue(func() *ecdsa.PrivateKey { return must(ecdsa.GenerateKey(elliptic.P256(), rand.Reader)) })
	ec384Key    = sync.OnceValue(func() *ecdsa.PrivateKey { return must(ecdsa.GenerateKey(elliptic.P384(), rand.Reader)) })
	edKey       = sync.OnceValue(func() ed25519.PrivateKey { return newEd25519Key() })
	attackerKey = sync.OnceValue(func() ed25519.PrivateKey { return newEd25519Key() })
)

// epoch is "now" for every clock-dependent spec; whole seconds, as JWT times are.
var epoch = time.Date(2030, time.January, 2, 3, 4, 5, 0, time.UTC)

const (
	issuer   = "https://issuer.example"
	audience = "herald"
)

func must[T any](v T, err error) T {
	if err != nil {
		panic(err)
	}
	return v
}

func newEd25519Key() ed25519.PrivateKey {
	_, key, err := ed25519.GenerateKey(rand.Reader)
	return must(key, err)
}

// publicPEM is key as a PEM PUBLIC KEY (PKIX), the usual Secret entry.
func publicPEM(key crypto.PublicKey) []byte {
	return pem.EncodeToMemory(&pem.Block{Type: "PUBLIC KEY", Bytes: must(x509.MarshalPKIXPublicKey(key))})
}

// privatePEM is key as a PEM PRIVATE KEY (PKCS #8).
func privatePEM(key crypto.PrivateKey) []byte {
	return pem.EncodeToMemory(&pem.Block{Type: "PRIVATE KEY", Bytes: must(x509.MarshalPKCS8PrivateKey(key))})
}

// certificatePEM is a self-signed certificate for key, as a PEM CERTIFICATE.
func certificatePEM(key crypto.Signer) []byte {
	template := &x509.Certificate{
		SerialNumber: big.NewInt(1),
		Subject:      pkix.Name{CommonName: "issuer.example"},
		NotBefore:    epoch.Add(-time.Hour),
		NotAfter:     epoch.Add(time.Hour),
	}
	der := must(x509.CreateCertificate(rand.Reader, template, template, key.Public(), key))
	return pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der})
}

// secret is n random bytes, an HMAC key.
func secret(n int) []byte {
	b := make([]byte, n)
	_, _ = rand.Read(b)
	return b
}

// validClaims are claims every verifier of the suite accepts at epoch.
func validClaims() auth.TokenClaims {
	return auth.TokenClaims{
		Subject:   "alice",
		Issuer:    issuer,
		Audience:  []string{audience},
		IssuedAt:  epoch,
		ExpiresAt: epoch.Add(5 * time.Minute),
	}
}

// validPayload is validClaims as JSON claims, for tokens built by hand.
func validPayload() map[string]any {
	return map[string]any{
		"sub": "alice",
		"iss": issuer,
		"aud": []string{audience},
		"iat": epoch.Unix(),
		"exp": epoch.Add(5 * time.Minute).Unix(),
	}
}

// signed signs validClaims, changed by mutate, with auth.Sign.
func signed(alg v1alpha1.JWTAlgorithm, kid string, key []byte, mutate ...func(*auth.TokenClaims)) string {
	claims := validClaims()
	for _, m := range mutate {
		m(&claims)
	}
	token, err := auth.Sign(claims, alg, kid, key)
	Expect(err).NotTo(HaveOccurred())
	return token
}

// rawToken assembles a token from a header, a payload and a signature
// segment, without any check, for attacks.
func rawToken(header, payload map[string]any, signature string) string {
	return segment(header) + "." + segment(payload) + "." + signature
}

func segment(v any) string {
	return base64.RawURLEncoding.EncodeToString(must(json.Marshal(v)))
}

// reasonOf is the Reason of a rejection, or "" when err is not an *auth.Error.
func reasonOf(err error) auth.Reason {
	var rejected *auth.Error
	if errors.As(err, &rejected) {
		return rejected.Reason
	}
	return ""
}

// newClock is a clock the tests move by hand.
func newClock(now time.Time) *testutil.Clock { return testutil.NewClock(now) }
