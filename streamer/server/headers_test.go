package server_test

import (
	"net/http"
	"strings"
	"time"

	. "github.com/onsi/ginkgo/v2"
	. "github.com/onsi/gomega"

	notifyv1alpha1 "github.com/herald-notify/herald/api/v1alpha1"
	"github.com/herald-notify/herald/streamer/server"
)

var _ = Describe("a request whose head is larger than the streamer allows", func() {
	for _, t := range []transport{overHTTP1, overHTTP2} {
		Context("over "+string(t), func() {
			var s *streamer
			BeforeEach(func() { s = startStreamerOn(t, nil, nil) })

			// answer sends a request to path with its head adjusted by edit,
			// and returns the status, the headers and the decoded JSON body.
			answer := func(method, path string, edit func(r *http.Request)) (int, http.Header, map[string]any) {
				GinkgoHelper()
				req, err := http.NewRequest(method, s.http.URL+path, nil)
				Expect(err).NotTo(HaveOccurred())
				edit(req)
				resp, err := s.client.Do(req)
				Expect(err).NotTo(HaveOccurred())
				Expect(resp.Header.Get("Content-Type")).To(Equal("application/json"), "the contract's form, not net/http's text")
				var body map[string]any
				Expect(jsonDecode(resp, &body)).To(Succeed())
				return resp.StatusCode, resp.Header, body
			}
			mebibyteToken := strings.Repeat("a", 1<<20)

			It("answers a 1 MiB bearer token with 401, WWW-Authenticate and the token's limit, on the stream and the publish API", func() {
				for _, path := range []string{server.StreamPath, "/api/v1/notifications"} {
					status, header, body := answer(http.MethodGet, path, func(r *http.Request) {
						r.Header.Set("Authorization", "Bearer "+mebibyteToken)
					})
					Expect(status).To(Equal(http.StatusUnauthorized), path)
					Expect(header.Get("WWW-Authenticate")).To(HavePrefix("Bearer"))
					Expect(errorCode(body)).To(Equal("unauthorized"))
					Expect(body["error"]).To(HaveKeyWithValue("message", And(
						ContainSubstring("more than the 32768 allowed"), ContainSubstring("token is 1048576 bytes, more than the 8192 allowed"))))
				}
				Expect(s.metrics()).To(ContainSubstring(`herald_auth_failures_total{reason="too_large"} 2`))
			})

			It("answers a 1 MiB token in the channel's cookie with 401 and WWW-Authenticate", func() {
				status, header, body := answer(http.MethodGet, server.StreamPath, func(r *http.Request) {
					r.AddCookie(&http.Cookie{Name: notifyv1alpha1.DefaultCookieName, Value: mebibyteToken})
				})
				Expect(status).To(Equal(http.StatusUnauthorized))
				Expect(header.Get("WWW-Authenticate")).To(HavePrefix("Bearer"))
				Expect(body["error"]).To(HaveKeyWithValue("message", ContainSubstring("token is 1048576 bytes")))
			})

			It("answers other oversized headers with 431 naming the largest, and no WWW-Authenticate", func() {
				token := s.token("u1", false, time.Hour)
				status, header, body := answer(http.MethodGet, server.StreamPath, func(r *http.Request) {
					r.Header.Set("Authorization", "Bearer "+token)
					r.Header.Set("X-Padding", strings.Repeat("p", 40<<10))
				})
				Expect(status).To(Equal(http.StatusRequestHeaderFieldsTooLarge))
				Expect(header.Get("WWW-Authenticate")).To(BeEmpty(), "the token is not the problem")
				Expect(errorCode(body)).To(Equal("headers_too_large"))
				Expect(body["error"]).To(HaveKeyWithValue("message", MatchRegexp(
					`^the request's head is \d+ bytes, more than the 32768 allowed; the largest part is X-Padding \(409\d\d bytes\)$`)))
			})

			It("serves a head just under the limit", func() {
				token := s.token("u1", false, time.Hour)
				c := s.connect(func(r *http.Request) {
					r.Header.Set("Authorization", "Bearer "+token)
					r.Header.Set("X-Padding", strings.Repeat("p", 30<<10))
				})
				_, hello := c.nextJSON()
				Expect(hello).To(HaveKeyWithValue("type", "connection"))
			})
		})
	}
})
