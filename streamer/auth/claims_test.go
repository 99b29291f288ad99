package auth_test

import (
	"encoding/base64"
	"fmt"
	"time"

	"github.com/golang-jwt/jwt/v5"
	. "github.com/onsi/ginkgo/v2"
	. "github.com/onsi/gomega"

	"github.com/herald-notify/herald/api/v1alpha1"
	"github.com/herald-notify/herald/streamer/auth"
)

// The verifier decodes only the claims it reads, from the payload's JSON as
// written: these specs sign payloads by hand, with what a map cannot hold
// (duplicates, escapes, numbers out of range).
var _ = Describe("Verifier claims", func() {
	var (
		key      []byte
		verifier *auth.Verifier
	)

	BeforeEach(func() {
		key = secret(32)
		keys := must(auth.ParseKeys([]v1alpha1.JWTAlgorithm{v1alpha1.HS256}, map[string][]byte{"shared": key}))
		verifier = newVerifier(options(keys, newClock(epoch)))
	})

	// payload is a payload of the suite's issuer and audience, valid at
	// epoch, followed by the claims of more (JSON members, a leading comma
	// included); the later of two equal names wins, as in JSON decoders.
	payload := func(more string) string {
		return fmt.Sprintf(`{"iss":%q,"aud":%q,"iat":%d,"exp":%d%s}`,
			issuer, audience, epoch.Unix(), epoch.Add(5*time.Minute).Unix(), more)
	}
	// sign signs a payload as written with HS256.
	sign := func(payload string) string {
		signing := base64.RawURLEncoding.EncodeToString([]byte(`{"alg":"HS256","kid":"shared"}`)) + "." +
			base64.RawURLEncoding.EncodeToString([]byte(payload))
		signature := must(jwt.SigningMethodHS256.Sign(signing, key))
		return signing + "." + base64.RawURLEncoding.EncodeToString(signature)
	}

	DescribeTable("accepts, with the user id",
		func(payload string, user string) {
			identity, err := verifier.Verify(sign(payload))
			Expect(err).NotTo(HaveOccurred())
			Expect(identity.UserID).To(Equal(user))
		},
		Entry("the plain claims", payload(`,"sub":"alice"`), "alice"),
		Entry("a user id with escapes and non-ASCII characters", payload(`,"sub":"caf\u00e9 \"a\" é"`), `café "a" é`),
		Entry("a claim name written with an escape", payload(`,"s\u0075b":"alice"`), "alice"),
		Entry("the later of two sub claims", payload(`,"sub":"mallory","sub":"alice"`), "alice"),
		Entry("an aud array holding the audience among others", payload(`,"aud":["other","herald"],"sub":"alice"`), "alice"),
		Entry("whitespace everywhere", "\n{ \"sub\" :\t\"alice\" , "+payload("")[1:]+" \r\n", "alice"),
		Entry("nested claims of any shape", payload(`,"sub":"alice","ctx":{"roles":["a",{"b":[1,2.5e3,null,true]}],"s":"}]\""}`), "alice"),
	)

	It("reads exp with its fraction, truncated to whole seconds", func() {
		identity, err := verifier.Verify(sign(fmt.Sprintf(`{"iss":%q,"aud":%q,"sub":"alice","exp":%d.75}`,
			issuer, audience, epoch.Add(time.Minute).Unix())))
		Expect(err).NotTo(HaveOccurred())
		Expect(identity.ExpiresAt).To(BeTemporally("==", epoch.Add(time.Minute)))
	})

	DescribeTable("rejects, with the reason",
		func(payload string, reason auth.Reason) {
			identity, err := verifier.Verify(sign(payload))
			Expect(reasonOf(err)).To(Equal(reason), "error: %v", err)
			Expect(identity).To(BeZero())
		},
		Entry("an exp of 0, which is no exp", payload(`,"sub":"alice","exp":0`), auth.ReasonMissingExp),
		Entry("an exp that is null", payload(`,"sub":"alice","exp":null`), auth.ReasonMalformed),
		Entry("an exp written as a string of digits", payload(fmt.Sprintf(`,"sub":"alice","exp":"%d"`, epoch.Add(time.Minute).Unix())), auth.ReasonMalformed),
		Entry("an nbf that is not a number", payload(`,"sub":"alice","nbf":true`), auth.ReasonMalformed),
		Entry("an iss that is not a string", payload(`,"sub":"alice","iss":7`), auth.ReasonMalformed),
		Entry("an aud array holding a non-string", payload(`,"sub":"alice","aud":["herald",7]`), auth.ReasonMalformed),
		Entry("an empty aud array", payload(`,"sub":"alice","aud":[]`), auth.ReasonWrongAudience),
		Entry("an aud that is neither a string nor an array", payload(`,"sub":"alice","aud":{"herald":true}`), auth.ReasonWrongAudience),
		Entry("a sub only in another case", payload(`,"SUB":"alice","Sub":"alice"`), auth.ReasonMissingUser),
		Entry("a later sub that is empty", payload(`,"sub":"alice","sub":""`), auth.ReasonMissingUser),
		Entry("a sub that is null", payload(`,"sub":null`), auth.ReasonMissingUser),
		Entry("a number out of range in any claim", payload(`,"sub":"alice","other":{"n":[1e400]}`), auth.ReasonMalformed),
		Entry("a payload that is null", "null", auth.ReasonMissingExp),
		Entry("a payload that is an array", `["sub","alice"]`, auth.ReasonMalformed),
		Entry("a payload that is not JSON", `{"sub":"alice"`, auth.ReasonMalformed),
	)
})
