package sse_test

import (
	"testing"
	"time"

	. "github.com/onsi/ginkgo/v2"
	. "github.com/onsi/gomega"

	"github.com/herald-notify/herald/streamer/sse"
)

// The four kinds of event Herald sends, as in the client contract.
const (
	connectionEvent   = `{"type":"connection","message":"SSE connection established","userId":"u1","timestamp":"2024-01-01T00:00:00.000Z"}`
	notificationEvent = `{"type":"notification","notificationId":"n1","notificationType":"VOCAB_TRAINER","action":"CREATE","priority":"LOW","data":{"message":"New vocab trainer available"},"timestamp":"2024-01-01T00:00:00.000Z","userId":"u1"}`
	systemEvent       = `{"type":"system","eventType":"maintenance","data":{"message":"System maintenance scheduled"},"timestamp":"2024-01-01T00:00:00.000Z"}`
	customEvent       = `{"type":"custom","eventType":"user_activity","data":{"action":"login"},"timestamp":"2024-01-01T00:00:00.000Z"}`
)

var _ = Describe("AppendFrame", func() {
	DescribeTable("writes the exact bytes of one event",
		func(f sse.Frame, want string) {
			Expect(string(sse.AppendFrame(nil, f))).To(Equal(want))
		},
		Entry("the first frame: connection event with id and retry",
			sse.Frame{ID: "1", HasID: true, Data: []byte(connectionEvent), Retry: 3 * time.Second},
			"retry: 3000\nid: 1\ndata: "+connectionEvent+"\n\n"),
		Entry("a notification",
			sse.Frame{ID: "2", HasID: true, Data: []byte(notificationEvent)},
			"id: 2\ndata: "+notificationEvent+"\n\n"),
		Entry("a system event",
			sse.Frame{ID: "18446744073709551615", HasID: true, Data: []byte(systemEvent)},
			"id: 18446744073709551615\ndata: "+systemEvent+"\n\n"),
		Entry("a custom event without id",
			sse.Frame{Data: []byte(customEvent)},
			"data: "+customEvent+"\n\n"),
		Entry("an empty id when HasID is set, which resets the client's",
			sse.Frame{HasID: true, Data: []byte("x")},
			"id:\ndata: x\n\n"),
		Entry("a position as the id",
			sse.Frame{ID: "1764653990123456-42", HasID: true, Data: []byte("x")},
			"id: 1764653990123456-42\ndata: x\n\n"),
		Entry("an id without its line breaks and NUL",
			sse.Frame{ID: "1\r\nevent: evil\x00", HasID: true, Data: []byte("x")},
			"id: 1event: evil\ndata: x\n\n"),
		Entry("an event name",
			sse.Frame{Event: "update", Data: []byte("x")},
			"event: update\ndata: x\n\n"),
		Entry("every field, in the order retry, id, event, data",
			sse.Frame{ID: "7", HasID: true, Event: "update", Data: []byte("x"), Retry: 1500 * time.Millisecond},
			"retry: 1500\nid: 7\nevent: update\ndata: x\n\n"),
		Entry("empty data as one empty data line",
			sse.Frame{},
			"data:\n\n"),
		Entry("LF in data as separate data lines",
			sse.Frame{Data: []byte("a\nb")},
			"data: a\ndata: b\n\n"),
		Entry("CRLF in data as one line break",
			sse.Frame{Data: []byte("a\r\nb")},
			"data: a\ndata: b\n\n"),
		Entry("a lone CR in data as a line break",
			sse.Frame{Data: []byte("a\rb")},
			"data: a\ndata: b\n\n"),
		Entry("LF then CR in data as two line breaks",
			sse.Frame{Data: []byte("\n\r")},
			"data:\ndata:\ndata:\n\n"),
		Entry("a trailing line break in data",
			sse.Frame{Data: []byte("a\n")},
			"data: a\ndata:\n\n"),
		Entry("a leading space in data, kept by the extra space after the colon",
			sse.Frame{Data: []byte(" a")},
			"data:  a\n\n"),
		Entry("NUL in data unchanged",
			sse.Frame{Data: []byte("a\x00b")},
			"data: a\x00b\n\n"),
		Entry("data that tries to forge fields and a second event",
			sse.Frame{ID: "1", HasID: true, Data: []byte("x\n\nid: 99\r\nevent: evil\rretry: 1")},
			"id: 1\ndata: x\ndata:\ndata: id: 99\ndata: event: evil\ndata: retry: 1\n\n"),
		Entry("an event name without its CR, LF and NUL",
			sse.Frame{Event: "a\r\nb\x00c\nevent: evil", Data: []byte("x")},
			"event: abcevent: evil\ndata: x\n\n"),
		Entry("retry truncated to whole milliseconds",
			sse.Frame{Data: []byte("x"), Retry: 1999999 * time.Microsecond},
			"retry: 1999\ndata: x\n\n"),
		Entry("no retry below one millisecond",
			sse.Frame{Data: []byte("x"), Retry: time.Millisecond - 1},
			"data: x\n\n"),
		Entry("no negative retry",
			sse.Frame{Data: []byte("x"), Retry: -time.Second},
			"data: x\n\n"),
	)

	It("appends to what dst already holds", func() {
		dst := []byte(": hi\n\n")
		Expect(string(sse.AppendFrame(dst, sse.Frame{Data: []byte("x")}))).To(Equal(": hi\n\ndata: x\n\n"))
	})

	It("allocates nothing when dst has room", func() {
		f := sse.Frame{ID: "42", HasID: true, Event: "up\ndate", Data: []byte(notificationEvent + "\r\n" + customEvent), Retry: time.Second}
		dst := sse.AppendFrame(nil, f)
		Expect(testing.AllocsPerRun(100, func() { dst = sse.AppendFrame(dst[:0], f) })).To(BeZero())
	})
})

var _ = Describe("AppendComment", func() {
	DescribeTable("writes a comment line and a blank line",
		func(text, want string) {
			Expect(string(sse.AppendComment(nil, text))).To(Equal(want))
		},
		Entry("a keep-alive", "ping", ": ping\n\n"),
		Entry("empty text", "", ":\n\n"),
		Entry("text without its CR, LF and NUL", "a\r\nb\x00c\ndata: evil", ": abcdata: evil\n\n"),
	)
})

var _ = Describe("AppendRetry", func() {
	DescribeTable("writes a frame holding only retry",
		func(d time.Duration, want string) {
			Expect(string(sse.AppendRetry(nil, d))).To(Equal(want))
		},
		Entry("whole seconds", 5*time.Second, "retry: 5000\n\n"),
		Entry("truncated to milliseconds", 2500*time.Microsecond, "retry: 2\n\n"),
		Entry("zero, to reconnect at once", time.Duration(0), "retry: 0\n\n"),
		Entry("negative as zero", -time.Second, "retry: 0\n\n"),
	)
})

var _ = Describe("ValidEventName", func() {
	DescribeTable("accepts names that AppendFrame sends unchanged",
		func(name string) {
			Expect(sse.ValidEventName(name)).To(Succeed())
		},
		Entry("empty, the default type", ""),
		Entry("a plain name", "notification"),
		Entry("spaces, colons and non-ASCII", " a: b é"),
	)

	DescribeTable("refuses names that could forge a field",
		func(name string) {
			Expect(sse.ValidEventName(name)).To(MatchError(sse.ErrInvalidEventName))
		},
		Entry("LF", "a\ndata: x"),
		Entry("CR", "a\r"),
		Entry("CRLF", "\r\n"),
		Entry("NUL", "a\x00"),
	)
})

func BenchmarkAppendFrame(b *testing.B) {
	f := sse.Frame{ID: "123456789", HasID: true, Data: []byte(notificationEvent), Retry: 3 * time.Second}
	dst := sse.AppendFrame(nil, f)
	b.ReportAllocs()
	b.SetBytes(int64(len(dst)))
	for b.Loop() {
		dst = sse.AppendFrame(dst[:0], f)
	}
}
