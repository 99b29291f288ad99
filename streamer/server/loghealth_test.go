package server_test

import (
	"errors"
	"io"
	"net/http"
	"strings"
	"sync/atomic"
	"time"

	. "github.com/onsi/ginkgo/v2"
	. "github.com/onsi/gomega"

	eventlog "github.com/herald-notify/herald/streamer/log"
	"github.com/herald-notify/herald/streamer/server"
)

// brokerLog is an embedded log that reports the health a test sets, as the
// JetStream log reports its connection.
type brokerLog struct {
	eventlog.Log
	failure atomic.Pointer[error]
}

func (l *brokerLog) LastError() error {
	if err := l.failure.Load(); err != nil {
		return *err
	}
	return nil
}

func (l *brokerLog) fail(err error) { l.failure.Store(&err) }
func (l *brokerLog) recover()       { l.failure.Store(nil) }

var _ server.HealthReporter = (*brokerLog)(nil)

var _ = Describe("readiness over a log that reports its health", func() {
	probe := func(s *streamer) func() (int, error) {
		return func() (int, error) {
			resp, err := http.Get(s.ops.URL + "/readyz")
			if err != nil {
				return 0, err
			}
			defer func() { _ = resp.Body.Close() }()
			_, _ = io.Copy(io.Discard, resp.Body)
			return resp.StatusCode, nil
		}
	}
	metric := func(s *streamer) func() (string, error) {
		return func() (string, error) {
			resp, err := http.Get(s.ops.URL + "/metrics")
			if err != nil {
				return "", err
			}
			defer func() { _ = resp.Body.Close() }()
			body, err := io.ReadAll(resp.Body)
			for _, line := range strings.Split(string(body), "\n") {
				if strings.HasPrefix(line, "herald_log_healthy ") {
					return line, err
				}
			}
			return "", err
		}
	}

	It("stays ready through a short failure, fails past the grace, and is ready again once the log is", func() {
		log := &brokerLog{Log: eventlog.NewEmbedded(eventlog.Options{})}
		s := startStreamerOver(log, nil)
		Eventually(probe(s)).Should(Equal(http.StatusOK))
		Expect(metric(s)()).To(Equal("herald_log_healthy 1"))

		failed := time.Now()
		log.fail(errors.New("not connected to NATS"))
		Expect(probe(s)()).To(Equal(http.StatusOK), "a failure shorter than the grace is ridden out")
		Eventually(metric(s)).Should(Equal("herald_log_healthy 0"))
		Eventually(probe(s)).WithTimeout(3 * server.DefaultLogUnhealthyGrace).Should(Equal(http.StatusServiceUnavailable))
		Expect(time.Since(failed)).To(BeNumerically(">=", server.DefaultLogUnhealthyGrace))

		log.recover()
		Eventually(probe(s)).Should(Equal(http.StatusOK))
		Eventually(metric(s)).Should(Equal("herald_log_healthy 1"))
	})

	It("has no log health metric over a log that does not report it", func() {
		s := startStreamer(nil)
		Eventually(probe(s)).Should(Equal(http.StatusOK))
		Expect(metric(s)()).To(BeEmpty())
	})
})
