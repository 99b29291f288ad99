package chaos_test

import (
	"fmt"
	"math/bits"
	"math/rand/v2"
)

// planned is one notification of the run, decided before it starts.
type planned struct {
	// index is its bit in each recipient's bitset; its notificationId is
	// "n<index>".
	index int
	// publisher publishes it, as its seq-th notification.
	publisher, seq int
	// recipients are the users it is addressed to (1-3, distinct).
	recipients []int
}

func (n *planned) id() string { return fmt.Sprintf("n%d", n.index) }

// payload is the notification's data, which each recipient checks.
type payload struct {
	Publisher int `json:"publisher"`
	Seq       int `json:"seq"`
}

func (n *planned) payload() payload { return payload{Publisher: n.publisher, Seq: n.seq} }

func (n *planned) addressedTo(user int) bool {
	for _, r := range n.recipients {
		if r == user {
			return true
		}
	}
	return false
}

// makePlan decides every notification: publisher i%P publishes notification
// i as its (i/P)-th, to 1-3 users drawn at random.
func makePlan(cfg config, rng *rand.Rand) []*planned {
	plan := make([]*planned, cfg.notifications)
	for i := range plan {
		n := &planned{index: i, publisher: i % cfg.publishers, seq: i / cfg.publishers}
		want := 1 + rng.IntN(3)
		for len(n.recipients) < want {
			if u := rng.IntN(cfg.users); !n.addressedTo(u) {
				n.recipients = append(n.recipients, u)
			}
		}
		plan[i] = n
	}
	return plan
}

// userName is user u's id, the subject of their token.
func userName(u int) string { return fmt.Sprintf("u%03d", u) }

// bitset records which notifications arrived, by index.
type bitset []uint64

func newBitset(n int) bitset { return make(bitset, (n+63)/64) }

// set sets bit i and reports whether it was set already.
func (b bitset) set(i int) (was bool) {
	word, mask := i/64, uint64(1)<<(i%64)
	was = b[word]&mask != 0
	b[word] |= mask
	return was
}

func (b bitset) has(i int) bool { return b[i/64]&(uint64(1)<<(i%64)) != 0 }

func (b bitset) count() int {
	n := 0
	for _, w := range b {
		n += bits.OnesCount64(w)
	}
	return n
}
