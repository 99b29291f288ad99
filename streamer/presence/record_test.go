package presence

import (
	. "github.com/onsi/ginkgo/v2"
	. "github.com/onsi/gomega"

	"github.com/herald-notify/herald/streamer/hub"
)

var _ = Describe("admit, on a user's record", func() {
	a1, b2, c3 := entry{Replica: "a", Stream: 1}, entry{Replica: "b", Stream: 2}, entry{Replica: "c", Stream: 3}
	next := entry{Replica: "n", Stream: 9}
	all := func(entry) bool { return true }

	It("admits below the limit, after the others", func() {
		kept, evicted, err := admit([]entry{a1}, all, 2, hub.Reject, next)
		Expect(err).NotTo(HaveOccurred())
		Expect(kept).To(Equal([]entry{a1, next}))
		Expect(evicted).To(BeEmpty())
	})

	It("refuses at the limit with Reject", func() {
		_, _, err := admit([]entry{a1, b2}, all, 2, hub.Reject, next)
		Expect(err).To(MatchError(hub.ErrUserLimit))
	})

	It("replaces the oldest with ReplaceOldest, as many as a lowered limit takes", func() {
		kept, evicted, err := admit([]entry{a1, b2, c3}, all, 2, hub.ReplaceOldest, next)
		Expect(err).NotTo(HaveOccurred())
		Expect(evicted).To(Equal([]entry{a1, b2}))
		Expect(kept).To(Equal([]entry{c3, next}))
	})

	It("does not count, and drops, the streams no longer held", func() {
		deadB := func(e entry) bool { return e.Replica != "b" }
		kept, evicted, err := admit([]entry{b2}, deadB, 1, hub.Reject, next)
		Expect(err).NotTo(HaveOccurred())
		Expect(evicted).To(BeEmpty())
		Expect(kept).To(Equal([]entry{next}))
	})
})

var _ = Describe("keys", func() {
	It("escape user ids into distinct single tokens", func() {
		Expect(userKey("alice")).To(Equal("u.alice"))
		Expect(userKey("a.b")).To(Equal("u.a_2eb"))
		Expect(userKey("a_2eb")).NotTo(Equal(userKey("a.b")))
		Expect(userKey("")).To(Equal("u._"))
	})
})
