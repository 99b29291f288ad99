package nats_test

import (
	"context"
	"errors"
	"time"

	natsgo "github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
	. "github.com/onsi/ginkgo/v2"
	. "github.com/onsi/gomega"

	"github.com/herald-notify/herald/streamer/log/jetstreamlog"
)

// The suite's streamers run as a NATS user limited to the channel's
// permissions (natsUsers): every other spec shows they are enough. This one
// shows what they keep out.
var _ = Describe("the NATS permissions of a channel's streamers", func() {
	It("refuse another channel's subject, stream and buckets, and the account's other replies", func() {
		refused := make(chan string, 16)
		nc, err := natsgo.Connect(cluster.URL(), natsgo.UserInfo(streamerUser, streamerPassword),
			natsgo.CustomInboxPrefix(jetstreamlog.InboxPrefix(namespace, channel)),
			natsgo.ErrorHandler(func(_ *natsgo.Conn, _ *natsgo.Subscription, err error) {
				if errors.Is(err, natsgo.ErrPermissionViolation) {
					refused <- err.Error()
				}
			}))
		Expect(err).NotTo(HaveOccurred())
		DeferCleanup(nc.Close)

		By("publishing an event to another channel")
		Expect(nc.Publish(jetstreamlog.Subject(namespace, "other"), []byte("{}"))).To(Succeed())
		Eventually(refused).Should(Receive(ContainSubstring(`Publish to "` + jetstreamlog.Subject(namespace, "other") + `"`)))

		By("reading another channel's stream")
		js, err := jetstream.New(nc)
		Expect(err).NotTo(HaveOccurred())
		ctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
		defer cancel()
		_, err = js.Stream(ctx, jetstreamlog.StreamName(namespace, "other"))
		Expect(err).To(HaveOccurred())
		Eventually(refused).Should(Receive(ContainSubstring(`Publish to "$JS.API.STREAM.INFO.` + jetstreamlog.StreamName(namespace, "other") + `"`)))

		By("writing another channel's ticket bucket")
		other := jetstreamlog.BucketName(jetstreamlog.TicketsBucketPurpose, namespace, "other")
		Expect(nc.Publish("$KV."+other+".ticket", []byte("forged"))).To(Succeed())
		Eventually(refused).Should(Receive(ContainSubstring(`Publish to "$KV.` + other + `.ticket"`)))

		By("listening to every reply in the account")
		_, err = nc.SubscribeSync("_INBOX.>")
		Expect(err).NotTo(HaveOccurred()) // refused asynchronously
		Eventually(refused).Should(Receive(ContainSubstring(`Subscription to "_INBOX.>"`)))
	})
})
