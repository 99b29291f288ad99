package auth_test

import (
	"crypto/ed25519"
	"encoding/base64"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/golang-jwt/jwt/v5"
	. "github.com/onsi/ginkgo/v2"
	. "github.com/onsi/gomega"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	"github.com/herald-notify/herald/api/v1alpha1"
	"github.com/herald-notify/herald/internal/testutil"
	"github.com/herald-notify/herald/streamer/auth"
)

// publicKeys is the key set most specs verify with: one key of each
// public-key family, allowing a subset of their algorithms.
func publicKeys() *auth.KeySet {
	return must(auth.ParseKeys(
		[]v1alpha1.JWTAlgorithm{v1alpha1.RS256, v1alpha1.PS256, v1alpha1.ES256, v1alpha1.ES384, v1alpha1.EdDSA},
		map[string][]byte{
			"rsa":   publicPEM(&rsaKey().PublicKey),
			"ec256": publicPEM(&ec256Key().PublicKey),
			"ec384": publicPEM(&ec384Key().PublicKey),
			"ed":    publicPEM(edKey().Public()),
		}))
}

// options are the suite's verifier options for keys at the clock now.
func options(keys *auth.KeySet, now *testutil.Clock) auth.Options {
	return auth.Options{
		Keys:      keys,
		Issuer:    issuer,
		Audiences: []string{audience, "herald-admin"},
		Leeway:    30 * time.Second,
		Now:       now.Now,
	}
}

func newVerifier(opts auth.Options) *auth.Verifier {
	return must(auth.NewVerifier(opts))
}

// jwtToken signs payload with the jwt library directly, with extra header
// fields, for attacks that auth.Sign refuses to help with.
func jwtToken(method jwt.SigningMethod, header map[string]any, key any) string {
	token := jwt.NewWithClaims(method, jwt.MapClaims(validPayload()))
	for name, value := range header {
		token.Header[name] = value
	}
	return must(token.SignedString(key))
}

// attackerHeader embeds the attacker's own public key and key URLs, which a
// careless verifier would fetch or trust.
func attackerHeader(kid string) map[string]any {
	return map[string]any{
		"kid": kid,
		"jwk": map[string]any{"kty": "OKP", "crv": "Ed25519", "x": base64.RawURLEncoding.EncodeToString(attackerKey().Public().(ed25519.PublicKey))},
		"jku": "https://attacker.example/jwks.json",
		"x5u": "https://attacker.example/cert.pem",
		"x5c": []string{base64.StdEncoding.EncodeToString([]byte("not a certificate"))},
	}
}

// tamper replaces the payload of a signed token, keeping its signature.
func tamper(token string, payload map[string]any) string {
	parts := strings.Split(token, ".")
	return parts[0] + "." + segment(payload) + "." + parts[2]
}

var _ = Describe("Verifier", func() {
	var (
		now      *testutil.Clock
		verifier *auth.Verifier
	)

	BeforeEach(func() {
		now = newClock(epoch)
		verifier = newVerifier(options(publicKeys(), now))
	})

	DescribeTable("rejects, with the reason",
		func(token func() string, reason auth.Reason) {
			identity, err := verifier.Verify(token())
			Expect(err).To(HaveOccurred())
			Expect(reasonOf(err)).To(Equal(reason), "error: %v", err)
			Expect(identity).To(BeZero())
		},
		Entry("an unsigned alg none token", func() string {
			return rawToken(map[string]any{"alg": "none", "typ": "JWT"}, validPayload(), "")
		}, auth.ReasonAlgNotAllowed),
		Entry("an alg none token with a kid and a signature", func() string {
			return rawToken(map[string]any{"alg": "none", "kid": "rsa"}, validPayload(), "c2lnbmF0dXJl")
		}, auth.ReasonAlgNotAllowed),
		Entry("HS256 signed with the RSA public key PEM as the secret (algorithm confusion)", func() string {
			return jwtToken(jwt.SigningMethodHS256, map[string]any{"kid": "rsa"}, publicPEM(&rsaKey().PublicKey))
		}, auth.ReasonAlgNotAllowed),
		Entry("an allowed alg that does not match the selected key's type", func() string {
			return signed(v1alpha1.ES256, "rsa", privatePEM(ec256Key()))
		}, auth.ReasonAlgNotAllowed),
		Entry("an alg outside the allow-list", func() string {
			return signed(v1alpha1.RS512, "rsa", privatePEM(rsaKey()))
		}, auth.ReasonAlgNotAllowed),
		Entry("an alg that does not exist", func() string {
			return rawToken(map[string]any{"alg": "XS256", "kid": "rsa"}, validPayload(), "c2lnbmF0dXJl")
		}, auth.ReasonAlgNotAllowed),
		Entry("a header without alg", func() string {
			return rawToken(map[string]any{"kid": "rsa"}, validPayload(), "c2lnbmF0dXJl")
		}, auth.ReasonMalformed),
		Entry("a kid that is not a string", func() string {
			return rawToken(map[string]any{"alg": "RS256", "kid": 7}, validPayload(), "c2lnbmF0dXJl")
		}, auth.ReasonMalformed),
		Entry("an unknown kid", func() string {
			return signed(v1alpha1.RS256, "retired", privatePEM(rsaKey()))
		}, auth.ReasonUnknownKID),
		Entry("no kid while the set holds several keys", func() string {
			return signed(v1alpha1.RS256, "", privatePEM(rsaKey()))
		}, auth.ReasonMissingKID),
		Entry("a missing exp", func() string {
			return signed(v1alpha1.RS256, "rsa", privatePEM(rsaKey()), func(c *auth.TokenClaims) { c.ExpiresAt = time.Time{} })
		}, auth.ReasonMissingExp),
		Entry("an exp that is not a number", func() string {
			return signed(v1alpha1.RS256, "rsa", privatePEM(rsaKey()), func(c *auth.TokenClaims) {
				c.ExpiresAt = time.Time{}
				c.Extra = map[string]any{"exp": "tomorrow"}
			})
		}, auth.ReasonMalformed),
		Entry("an exp past beyond the leeway", func() string {
			return signed(v1alpha1.RS256, "rsa", privatePEM(rsaKey()), func(c *auth.TokenClaims) {
				c.IssuedAt = epoch.Add(-time.Hour)
				c.ExpiresAt = epoch.Add(-31 * time.Second)
			})
		}, auth.ReasonExpired),
		Entry("an nbf in the future beyond the leeway", func() string {
			return signed(v1alpha1.RS256, "rsa", privatePEM(rsaKey()), func(c *auth.TokenClaims) { c.NotBefore = epoch.Add(31 * time.Second) })
		}, auth.ReasonNotYetValid),
		Entry("an iat in the future beyond the leeway", func() string {
			return signed(v1alpha1.RS256, "rsa", privatePEM(rsaKey()), func(c *auth.TokenClaims) { c.IssuedAt = epoch.Add(31 * time.Second) })
		}, auth.ReasonIssuedInFuture),
		Entry("a wrong aud", func() string {
			return signed(v1alpha1.RS256, "rsa", privatePEM(rsaKey()), func(c *auth.TokenClaims) { c.Audience = []string{"someone-else"} })
		}, auth.ReasonWrongAudience),
		Entry("a missing aud", func() string {
			return signed(v1alpha1.RS256, "rsa", privatePEM(rsaKey()), func(c *auth.TokenClaims) { c.Audience = nil })
		}, auth.ReasonWrongAudience),
		Entry("a wrong iss", func() string {
			return signed(v1alpha1.RS256, "rsa", privatePEM(rsaKey()), func(c *auth.TokenClaims) { c.Issuer = "https://evil.example" })
		}, auth.ReasonWrongIssuer),
		Entry("a missing iss", func() string {
			return signed(v1alpha1.RS256, "rsa", privatePEM(rsaKey()), func(c *auth.TokenClaims) { c.Issuer = "" })
		}, auth.ReasonWrongIssuer),
		Entry("an empty sub", func() string {
			return signed(v1alpha1.RS256, "rsa", privatePEM(rsaKey()), func(c *auth.TokenClaims) {
				c.Subject = ""
				c.Extra = map[string]any{"sub": ""}
			})
		}, auth.ReasonMissingUser),
		Entry("a missing sub", func() string {
			return signed(v1alpha1.RS256, "rsa", privatePEM(rsaKey()), func(c *auth.TokenClaims) { c.Subject = "" })
		}, auth.ReasonMissingUser),
		Entry("a sub that is not a string", func() string {
			return signed(v1alpha1.RS256, "rsa", privatePEM(rsaKey()), func(c *auth.TokenClaims) {
				c.Subject = ""
				c.Extra = map[string]any{"sub": 42}
			})
		}, auth.ReasonMissingUser),
		Entry("a 1 MiB token", func() string {
			return "eyJhbGciOiJSUzI1NiJ9." + strings.Repeat("A", 1<<20) + ".c2lnbmF0dXJl"
		}, auth.ReasonTooLarge),
		Entry("two dots", func() string { return ".." }, auth.ReasonMalformed),
		Entry("four dots", func() string { return "...." }, auth.ReasonMalformed),
		Entry("an empty string", func() string { return "" }, auth.ReasonMalformed),
		Entry("one segment", func() string { return "eyJhbGciOiJSUzI1NiJ9" }, auth.ReasonMalformed),
		Entry("four segments", func() string {
			return signed(v1alpha1.RS256, "rsa", privatePEM(rsaKey())) + ".c2lnbmF0dXJl"
		}, auth.ReasonMalformed),
		Entry("characters outside base64url", func() string { return "!!!.???.***" }, auth.ReasonMalformed),
		Entry("padded base64", func() string {
			return strings.Replace(signed(v1alpha1.RS256, "rsa", privatePEM(rsaKey())), ".", "==.", 1)
		}, auth.ReasonMalformed),
		Entry("a segment of impossible base64 length", func() string { return "a.b.c" }, auth.ReasonMalformed),
		Entry("base64url segments that are not JSON", func() string { return "bm90.anNvbg.c2ln" }, auth.ReasonMalformed),
		Entry("a tampered payload", func() string {
			payload := validPayload()
			payload["sub"] = "mallory"
			return tamper(signed(v1alpha1.RS256, "rsa", privatePEM(rsaKey())), payload)
		}, auth.ReasonBadSignature),
		Entry("a signature by another key under a known kid", func() string {
			return signed(v1alpha1.RS256, "rsa", privatePEM(otherRSAKey()))
		}, auth.ReasonBadSignature),
		Entry("an attacker's key embedded as jwk/jku/x5u/x5c, under a known kid", func() string {
			return jwtToken(jwt.SigningMethodEdDSA, attackerHeader("ed"), attackerKey())
		}, auth.ReasonBadSignature),
		Entry("an attacker's key embedded as jwk/jku/x5u/x5c, under its own kid", func() string {
			return jwtToken(jwt.SigningMethodEdDSA, attackerHeader("attacker"), attackerKey())
		}, auth.ReasonUnknownKID),
	)

	DescribeTable("accepts a valid token",
		func(alg v1alpha1.JWTAlgorithm, kid string, key func() []byte) {
			identity, err := verifier.Verify(signed(alg, kid, key()))
			Expect(err).NotTo(HaveOccurred())
			Expect(identity.UserID).To(Equal("alice"))
			Expect(identity.ExpiresAt).To(BeTemporally("==", epoch.Add(5*time.Minute)))
			Expect(identity.CanPublish).To(BeFalse())
			Expect(identity.KeyID).To(Equal(kid))
		},
		Entry("RS256", v1alpha1.RS256, "rsa", func() []byte { return privatePEM(rsaKey()) }),
		Entry("PS256", v1alpha1.PS256, "rsa", func() []byte { return privatePEM(rsaKey()) }),
		Entry("ES256", v1alpha1.ES256, "ec256", func() []byte { return privatePEM(ec256Key()) }),
		Entry("ES384", v1alpha1.ES384, "ec384", func() []byte { return privatePEM(ec384Key()) }),
		Entry("EdDSA", v1alpha1.EdDSA, "ed", func() []byte { return privatePEM(edKey()) }),
	)

	It("accepts HS256 with a shared secret", func() {
		key := secret(32)
		keys := must(auth.ParseKeys([]v1alpha1.JWTAlgorithm{v1alpha1.HS256}, map[string][]byte{"shared": key}))
		identity, err := newVerifier(options(keys, now)).Verify(signed(v1alpha1.HS256, "shared", key))
		Expect(err).NotTo(HaveOccurred())
		Expect(identity.UserID).To(Equal("alice"))
		Expect(identity.KeyID).To(Equal("shared"))
	})

	It("accepts time claims within the leeway", func() {
		token := signed(v1alpha1.RS256, "rsa", privatePEM(rsaKey()), func(c *auth.TokenClaims) {
			c.IssuedAt = epoch.Add(29 * time.Second)
			c.NotBefore = epoch.Add(29 * time.Second)
			c.ExpiresAt = epoch.Add(-29 * time.Second)
		})
		_, err := verifier.Verify(token)
		Expect(err).NotTo(HaveOccurred())
	})

	It("rejects a token once it expires past the leeway", func() {
		token := signed(v1alpha1.RS256, "rsa", privatePEM(rsaKey()))
		_, err := verifier.Verify(token)
		Expect(err).NotTo(HaveOccurred())
		now.Advance(5*time.Minute + 30*time.Second)
		_, err = verifier.Verify(token)
		Expect(reasonOf(err)).To(Equal(auth.ReasonExpired))
		Expect(err).To(MatchError(jwt.ErrTokenExpired), "the library's error stays the cause")
	})

	It("accepts any one of the configured audiences", func() {
		_, err := verifier.Verify(signed(v1alpha1.RS256, "rsa", privatePEM(rsaKey()), func(c *auth.TokenClaims) {
			c.Audience = []string{"someone-else", "herald-admin"}
		}))
		Expect(err).NotTo(HaveOccurred())
	})

	It("ignores iss and aud when none is configured", func() {
		opts := options(publicKeys(), now)
		opts.Issuer, opts.Audiences = "", nil
		_, err := newVerifier(opts).Verify(signed(v1alpha1.RS256, "rsa", privatePEM(rsaKey()), func(c *auth.TokenClaims) {
			c.Issuer, c.Audience = "", nil
		}))
		Expect(err).NotTo(HaveOccurred())
	})

	It("accepts a token without kid when the set holds exactly one key, and names that key", func() {
		keys := must(auth.ParseKeys([]v1alpha1.JWTAlgorithm{v1alpha1.RS256}, map[string][]byte{"only": publicPEM(&rsaKey().PublicKey)}))
		identity, err := newVerifier(options(keys, now)).Verify(signed(v1alpha1.RS256, "", privatePEM(rsaKey())))
		Expect(err).NotTo(HaveOccurred())
		Expect(identity.KeyID).To(Equal("only"))
	})

	It("reads the user id from a custom claim", func() {
		opts := options(publicKeys(), now)
		opts.UserIDClaim = "email"
		custom := newVerifier(opts)
		identity, err := custom.Verify(signed(v1alpha1.RS256, "rsa", privatePEM(rsaKey()), func(c *auth.TokenClaims) {
			c.Extra = map[string]any{"email": "alice@example.com"}
		}))
		Expect(err).NotTo(HaveOccurred())
		Expect(identity.UserID).To(Equal("alice@example.com"))

		_, err = custom.Verify(signed(v1alpha1.RS256, "rsa", privatePEM(rsaKey())))
		Expect(reasonOf(err)).To(Equal(auth.ReasonMissingUser), "sub must not stand in for the custom claim")
	})

	DescribeTable("reads the publish grant",
		func(grant v1alpha1.PublishGrantSpec, claims map[string]any, canPublish bool) {
			opts := options(publicKeys(), now)
			opts.PublishGrant = grant
			identity, err := newVerifier(opts).Verify(signed(v1alpha1.RS256, "rsa", privatePEM(rsaKey()), func(c *auth.TokenClaims) {
				c.Extra = claims
			}))
			Expect(err).NotTo(HaveOccurred())
			Expect(identity.CanPublish).To(Equal(canPublish))
		},
		Entry("from a scope string", v1alpha1.PublishGrantSpec{},
			map[string]any{"scope": "openid notifications:publish profile"}, true),
		Entry("from an array", v1alpha1.PublishGrantSpec{Claim: "permissions", Value: "publish"},
			map[string]any{"permissions": []any{"read", 7, "publish"}}, true),
		Entry("not when absent", v1alpha1.PublishGrantSpec{}, map[string]any{}, false),
		Entry("not from a scope that only starts with the value", v1alpha1.PublishGrantSpec{},
			map[string]any{"scope": "notifications:publisher"}, false),
		Entry("not from an array without the value", v1alpha1.PublishGrantSpec{Claim: "permissions", Value: "publish"},
			map[string]any{"permissions": []any{"read", "publish-all"}}, false),
		Entry("not from a claim of another type", v1alpha1.PublishGrantSpec{},
			map[string]any{"scope": map[string]any{"notifications:publish": true}}, false),
	)

	It("sets CanPublish from a token signed with the Publish claim", func() {
		identity, err := verifier.Verify(signed(v1alpha1.RS256, "rsa", privatePEM(rsaKey()), func(c *auth.TokenClaims) { c.Publish = true }))
		Expect(err).NotTo(HaveOccurred())
		Expect(identity.CanPublish).To(BeTrue())
	})

	It("checks the size bound before anything else, at exactly MaxTokenBytes", func() {
		token := signed(v1alpha1.RS256, "rsa", privatePEM(rsaKey()))
		opts := options(publicKeys(), now)
		opts.MaxTokenBytes = len(token)
		_, err := newVerifier(opts).Verify(token)
		Expect(err).NotTo(HaveOccurred())

		opts.MaxTokenBytes = len(token) - 1
		_, err = newVerifier(opts).Verify(token)
		Expect(reasonOf(err)).To(Equal(auth.ReasonTooLarge))
	})

	It("bounds tokens at DefaultMaxTokenBytes by default", func() {
		token := rawToken(map[string]any{"alg": "RS256", "kid": "rsa"}, map[string]any{"pad": strings.Repeat("x", auth.DefaultMaxTokenBytes)}, "c2ln")
		_, err := verifier.Verify(token)
		Expect(reasonOf(err)).To(Equal(auth.ReasonTooLarge))
	})

	It("never echoes the token in its errors, and quotes at most a bounded part of the kid", func() {
		longKID := strings.Repeat("k", 200)
		for _, token := range []string{
			tamper(signed(v1alpha1.RS256, "rsa", privatePEM(rsaKey())), map[string]any{"sub": "mallory"}),
			signed(v1alpha1.RS256, "rsa", privatePEM(rsaKey()), func(c *auth.TokenClaims) { c.ExpiresAt = epoch.Add(-time.Hour) }),
			signed(v1alpha1.RS256, longKID, privatePEM(rsaKey())),
			"bm90.anNvbg.c2ln",
		} {
			_, err := verifier.Verify(token)
			Expect(err).To(HaveOccurred())
			for _, part := range strings.Split(token, ".") {
				Expect(err.Error()).NotTo(ContainSubstring(part))
			}
			Expect(err.Error()).NotTo(ContainSubstring(longKID))
		}
	})

	Describe("NewVerifier", func() {
		It("requires keys", func() {
			_, err := auth.NewVerifier(auth.Options{})
			Expect(err).To(MatchError(ContainSubstring("Keys is required")))
		})

		It("refuses a negative leeway or size bound", func() {
			opts := options(publicKeys(), now)
			opts.Leeway = -time.Second
			_, err := auth.NewVerifier(opts)
			Expect(err).To(MatchError(ContainSubstring("Leeway")))

			opts = options(publicKeys(), now)
			opts.MaxTokenBytes = -1
			_, err = auth.NewVerifier(opts)
			Expect(err).To(MatchError(ContainSubstring("MaxTokenBytes")))
		})
	})

	Describe("SetOptions", func() {
		It("applies new claims settings and keys to the next Verify, keeping the clock", func() {
			key := secret(32)
			keys := must(auth.ParseKeys([]v1alpha1.JWTAlgorithm{v1alpha1.HS256}, map[string][]byte{"k": key}))
			v := newVerifier(options(keys, now))
			token := signed(v1alpha1.HS256, "k", key)
			_, err := v.Verify(token)
			Expect(err).NotTo(HaveOccurred())

			opts := options(keys, now)
			opts.Now = time.Now // ignored: the tokens of the suite's epoch stay valid
			opts.Issuer = "https://other.example"
			opts.UserIDClaim = "email"
			Expect(v.SetOptions(opts)).To(Succeed())
			_, err = v.Verify(token)
			Expect(reasonOf(err)).To(Equal(auth.ReasonWrongIssuer))
			identity, err := v.Verify(signed(v1alpha1.HS256, "k", key, func(c *auth.TokenClaims) {
				c.Issuer = "https://other.example"
				c.Extra = map[string]any{"email": "alice@example.com"}
			}))
			Expect(err).NotTo(HaveOccurred(), "the suite's clock still decides the token's validity")
			Expect(identity.UserID).To(Equal("alice@example.com"))
		})

		It("refuses invalid options and keeps the ones in use", func() {
			opts := options(publicKeys(), now)
			opts.Leeway = -time.Second
			Expect(verifier.SetOptions(opts)).To(MatchError(ContainSubstring("Leeway")))
			Expect(verifier.SetOptions(auth.Options{})).To(MatchError(ContainSubstring("Keys is required")))
			_, err := verifier.Verify(signed(v1alpha1.ES256, "ec256", privatePEM(ec256Key())))
			Expect(err).NotTo(HaveOccurred())
		})
	})

	Describe("OptionsFromSpec", func() {
		It("takes the spec's fields and its default leeway", func() {
			keys := publicKeys()
			spec := v1alpha1.AuthSpec{
				Issuer:       issuer,
				Audiences:    []string{audience},
				UserIDClaim:  "email",
				PublishGrant: v1alpha1.PublishGrantSpec{Claim: "roles", Value: "publisher"},
			}
			Expect(auth.OptionsFromSpec(spec, keys)).To(Equal(auth.Options{
				Keys:         keys,
				Issuer:       issuer,
				Audiences:    []string{audience},
				UserIDClaim:  "email",
				Leeway:       v1alpha1.DefaultLeeway,
				PublishGrant: v1alpha1.PublishGrantSpec{Claim: "roles", Value: "publisher"},
			}))

			spec.Leeway = &metav1.Duration{Duration: 0}
			Expect(auth.OptionsFromSpec(spec, keys).Leeway).To(BeZero())
		})
	})

	Describe("key rotation", func() {
		var oldKey, newKey []byte

		BeforeEach(func() {
			oldKey, newKey = secret(32), secret(32)
		})

		hmacKeys := func(entries map[string][]byte) *auth.KeySet {
			return must(auth.ParseKeys([]v1alpha1.JWTAlgorithm{v1alpha1.HS256}, entries))
		}

		It("rejects a removed key and accepts a new one after SetKeys", func() {
			v := newVerifier(options(hmacKeys(map[string][]byte{"old": oldKey}), now))
			oldToken := signed(v1alpha1.HS256, "old", oldKey)
			newToken := signed(v1alpha1.HS256, "new", newKey)
			_, err := v.Verify(oldToken)
			Expect(err).NotTo(HaveOccurred())
			_, err = v.Verify(newToken)
			Expect(reasonOf(err)).To(Equal(auth.ReasonUnknownKID))

			v.SetKeys(hmacKeys(map[string][]byte{"old": oldKey, "new": newKey}))
			for _, token := range []string{oldToken, newToken} {
				_, err = v.Verify(token)
				Expect(err).NotTo(HaveOccurred())
			}

			v.SetKeys(hmacKeys(map[string][]byte{"new": newKey}))
			_, err = v.Verify(oldToken)
			Expect(reasonOf(err)).To(Equal(auth.ReasonUnknownKID))
			identity, err := v.Verify(newToken)
			Expect(err).NotTo(HaveOccurred())
			Expect(identity.KeyID).To(Equal("new"))
		})

		It("never rejects a token of a kept key while the set is swapped under concurrent Verify", func() {
			oldOnly := hmacKeys(map[string][]byte{"old": oldKey})
			both := hmacKeys(map[string][]byte{"old": oldKey, "new": newKey})
			v := newVerifier(options(oldOnly, now))
			token := signed(v1alpha1.HS256, "old", oldKey)

			const verifiers, rounds = 8, 300
			var failures atomic.Int64
			var wg sync.WaitGroup
			for range verifiers {
				wg.Go(func() {
					defer GinkgoRecover()
					for range rounds {
						if _, err := v.Verify(token); err != nil {
							failures.Add(1)
						}
					}
				})
			}
			for i := range rounds {
				if i%2 == 0 {
					v.SetKeys(both)
				} else {
					v.SetKeys(oldOnly)
				}
			}
			wg.Wait()
			Expect(failures.Load()).To(BeZero())
		})
	})
})
