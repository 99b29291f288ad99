package auth

import (
	"cmp"
	"errors"
	"fmt"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/golang-jwt/jwt/v5"

	"github.com/herald-notify/herald/api/v1alpha1"
)

// DefaultMaxTokenBytes is the longest token Verify reads. Real tokens are a
// few hundred bytes to a few KiB; the bound keeps an attacker from making the
// streamer base64- and JSON-decode megabytes per request.
const DefaultMaxTokenBytes = 8 << 10

// maxEchoedHeaderBytes bounds how much of an attacker-controlled header value
// ("kid", "alg") an error message quotes.
const maxEchoedHeaderBytes = 64

// Reason is why a token was rejected: a stable, low-cardinality value for the
// auth_failures_total{reason} metric and for logs.
type Reason string

// The reasons Verify rejects a token for.
const (
	// ReasonTooLarge: the token is longer than Options.MaxTokenBytes.
	ReasonTooLarge Reason = "too_large"
	// ReasonMalformed: not three base64url segments of JSON, a header or
	// registered claim of the wrong type, or no "alg".
	ReasonMalformed Reason = "malformed"
	// ReasonAlgNotAllowed: "alg" is not in the allow-list ("none" never is),
	// or does not match the type of the key the token selects.
	ReasonAlgNotAllowed Reason = "alg_not_allowed"
	// ReasonUnknownKID: "kid" names no key of the set.
	ReasonUnknownKID Reason = "unknown_kid"
	// ReasonMissingKID: the token has no "kid" and the set holds more than
	// one key, so which key to use would be a guess.
	ReasonMissingKID Reason = "missing_kid"
	// ReasonBadSignature: the signature does not verify with the selected key.
	ReasonBadSignature Reason = "bad_signature"
	// ReasonMissingExp: the token has no "exp"; tokens that never expire are
	// refused.
	ReasonMissingExp Reason = "missing_exp"
	// ReasonExpired: "exp" is past, beyond the leeway.
	ReasonExpired Reason = "expired"
	// ReasonNotYetValid: "nbf" is in the future, beyond the leeway.
	ReasonNotYetValid Reason = "not_yet_valid"
	// ReasonIssuedInFuture: "iat" is in the future, beyond the leeway.
	ReasonIssuedInFuture Reason = "issued_in_future"
	// ReasonWrongIssuer: "iss" is missing or differs from Options.Issuer.
	ReasonWrongIssuer Reason = "wrong_issuer"
	// ReasonWrongAudience: "aud" is missing or holds none of Options.Audiences.
	ReasonWrongAudience Reason = "wrong_audience"
	// ReasonMissingUser: the user-id claim is missing, empty or not a string.
	ReasonMissingUser Reason = "missing_user"
)

// Error is a rejected token. Reason is for metrics; the message is for logs
// and never contains the token.
type Error struct {
	// Reason classifies the rejection.
	Reason Reason
	err    error
}

// Error implements error.
func (e *Error) Error() string { return fmt.Sprintf("token rejected (%s): %v", e.Reason, e.err) }

// Unwrap returns the detailed cause.
func (e *Error) Unwrap() error { return e.err }

// reject builds an *Error with a formatted cause.
func reject(reason Reason, format string, args ...any) *Error {
	return &Error{Reason: reason, err: fmt.Errorf(format, args...)}
}

// Identity is who a verified token speaks for.
type Identity struct {
	// UserID is the value of the user-id claim.
	UserID string
	// ExpiresAt is the token's "exp": streams and tickets must not outlive it.
	ExpiresAt time.Time
	// CanPublish is true when the token carries the publish grant.
	CanPublish bool
	// KeyID is the id of the key that verified the token, for audit logs.
	KeyID string
}

// Options configure a Verifier; they mirror [v1alpha1.AuthSpec].
type Options struct {
	// Keys verify the tokens and carry the algorithm allow-list. Required.
	Keys *KeySet
	// Issuer, when set, must equal "iss".
	Issuer string
	// Audiences, when set, must contain one of the "aud" values.
	Audiences []string
	// UserIDClaim holds the user id; empty means "sub".
	UserIDClaim string
	// Leeway is the clock skew tolerated on "exp", "nbf" and "iat". Zero is
	// no leeway: OptionsFromSpec applies the spec's 30s default.
	Leeway time.Duration
	// PublishGrant is the claim and value that allow publishing; empty fields
	// take the spec defaults ("scope", "notifications:publish").
	PublishGrant v1alpha1.PublishGrantSpec
	// MaxTokenBytes bounds the token length; zero means DefaultMaxTokenBytes.
	MaxTokenBytes int
	// Now is the clock, for tests; nil means time.Now. It must be safe for
	// concurrent use.
	Now func() time.Time
}

// OptionsFromSpec returns the Options an AuthSpec asks for, verifying with
// keys (typically ParseKeys(spec.Algorithms, secret.Data)), with the spec
// defaults of [v1alpha1] applied.
func OptionsFromSpec(spec v1alpha1.AuthSpec, keys *KeySet) Options {
	leeway := v1alpha1.DefaultLeeway
	if spec.Leeway != nil {
		leeway = spec.Leeway.Duration
	}
	return Options{
		Keys:         keys,
		Issuer:       spec.Issuer,
		Audiences:    spec.Audiences,
		UserIDClaim:  spec.UserIDClaim,
		Leeway:       leeway,
		PublishGrant: spec.PublishGrant,
	}
}

// Verifier checks JWTs against RFC 8725: algorithm allow-list, key selected
// by "kid" only from its own key set, required "exp", time claims within the
// leeway, issuer, audience and user id. It is safe for concurrent use, and its
// keys (SetKeys) and options (SetOptions) can be replaced while it is in use.
type Verifier struct {
	now func() time.Time

	// mu serializes SetKeys and SetOptions, so that neither undoes the
	// other's change; Verify reads state without it.
	mu    sync.Mutex
	state atomic.Pointer[verifierState]
}

// verifierState is what SetKeys and SetOptions swap as one: the settings, a
// key set, and the parser that checks exactly those.
type verifierState struct {
	settings verifierSettings
	keys     *KeySet
	parser   *jwt.Parser
	// claims names the claims Verify decodes for settings.
	claims *claimNames
}

// verifierSettings are the Options other than the keys and the clock, with
// their defaults applied.
type verifierSettings struct {
	issuer        string
	audiences     []string
	userIDClaim   string
	leeway        time.Duration
	grant         v1alpha1.PublishGrantSpec
	maxTokenBytes int
}

// NewVerifier returns a Verifier for opts, with defaults applied to its empty
// fields.
func NewVerifier(opts Options) (*Verifier, error) {
	settings, err := settingsOf(opts)
	if err != nil {
		return nil, err
	}
	v := &Verifier{now: opts.Now}
	if v.now == nil {
		v.now = time.Now
	}
	v.install(settings, opts.Keys)
	return v, nil
}

// settingsOf checks opts and applies the defaults.
func settingsOf(opts Options) (verifierSettings, error) {
	switch {
	case opts.Keys == nil:
		return verifierSettings{}, errors.New("auth: verifier options: Keys is required")
	case opts.Leeway < 0:
		return verifierSettings{}, fmt.Errorf("auth: verifier options: Leeway %s is negative", opts.Leeway)
	case opts.MaxTokenBytes < 0:
		return verifierSettings{}, fmt.Errorf("auth: verifier options: MaxTokenBytes %d is negative", opts.MaxTokenBytes)
	}
	return verifierSettings{
		issuer:        opts.Issuer,
		audiences:     slices.Clone(opts.Audiences),
		userIDClaim:   cmp.Or(opts.UserIDClaim, v1alpha1.DefaultUserIDClaim),
		leeway:        opts.Leeway,
		grant:         publishGrant(opts.PublishGrant),
		maxTokenBytes: cmp.Or(opts.MaxTokenBytes, DefaultMaxTokenBytes),
	}, nil
}

// SetKeys replaces the key set, for example when the watched key Secret
// changes. Verify calls already running finish with the set they started
// with; later calls use the new one. Rotate by publishing a set with both the
// old and the new key, moving the signers over, then dropping the old key.
// keys must not be nil.
func (v *Verifier) SetKeys(keys *KeySet) {
	v.mu.Lock()
	defer v.mu.Unlock()
	v.install(v.state.Load().settings, keys)
}

// SetOptions replaces every option (keys included) but the clock, for
// example when the channel's auth settings change: Verify calls already
// running finish with the options they started with, later calls use the new
// ones. Invalid options are refused and the verifier stays as it was.
func (v *Verifier) SetOptions(opts Options) error {
	settings, err := settingsOf(opts)
	if err != nil {
		return err
	}
	v.mu.Lock()
	defer v.mu.Unlock()
	v.install(settings, opts.Keys)
	return nil
}

// install builds the parser for settings and keys and swaps them in.
func (v *Verifier) install(settings verifierSettings, keys *KeySet) {
	methods := make([]string, len(keys.algorithms))
	for i, alg := range keys.algorithms {
		methods[i] = string(alg)
	}
	options := []jwt.ParserOption{
		jwt.WithValidMethods(methods),
		jwt.WithExpirationRequired(),
		jwt.WithIssuedAt(),
		jwt.WithLeeway(settings.leeway),
		jwt.WithTimeFunc(v.now),
		jwt.WithStrictDecoding(),
	}
	if settings.issuer != "" {
		options = append(options, jwt.WithIssuer(settings.issuer))
	}
	if len(settings.audiences) > 0 {
		options = append(options, jwt.WithAudience(settings.audiences...))
	}
	v.state.Store(&verifierState{settings: settings, keys: keys, parser: jwt.NewParser(options...), claims: claimNamesOf(settings)})
}

// Verify checks token and returns the identity it proves. A rejection is an
// [*Error] whose Reason says why.
func (v *Verifier) Verify(token string) (Identity, error) {
	state := v.state.Load()
	if limit := state.settings.maxTokenBytes; len(token) > limit {
		return Identity{}, reject(ReasonTooLarge, "token is %d bytes, more than the %d allowed", len(token), limit)
	}
	if !wellFormed(token) {
		return Identity{}, reject(ReasonMalformed, "token is not three base64url segments")
	}
	claims := getClaims(state.claims)
	defer putClaims(claims)
	var kid string
	parsed, err := state.parser.ParseWithClaims(token, claims, func(t *jwt.Token) (any, error) {
		id, material, err := state.keys.keyFor(t)
		kid = id
		return material, err
	})
	if err != nil {
		return Identity{}, rejection(err, parsed, claims, state)
	}
	return state.settings.identity(claims, kid)
}

// wellFormed reports whether token is three dot-separated base64url segments
// with a non-empty header and payload. The signature may be empty, so that an
// unsigned ("alg":"none") token is reported as a disallowed algorithm.
func wellFormed(token string) bool {
	header, rest, ok := strings.Cut(token, ".")
	if !ok {
		return false
	}
	payload, signature, ok := strings.Cut(rest, ".")
	return ok && header != "" && payload != "" &&
		isBase64URL(header) && isBase64URL(payload) && isBase64URL(signature)
}

// isBase64URL reports whether s uses only the unpadded base64url alphabet.
func isBase64URL(s string) bool {
	for i := range len(s) {
		c := s[i]
		if (c < 'A' || c > 'Z') && (c < 'a' || c > 'z') && (c < '0' || c > '9') && c != '-' && c != '_' {
			return false
		}
	}
	return true
}

// keyFor selects the key for a parsed token. "kid" is only ever a key into the
// set; jku, x5u, jwk and x5c are never looked at. A token without "kid" is
// accepted only when the set holds exactly one key.
func (s *KeySet) keyFor(token *jwt.Token) (string, any, error) {
	alg := v1alpha1.JWTAlgorithm(token.Method.Alg())
	raw, hasKID := token.Header["kid"]
	var kid string
	switch {
	case hasKID:
		var isString bool
		if kid, isString = raw.(string); !isString {
			return "", nil, reject(ReasonMalformed, "header kid is not a string")
		}
	case len(s.keys) == 1:
		for only := range s.keys {
			kid = only
		}
	default:
		return "", nil, reject(ReasonMissingKID, "token has no kid and the key set holds %d keys", len(s.keys))
	}
	key, found := s.keys[kid]
	switch {
	case !found:
		return "", nil, reject(ReasonUnknownKID, "no key with kid %s", quote(kid))
	case !slices.Contains(key.algorithms, alg):
		return "", nil, reject(ReasonAlgNotAllowed, "key %s cannot verify %s (it verifies %s)", quote(kid), alg, JoinAlgorithms(key.algorithms))
	}
	return kid, key.material, nil
}

// rejection maps a parse error to an *Error. Header problems come first: the
// jwt parser reports a disallowed algorithm as an invalid signature.
func rejection(err error, token *jwt.Token, claims *tokenClaims, state *verifierState) *Error {
	allowed := state.keys.algorithms
	var rejected *Error
	switch {
	case errors.As(err, &rejected):
		return rejected
	case errors.Is(err, jwt.ErrTokenMalformed), token == nil:
		return &Error{Reason: ReasonMalformed, err: err}
	}
	alg, isString := token.Header["alg"].(string)
	switch {
	case !isString:
		return reject(ReasonMalformed, "header has no alg")
	case !slices.Contains(allowed, v1alpha1.JWTAlgorithm(alg)):
		return reject(ReasonAlgNotAllowed, "alg %s is not allowed (allowed: %s)", quote(alg), JoinAlgorithms(allowed))
	case errors.Is(err, jwt.ErrTokenSignatureInvalid):
		return &Error{Reason: ReasonBadSignature, err: err}
	}
	return state.settings.claimsRejection(err, claims)
}

// claimsRejection maps a claims validation error to an *Error. Several claims
// can fail at once; the first match in this order wins.
func (s *verifierSettings) claimsRejection(err error, claims *tokenClaims) *Error {
	var reason Reason
	switch {
	case errors.Is(err, jwt.ErrInvalidType):
		reason = ReasonMalformed
	case missingExp(claims):
		reason = ReasonMissingExp
	case errors.Is(err, jwt.ErrTokenExpired):
		reason = ReasonExpired
	case errors.Is(err, jwt.ErrTokenNotValidYet):
		reason = ReasonNotYetValid
	case errors.Is(err, jwt.ErrTokenUsedBeforeIssued):
		reason = ReasonIssuedInFuture
	case errors.Is(err, jwt.ErrTokenInvalidIssuer), s.issuer != "" && missingIssuer(claims):
		reason = ReasonWrongIssuer
	case errors.Is(err, jwt.ErrTokenInvalidAudience), errors.Is(err, jwt.ErrTokenRequiredClaimMissing):
		// With exp and iss present, the only other required claim is aud.
		reason = ReasonWrongAudience
	default:
		reason = ReasonMalformed
	}
	return &Error{Reason: reason, err: err}
}

// missingExp reports whether the claims have no usable "exp".
func missingExp(claims *tokenClaims) bool {
	exp, err := claims.GetExpirationTime()
	return err == nil && exp == nil
}

// missingIssuer reports whether the claims have no "iss".
func missingIssuer(claims *tokenClaims) bool {
	iss, err := claims.GetIssuer()
	return err == nil && iss == ""
}

// identity builds the Identity of verified claims.
func (s *verifierSettings) identity(claims *tokenClaims, kid string) (Identity, error) {
	user := claims.values[claimUser]
	if user.kind != claimString || user.str == "" {
		return Identity{}, reject(ReasonMissingUser, "claim %q is missing, empty or not a string", s.userIDClaim)
	}
	// The parser has required a well-typed "exp", so there is no error here.
	exp, _ := claims.GetExpirationTime()
	return Identity{
		UserID:     user.str,
		ExpiresAt:  exp.Time,
		CanPublish: hasGrant(claims.values[claimGrant], s.grant.Value),
		KeyID:      kid,
	}, nil
}

// hasGrant reports whether a grant claim, a space-separated string (OAuth
// "scope") or an array of strings, contains value.
func hasGrant(claim claimValue, value string) bool {
	switch claim.kind {
	case claimString:
		return slices.Contains(strings.Fields(claim.str), value)
	case claimStrings:
		return slices.Contains(claim.strs, value)
	case claimOther:
		elements, _ := claim.other.([]any)
		for _, element := range elements {
			if s, isString := element.(string); isString && s == value {
				return true
			}
		}
	}
	return false
}

// publishGrant fills the empty fields of a grant with the spec defaults.
func publishGrant(grant v1alpha1.PublishGrantSpec) v1alpha1.PublishGrantSpec {
	return v1alpha1.PublishGrantSpec{
		Claim: cmp.Or(grant.Claim, v1alpha1.DefaultPublishGrantClaim),
		Value: cmp.Or(grant.Value, v1alpha1.DefaultPublishGrantValue),
	}
}

// quote quotes an attacker-controlled header value for an error message,
// truncated and escaped so it cannot flood or forge log lines.
func quote(s string) string {
	if len(s) > maxEchoedHeaderBytes {
		return fmt.Sprintf("%q...", s[:maxEchoedHeaderBytes])
	}
	return fmt.Sprintf("%q", s)
}
