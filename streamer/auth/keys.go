package auth

import (
	"bytes"
	"crypto"
	"crypto/ecdsa"
	"crypto/ed25519"
	"crypto/elliptic"
	"crypto/rsa"
	"crypto/x509"
	"encoding/pem"
	"errors"
	"fmt"
	"maps"
	"slices"
	"strings"

	"github.com/herald-notify/herald/api/v1alpha1"
)

// minRSABits is the smallest RSA modulus accepted, as RFC 7518 §3.3 requires.
const minRSABits = 2048

// hmacMinBytes is the shortest secret each HMAC algorithm accepts: RFC 7518
// §3.2 requires a key at least as long as the hash output.
var hmacMinBytes = map[v1alpha1.JWTAlgorithm]int{
	v1alpha1.HS256: 32,
	v1alpha1.HS384: 48,
	v1alpha1.HS512: 64,
}

// rsaAlgorithms are the algorithms an RSA key can verify.
var rsaAlgorithms = []v1alpha1.JWTAlgorithm{
	v1alpha1.RS256, v1alpha1.RS384, v1alpha1.RS512,
	v1alpha1.PS256, v1alpha1.PS384, v1alpha1.PS512,
}

// KeyError reports a Secret entry that cannot be used as a verification key.
// Its message is meant for the channel's Degraded condition (reason
// InvalidKey), so it names the entry and says how to fix it.
type KeyError struct {
	// KID is the name of the offending Secret entry, which tokens use as their
	// "kid". It is empty when the problem is the Secret as a whole.
	KID string
	// Reason says what is wrong with the entry and what to do about it.
	Reason string
	// Err is the underlying parse error, if any; Reason already quotes it.
	Err error
}

// Error implements error.
func (e *KeyError) Error() string {
	if e.KID == "" {
		return "key Secret: " + e.Reason
	}
	return fmt.Sprintf("key %q: %s", e.KID, e.Reason)
}

// Unwrap returns the underlying parse error.
func (e *KeyError) Unwrap() error { return e.Err }

// KeySet is an immutable set of verification keys, indexed by key id, together
// with the algorithm allow-list they were parsed for. Replacing the whole set
// is how keys rotate (see [Verifier.SetKeys]).
type KeySet struct {
	algorithms []v1alpha1.JWTAlgorithm
	keys       map[string]verificationKey
}

// verificationKey is one key of a KeySet: an HMAC secret ([]byte) or a public
// key, and the allowed algorithms that its type can verify.
type verificationKey struct {
	material   any
	algorithms []v1alpha1.JWTAlgorithm
}

// KeyIDs returns the key ids of the set, sorted, for logs and status.
func (s *KeySet) KeyIDs() []string {
	return slices.Sorted(maps.Keys(s.keys))
}

// ParsedFor reports whether the set was parsed for the allow-list
// algorithms, in any order: whether it still fits a channel whose
// spec.auth.algorithms changed to algorithms.
func (s *KeySet) ParsedFor(algorithms []v1alpha1.JWTAlgorithm) bool {
	allowed, err := allowList(algorithms)
	return err == nil && slices.Equal(allowed, s.algorithms)
}

// ParseKeys builds a KeySet from the data of a Kubernetes Secret: each entry is
// one key and its name is the key id. algorithms is the allow-list (empty means
// [v1alpha1.DefaultAlgorithms]); it must not mix HMAC and public-key
// algorithms, because then a public key could be taken for a shared secret.
//
// With HMAC algorithms each entry is the raw shared secret, and must be at
// least as long as the hash of the strongest HMAC algorithm allowed (32 bytes
// for HS256, 48 for HS384, 64 for HS512), so that every allowed algorithm
// gets the key length RFC 7518 requires. With public-key algorithms each entry
// is one PEM block: a PUBLIC KEY (PKIX), an RSA PUBLIC KEY (PKCS #1) or a
// CERTIFICATE, whose public key is used and whose validity is not checked.
// RSA keys need 2048 bits or more; EC keys must be on P-256, P-384 or P-521.
// A key verifies only the allowed algorithms matching its type, and a key
// matching none of them is an error. Private keys are refused: the streamer
// never needs one.
//
// Every bad entry is reported, as a [*KeyError] per entry, joined; an empty
// Secret is a *KeyError without KID. A bad allow-list (unknown algorithm,
// "none", HMAC mixed with public-key algorithms) is a plain error: it is a
// configuration problem, not a key problem.
func ParseKeys(algorithms []v1alpha1.JWTAlgorithm, secretData map[string][]byte) (*KeySet, error) {
	allowed, err := allowList(algorithms)
	if err != nil {
		return nil, err
	}
	if len(secretData) == 0 {
		return nil, &KeyError{Reason: "the Secret holds no keys: add one data entry per key, named by its key id (kid)"}
	}
	set := &KeySet{algorithms: allowed, keys: make(map[string]verificationKey, len(secretData))}
	var errs []error
	for _, kid := range slices.Sorted(maps.Keys(secretData)) {
		key, err := parseKey(kid, secretData[kid], allowed)
		if err != nil {
			errs = append(errs, err)
			continue
		}
		set.keys[kid] = key
	}
	if len(errs) > 0 {
		return nil, errors.Join(errs...)
	}
	return set, nil
}

// allowList validates and normalises (sorts, de-duplicates) an algorithm
// allow-list.
func allowList(algorithms []v1alpha1.JWTAlgorithm) ([]v1alpha1.JWTAlgorithm, error) {
	if len(algorithms) == 0 {
		algorithms = v1alpha1.DefaultAlgorithms
	}
	for _, alg := range algorithms {
		if !slices.Contains(v1alpha1.JWTAlgorithms, alg) {
			return nil, fmt.Errorf("auth.algorithms: %q is not a supported JWS algorithm (supported: %s)",
				alg, JoinAlgorithms(v1alpha1.JWTAlgorithms))
		}
	}
	allowed := slices.Clone(algorithms)
	slices.Sort(allowed)
	allowed = slices.Compact(allowed)
	if slices.ContainsFunc(allowed, v1alpha1.JWTAlgorithm.IsHMAC) && !allHMAC(allowed) {
		return nil, fmt.Errorf("auth.algorithms %s mixes HMAC (HS*) and public-key algorithms: "+
			"a key is either a shared secret or a public key, so list only one kind", JoinAlgorithms(allowed))
	}
	return allowed, nil
}

// allHMAC reports whether every algorithm is an HMAC one.
func allHMAC(algorithms []v1alpha1.JWTAlgorithm) bool {
	for _, alg := range algorithms {
		if !alg.IsHMAC() {
			return false
		}
	}
	return true
}

// parseKey parses one Secret entry for an allow-list that is all HMAC or all
// public-key algorithms.
func parseKey(kid string, data []byte, allowed []v1alpha1.JWTAlgorithm) (verificationKey, error) {
	if len(bytes.TrimSpace(data)) == 0 {
		return verificationKey{}, &KeyError{KID: kid, Reason: "is empty: put the key in the entry or remove the entry"}
	}
	if allowed[0].IsHMAC() {
		return parseSecret(kid, data, allowed)
	}
	return parsePublicKey(kid, data, allowed)
}

// parseSecret accepts an HMAC shared secret long enough for every allowed
// HMAC algorithm.
func parseSecret(kid string, data []byte, allowed []v1alpha1.JWTAlgorithm) (verificationKey, error) {
	if block, _ := pem.Decode(data); block != nil {
		return verificationKey{}, &KeyError{KID: kid, Reason: fmt.Sprintf(
			"holds a PEM %s, but auth.algorithms (%s) allows only HMAC, which takes a raw shared secret: "+
				"a public key used as a secret lets anyone who has it sign tokens; "+
				"to verify with public keys, list public-key algorithms (for example RS256, ES256, EdDSA) instead",
			block.Type, JoinAlgorithms(allowed))}
	}
	strongest := slices.MaxFunc(allowed, func(a, b v1alpha1.JWTAlgorithm) int {
		return hmacMinBytes[a] - hmacMinBytes[b]
	})
	if need := hmacMinBytes[strongest]; len(data) < need {
		return verificationKey{}, &KeyError{KID: kid, Reason: fmt.Sprintf(
			"is a %d-byte secret, but %s needs at least %d bytes (RFC 7518 §3.2): "+
				"use a random secret of %d bytes or more (for example `openssl rand %d`)",
			len(data), strongest, need, need, need)}
	}
	return verificationKey{material: bytes.Clone(data), algorithms: allowed}, nil
}

// parsePublicKey accepts exactly one PEM public key or certificate usable with
// at least one allowed algorithm.
func parsePublicKey(kid string, data []byte, allowed []v1alpha1.JWTAlgorithm) (verificationKey, error) {
	block, rest := pem.Decode(data)
	if block == nil {
		return verificationKey{}, &KeyError{KID: kid, Reason: fmt.Sprintf(
			"is not PEM: auth.algorithms (%s) needs a PEM public key (-----BEGIN PUBLIC KEY-----) or certificate",
			JoinAlgorithms(allowed))}
	}
	if len(bytes.TrimSpace(rest)) > 0 {
		return verificationKey{}, &KeyError{KID: kid, Reason: "holds more than one PEM block: put exactly one public key or certificate in each entry"}
	}
	public, err := publicKeyFromPEM(block)
	if err != nil {
		return verificationKey{}, keyError(kid, err)
	}
	kind, err := classify(public)
	if err != nil {
		return verificationKey{}, keyError(kid, err)
	}
	usable := intersect(kind.algorithms, allowed)
	if len(usable) == 0 {
		return verificationKey{}, &KeyError{KID: kid, Reason: fmt.Sprintf(
			"is %s, usable only with %s, which auth.algorithms (%s) does not allow: add one of them to auth.algorithms or replace the key",
			kind.name, JoinAlgorithms(kind.algorithms), JoinAlgorithms(allowed))}
	}
	return verificationKey{material: public, algorithms: usable}, nil
}

// keyError turns an error of publicKeyFromPEM or classify, whose message is
// the reason, into a KeyError for the entry kid, keeping its cause.
func keyError(kid string, err error) *KeyError {
	return &KeyError{KID: kid, Reason: err.Error(), Err: errors.Unwrap(err)}
}

// publicKeyFromPEM extracts the public key of a PUBLIC KEY, RSA PUBLIC KEY or
// CERTIFICATE block, and refuses private keys.
func publicKeyFromPEM(block *pem.Block) (crypto.PublicKey, error) {
	switch {
	case strings.Contains(block.Type, "PRIVATE KEY"):
		return nil, fmt.Errorf("is a private key (PEM %s), but the streamer must hold only public keys: "+
			"store the public key instead (for example `openssl pkey -in key.pem -pubout`) and keep the private key with the token issuer",
			block.Type)
	case block.Type == "PUBLIC KEY":
		public, err := x509.ParsePKIXPublicKey(block.Bytes)
		if err != nil {
			return nil, fmt.Errorf("is not a valid PEM PUBLIC KEY (PKIX): %w", err)
		}
		return public, nil
	case block.Type == "RSA PUBLIC KEY":
		public, err := x509.ParsePKCS1PublicKey(block.Bytes)
		if err != nil {
			return nil, fmt.Errorf("is not a valid PEM RSA PUBLIC KEY (PKCS #1): %w", err)
		}
		return public, nil
	case block.Type == "CERTIFICATE":
		cert, err := x509.ParseCertificate(block.Bytes)
		if err != nil {
			return nil, fmt.Errorf("is not a valid PEM CERTIFICATE: %w", err)
		}
		return cert.PublicKey, nil
	default:
		return nil, fmt.Errorf("is a PEM %s; expected PUBLIC KEY, RSA PUBLIC KEY or CERTIFICATE", block.Type)
	}
}

// keyKind describes a public key's type and the algorithms it can verify.
type keyKind struct {
	name       string
	algorithms []v1alpha1.JWTAlgorithm
}

// classify tells which algorithms a public key can serve, refusing weak RSA
// keys and unsupported curves or types.
func classify(public crypto.PublicKey) (keyKind, error) {
	switch k := public.(type) {
	case *rsa.PublicKey:
		if bits := k.N.BitLen(); bits < minRSABits {
			return keyKind{}, fmt.Errorf("is a %d-bit RSA key; RSA keys need at least %d bits (RFC 7518 §3.3)", bits, minRSABits)
		}
		return keyKind{name: "an RSA key", algorithms: rsaAlgorithms}, nil
	case *ecdsa.PublicKey:
		return classifyEC(k)
	case ed25519.PublicKey:
		return keyKind{name: "an Ed25519 key", algorithms: []v1alpha1.JWTAlgorithm{v1alpha1.EdDSA}}, nil
	default:
		return keyKind{}, fmt.Errorf("is a %T, which JWT verification does not support: "+
			"use RSA (2048 bits or more), EC P-256/P-384/P-521 or Ed25519", public)
	}
}

// classifyEC maps an EC key's curve to its one ECDSA algorithm (RFC 7518 §3.4).
func classifyEC(k *ecdsa.PublicKey) (keyKind, error) {
	switch k.Curve {
	case elliptic.P256():
		return keyKind{name: "an EC P-256 key", algorithms: []v1alpha1.JWTAlgorithm{v1alpha1.ES256}}, nil
	case elliptic.P384():
		return keyKind{name: "an EC P-384 key", algorithms: []v1alpha1.JWTAlgorithm{v1alpha1.ES384}}, nil
	case elliptic.P521():
		return keyKind{name: "an EC P-521 key", algorithms: []v1alpha1.JWTAlgorithm{v1alpha1.ES512}}, nil
	default:
		return keyKind{}, fmt.Errorf("is an EC key on curve %s; supported curves are P-256 (ES256), P-384 (ES384) and P-521 (ES512)",
			k.Curve.Params().Name)
	}
}

// intersect returns the algorithms present in both lists, in the order of a.
func intersect(a, b []v1alpha1.JWTAlgorithm) []v1alpha1.JWTAlgorithm {
	var both []v1alpha1.JWTAlgorithm
	for _, alg := range a {
		if slices.Contains(b, alg) {
			both = append(both, alg)
		}
	}
	return both
}

// JoinAlgorithms formats algorithms as "RS256, ES256" for messages.
func JoinAlgorithms(algorithms []v1alpha1.JWTAlgorithm) string {
	names := make([]string, len(algorithms))
	for i, alg := range algorithms {
		names[i] = string(alg)
	}
	return strings.Join(names, ", ")
}
