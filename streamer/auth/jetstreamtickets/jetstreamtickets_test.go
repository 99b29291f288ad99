package jetstreamtickets_test

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"sync"
	"sync/atomic"
	"time"

	"github.com/nats-io/nats.go/jetstream"
	. "github.com/onsi/ginkgo/v2"
	. "github.com/onsi/gomega"

	"github.com/herald-notify/herald/internal/testutil"
	"github.com/herald-notify/herald/internal/testutil/natstest"
	"github.com/herald-notify/herald/streamer/auth"
	"github.com/herald-notify/herald/streamer/auth/jetstreamtickets"
)

var _ = Describe("Store", func() {
	const ttl = 30 * time.Second

	var (
		ctx     context.Context
		channel string
		a, b    *jetstreamtickets.Store // two replicas of one channel
		alice   auth.Identity
	)

	BeforeEach(func() {
		var cancel context.CancelFunc
		ctx, cancel = context.WithTimeout(context.Background(), 30*time.Second)
		DeferCleanup(cancel)
		channel = newChannel()
		a, b = open(channel, nil), open(channel, nil)
		alice = auth.Identity{UserID: "alice", ExpiresAt: time.Now().Add(time.Hour).Round(0), CanPublish: true, KeyID: "k1"}
	})

	issue := func(store *jetstreamtickets.Store, id auth.Identity) string {
		GinkgoHelper()
		ticket, err := store.Issue(ctx, id, ttl)
		Expect(err).NotTo(HaveOccurred())
		return ticket
	}
	redeem := func(store *jetstreamtickets.Store, ticket string) (auth.Identity, bool) {
		GinkgoHelper()
		id, ok, err := store.Redeem(ctx, ticket)
		Expect(err).NotTo(HaveOccurred())
		return id, ok
	}
	sameIdentity := func(want auth.Identity) OmegaMatcher {
		return SatisfyAll(
			HaveField("UserID", want.UserID), HaveField("CanPublish", want.CanPublish), HaveField("KeyID", want.KeyID),
			HaveField("ExpiresAt", BeTemporally("==", want.ExpiresAt)),
		)
	}

	It("redeems on one replica a ticket issued by another, for the identity it was issued for", func() {
		ticket := issue(a, alice)
		id, ok := redeem(b, ticket)
		Expect(ok).To(BeTrue())
		Expect(id).To(sameIdentity(alice))
	})

	It("redeems a ticket once only, on any replica", func() {
		ticket := issue(a, alice)
		_, ok := redeem(b, ticket)
		Expect(ok).To(BeTrue())
		_, ok = redeem(a, ticket)
		Expect(ok).To(BeFalse())
		_, ok = redeem(b, ticket)
		Expect(ok).To(BeFalse())
	})

	It("lets exactly one of many concurrent redeemers on two replicas win", func() {
		const tickets, redeemers = 8, 8
		for range tickets {
			ticket := issue(a, alice)
			var wins, losses atomic.Int64
			var wg sync.WaitGroup
			start := make(chan struct{})
			for i := range redeemers {
				store := []*jetstreamtickets.Store{a, b}[i%2]
				wg.Go(func() {
					defer GinkgoRecover()
					<-start
					_, ok, err := store.Redeem(ctx, ticket)
					Expect(err).NotTo(HaveOccurred())
					if ok {
						wins.Add(1)
					} else {
						losses.Add(1)
					}
				})
			}
			close(start)
			wg.Wait()
			Expect(wins.Load()).To(Equal(int64(1)))
			Expect(losses.Load()).To(Equal(int64(redeemers - 1)))
		}
	})

	It("redeems nothing for unknown or malformed tickets", func() {
		ticket := issue(a, alice)
		unknown, _ := auth.NewTicket()
		for _, guess := range []string{unknown, "", "x", ticket[:len(ticket)-1], ticket + "A"} {
			_, ok := redeem(b, guess)
			Expect(ok).To(BeFalse(), "guess %q", guess)
		}
		_, ok := redeem(b, ticket)
		Expect(ok).To(BeTrue(), "the guesses consumed nothing")
	})

	Describe("expiry", func() {
		var clock *testutil.Clock

		BeforeEach(func() {
			clock = testutil.NewClock(time.Now())
			withClock := func(o *jetstreamtickets.Options) { o.Now = clock.Now }
			a, b = open(channel, withClock), open(channel, withClock)
			alice.ExpiresAt = clock.Now().Add(time.Hour)
		})

		It("expires a ticket after its ttl, exactly, whatever the broker's TTL", func() {
			early, late := issue(a, alice), issue(a, alice)
			clock.Advance(ttl - time.Nanosecond)
			_, ok := redeem(b, early)
			Expect(ok).To(BeTrue())
			clock.Advance(time.Nanosecond)
			_, ok = redeem(b, late)
			Expect(ok).To(BeFalse())
		})

		It("never lets a ticket outlive its token", func() {
			shortLived := alice
			shortLived.ExpiresAt = clock.Now().Add(10 * time.Second)
			early, late := issue(a, shortLived), issue(a, shortLived)
			clock.Advance(10*time.Second - time.Nanosecond)
			id, ok := redeem(b, early)
			Expect(ok).To(BeTrue())
			Expect(id.ExpiresAt).To(BeTemporally("==", shortLived.ExpiresAt))
			clock.Advance(time.Nanosecond)
			_, ok = redeem(b, late)
			Expect(ok).To(BeFalse())
		})

		It("has the broker drop an unredeemed ticket once it expires, the TTL rounded up to the second", func() {
			shortLived := alice
			shortLived.ExpiresAt = clock.Now().Add(2*time.Second + time.Millisecond)
			issue(a, alice)
			issue(a, shortLived)
			Expect(messageTTLs(a.Bucket())).To(ConsistOf("30s", "3s"))
		})

		It("refuses a ticket that would be born expired", func() {
			expired := alice
			expired.ExpiresAt = clock.Now()
			_, err := a.Issue(ctx, expired, ttl)
			Expect(err).To(MatchError(auth.ErrIdentityExpired))
			_, err = a.Issue(ctx, alice, 0)
			Expect(err).To(MatchError(auth.ErrIdentityExpired))
			Expect(bucketKeys(a.Bucket())).To(BeEmpty())
		})
	})

	It("keeps a ticket's digest and identity, never the ticket", func() {
		ticket := issue(a, alice)
		digest := sha256.Sum256([]byte(ticket))
		kv, err := admin.KeyValue(ctx, a.Bucket())
		Expect(err).NotTo(HaveOccurred())
		Expect(bucketKeys(a.Bucket())).To(ConsistOf(hex.EncodeToString(digest[:])))
		entry, err := kv.Get(ctx, hex.EncodeToString(digest[:]))
		Expect(err).NotTo(HaveOccurred())
		Expect(string(entry.Value())).To(SatisfyAll(ContainSubstring(`"user":"alice"`), Not(ContainSubstring(ticket))))

		_, ok := redeem(b, ticket)
		Expect(ok).To(BeTrue())
		Expect(bucketKeys(a.Bucket())).To(BeEmpty(), "a redeemed ticket leaves nothing, not even a marker")
	})

	It("bounds the channel's outstanding tickets across replicas, until one is redeemed", func() {
		small := func(o *jetstreamtickets.Options) { o.MaxOutstanding = 3 }
		channel = newChannel()
		a, b = open(channel, small), open(channel, small)
		first := issue(a, alice)
		issue(b, auth.Identity{UserID: "bob", ExpiresAt: alice.ExpiresAt})
		issue(a, auth.Identity{UserID: "carol", ExpiresAt: alice.ExpiresAt})
		for _, store := range []*jetstreamtickets.Store{a, b} {
			_, err := store.Issue(ctx, alice, ttl)
			Expect(err).To(MatchError(auth.ErrTooManyTickets))
			Expect(err).To(MatchError(ContainSubstring("is full")))
		}
		_, ok := redeem(b, first)
		Expect(ok).To(BeTrue())
		issue(b, alice)
	})

	It("bounds each user's outstanding tickets per replica", func() {
		var first string
		for i := range auth.MaxTicketsPerUser {
			if ticket := issue(a, alice); i == 0 {
				first = ticket
			}
		}
		_, err := a.Issue(ctx, alice, ttl)
		Expect(err).To(MatchError(auth.ErrTooManyTickets))
		Expect(err).To(MatchError(ContainSubstring("the user has 16 outstanding")))
		issue(a, auth.Identity{UserID: "bob", ExpiresAt: alice.ExpiresAt})
		issue(b, alice) // per pod: the other replica counts its own

		_, ok := redeem(a, first)
		Expect(ok).To(BeTrue())
		issue(a, alice)
	})

	It("refuses options it cannot work with", func() {
		_, err := jetstreamtickets.Open(ctx, jetstreamtickets.Options{Namespace: "test", Channel: "c"})
		Expect(err).To(MatchError(ContainSubstring("a JetStream client is required")))
		_, err = jetstreamtickets.Open(ctx, jetstreamtickets.Options{JetStream: admin, Namespace: "test"})
		Expect(err).To(MatchError(ContainSubstring("a namespace and a channel are required")))
	})

	It("names each channel's bucket apart", func() {
		Expect(jetstreamtickets.BucketName("default", "notifications")).To(Equal("HERALD_TICKETS_default_notifications"))
		Expect(a.Bucket()).To(Equal(jetstreamtickets.BucketName("test", channel)))
	})

	Describe("while the broker is down", func() {
		var lone *natstest.Cluster

		BeforeEach(func() {
			var err error
			lone, err = natstest.Start(natstest.Options{Nodes: 1, Dir: GinkgoT().TempDir()})
			Expect(err).NotTo(HaveOccurred())
			DeferCleanup(lone.Shutdown)
			a, err = jetstreamtickets.Open(ctx, jetstreamtickets.Options{JetStream: connect(lone), Namespace: "test", Channel: channel})
			Expect(err).NotTo(HaveOccurred())
		})

		It("fails to issue or redeem with an error, not as an unknown ticket or a full store", func() {
			ticket := issue(a, alice)
			lone.StopAll()
			short, cancel := context.WithTimeout(ctx, time.Second)
			defer cancel()

			_, ok, err := a.Redeem(short, ticket)
			Expect(err).To(HaveOccurred())
			Expect(ok).To(BeFalse())
			_, err = a.Issue(short, alice, ttl)
			Expect(err).To(HaveOccurred())
			Expect(errors.Is(err, auth.ErrTooManyTickets)).To(BeFalse(), "error: %v", err)

			Expect(lone.RestartAll()).To(Succeed())
			Eventually(func() (bool, error) {
				_, ok, err := a.Redeem(ctx, ticket)
				return ok, err
			}).Should(BeTrue(), "the ticket outlived the outage")
		})
	})
})

// bucketKeys are the live keys of bucket, read by the cluster's operator.
func bucketKeys(bucket string) []string {
	GinkgoHelper()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	kv, err := admin.KeyValue(ctx, bucket)
	Expect(err).NotTo(HaveOccurred())
	keys, err := kv.Keys(ctx)
	if errors.Is(err, jetstream.ErrNoKeysFound) {
		return nil
	}
	Expect(err).NotTo(HaveOccurred())
	return keys
}

// messageTTLs are the broker TTLs (Nats-TTL) of bucket's messages.
func messageTTLs(bucket string) []string {
	GinkgoHelper()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	stream, err := admin.Stream(ctx, "KV_"+bucket)
	Expect(err).NotTo(HaveOccurred())
	info, err := stream.Info(ctx)
	Expect(err).NotTo(HaveOccurred())
	var ttls []string
	for seq := info.State.FirstSeq; seq <= info.State.LastSeq; seq++ {
		msg, err := stream.GetMsg(ctx, seq)
		Expect(err).NotTo(HaveOccurred(), fmt.Sprint("message ", seq))
		ttls = append(ttls, msg.Header.Get(jetstream.MsgTTLHeader))
	}
	return ttls
}
