package server_test

import (
	"net/http"
	"time"

	. "github.com/onsi/ginkgo/v2"
	. "github.com/onsi/gomega"

	notifyv1alpha1 "github.com/herald-notify/herald/api/v1alpha1"
	eventlog "github.com/herald-notify/herald/streamer/log"
	"github.com/herald-notify/herald/streamer/log/logtest"
)

var _ = Describe("a stream whose events the log dropped before the hub dispatched them", func() {
	It("is closed as lagged, counted, and its client learns on reconnect that it was not recovered", func() {
		log := logtest.NewGatedReads(eventlog.NewEmbedded(eventlog.Options{MaxEvents: 5}))
		s := startStreamerOver(log, func(spec *notifyv1alpha1.NotificationChannelSpec) { spec.History.MaxEvents = 5 })
		c := s.connectAs("u1")
		hello, _ := c.nextJSON()

		By("publishing past the log's retention faster than the hub dispatches")
		for range 12 {
			s.notify("u1")
		}
		close(log.Gate)
		By("handing out no event after the gap, only the end event")
		c.expectEndEvent(hello.ID, "lagged")
		Expect(s.metrics()).To(ContainSubstring(`herald_disconnects_total{reason="lagged"} 1`))

		token := s.token("u1", false, time.Hour)
		again := s.connect(func(r *http.Request) {
			r.Header.Set("Authorization", "Bearer "+token)
			r.Header.Set("Last-Event-ID", hello.ID)
		})
		_, data := again.nextJSON()
		Expect(data).To(HaveKeyWithValue("recovered", false))
	})
})
