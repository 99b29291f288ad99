package server

import (
	"fmt"
	"net/http"

	"github.com/herald-notify/herald/streamer/auth"
	"github.com/herald-notify/herald/streamer/httpapi"
)

// Header limits. net/http answers a request whose head exceeds its server's
// MaxHeaderBytes itself, before any handler runs, with a plain-text 431 and
// no WWW-Authenticate. So the listeners read up to ReadHeaderBytes, and the
// handler answers a head past MaxHeaderBytes in the contract's form.
const (
	// MaxHeaderBytes bounds a request's head (request line and header
	// fields): room for a token in a header or cookie
	// (auth.DefaultMaxTokenBytes), and little else.
	MaxHeaderBytes = 32 << 10
	// ReadHeaderBytes is the http.Server.MaxHeaderBytes the streamer's
	// listeners use: net/http's default (1 MiB), plus MaxHeaderBytes for
	// the rest of a request whose token alone is 1 MiB. Past it, net/http's
	// own 431 remains.
	ReadHeaderBytes = 1<<20 + MaxHeaderBytes
)

// limitHeaders answers a request whose head is larger than MaxHeaderBytes:
// 401 with WWW-Authenticate when an oversized token makes it so (the
// verifier's size limit, which the token would fail anyway), else 431
// naming the largest field. It reads the head only as net/http parsed it.
func (s *Server) limitHeaders(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		size, largest, largestSize := headSize(r)
		if size <= MaxHeaderBytes {
			next.ServeHTTP(w, r)
			return
		}
		tooLarge := fmt.Sprintf("the request's head is %d bytes, more than the %d allowed", size, MaxHeaderBytes)
		if token, ok := s.oversizedToken(r); ok {
			_, err := s.verify(token) // counts the failure; its message gives the token's limit
			httpapi.WriteError(w, httpapi.CodeUnauthorized, tooLarge+": "+err.Error())
			return
		}
		httpapi.WriteError(w, httpapi.CodeHeadersTooLarge, fmt.Sprintf("%s; the largest part is %s (%d bytes)", tooLarge, largest, largestSize))
	})
}

// oversizedToken is the request's bearer token or channel cookie, when it is
// longer than a token may be.
func (s *Server) oversizedToken(r *http.Request) (string, bool) {
	if token, ok := httpapi.BearerToken(r); ok && len(token) > auth.DefaultMaxTokenBytes {
		return token, true
	}
	if c, err := r.Cookie(s.settings().Auth.CookieName); err == nil && len(c.Value) > auth.DefaultMaxTokenBytes {
		return c.Value, true
	}
	return "", false
}

// headSize is the size of r's head as an HTTP/1.1 client writes it, and its
// largest part: the request line, or a header field by name.
func headSize(r *http.Request) (size int, largest string, largestSize int) {
	largest, largestSize = "the request line", len(r.Method)+1+len(r.RequestURI)+1+len(r.Proto)+2
	size = largestSize + len("Host: ") + len(r.Host) + 2
	for name, values := range r.Header {
		n := 0
		for _, v := range values {
			n += len(name) + 2 + len(v) + 2
		}
		size += n
		if n > largestSize {
			largest, largestSize = name, n
		}
	}
	return size, largest, largestSize
}
