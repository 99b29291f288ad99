package main

import (
	"crypto"
	"crypto/ecdsa"
	"crypto/ed25519"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/rsa"
	"crypto/x509"
	"encoding/base64"
	"encoding/json"
	"encoding/pem"
	"os"
	"path/filepath"
	"strings"
	"time"

	. "github.com/onsi/ginkgo/v2"
	. "github.com/onsi/gomega"

	"github.com/herald-notify/herald/api/v1alpha1"
	"github.com/herald-notify/herald/streamer/auth"
)

var _ = Describe("herald token", func() {
	var (
		dir       string
		hmacKey   []byte // a 32-byte HS256 secret
		ecKey     *ecdsa.PrivateKey
		hmacFile  string
		ecFile    string // ecKey as PKCS #8
		shortFile string // a secret too short for HS256
	)

	// placeholders replaces the key-file placeholders of table entries,
	// which are built before the temporary directory exists.
	placeholders := func(s string) string {
		return strings.NewReplacer("{hmac}", hmacFile, "{ec}", ecFile, "{short}", shortFile, "{dir}", dir).Replace(s)
	}

	BeforeEach(func() {
		dir = GinkgoT().TempDir()
		hmacKey = randomSecret(32)
		var err error
		ecKey, err = ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
		Expect(err).NotTo(HaveOccurred())
		hmacFile = writeTokenKey(dir, "hmac.key", hmacKey)
		ecFile = writeTokenKey(dir, "ec.pem", tokenPKCS8PEM(ecKey))
		shortFile = writeTokenKey(dir, "short.key", []byte("too short"))
	})

	It("mints an HS256 token the streamer's verifier accepts", func() {
		before := time.Now()
		code, stdout, stderr := invoke("token", "--key", hmacFile, "--subject", "alice",
			"--issuer", "https://issuer.example", "--audience", "herald", "--audience", "other", "--ttl", "10m")
		after := time.Now()
		Expect(code).To(Equal(0), stderr)
		Expect(stderr).To(BeEmpty())
		token := printedToken(stdout)
		Expect(tokenHeader(token)).To(Equal(map[string]any{"alg": "HS256", "typ": "JWT"}))

		identity, err := verifyToken(token, auth.Options{
			Keys:      oneKeySet(v1alpha1.HS256, "default", hmacKey),
			Issuer:    "https://issuer.example",
			Audiences: []string{"herald"},
		})
		Expect(err).NotTo(HaveOccurred())
		Expect(identity.UserID).To(Equal("alice"))
		Expect(identity.CanPublish).To(BeFalse())
		expectTokenExpiry(identity.ExpiresAt, before, after, 10*time.Minute)
		Expect(tokenPayload(token)).To(HaveKeyWithValue("aud", ConsistOf("herald", "other")))
	})

	It("mints an ES256 token with a kid and the publish grant", func() {
		otherKey, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
		Expect(err).NotTo(HaveOccurred())
		code, stdout, stderr := invoke("token", "--key", ecFile, "--alg", "ES256", "--kid", "k1",
			"--subject", "backend", "--publish")
		Expect(code).To(Equal(0), stderr)
		token := printedToken(stdout)
		Expect(tokenHeader(token)).To(Equal(map[string]any{"alg": "ES256", "typ": "JWT", "kid": "k1"}))

		// Two keys in the set: the token is accepted only because its kid
		// selects the right one.
		keys, err := auth.ParseKeys([]v1alpha1.JWTAlgorithm{v1alpha1.ES256}, map[string][]byte{
			"k1": tokenPublicKeyPEM(ecKey.Public()),
			"k2": tokenPublicKeyPEM(otherKey.Public()),
		})
		Expect(err).NotTo(HaveOccurred())
		identity, err := verifyToken(token, auth.Options{Keys: keys})
		Expect(err).NotTo(HaveOccurred())
		Expect(identity.UserID).To(Equal("backend"))
		Expect(identity.KeyID).To(Equal("k1"))
		Expect(identity.CanPublish).To(BeTrue())
	})

	It("defaults to a one-hour token without a kid", func() {
		before := time.Now()
		code, stdout, stderr := invoke("token", "--key", hmacFile, "--subject", "alice")
		after := time.Now()
		Expect(code).To(Equal(0), stderr)
		token := printedToken(stdout)
		Expect(tokenHeader(token)).NotTo(HaveKey("kid"))
		Expect(tokenPayload(token)).NotTo(HaveKey("iss"))
		Expect(tokenPayload(token)).NotTo(HaveKey("aud"))

		identity, err := verifyToken(token, auth.Options{Keys: oneKeySet(v1alpha1.HS256, "only", hmacKey)})
		Expect(err).NotTo(HaveOccurred())
		expectTokenExpiry(identity.ExpiresAt, before, after, time.Hour)
	})

	It("writes a custom publish grant that only a verifier expecting it honours", func() {
		code, stdout, stderr := invoke("token", "--key", hmacFile, "--subject", "backend", "--publish",
			"--grant-claim", "permissions", "--grant-value", "notify:send")
		Expect(code).To(Equal(0), stderr)
		token := printedToken(stdout)
		keys := oneKeySet(v1alpha1.HS256, "default", hmacKey)

		custom, err := verifyToken(token, auth.Options{Keys: keys,
			PublishGrant: v1alpha1.PublishGrantSpec{Claim: "permissions", Value: "notify:send"}})
		Expect(err).NotTo(HaveOccurred())
		Expect(custom.CanPublish).To(BeTrue())

		defaults, err := verifyToken(token, auth.Options{Keys: keys})
		Expect(err).NotTo(HaveOccurred())
		Expect(defaults.CanPublish).To(BeFalse())
	})

	It("adds extra string claims, such as a custom user-id claim", func() {
		code, stdout, stderr := invoke("token", "--key", hmacFile, "--subject", "alice",
			"--claim", "uid=bob", "--claim", "tenant=acme=1")
		Expect(code).To(Equal(0), stderr)
		token := printedToken(stdout)
		Expect(tokenPayload(token)).To(HaveKeyWithValue("tenant", "acme=1"))

		identity, err := verifyToken(token, auth.Options{Keys: oneKeySet(v1alpha1.HS256, "default", hmacKey), UserIDClaim: "uid"})
		Expect(err).NotTo(HaveOccurred())
		Expect(identity.UserID).To(Equal("bob"))
	})

	DescribeTable("signs with every key type the streamer verifies",
		func(alg v1alpha1.JWTAlgorithm, newKey func() crypto.Signer, encode func(crypto.Signer) []byte) {
			key := newKey()
			file := writeTokenKey(dir, "signing.pem", encode(key))
			code, stdout, stderr := invoke("token", "--key", file, "--alg", string(alg), "--subject", "alice")
			Expect(code).To(Equal(0), stderr)

			identity, err := verifyToken(printedToken(stdout), auth.Options{Keys: oneKeySet(alg, "default", tokenPublicKeyPEM(key.Public()))})
			Expect(err).NotTo(HaveOccurred())
			Expect(identity.UserID).To(Equal("alice"))
		},
		Entry("RS256, PKCS #1", v1alpha1.RS256, newTokenRSAKey, tokenPKCS1PEM),
		Entry("PS384, PKCS #8", v1alpha1.PS384, newTokenRSAKey, tokenPKCS8PEM),
		Entry("ES384, SEC 1", v1alpha1.ES384, newTokenP384Key, tokenSEC1PEM),
		Entry("ES256, PKCS #8", v1alpha1.ES256, newTokenP256Key, tokenPKCS8PEM),
		Entry("EdDSA, PKCS #8", v1alpha1.EdDSA, newTokenEd25519Key, tokenPKCS8PEM),
	)

	It("signs HS512 with a long enough secret", func() {
		secret := randomSecret(64)
		file := writeTokenKey(dir, "hs512.key", secret)
		code, stdout, stderr := invoke("token", "--key", file, "--alg", "HS512", "--subject", "alice")
		Expect(code).To(Equal(0), stderr)
		_, err := verifyToken(printedToken(stdout), auth.Options{Keys: oneKeySet(v1alpha1.HS512, "default", secret)})
		Expect(err).NotTo(HaveOccurred())
	})

	DescribeTable("rejects bad usage with exit status 2, naming the flag",
		func(args []string, message string) {
			argv := make([]string, 0, 1+len(args))
			argv = append(argv, "token")
			for _, arg := range args {
				argv = append(argv, placeholders(arg))
			}
			code, stdout, stderr := invoke(argv...)
			Expect(code).To(Equal(2))
			Expect(stdout).To(BeEmpty())
			Expect(stderr).To(HavePrefix("herald token: "))
			Expect(stderr).To(ContainSubstring(placeholders(message)))
		},
		Entry("no key", []string{"--subject", "alice"}, "--key is required"),
		Entry("unreadable key", []string{"--key", "{dir}/missing.key", "--subject", "alice"},
			"--key: cannot read {dir}/missing.key: no such file or directory"),
		Entry("no subject", []string{"--key", "{hmac}"}, "--subject is required"),
		Entry("alg none", []string{"--key", "{hmac}", "--subject", "alice", "--alg", "none"},
			`--alg "none" is not one of HS256, HS384, HS512, RS256,`),
		Entry("alg of the wrong case", []string{"--key", "{hmac}", "--subject", "alice", "--alg", "hs256"},
			`--alg "hs256" is not one of`),
		Entry("zero ttl", []string{"--key", "{hmac}", "--subject", "alice", "--ttl", "0s"}, "--ttl must be positive"),
		Entry("negative ttl", []string{"--key", "{hmac}", "--subject", "alice", "--ttl", "-5m"}, "--ttl must be positive"),
		Entry("ttl over a day", []string{"--key", "{hmac}", "--subject", "alice", "--ttl", "25h"},
			"--ttl 25h0m0s is more than the maximum of 24h0m0s"),
		Entry("ttl without unit", []string{"--key", "{hmac}", "--subject", "alice", "--ttl", "60"},
			`invalid value "60" for flag -ttl`),
		Entry("empty audience", []string{"--key", "{hmac}", "--subject", "alice", "--audience", ""},
			"--audience must not be empty"),
		Entry("empty grant claim", []string{"--key", "{hmac}", "--subject", "alice", "--grant-claim", ""},
			"--grant-claim must not be empty"),
		Entry("grant value with a space", []string{"--key", "{hmac}", "--subject", "alice", "--grant-value", "a b"},
			`--grant-value "a b" must be one word`),
		Entry("claim without value", []string{"--key", "{hmac}", "--subject", "alice", "--claim", "uid"},
			`invalid value "uid" for flag -claim: must be key=value`),
		Entry("claim without name", []string{"--key", "{hmac}", "--subject", "alice", "--claim", "=bob"},
			`invalid value "=bob" for flag -claim: must be key=value`),
		Entry("claim given twice", []string{"--key", "{hmac}", "--subject", "alice", "--claim", "uid=a", "--claim", "uid=b"},
			`claim "uid" is given twice`),
		Entry("claim another flag writes", []string{"--key", "{hmac}", "--subject", "alice", "--claim", "exp=1"},
			`--claim "exp": the claim is written by --ttl`),
		Entry("claim clashing with the grant", []string{"--key", "{hmac}", "--subject", "alice", "--publish", "--claim", "scope=read"},
			`--claim "scope": the claim is written by --publish`),
		Entry("HMAC secret too short", []string{"--key", "{short}", "--subject", "alice"},
			"--key {short} with --alg HS256: sign HS256: HMAC signing key is 9 bytes; HS256 needs at least 32"),
		Entry("PEM key for HMAC", []string{"--key", "{ec}", "--subject", "alice"},
			"--key {ec} with --alg HS256: sign HS256: HMAC signing key holds a PEM PRIVATE KEY"),
		Entry("secret for a public-key algorithm", []string{"--key", "{hmac}", "--subject", "alice", "--alg", "ES256"},
			"--key {hmac} with --alg ES256: sign ES256: signing key is not PEM"),
		Entry("key of the wrong type", []string{"--key", "{ec}", "--subject", "alice", "--alg", "RS256"},
			"--key {ec} with --alg RS256: sign RS256: signing key is"),
		Entry("stray argument", []string{"--key", "{hmac}", "--subject", "alice", "now"}, `unexpected argument "now"`),
		Entry("unknown flag", []string{"--key", "{hmac}", "--sub", "alice"}, "flag provided but not defined: -sub"),
	)

	It("prints its flags on -h", func() {
		code, stdout, _ := invoke("token", "-h")
		Expect(code).To(Equal(0))
		Expect(stdout).To(ContainSubstring("Usage of herald token:"))
		for _, flag := range []string{"-key", "-alg", "-kid", "-subject", "-issuer", "-audience", "-ttl", "-publish", "-grant-claim", "-grant-value", "-claim"} {
			Expect(stdout).To(ContainSubstring(flag + " "))
		}
	})

	It("is listed among the commands", func() {
		code, stdout, _ := invoke("help")
		Expect(code).To(Equal(0))
		Expect(stdout).To(ContainSubstring("  token "))
	})
})

// printedToken returns the token of the command's output, asserting that the
// output is exactly one line.
func printedToken(stdout string) string {
	GinkgoHelper()
	Expect(stdout).To(HaveSuffix("\n"))
	token := strings.TrimSuffix(stdout, "\n")
	Expect(token).NotTo(ContainSubstring("\n"))
	Expect(strings.Split(token, ".")).To(HaveLen(3))
	return token
}

// verifyToken checks token with a verifier built from opts.
func verifyToken(token string, opts auth.Options) (auth.Identity, error) {
	GinkgoHelper()
	verifier, err := auth.NewVerifier(opts)
	Expect(err).NotTo(HaveOccurred())
	return verifier.Verify(token)
}

// oneKeySet is a key set of one key, allowing alg.
func oneKeySet(alg v1alpha1.JWTAlgorithm, kid string, key []byte) *auth.KeySet {
	GinkgoHelper()
	keys, err := auth.ParseKeys([]v1alpha1.JWTAlgorithm{alg}, map[string][]byte{kid: key})
	Expect(err).NotTo(HaveOccurred())
	return keys
}

// expectTokenExpiry asserts that exp is ttl after a moment between before and
// after, allowing for JWT times being whole seconds.
func expectTokenExpiry(exp, before, after time.Time, ttl time.Duration) {
	GinkgoHelper()
	Expect(exp).To(BeTemporally(">=", before.Add(ttl).Truncate(time.Second)))
	Expect(exp).To(BeTemporally("<=", after.Add(ttl)))
}

// tokenHeader decodes a token's JOSE header.
func tokenHeader(token string) map[string]any { return decodeTokenSegment(token, 0) }

// tokenPayload decodes a token's claims.
func tokenPayload(token string) map[string]any { return decodeTokenSegment(token, 1) }

func decodeTokenSegment(token string, index int) map[string]any {
	GinkgoHelper()
	raw, err := base64.RawURLEncoding.DecodeString(strings.Split(token, ".")[index])
	Expect(err).NotTo(HaveOccurred())
	var decoded map[string]any
	Expect(json.Unmarshal(raw, &decoded)).To(Succeed())
	return decoded
}

func writeTokenKey(dir, name string, data []byte) string {
	GinkgoHelper()
	path := filepath.Join(dir, name)
	Expect(os.WriteFile(path, data, 0o600)).To(Succeed())
	return path
}

func randomSecret(n int) []byte {
	b := make([]byte, n)
	_, _ = rand.Read(b)
	return b
}

func newTokenRSAKey() crypto.Signer {
	GinkgoHelper()
	key, err := rsa.GenerateKey(rand.Reader, 2048)
	Expect(err).NotTo(HaveOccurred())
	return key
}

func newTokenP256Key() crypto.Signer { return newTokenECKey(elliptic.P256()) }

func newTokenP384Key() crypto.Signer { return newTokenECKey(elliptic.P384()) }

func newTokenECKey(curve elliptic.Curve) crypto.Signer {
	GinkgoHelper()
	key, err := ecdsa.GenerateKey(curve, rand.Reader)
	Expect(err).NotTo(HaveOccurred())
	return key
}

func newTokenEd25519Key() crypto.Signer {
	GinkgoHelper()
	_, key, err := ed25519.GenerateKey(rand.Reader)
	Expect(err).NotTo(HaveOccurred())
	return key
}

// tokenPKCS8PEM encodes a private key as PEM PRIVATE KEY.
func tokenPKCS8PEM(key crypto.Signer) []byte {
	GinkgoHelper()
	der, err := x509.MarshalPKCS8PrivateKey(key)
	Expect(err).NotTo(HaveOccurred())
	return pem.EncodeToMemory(&pem.Block{Type: "PRIVATE KEY", Bytes: der})
}

// tokenPKCS1PEM encodes an RSA private key as PEM RSA PRIVATE KEY.
func tokenPKCS1PEM(key crypto.Signer) []byte {
	return pem.EncodeToMemory(&pem.Block{Type: "RSA PRIVATE KEY", Bytes: x509.MarshalPKCS1PrivateKey(key.(*rsa.PrivateKey))})
}

// tokenSEC1PEM encodes an EC private key as PEM EC PRIVATE KEY.
func tokenSEC1PEM(key crypto.Signer) []byte {
	GinkgoHelper()
	der, err := x509.MarshalECPrivateKey(key.(*ecdsa.PrivateKey))
	Expect(err).NotTo(HaveOccurred())
	return pem.EncodeToMemory(&pem.Block{Type: "EC PRIVATE KEY", Bytes: der})
}

// tokenPublicKeyPEM encodes a public key as PEM PUBLIC KEY, as the
// streamer's key Secret holds it.
func tokenPublicKeyPEM(key crypto.PublicKey) []byte {
	GinkgoHelper()
	der, err := x509.MarshalPKIXPublicKey(key)
	Expect(err).NotTo(HaveOccurred())
	return pem.EncodeToMemory(&pem.Block{Type: "PUBLIC KEY", Bytes: der})
}
