package presence

import (
	"encoding/json"
	"fmt"
	"time"

	"github.com/herald-notify/herald/streamer/hub"
)

// record is the value of a user's key: the user's open streams across the
// channel, oldest admitted first. The order is the order of admission, which
// the compare-and-swap writes serialize; Opened is for people reading the
// bucket, never compared across replicas (their clocks differ).
type record struct {
	Streams []entry `json:"streams"`
}

// entry is one open stream.
type entry struct {
	Replica string       `json:"replica"`
	Stream  hub.StreamID `json:"stream"`
	Opened  time.Time    `json:"opened"`
}

func decodeRecord(data []byte) (record, error) {
	var r record
	if len(data) == 0 {
		return r, nil
	}
	if err := json.Unmarshal(data, &r); err != nil {
		return record{}, fmt.Errorf("failed to decode a presence record: %w", err)
	}
	return r, nil
}

func (r record) encode() []byte {
	data, _ := json.Marshal(r) // plain fields: never fails
	return data
}

// admit decides on next, a new stream of a user whose record lists streams,
// of which live tells those still held (a dead replica's are not). It
// returns the record to write, without the streams that are no longer held,
// and the streams that next replaces; with Reject beyond limit it returns
// hub.ErrUserLimit.
func admit(streams []entry, live func(entry) bool, limit int, policy hub.UserLimitPolicy, next entry) (kept, evicted []entry, err error) {
	held := make([]entry, 0, len(streams)+1)
	for _, e := range streams {
		if live(e) {
			held = append(held, e)
		}
	}
	if over := len(held) - limit + 1; over > 0 {
		if policy == hub.Reject {
			return nil, nil, hub.ErrUserLimit
		}
		// More than one only after the limit was lowered.
		evicted, held = held[:over:over], held[over:]
	}
	return append(held, next), evicted, nil
}
