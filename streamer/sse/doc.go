// Package sse reads and writes the Server-Sent Events wire format
// (WHATWG HTML, "Server-sent events", section 9.2).
//
// The writing half is built for fan-out: the streamer encodes each event
// once, with AppendFrame, and writes the same bytes to every connection
// that should receive it, so the encoders append to a caller-owned buffer
// and allocate nothing beyond growing it. The encoders accept any input
// and never emit bytes that a client would parse as a field or event the
// caller did not ask for.
//
// The reading half, Reader, follows the specification's parsing algorithm
// so that Go test clients and publishers see a stream exactly as a browser's
// EventSource would, and it bounds the memory a stream can make it hold.
//
// A client turns every line break, whether CRLF, a lone CR or a lone LF,
// into LF: data round-trips through this package byte for byte except that
// its CR and CRLF line breaks come back as LF.
package sse
