package auth_test

import (
	"context"
	"encoding/base64"
	"errors"
	"fmt"
	"sync"
	"sync/atomic"
	"time"

	. "github.com/onsi/ginkgo/v2"
	. "github.com/onsi/gomega"

	"github.com/herald-notify/herald/internal/testutil"
	"github.com/herald-notify/herald/streamer/auth"
)

var _ = Describe("TicketStore", func() {
	const ttl = 30 * time.Second
	ctx := context.Background()

	var (
		now   *testutil.Clock
		store *auth.TicketStore
		alice auth.Identity
	)

	BeforeEach(func() {
		now = newClock(epoch)
		store = auth.NewTicketStore(3, now.Now)
		alice = auth.Identity{UserID: "alice", ExpiresAt: epoch.Add(time.Hour), CanPublish: true, KeyID: "k"}
	})

	// redeem redeems with the store's Redeem, which never fails.
	redeem := func(ticket string) (auth.Identity, bool) {
		id, ok, err := store.Redeem(ctx, ticket)
		Expect(err).NotTo(HaveOccurred())
		return id, ok
	}

	issue := func(id auth.Identity) string {
		ticket, err := store.Issue(ctx, id, ttl)
		Expect(err).NotTo(HaveOccurred())
		return ticket
	}

	It("issues distinct opaque 256-bit URL-safe tickets", func() {
		first, second := issue(alice), issue(alice)
		Expect(first).NotTo(Equal(second))
		for _, ticket := range []string{first, second} {
			raw, err := base64.RawURLEncoding.DecodeString(ticket)
			Expect(err).NotTo(HaveOccurred())
			Expect(raw).To(HaveLen(32))
		}
	})

	It("redeems a ticket once, for the identity it was issued for", func() {
		ticket := issue(alice)
		identity, ok := redeem(ticket)
		Expect(ok).To(BeTrue())
		Expect(identity).To(Equal(alice))

		_, ok = redeem(ticket)
		Expect(ok).To(BeFalse())
		Expect(store.Outstanding()).To(BeZero())
	})

	It("redeems nothing for unknown or malformed tickets", func() {
		ticket := issue(alice)
		for _, guess := range []string{"", "x", ticket[:len(ticket)-1], ticket + "A", ticket[:len(ticket)-1] + "B"} {
			if guess == ticket {
				continue
			}
			_, ok := redeem(guess)
			Expect(ok).To(BeFalse(), "guess %q", guess)
		}
		Expect(store.Outstanding()).To(Equal(1))
	})

	It("expires a ticket after its ttl", func() {
		early, late := issue(alice), issue(alice)
		now.Advance(ttl - time.Nanosecond)
		_, ok := redeem(early)
		Expect(ok).To(BeTrue())
		now.Advance(time.Nanosecond)
		_, ok = redeem(late)
		Expect(ok).To(BeFalse())
	})

	It("never lets a ticket outlive its token", func() {
		shortLived := alice
		shortLived.ExpiresAt = epoch.Add(10 * time.Second)
		early, late := issue(shortLived), issue(shortLived)
		now.Advance(10*time.Second - time.Nanosecond)
		_, ok := redeem(early)
		Expect(ok).To(BeTrue())
		now.Advance(time.Nanosecond)
		_, ok = redeem(late)
		Expect(ok).To(BeFalse())
	})

	It("refuses a ticket that would be born expired", func() {
		expired := alice
		expired.ExpiresAt = epoch
		_, err := store.Issue(ctx, expired, ttl)
		Expect(err).To(MatchError(auth.ErrIdentityExpired))
		_, err = store.Issue(ctx, alice, 0)
		Expect(err).To(MatchError(auth.ErrIdentityExpired))
		Expect(store.Outstanding()).To(BeZero())
	})

	It("refuses tickets beyond its capacity until one is redeemed", func() {
		first := issue(alice)
		issue(alice)
		issue(alice)
		_, err := store.Issue(ctx, alice, ttl)
		Expect(errors.Is(err, auth.ErrTooManyTickets)).To(BeTrue(), "error: %v", err)

		_, ok := redeem(first)
		Expect(ok).To(BeTrue())
		issue(alice)
	})

	It("bounds each user's outstanding tickets, so one user cannot lock the others out", func() {
		store = auth.NewTicketStore(10*auth.MaxTicketsPerUser, now.Now)
		var first string
		for i := range auth.MaxTicketsPerUser {
			if ticket := issue(alice); i == 0 {
				first = ticket
			}
		}
		_, err := store.Issue(ctx, alice, ttl)
		Expect(errors.Is(err, auth.ErrTooManyTickets)).To(BeTrue(), "error: %v", err)
		Expect(err).To(MatchError(ContainSubstring("the user has 16 outstanding")))
		issue(auth.Identity{UserID: "bob", ExpiresAt: epoch.Add(time.Hour)})

		_, ok := redeem(first)
		Expect(ok).To(BeTrue())
		issue(alice)
		now.Advance(ttl)
		for range auth.MaxTicketsPerUser {
			issue(alice)
		}
	})

	It("purges expired tickets, which restores capacity", func() {
		for range 3 {
			issue(alice)
		}
		Expect(store.Outstanding()).To(Equal(3))
		now.Advance(ttl)
		ticket := issue(alice)
		Expect(store.Outstanding()).To(Equal(1))
		_, ok := redeem(ticket)
		Expect(ok).To(BeTrue())
	})

	It("purges in expiry order, not issue order", func() {
		longLived := issue(alice)
		shortLived := alice
		shortLived.ExpiresAt = epoch.Add(5 * time.Second)
		issue(shortLived)
		issue(shortLived)
		now.Advance(5 * time.Second)
		issue(alice)
		issue(alice)
		Expect(store.Outstanding()).To(Equal(3))
		_, ok := redeem(longLived)
		Expect(ok).To(BeTrue())
	})

	It("panics on a capacity that is not positive", func() {
		Expect(func() { auth.NewTicketStore(0, nil) }).To(PanicWith(ContainSubstring("maxOutstanding 0")))
	})

	It("redeems each ticket exactly once under concurrent use", func() {
		const tickets, redeemersPerTicket = 200, 4
		store = auth.NewTicketStore(tickets, now.Now)
		issued := make([]string, tickets)
		var wg sync.WaitGroup
		for i := range issued {
			wg.Go(func() {
				defer GinkgoRecover()
				// Users of their own: one user's tickets are bounded.
				issued[i] = issue(auth.Identity{UserID: fmt.Sprint("user-", i), ExpiresAt: epoch.Add(time.Hour)})
			})
		}
		wg.Wait()

		var redeemed atomic.Int64
		for _, ticket := range issued {
			for range redeemersPerTicket {
				wg.Go(func() {
					if _, ok := redeem(ticket); ok {
						redeemed.Add(1)
					}
				})
			}
		}
		wg.Wait()
		Expect(redeemed.Load()).To(Equal(int64(tickets)))
		Expect(store.Outstanding()).To(BeZero())
	})
})
