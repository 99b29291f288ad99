package logtest

import (
	"context"

	eventlog "github.com/herald-notify/herald/streamer/log"
)

// GatedReads is a log whose reads wait until the test opens the gate, while
// appends go through: it makes a reader (the hub) fall behind the log on
// cue. Close(Gate) opens it.
type GatedReads struct {
	eventlog.Log
	Gate chan struct{}
}

// NewGatedReads wraps l with a closed gate.
func NewGatedReads(l eventlog.Log) *GatedReads {
	return &GatedReads{Log: l, Gate: make(chan struct{})}
}

// ReadAfter waits for the gate (or ctx), then reads l.
func (g *GatedReads) ReadAfter(ctx context.Context, after eventlog.Position, limit int) ([]eventlog.Event, bool, error) {
	select {
	case <-g.Gate:
	case <-ctx.Done():
		return nil, true, ctx.Err()
	}
	return g.Log.ReadAfter(ctx, after, limit)
}
