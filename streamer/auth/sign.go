package auth

import (
	"crypto"
	"crypto/x509"
	"encoding/pem"
	"errors"
	"fmt"
	"slices"
	"time"

	"github.com/golang-jwt/jwt/v5"

	"github.com/herald-notify/herald/api/v1alpha1"
)

// TokenClaims are the claims Sign writes. Zero fields are left out.
type TokenClaims struct {
	// Subject is "sub", the default user-id claim.
	Subject string
	// Issuer is "iss".
	Issuer string
	// Audience is "aud", always written as an array.
	Audience []string
	// ExpiresAt is "exp". Verify refuses tokens without it.
	ExpiresAt time.Time
	// IssuedAt is "iat".
	IssuedAt time.Time
	// NotBefore is "nbf".
	NotBefore time.Time
	// Publish writes the publish grant, PublishGrant.Value in the claim
	// PublishGrant.Claim (defaults: "scope", "notifications:publish").
	Publish bool
	// PublishGrant names the grant claim and value Publish writes.
	PublishGrant v1alpha1.PublishGrantSpec
	// Extra are further claims, such as a custom user-id claim. A claim that
	// a field above also writes is an error rather than silently overwritten.
	Extra map[string]any
}

// Sign returns a JWT of claims signed with alg. key is the raw shared secret
// for HMAC algorithms (as long as the hash at least), and otherwise a PEM
// private key: PKCS #8 (PRIVATE KEY), PKCS #1 (RSA PRIVATE KEY) or SEC 1
// (EC PRIVATE KEY) of the type alg needs. kid, when not empty, is written to
// the header so that the verifier can pick the key. It serves the
// `herald token` command and tests, never the streamer.
func Sign(claims TokenClaims, alg v1alpha1.JWTAlgorithm, kid string, key []byte) (string, error) {
	if !slices.Contains(v1alpha1.JWTAlgorithms, alg) {
		return "", fmt.Errorf("sign: %q is not a supported JWS algorithm (supported: %s)", alg, JoinAlgorithms(v1alpha1.JWTAlgorithms))
	}
	signingKey, err := parseSigningKey(alg, key)
	if err != nil {
		return "", fmt.Errorf("sign %s: %w", alg, err)
	}
	payload, err := claims.mapClaims()
	if err != nil {
		return "", fmt.Errorf("sign %s: %w", alg, err)
	}
	token := jwt.NewWithClaims(jwt.GetSigningMethod(string(alg)), payload)
	if kid != "" {
		token.Header["kid"] = kid
	}
	signed, err := token.SignedString(signingKey)
	if err != nil {
		return "", fmt.Errorf("sign %s: %w", alg, err)
	}
	return signed, nil
}

// mapClaims lays the claims out as JSON claims.
func (c TokenClaims) mapClaims() (jwt.MapClaims, error) {
	grant := publishGrant(c.PublishGrant)
	fields := []struct {
		name  string
		value any
		set   bool
	}{
		{"sub", c.Subject, c.Subject != ""},
		{"iss", c.Issuer, c.Issuer != ""},
		{"aud", c.Audience, len(c.Audience) > 0},
		{"exp", jwt.NewNumericDate(c.ExpiresAt), !c.ExpiresAt.IsZero()},
		{"iat", jwt.NewNumericDate(c.IssuedAt), !c.IssuedAt.IsZero()},
		{"nbf", jwt.NewNumericDate(c.NotBefore), !c.NotBefore.IsZero()},
		{grant.Claim, grant.Value, c.Publish},
	}
	claims := make(jwt.MapClaims, len(fields)+len(c.Extra))
	for name, value := range c.Extra {
		claims[name] = value
	}
	for _, field := range fields {
		if !field.set {
			continue
		}
		if _, clash := c.Extra[field.name]; clash {
			return nil, fmt.Errorf("claim %q is set both by a TokenClaims field and in Extra", field.name)
		}
		claims[field.name] = field.value
	}
	return claims, nil
}

// parseSigningKey returns the key jwt signs alg with: the secret itself for
// HMAC, else the PEM private key, checked against alg the way ParseKeys checks
// public keys.
func parseSigningKey(alg v1alpha1.JWTAlgorithm, data []byte) (any, error) {
	if alg.IsHMAC() {
		if block, _ := pem.Decode(data); block != nil {
			return nil, fmt.Errorf("HMAC signing key holds a PEM %s; %s takes a raw shared secret", block.Type, alg)
		}
		if need := hmacMinBytes[alg]; len(data) < need {
			return nil, fmt.Errorf("HMAC signing key is %d bytes; %s needs at least %d (RFC 7518 §3.2)", len(data), alg, need)
		}
		return data, nil
	}
	signer, err := privateKeyFromPEM(data)
	if err != nil {
		return nil, err
	}
	kind, err := classify(signer.Public())
	if err != nil {
		return nil, fmt.Errorf("signing key %w", err)
	}
	if !slices.Contains(kind.algorithms, alg) {
		return nil, fmt.Errorf("signing key is %s, which signs only %s, not %s", kind.name, JoinAlgorithms(kind.algorithms), alg)
	}
	return signer, nil
}

// privateKeyFromPEM parses a PKCS #8, PKCS #1 or SEC 1 PEM private key.
func privateKeyFromPEM(data []byte) (crypto.Signer, error) {
	block, _ := pem.Decode(data)
	if block == nil {
		return nil, errors.New("signing key is not PEM: expected a PEM private key")
	}
	var (
		key any
		err error
	)
	switch block.Type {
	case "PRIVATE KEY":
		key, err = x509.ParsePKCS8PrivateKey(block.Bytes)
	case "RSA PRIVATE KEY":
		key, err = x509.ParsePKCS1PrivateKey(block.Bytes)
	case "EC PRIVATE KEY":
		key, err = x509.ParseECPrivateKey(block.Bytes)
	default:
		return nil, fmt.Errorf("signing key is a PEM %s; expected PRIVATE KEY (PKCS #8), RSA PRIVATE KEY (PKCS #1) or EC PRIVATE KEY (SEC 1)", block.Type)
	}
	if err != nil {
		return nil, fmt.Errorf("signing key is not a valid PEM %s: %w", block.Type, err)
	}
	signer, isSigner := key.(crypto.Signer)
	if !isSigner {
		return nil, fmt.Errorf("signing key is a %T, which cannot sign", key)
	}
	return signer, nil
}
