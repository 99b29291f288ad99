package sse_test

import (
	"bytes"
	"time"

	. "github.com/onsi/ginkgo/v2"
	. "github.com/onsi/gomega"

	"github.com/herald-notify/herald/streamer/sse"
)

var _ = Describe("Encoding then parsing", func() {
	DescribeTable("gives back the frame",
		func(f sse.Frame, want sse.Event) {
			Expect(parseFrom(bytes.NewReader(sse.AppendFrame(nil, f)))).To(HaveExactElements(want))
		},
		Entry("the connection event",
			sse.Frame{ID: "1", HasID: true, Data: []byte(connectionEvent), Retry: 3 * time.Second},
			sse.Event{ID: "1", Data: connectionEvent, Retry: 3 * time.Second, HasRetry: true}),
		Entry("a notification",
			sse.Frame{ID: "2", HasID: true, Data: []byte(notificationEvent)},
			sse.Event{ID: "2", Data: notificationEvent}),
		Entry("a named event",
			sse.Frame{ID: "3", HasID: true, Event: "system", Data: []byte(systemEvent)},
			sse.Event{ID: "3", Event: "system", Data: systemEvent}),
		Entry("a named event with a leading space",
			sse.Frame{Event: " custom", Data: []byte(customEvent)},
			sse.Event{Event: " custom", Data: customEvent}),
		Entry("empty data",
			sse.Frame{},
			sse.Event{}),
		Entry("data with LF",
			sse.Frame{Data: []byte("a\n\nb\n")},
			sse.Event{Data: "a\n\nb\n"}),
		Entry("data with CR and CRLF, as LF",
			sse.Frame{Data: []byte("a\r\nb\rc\n\r")},
			sse.Event{Data: "a\nb\nc\n\n"}),
		Entry("data with leading spaces",
			sse.Frame{Data: []byte(" a\n  b")},
			sse.Event{Data: " a\n  b"}),
		Entry("data that tries to forge fields",
			sse.Frame{ID: "1", HasID: true, Data: []byte("x\n\nid: 99\nevent: evil\nretry: 1")},
			sse.Event{ID: "1", Data: "x\n\nid: 99\nevent: evil\nretry: 1"}),
		Entry("an event name that tries to forge fields, without its CR, LF and NUL",
			sse.Frame{Event: "a\n\nid: 99\r\x00", Data: []byte("x")},
			sse.Event{Event: "aid: 99", Data: "x"}),
	)

	It("reads a stream of frames, comments and a closing retry", func() {
		var stream []byte
		stream = sse.AppendFrame(stream, sse.Frame{ID: "1", HasID: true, Data: []byte(connectionEvent), Retry: 3 * time.Second})
		stream = sse.AppendComment(stream, "keep-alive")
		stream = sse.AppendFrame(stream, sse.Frame{ID: "2", HasID: true, Data: []byte(notificationEvent)})
		stream = sse.AppendFrame(stream, sse.Frame{Data: []byte(systemEvent)})
		stream = sse.AppendRetry(stream, 250*time.Millisecond)

		r := sse.NewReader(bytes.NewReader(stream))
		Expect(readToEOF(r)).To(HaveExactElements(
			sse.Event{ID: "1", Data: connectionEvent, Retry: 3 * time.Second, HasRetry: true},
			comment("keep-alive"),
			sse.Event{ID: "2", Data: notificationEvent},
			sse.Event{ID: "2", Data: systemEvent},
		))
		Expect(r.LastEventID()).To(Equal("2"))
		expectRetry(r, 250*time.Millisecond)
	})
})
