package sse_test

import (
	"errors"
	"io"
	"strings"
	"testing/iotest"
	"time"

	. "github.com/onsi/ginkgo/v2"
	. "github.com/onsi/gomega"

	"github.com/herald-notify/herald/streamer/sse"
)

// readAll returns every event and comment the reader yields, and the error
// that ended the stream.
func readAll(r *sse.Reader) ([]sse.Event, error) {
	var events []sse.Event
	for {
		ev, err := r.Next()
		if err != nil {
			return events, err
		}
		events = append(events, ev)
	}
}

// parse reads a whole stream given as a string and expects it to end
// cleanly.
func parse(stream string) []sse.Event {
	GinkgoHelper()
	return parseFrom(strings.NewReader(stream))
}

// parseFrom reads a whole stream and expects it to end cleanly.
func parseFrom(src io.Reader) []sse.Event {
	GinkgoHelper()
	return readToEOF(sse.NewReader(src))
}

// readToEOF reads the rest of a stream and expects it to end cleanly.
func readToEOF(r *sse.Reader) []sse.Event {
	GinkgoHelper()
	events, err := readAll(r)
	Expect(err).To(MatchError(io.EOF))
	return events
}

// expectRetry expects the reader's reconnection time to be set to d.
func expectRetry(r *sse.Reader, d time.Duration) {
	GinkgoHelper()
	got, ok := r.Retry()
	Expect(ok).To(BeTrue(), "retry is set")
	Expect(got).To(Equal(d))
}

// data is an event with only data, as dispatched on a stream without ids.
func data(d string) sse.Event {
	return sse.Event{Data: d}
}

// comment is a comment line as Next returns it.
func comment(text string) sse.Event {
	return sse.Event{IsComment: true, Comment: text}
}

// stalledReader hands out its bytes in one read, then fails every later
// read with errStalled, standing for a connection on which nothing more
// has arrived yet.
type stalledReader struct{ data string }

var errStalled = errors.New("no more bytes yet")

func (s *stalledReader) Read(p []byte) (int, error) {
	if s.data == "" {
		return 0, errStalled
	}
	n := copy(p, s.data)
	s.data = s.data[n:]
	return n, nil
}

// endlessReader is a stream that never ends: its pattern, repeated.
type endlessReader struct {
	pattern string
	next    int
}

func (e *endlessReader) Read(p []byte) (int, error) {
	for i := range p {
		p[i] = e.pattern[e.next]
		e.next = (e.next + 1) % len(e.pattern)
	}
	return len(p), nil
}

var _ = Describe("Reader", func() {
	DescribeTable("splits lines at CRLF, CR and LF",
		func(stream string, want []sse.Event) {
			Expect(parse(stream)).To(Equal(want))
		},
		Entry("LF", "data: a\ndata: b\n\ndata: c\n\n", []sse.Event{data("a\nb"), data("c")}),
		Entry("CRLF", "data: a\r\ndata: b\r\n\r\ndata: c\r\n\r\n", []sse.Event{data("a\nb"), data("c")}),
		Entry("CR", "data: a\rdata: b\r\rdata: c\r\r", []sse.Event{data("a\nb"), data("c")}),
		Entry("all three mixed", "data: a\r\ndata: b\rdata: c\n\r\n", []sse.Event{data("a\nb\nc")}),
		Entry("LF CR as two line breaks", "data: a\n\rdata: b\n\n", []sse.Event{data("a"), data("b")}),
	)

	It("keeps a CRLF split across reads as one line break", func() {
		src := iotest.OneByteReader(strings.NewReader("data: a\r\ndata: b\r\n\r\n"))
		Expect(parseFrom(src)).To(HaveExactElements(data("a\nb")))
	})

	It("dispatches an event ended by CR without waiting for the next byte", func() {
		r := sse.NewReader(&stalledReader{data: "data: a\r\r"})
		Expect(r.Next()).To(Equal(data("a")))
		Expect(r.Next()).Error().To(MatchError(errStalled))
	})

	DescribeTable("skips one leading byte order mark",
		func(stream string, want []sse.Event) {
			Expect(parse(stream)).To(Equal(want))
		},
		Entry("at the start", "\uFEFFdata: a\n\n", []sse.Event{data("a")}),
		Entry("only one", "\uFEFF\uFEFFdata: a\n\ndata: b\n\n", []sse.Event{data("b")}),
		Entry("not later in the stream", "data: a\n\n\uFEFFdata: b\n\n", []sse.Event{data("a")}),
	)

	DescribeTable("reads fields",
		func(stream string, want []sse.Event) {
			Expect(parse(stream)).To(Equal(want))
		},
		Entry("data without a colon as an empty line", "data\n\n", []sse.Event{data("")}),
		Entry("two data lines without colon", "data\ndata\n\n", []sse.Event{data("\n")}),
		Entry("data: with no space", "data:a\n\n", []sse.Event{data("a")}),
		Entry("exactly one leading space stripped", "data:  a \n\n", []sse.Event{data(" a ")}),
		Entry("a tab kept", "data:\ta\n\n", []sse.Event{data("\ta")}),
		Entry("colons after the first in the value", "data: a: b\n\n", []sse.Event{data("a: b")}),
		Entry("a trailing data line break removed once", "data: a\ndata\n\n", []sse.Event{data("a\n")}),
		Entry("NUL in data kept", "data: a\x00b\n\n", []sse.Event{data("a\x00b")}),
		Entry("the event type", "event: update\ndata: a\n\n", []sse.Event{{Event: "update", Data: "a"}}),
		Entry("the event type for one event only", "event: update\ndata: a\n\ndata: b\n\n",
			[]sse.Event{{Event: "update", Data: "a"}, data("b")}),
		Entry("the last event field of an event", "event: a\nevent: b\ndata: x\n\n", []sse.Event{{Event: "b", Data: "x"}}),
		Entry("unknown fields ignored", "foo: bar\nDATA: no\ndata : no\ndata: a\n\n", []sse.Event{data("a")}),
		Entry("no event for a blank line without data", "event: update\nid\nretry: 1\n\n", []sse.Event(nil)),
		Entry("no event type carried over from an undispatched block", "event: update\n\ndata: a\n\n", []sse.Event{data("a")}),
	)

	DescribeTable("returns comment lines",
		func(stream string, want []sse.Event) {
			Expect(parse(stream)).To(Equal(want))
		},
		Entry("a keep-alive", ": ping\n\n", []sse.Event{comment("ping")}),
		Entry("without a space", ":ping\n\n", []sse.Event{comment("ping")}),
		Entry("empty", ":\n\n", []sse.Event{comment("")}),
		Entry("inside an event, without ending it", "data: a\n: ping\ndata: b\n\n",
			[]sse.Event{comment("ping"), data("a\nb")}),
	)

	Describe("the last event ID", func() {
		It("persists across events without an id", func() {
			r := sse.NewReader(strings.NewReader("id: 7\ndata: a\n\ndata: b\n\nid: 8\ndata: c\n\n"))
			Expect(readToEOF(r)).To(HaveExactElements(
				sse.Event{ID: "7", Data: "a"},
				sse.Event{ID: "7", Data: "b"},
				sse.Event{ID: "8", Data: "c"},
			))
			Expect(r.LastEventID()).To(Equal("8"))
		})

		It("is cleared by an empty id", func() {
			Expect(parse("id: 7\ndata: a\n\nid\ndata: b\n\n")).To(HaveExactElements(
				sse.Event{ID: "7", Data: "a"},
				sse.Event{ID: "", Data: "b"},
			))
		})

		It("ignores an id containing NUL", func() {
			Expect(parse("id: 1\ndata: a\n\nid: 2\x003\ndata: b\n\n")).To(HaveExactElements(
				sse.Event{ID: "1", Data: "a"},
				sse.Event{ID: "1", Data: "b"},
			))
		})

		It("is set by a block without data, which dispatches nothing", func() {
			r := sse.NewReader(strings.NewReader("id: 9\n\n"))
			Expect(readToEOF(r)).To(BeEmpty())
			Expect(r.LastEventID()).To(Equal("9"))
		})

		It("is set only at the blank line", func() {
			r := sse.NewReader(strings.NewReader("id: 1\ndata: a\n\nid: 2\ndata: b\n"))
			Expect(r.Next()).To(Equal(sse.Event{ID: "1", Data: "a"}))
			Expect(r.Next()).Error().To(MatchError(io.ErrUnexpectedEOF))
			Expect(r.LastEventID()).To(Equal("1"))
		})
	})

	Describe("retry", func() {
		It("sets the reconnection time, reported with its event and by the reader", func() {
			r := sse.NewReader(strings.NewReader("retry: 2000\ndata: a\n\ndata: b\n\n"))
			Expect(readToEOF(r)).To(HaveExactElements(
				sse.Event{Data: "a", Retry: 2 * time.Second, HasRetry: true},
				data("b"),
			))
			expectRetry(r, 2*time.Second)
		})

		It("is unset until a retry field", func() {
			r := sse.NewReader(strings.NewReader("data: a\n\n"))
			Expect(readToEOF(r)).To(HaveExactElements(data("a")))
			_, ok := r.Retry()
			Expect(ok).To(BeFalse())
		})

		It("takes effect without an event", func() {
			r := sse.NewReader(strings.NewReader("retry: 0\n\n"))
			Expect(readToEOF(r)).To(BeEmpty())
			expectRetry(r, 0)
		})

		DescribeTable("is ignored unless all ASCII digits",
			func(value string) {
				r := sse.NewReader(strings.NewReader("retry: 1000\n\nretry:" + value + "\ndata: a\n\n"))
				Expect(readToEOF(r)).To(HaveExactElements(data("a")))
				expectRetry(r, time.Second)
			},
			Entry("decimal point", " 1.5"),
			Entry("sign", " -1"),
			Entry("unit", " 10s"),
			Entry("two spaces", "  5"),
			Entry("empty", ""),
			Entry("too large for a duration", " 99999999999999999999"),
		)
	})

	DescribeTable("ends the stream",
		func(stream string, want []sse.Event, wantErr error) {
			r := sse.NewReader(strings.NewReader(stream))
			events, err := readAll(r)
			Expect(events).To(Equal(want))
			Expect(err).To(MatchError(wantErr))
			Expect(r.Next()).Error().To(MatchError(wantErr), "the error is sticky")
		},
		Entry("empty, cleanly", "", []sse.Event(nil), io.EOF),
		Entry("after an event, cleanly", "data: a\n\n", []sse.Event{data("a")}, io.EOF),
		Entry("after a comment, cleanly", "data: a\n\n: bye\n", []sse.Event{data("a"), comment("bye")}, io.EOF),
		Entry("before the blank line, discarding the event", "data: a\n\ndata: b\n",
			[]sse.Event{data("a")}, io.ErrUnexpectedEOF),
		Entry("inside a line, discarding the event", "data: a\n\ndata: b", []sse.Event{data("a")}, io.ErrUnexpectedEOF),
		Entry("after an id only", "id: 1\n", []sse.Event(nil), io.ErrUnexpectedEOF),
	)

	It("returns the source's error", func() {
		boom := errors.New("boom")
		Expect(sse.NewReader(iotest.ErrReader(boom)).Next()).Error().To(MatchError(boom))
	})

	Describe("bounds", func() {
		It("accepts a line of the maximum size", func() {
			r := sse.NewReader(strings.NewReader("data: 12\n\n"), sse.WithMaxLineSize(8))
			Expect(r.Next()).To(Equal(data("12")))
		})

		It("refuses a longer line", func() {
			r := sse.NewReader(strings.NewReader("data: 123\n\n"), sse.WithMaxLineSize(8))
			Expect(r.Next()).Error().To(MatchError(sse.ErrLineTooLong))
		})

		It("refuses an endless line by default", func() {
			r := sse.NewReader(&endlessReader{pattern: "data: a"})
			Expect(r.Next()).Error().To(MatchError(sse.ErrLineTooLong))
		})

		It("accepts an event of the maximum size", func() {
			r := sse.NewReader(strings.NewReader("data: ab\ndata\n\n"), sse.WithMaxEventSize(4))
			Expect(r.Next()).To(Equal(data("ab\n")))
		})

		It("refuses a larger event", func() {
			r := sse.NewReader(strings.NewReader("data: ab\ndata: c\n\n"), sse.WithMaxEventSize(4))
			Expect(r.Next()).Error().To(MatchError(sse.ErrEventTooLarge))
		})

		It("refuses an endless event by default", func() {
			r := sse.NewReader(&endlessReader{pattern: "data: a\n"})
			Expect(r.Next()).Error().To(MatchError(sse.ErrEventTooLarge))
		})

		It("refuses sizes that are not positive", func() {
			Expect(func() { sse.WithMaxLineSize(0) }).To(PanicWith(ContainSubstring("WithMaxLineSize(0)")))
			Expect(func() { sse.WithMaxEventSize(-1) }).To(PanicWith(ContainSubstring("WithMaxEventSize(-1)")))
		})
	})
})
