package sse_test

import (
	"bytes"
	"errors"
	"io"
	"slices"
	"strconv"
	"strings"
	"testing"
	"testing/iotest"
	"time"

	"github.com/herald-notify/herald/streamer/sse"
)

// Inputs that try to break out of a field or an event.
var hostileSeeds = []string{
	"",
	"\n",
	"\r",
	"\r\n",
	"\n\r",
	"\x00",
	"\ndata: evil\n\nid: 99",
	"event: x",
	"x\r\nretry: 1\r\n\r\n",
	"\r\rid: 1\r",
	": comment\n",
	"\uFEFFdata: bom",
	" leading space",
	"trailing\n",
	"ünïcödé \xff\xfe",
}

// FuzzAppendFrame checks that any frame reaches a spec-following parser as
// exactly the one event it describes, and that nothing in its event name or
// data can add a field or an event.
func FuzzAppendFrame(f *testing.F) {
	f.Add("1764653990123456-1", true, "", []byte(connectionEvent), uint32(3000))
	for i, s := range hostileSeeds {
		f.Add(strconv.Itoa(i), i%2 == 0, s, []byte(s), uint32(i))
		f.Add(s, true, "update", []byte(s), uint32(0))
	}
	f.Fuzz(func(t *testing.T, id string, hasID bool, event string, data []byte, retryMs uint32) {
		frame := sse.Frame{ID: id, HasID: hasID, Event: event, Data: data, Retry: time.Duration(retryMs) * time.Millisecond}
		encoded := sse.AppendFrame(nil, frame)

		if got, want := fieldNames(t, encoded), expectedFieldNames(frame); !slices.Equal(got, want) {
			t.Fatalf("%q has the fields %q, want %q", encoded, got, want)
		}
		want := sse.Event{Event: stripControl(event), Data: normaliseLineBreaks(string(data))}
		if hasID {
			want.ID = stripControl(id)
		}
		if retryMs > 0 {
			want.Retry, want.HasRetry = frame.Retry, true
		}
		events, err := readStream(bytes.NewReader(encoded))
		if err != nil || len(events) != 1 || events[0] != want {
			t.Fatalf("%q parses to %#v, %v; want exactly %#v", encoded, events, err, want)
		}
	})
}

// FuzzAppendComment checks that a comment, whatever its text, dispatches
// no event and reaches the parser as that text less CR, LF and NUL.
func FuzzAppendComment(f *testing.F) {
	for _, s := range hostileSeeds {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, text string) {
		encoded := sse.AppendComment(nil, text)
		if bytes.Count(encoded, []byte("\n")) != 2 || bytes.IndexByte(encoded, '\r') >= 0 {
			t.Fatalf("%q is not one comment line and a blank line", encoded)
		}
		want := sse.Event{IsComment: true, Comment: stripControl(text)}
		events, err := readStream(bytes.NewReader(encoded))
		if err != nil || len(events) != 1 || events[0] != want {
			t.Fatalf("%q parses to %#v, %v; want exactly %#v", encoded, events, err, want)
		}
	})
}

// FuzzReaderChunking checks that the Reader reads any input, within its
// bounds, the same whether it arrives at once or a byte at a time, which is
// where a CRLF split across reads would go wrong.
func FuzzReaderChunking(f *testing.F) {
	for _, s := range hostileSeeds {
		f.Add([]byte(s + "\n\n" + s))
	}
	f.Add([]byte("data: a\r\ndata: b\r\r\ndata: c\r\n\r\n"))
	f.Fuzz(func(t *testing.T, stream []byte) {
		const maxSize = 64
		whole, wholeErr := readStream(bytes.NewReader(stream), sse.WithMaxLineSize(maxSize), sse.WithMaxEventSize(maxSize))
		bytewise, bytewiseErr := readStream(iotest.OneByteReader(bytes.NewReader(stream)), sse.WithMaxLineSize(maxSize), sse.WithMaxEventSize(maxSize))
		if !slices.Equal(whole, bytewise) || !errors.Is(bytewiseErr, unwrapAll(wholeErr)) {
			t.Fatalf("%q parses to %#v, %v at once but %#v, %v a byte at a time", stream, whole, wholeErr, bytewise, bytewiseErr)
		}
		for _, ev := range whole {
			if len(ev.Data) >= maxSize {
				t.Fatalf("%q dispatched %d bytes of data, over the bound", stream, len(ev.Data))
			}
		}
	})
}

// readStream reads events until the stream ends, returning a nil error
// when it ends cleanly with io.EOF.
func readStream(src io.Reader, opts ...sse.ReaderOption) ([]sse.Event, error) {
	r := sse.NewReader(src, opts...)
	var events []sse.Event
	for {
		ev, err := r.Next()
		if err == io.EOF {
			return events, nil
		}
		if err != nil {
			return events, err
		}
		events = append(events, ev)
	}
}

// unwrapAll returns the innermost error that err wraps.
func unwrapAll(err error) error {
	for {
		inner := errors.Unwrap(err)
		if inner == nil {
			return err
		}
		err = inner
	}
}

// fieldNames returns the field name of each line of one encoded frame, ""
// for the blank line that ends it, and fails unless the frame uses LF only.
func fieldNames(t *testing.T, encoded []byte) []string {
	t.Helper()
	if bytes.IndexByte(encoded, '\r') >= 0 {
		t.Fatalf("%q contains CR", encoded)
	}
	lines := strings.Split(string(encoded), "\n")
	if lines[len(lines)-1] != "" {
		t.Fatalf("%q does not end in LF", encoded)
	}
	names := make([]string, 0, len(lines)-1)
	for _, line := range lines[:len(lines)-1] {
		name, _, _ := strings.Cut(line, ":")
		names = append(names, name)
	}
	return names
}

// expectedFieldNames lists the field lines AppendFrame writes for f: retry,
// id and event when set, one data line per line of data, and a blank line.
func expectedFieldNames(f sse.Frame) []string {
	var names []string
	if f.Retry >= time.Millisecond {
		names = append(names, "retry")
	}
	if f.HasID {
		names = append(names, "id")
	}
	if f.Event != "" {
		names = append(names, "event")
	}
	dataLines := strings.Count(normaliseLineBreaks(string(f.Data)), "\n") + 1
	for range dataLines {
		names = append(names, "data")
	}
	return append(names, "")
}

// stripControl drops CR, LF and NUL, as the encoders do for event names
// and comments. It works on bytes, so invalid UTF-8 stays as it is.
func stripControl(s string) string {
	var b strings.Builder
	for i := range len(s) {
		if c := s[i]; c != '\r' && c != '\n' && c != 0 {
			b.WriteByte(c)
		}
	}
	return b.String()
}

// normaliseLineBreaks turns CRLF and CR into LF, as a client's parser does.
func normaliseLineBreaks(s string) string {
	return strings.NewReplacer("\r\n", "\n", "\r", "\n").Replace(s)
}
