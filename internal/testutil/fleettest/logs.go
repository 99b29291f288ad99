package fleettest

import (
	"bytes"
	"io"
	"sync"
)

// raceReport is how the race detector begins a report on stderr.
var raceReport = []byte("WARNING: DATA RACE")

// logLines is the writer a streamer logs to: it passes each line on to out,
// prefixed, hands over the addresses of the first "streamer started" record,
// and notes whether the race detector reported anything.
type logLines struct {
	out     io.Writer
	prefix  string
	started chan Addrs // buffered, one

	mu      sync.Mutex
	partial []byte
	found   bool
	raced   bool
	last    []byte // the last line, which says why a streamer exited
}

func newLogLines(out io.Writer, prefix string) *logLines {
	return &logLines{out: out, prefix: prefix, started: make(chan Addrs, 1)}
}

// Write implements io.Writer; it never fails, so that a streamer never
// blocks or errors on its logs.
func (l *logLines) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	l.partial = append(l.partial, p...)
	for {
		i := bytes.IndexByte(l.partial, '\n')
		if i < 0 {
			break
		}
		l.line(l.partial[:i])
		l.partial = l.partial[i+1:]
	}
	return len(p), nil
}

func (l *logLines) line(line []byte) {
	if !l.found {
		if started, ok := parseStarted(line); ok {
			l.found = true
			l.started <- addrsOf(started)
		}
	}
	if bytes.Contains(line, raceReport) {
		l.raced = true
	}
	l.last = append(l.last[:0], line...)
	_, _ = io.WriteString(l.out, l.prefix+string(line)+"\n")
}

// lastLine is the last line the streamer logged.
func (l *logLines) lastLine() string {
	l.mu.Lock()
	defer l.mu.Unlock()
	return string(l.last)
}

// raceReported is whether a line said the race detector found a race.
func (l *logLines) raceReported() bool {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.raced
}
