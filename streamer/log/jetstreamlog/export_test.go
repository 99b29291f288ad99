package jetstreamlog

import (
	"slices"
	"time"
)

// SetBeforeGroupPublish makes l run f before it publishes each group of
// appends.
func SetBeforeGroupPublish(l *Log, f func()) { l.beforeGroupPublish = f }

// SetBeforeDeliver makes l run f before it reads each message its consumer
// delivers.
func SetBeforeDeliver(l *Log, f func()) { l.beforeDeliver.Store(&f) }

// WaitingForMore reports whether a group waits for more appends before it
// leaves.
func WaitingForMore(l *Log) bool {
	l.groupMu.Lock()
	defer l.groupMu.Unlock()
	return slices.ContainsFunc(l.groups.queue, func(g *group) bool { return g.gathered != nil })
}

// GatheringAppends is the number of appends waiting in groups to be
// published.
func GatheringAppends(l *Log) int {
	l.groupMu.Lock()
	defer l.groupMu.Unlock()
	n := 0
	for _, g := range l.groups.queue {
		n += g.live
	}
	return n
}

// EncodeBatch and DecodeEvents are the message bodies' codec.
var (
	EncodeBatch  = encodeBatch
	EncodeEvent  = encodeEvent
	DecodeEvents = decodeEvents
)

// SetGatherLimit replaces how long a group may wait for more appends after a
// write that waited lastWait.
func SetGatherLimit(l *Log, limit func(lastWait time.Duration) time.Duration) { l.gatherLimit = limit }

// GatherFor is the default limit.
var GatherFor = gatherFor
