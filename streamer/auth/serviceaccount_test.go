package auth_test

import (
	"encoding/base64"
	"strings"

	. "github.com/onsi/ginkgo/v2"
	. "github.com/onsi/gomega"

	"github.com/herald-notify/herald/streamer/auth"
)

var _ = DescribeTable("LooksLikeServiceAccountToken sends only Kubernetes tokens for Herald's audience to a TokenReview",
	func(payload string, want bool) {
		token := "eyJhbGciOiJSUzI1NiJ9." + base64.RawURLEncoding.EncodeToString([]byte(payload)) + ".c2ln"
		Expect(auth.LooksLikeServiceAccountToken(token)).To(Equal(want))
	},
	Entry("a projected token for notify.herald.dev", `{"aud":["notify.herald.dev"],"kubernetes.io":{"namespace":"apps"}}`, true),
	Entry("one audience as a string", `{"aud":"notify.herald.dev","kubernetes.io":{}}`, true),
	Entry("a token for the API server", `{"aud":["https://kubernetes.default.svc"],"kubernetes.io":{"namespace":"apps"}}`, false),
	Entry("an application JWT for Herald's audience", `{"aud":["notify.herald.dev"],"sub":"u1"}`, false),
	Entry("no JSON", `not json`, false),
)

var _ = It("LooksLikeServiceAccountToken refuses malformed and oversized tokens without decoding them", func() {
	Expect(auth.LooksLikeServiceAccountToken("a.b")).To(BeFalse())
	Expect(auth.LooksLikeServiceAccountToken("a.!!!.c")).To(BeFalse())
	huge := `{"aud":["notify.herald.dev"],"kubernetes.io":{},"pad":"` + strings.Repeat("x", auth.DefaultMaxTokenBytes) + `"}`
	Expect(auth.LooksLikeServiceAccountToken("h." + base64.RawURLEncoding.EncodeToString([]byte(huge)) + ".s")).To(BeFalse())
})
