package publisher_test

import (
	"io"
	"net/http"
	"net/http/httptest"
	"sync"
	"testing"

	. "github.com/onsi/ginkgo/v2"

	"github.com/herald-notify/herald/internal/testutil"
)

func TestPublisher(t *testing.T) {
	testutil.RunSuite(t, "Publish API client")
}

// token is the Bearer token of the suite's clients.
const token = "header.payload.signature"

// recorded is a request as the fake streamer received it.
type recorded struct {
	Method string
	Path   string
	Header http.Header
	Body   string
}

// fakeStreamer stands in for the streamer's publish API: it records every
// request and answers with respond.
type fakeStreamer struct {
	server *httptest.Server

	mu       sync.Mutex
	requests []recorded
}

// newFakeStreamer starts a fake streamer that answers with respond; it is
// closed when the spec ends.
func newFakeStreamer(respond http.HandlerFunc) *fakeStreamer {
	f := &fakeStreamer{}
	f.server = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		body, err := io.ReadAll(r.Body)
		if err != nil {
			http.Error(w, err.Error(), http.StatusBadRequest)
			return
		}
		f.mu.Lock()
		f.requests = append(f.requests, recorded{Method: r.Method, Path: r.URL.Path, Header: r.Header.Clone(), Body: string(body)})
		f.mu.Unlock()
		respond(w, r)
	}))
	DeferCleanup(f.server.Close)
	return f
}

// URL is the fake streamer's base URL.
func (f *fakeStreamer) URL() string { return f.server.URL }

// Requests returns the requests received so far.
func (f *fakeStreamer) Requests() []recorded {
	f.mu.Lock()
	defer f.mu.Unlock()
	return append([]recorded(nil), f.requests...)
}

// answer is a handler that writes status, the headers given as name-value
// pairs, and body.
func answer(status int, body string, headers ...string) http.HandlerFunc {
	return func(w http.ResponseWriter, _ *http.Request) {
		for i := 0; i+1 < len(headers); i += 2 {
			w.Header().Set(headers[i], headers[i+1])
		}
		w.WriteHeader(status)
		_, _ = io.WriteString(w, body)
	}
}

// accepted answers 202 with a JSON body.
func accepted(body string) http.HandlerFunc {
	return answer(http.StatusAccepted, body, "Content-Type", "application/json")
}

// apiError answers the streamer's JSON error.
func apiError(status int, code, message string, headers ...string) http.HandlerFunc {
	body := `{"error":{"code":"` + code + `","message":"` + message + `"}}`
	return answer(status, body, append([]string{"Content-Type", "application/json"}, headers...)...)
}
