package auth

import (
	"encoding/json"
	"fmt"
	"reflect"
	"testing"
	"time"

	"github.com/golang-jwt/jwt/v5"

	"github.com/herald-notify/herald/api/v1alpha1"
)

// payloadSeeds are payloads whose claims decode in unusual ways: types,
// duplicates, escapes, case, nesting and numbers at float64's bounds.
var payloadSeeds = []string{
	`{"sub":"alice","iss":"https://issuer.example","aud":["herald"],"iat":1893553445,"exp":1893553745}`,
	`{"sub":"alice","aud":"herald","exp":1893553745.75,"nbf":1e9,"scope":"openid notifications:publish"}`,
	`{}`, ` { } `, `null`, `[]`, `"sub"`, `7`, `true`,
	`{"exp":0,"iat":-0,"nbf":-1.5}`,
	`{"exp":"1893553745","iat":null,"nbf":true,"iss":7,"sub":null,"aud":[null]}`,
	`{"aud":[],"scope":["notifications:publish",7],"permissions":{"publish":true}}`,
	`{"aud":["a","b"],"aud":"c","sub":"first","sub":"second"}`,
	`{"SUB":"bob","Exp":1,"sub":"alice"}`,
	`{"s\u0075b":"escaped","\u0065xp":1893553745}`,
	`{"sub":"caf\u00e9 \"quoted\" \\ \/","iss":"ünïcödé"}`,
	"{\"sub\":\"\xff\xfe invalid utf-8\",\"\xffkey\":1}",
	`{"other":1e400,"sub":"alice"}`,
	`{"nested":{"deep":[1,2,{"n":-1e999}]},"sub":"alice"}`,
	`{"exp":1.7976931348623157e308,"iat":5e-324,"nbf":1e-400}`,
	`{"nested":{"a":[1,"x",{"b":null}],"c":"}]"},"sub":"after the nesting"}`,
	"{\n\t\"sub\" :\r\n \"spaced\" ,\"exp\"\t:\t12 }",
}

// FuzzTokenClaimsMatchMapClaims checks that the claims Verify decodes, and
// what they answer the jwt validator, are those of jwt.MapClaims for any
// payload: same decoding error, same values, same errors from the getters.
func FuzzTokenClaimsMatchMapClaims(f *testing.F) {
	for _, seed := range payloadSeeds {
		f.Add([]byte(seed), "sub", "scope")
		f.Add([]byte(seed), "email", "permissions")
	}
	f.Fuzz(func(t *testing.T, payload []byte, userIDClaim, grantClaim string) {
		names := claimNamesOf(verifierSettings{userIDClaim: userIDClaim, grant: v1alpha1.PublishGrantSpec{Claim: grantClaim}})
		mapClaims := jwt.MapClaims{}
		mapErr := json.Unmarshal(payload, &mapClaims)
		// As jwt's parser decodes a claims type that is not a map: through
		// the jwt.Claims interface.
		claims := getClaims(names)
		defer putClaims(claims)
		var asInterface jwt.Claims = claims
		err := json.Unmarshal(payload, &asInterface)
		if fmt.Sprint(err) != fmt.Sprint(mapErr) {
			t.Fatalf("payload %q: decoding error %v, MapClaims's %v", payload, err, mapErr)
		}
		if err != nil {
			return
		}
		same(t, payload, "the user id", claims.values[claimUser].asMapValue(), mapClaims[userIDClaim])
		same(t, payload, "the grant", claims.values[claimGrant].asMapValue(), mapClaims[grantClaim])
		for _, getter := range []struct {
			name string
			get  func(jwt.Claims) (any, error)
		}{
			{"exp", func(c jwt.Claims) (any, error) { return c.GetExpirationTime() }},
			{"nbf", func(c jwt.Claims) (any, error) { return c.GetNotBefore() }},
			{"iat", func(c jwt.Claims) (any, error) { return c.GetIssuedAt() }},
			{"iss", func(c jwt.Claims) (any, error) { return c.GetIssuer() }},
			{"sub", func(c jwt.Claims) (any, error) { return c.GetSubject() }},
			{"aud", func(c jwt.Claims) (any, error) { return c.GetAudience() }},
		} {
			got, gotErr := getter.get(claims)
			want, wantErr := getter.get(mapClaims)
			same(t, payload, getter.name, got, want)
			if fmt.Sprint(gotErr) != fmt.Sprint(wantErr) {
				t.Fatalf("payload %q: %s error %v, MapClaims's %v", payload, getter.name, gotErr, wantErr)
			}
		}
	})
}

func same(t *testing.T, payload []byte, what string, got, want any) {
	t.Helper()
	if !reflect.DeepEqual(got, want) {
		t.Fatalf("payload %q: %s is %#v, MapClaims's %#v", payload, what, got, want)
	}
}

// BenchmarkVerifyHS256 is the verifier's share of a connect: one HS256
// token of the usual claims.
func BenchmarkVerifyHS256(b *testing.B) {
	key := []byte("0123456789abcdef0123456789abcdef")
	keys, err := ParseKeys([]v1alpha1.JWTAlgorithm{v1alpha1.HS256}, map[string][]byte{"bench": key})
	if err != nil {
		b.Fatal(err)
	}
	verifier, err := NewVerifier(Options{Keys: keys, Audiences: []string{"herald"}, Issuer: "https://issuer.example"})
	if err != nil {
		b.Fatal(err)
	}
	token, err := Sign(TokenClaims{
		Subject: "user-12345", Issuer: "https://issuer.example", Audience: []string{"herald"},
		IssuedAt: time.Now(), ExpiresAt: time.Now().Add(time.Hour),
	}, v1alpha1.HS256, "bench", key)
	if err != nil {
		b.Fatal(err)
	}
	b.ReportAllocs()
	for b.Loop() {
		if _, err := verifier.Verify(token); err != nil {
			b.Fatal(err)
		}
	}
}
