package auth

import (
	"encoding/json"
	"fmt"
	"math"
	"strconv"
	"sync"
	"time"

	"github.com/golang-jwt/jwt/v5"
)

// The claims Verify reads, as indexes into tokenClaims.values.
const (
	claimExp = iota
	claimNbf
	claimIat
	claimIss
	claimAud
	claimSub
	// claimUser is the user-id claim (Options.UserIDClaim).
	claimUser
	// claimGrant is the publish grant's claim (Options.PublishGrant).
	claimGrant
	claimCount
)

// claimNames names the claims of tokenClaims.values; two may be the same
// claim (the user id is "sub" by default).
type claimNames [claimCount]string

// claimNamesOf names the claims Verify reads with settings.
func claimNamesOf(settings verifierSettings) *claimNames {
	return &claimNames{"exp", "nbf", "iat", "iss", "aud", "sub", settings.userIDClaim, settings.grant.Claim}
}

// tokenClaims are the claims of a token's payload that Verify reads. They
// hold the values jwt.MapClaims would hold for those claims (float64, string,
// []any, ...) and answer the jwt validator as MapClaims does, with the same
// errors; the other claims of the payload are skipped, not decoded into a map.
type tokenClaims struct {
	names  *claimNames
	values [claimCount]claimValue
	// dates hold what the time claims' getters return, so that the
	// validator's calls allocate nothing; they live as long as the claims.
	dates [claimIat + 1]jwt.NumericDate
}

// claimValue is one claim's decoded JSON value, by kind, so that the usual
// claims (strings, numbers, arrays of strings) are not boxed in an any.
type claimValue struct {
	kind   claimKind
	str    string
	number float64
	// strs is an array whose elements are all strings.
	strs []string
	// other is any other value (null, a boolean, an object, an array with
	// other elements), as encoding/json decodes it into an any.
	other any
}

// claimKind is the kind of a claimValue.
type claimKind uint8

// The kinds of claim values.
const (
	claimAbsent claimKind = iota
	claimString
	claimNumber
	claimStrings
	claimOther
)

// claimValueOf is the claimValue of a value encoding/json decoded into an any.
func claimValueOf(value any) claimValue {
	switch v := value.(type) {
	case string:
		return claimValue{kind: claimString, str: v}
	case float64:
		return claimValue{kind: claimNumber, number: v}
	case []any:
		strs := make([]string, 0, len(v))
		for _, element := range v {
			s, isString := element.(string)
			if !isString {
				return claimValue{kind: claimOther, other: value}
			}
			strs = append(strs, s)
		}
		return claimValue{kind: claimStrings, strs: strs}
	default:
		return claimValue{kind: claimOther, other: value}
	}
}

// asMapValue is the value jwt.MapClaims holds for the claim, nil if absent.
func (v claimValue) asMapValue() any {
	switch v.kind {
	case claimString:
		return v.str
	case claimNumber:
		return v.number
	case claimStrings:
		elements := make([]any, len(v.strs))
		for i, s := range v.strs {
			elements[i] = s
		}
		return elements
	default:
		return v.other
	}
}

// claimsPool holds the claims of Verify calls, one per connect otherwise.
var claimsPool = sync.Pool{New: func() any { return new(tokenClaims) }}

// getClaims returns empty claims that read names.
func getClaims(names *claimNames) *tokenClaims {
	c := claimsPool.Get().(*tokenClaims)
	c.names = names
	return c
}

// putClaims returns c to the pool, holding nothing of its token.
func putClaims(c *tokenClaims) {
	*c = tokenClaims{}
	claimsPool.Put(c)
}

var _ jwt.Claims = (*tokenClaims)(nil)

// UnmarshalJSON decodes the claims Verify reads from a payload. A payload
// the fast path does not handle (escaped or non-ASCII claim names, numbers
// out of float64's range, not an object) is decoded as jwt.MapClaims, so that
// it is accepted, or rejected with the error, exactly as MapClaims would be.
func (c *tokenClaims) UnmarshalJSON(data []byte) error {
	c.values = [claimCount]claimValue{}
	if c.scan(data) {
		return nil
	}
	c.values = [claimCount]claimValue{}
	var all jwt.MapClaims
	if err := json.Unmarshal(data, &all); err != nil {
		return err
	}
	for i, name := range c.names {
		if value, ok := all[name]; ok {
			c.values[i] = claimValueOf(value)
		}
	}
	return nil
}

// scan reads a payload that is one JSON object, keeping the values of the
// claims of c.names; a later duplicate wins, as in a map. It returns false,
// for the slow path, on anything else or anything it does not handle.
func (c *tokenClaims) scan(data []byte) bool {
	i := skipSpace(data, 0)
	if i >= len(data) || data[i] != '{' {
		return false
	}
	i = skipSpace(data, i+1)
	if i < len(data) && data[i] == '}' {
		return skipSpace(data, i+1) == len(data)
	}
	for i < len(data) {
		keyEnd, plain := scanString(data, i)
		if !plain {
			return false
		}
		key := data[i+1 : keyEnd-1]
		i = skipSpace(data, keyEnd)
		if i >= len(data) || data[i] != ':' {
			return false
		}
		start := skipSpace(data, i+1)
		end, ok := skipValue(data, start)
		if !ok {
			return false
		}
		for n, name := range c.names {
			if name == string(key) {
				value, ok := decodeValue(data[start:end])
				if !ok {
					return false
				}
				c.values[n] = value
			}
		}
		i = skipSpace(data, end)
		switch {
		case i >= len(data):
			return false
		case data[i] == '}':
			return skipSpace(data, i+1) == len(data)
		case data[i] != ',':
			return false
		}
		i = skipSpace(data, i+1)
	}
	return false
}

// skipSpace returns the index of the first byte at or after i that is not
// JSON whitespace.
func skipSpace(data []byte, i int) int {
	for i < len(data) && (data[i] == ' ' || data[i] == '\t' || data[i] == '\n' || data[i] == '\r') {
		i++
	}
	return i
}

// scanString returns the index after the JSON string starting at i, and
// whether it is plain: closed, ASCII and without escapes, so that its bytes
// between the quotes are its value. end is meaningful only when plain.
func scanString(data []byte, i int) (end int, plain bool) {
	if i >= len(data) || data[i] != '"' {
		return 0, false
	}
	for j := i + 1; j < len(data); j++ {
		switch c := data[j]; {
		case c == '"':
			return j + 1, true
		case c == '\\' || c < 0x20 || c >= 0x80:
			return 0, false
		}
	}
	return 0, false
}

// skipValue returns the index after the JSON value starting at i. It is
// false for a value it cannot vouch for: a number out of float64's range
// (map decoding rejects it, even nested), or anything not well formed.
func skipValue(data []byte, i int) (int, bool) {
	depth := 0
	for i < len(data) {
		switch c := data[i]; {
		case c == '{' || c == '[':
			depth++
			i++
		case c == '}' || c == ']':
			if depth == 0 {
				return 0, false
			}
			depth--
			i++
		case c == ',' || c == ':' || c == ' ' || c == '\t' || c == '\n' || c == '\r':
			if depth == 0 {
				return 0, false
			}
			i++
		case c == '"':
			end, ok := skipString(data, i)
			if !ok {
				return 0, false
			}
			i = end
		case c == '-' || c >= '0' && c <= '9':
			end := skipNumber(data, i)
			if _, err := strconv.ParseFloat(string(data[i:end]), 64); err != nil {
				return 0, false
			}
			i = end
		case c == 't' || c == 'f' || c == 'n':
			end, ok := skipLiteral(data, i)
			if !ok {
				return 0, false
			}
			i = end
		default:
			return 0, false
		}
		if depth == 0 {
			return i, true
		}
	}
	return 0, false
}

// skipString returns the index after the JSON string starting at i, escapes
// and all.
func skipString(data []byte, i int) (int, bool) {
	for j := i + 1; j < len(data); j++ {
		switch data[j] {
		case '\\':
			j++
		case '"':
			return j + 1, true
		}
	}
	return 0, false
}

// skipNumber returns the index after the characters a JSON number can hold.
func skipNumber(data []byte, i int) int {
	for i < len(data) {
		switch c := data[i]; {
		case c >= '0' && c <= '9', c == '-', c == '+', c == '.', c == 'e', c == 'E':
			i++
		default:
			return i
		}
	}
	return i
}

// skipLiteral returns the index after true, false or null at i.
func skipLiteral(data []byte, i int) (int, bool) {
	for _, literal := range [...]string{"true", "false", "null"} {
		if end := i + len(literal); end <= len(data) && string(data[i:end]) == literal {
			return end, true
		}
	}
	return 0, false
}

// decodeValue decodes one JSON value as a map[string]any value decodes it:
// plain strings, numbers and arrays of plain strings directly, the rest with
// encoding/json.
func decodeValue(raw []byte) (claimValue, bool) {
	switch c := raw[0]; {
	case c == '"':
		if end, plain := scanString(raw, 0); plain && end == len(raw) {
			return claimValue{kind: claimString, str: string(raw[1 : len(raw)-1])}, true
		}
	case c == '-' || c >= '0' && c <= '9':
		f, err := strconv.ParseFloat(string(raw), 64)
		return claimValue{kind: claimNumber, number: f}, err == nil
	case c == '[':
		if strs, ok := plainStrings(raw); ok {
			return claimValue{kind: claimStrings, strs: strs}, true
		}
	}
	var value any
	err := json.Unmarshal(raw, &value)
	return claimValueOf(value), err == nil
}

// plainStrings decodes an array of plain strings (see scanString), such as
// an "aud" array; false for any other array.
func plainStrings(raw []byte) ([]string, bool) {
	i := skipSpace(raw, 1)
	if i < len(raw) && raw[i] == ']' {
		return []string{}, skipSpace(raw, i+1) == len(raw)
	}
	var strs []string
	for i < len(raw) {
		end, plain := scanString(raw, i)
		if !plain {
			return nil, false
		}
		strs = append(strs, string(raw[i+1:end-1]))
		i = skipSpace(raw, end)
		switch {
		case i >= len(raw):
			return nil, false
		case raw[i] == ']':
			return strs, skipSpace(raw, i+1) == len(raw)
		case raw[i] != ',':
			return nil, false
		}
		i = skipSpace(raw, i+1)
	}
	return nil, false
}

// GetExpirationTime implements jwt.Claims as MapClaims does.
func (c *tokenClaims) GetExpirationTime() (*jwt.NumericDate, error) {
	return c.numericDate(claimExp)
}

// GetNotBefore implements jwt.Claims as MapClaims does.
func (c *tokenClaims) GetNotBefore() (*jwt.NumericDate, error) { return c.numericDate(claimNbf) }

// GetIssuedAt implements jwt.Claims as MapClaims does.
func (c *tokenClaims) GetIssuedAt() (*jwt.NumericDate, error) { return c.numericDate(claimIat) }

// GetIssuer implements jwt.Claims as MapClaims does.
func (c *tokenClaims) GetIssuer() (string, error) { return c.str(claimIss) }

// GetSubject implements jwt.Claims as MapClaims does.
func (c *tokenClaims) GetSubject() (string, error) { return c.str(claimSub) }

// GetAudience implements jwt.Claims as MapClaims does: a string, or an array
// of strings; anything else is no audience.
func (c *tokenClaims) GetAudience() (jwt.ClaimStrings, error) {
	switch aud := c.values[claimAud]; {
	case aud.kind == claimString:
		return jwt.ClaimStrings{aud.str}, nil
	case aud.kind == claimStrings && len(aud.strs) > 0:
		return aud.strs, nil
	case aud.kind == claimOther:
		// An array with an element that is not a string.
		if _, isArray := aud.other.([]any); isArray {
			return nil, c.invalid(claimAud)
		}
	}
	return nil, nil
}

// numericDate reads a time claim: absent or 0 is none, a number is seconds
// since the epoch (fraction included, truncated to jwt.TimePrecision).
func (c *tokenClaims) numericDate(claim int) (*jwt.NumericDate, error) {
	v := c.values[claim]
	switch {
	case v.kind == claimAbsent:
		return nil, nil
	case v.kind != claimNumber:
		return nil, c.invalid(claim)
	case v.number == 0:
		return nil, nil
	}
	seconds := v.number
	whole, fraction := math.Modf(seconds)
	// As jwt.NewNumericDate, which MapClaims uses.
	c.dates[claim] = jwt.NumericDate{Time: time.Unix(int64(whole), int64(fraction*1e9)).Truncate(jwt.TimePrecision)}
	return &c.dates[claim], nil
}

// str reads a string claim: absent is "".
func (c *tokenClaims) str(claim int) (string, error) {
	switch v := c.values[claim]; v.kind {
	case claimAbsent:
		return "", nil
	case claimString:
		return v.str, nil
	default:
		return "", c.invalid(claim)
	}
}

// invalid is MapClaims's error for a claim of the wrong type.
func (c *tokenClaims) invalid(claim int) error {
	return fmt.Errorf("%w: %s is invalid", jwt.ErrInvalidType, c.names[claim])
}
