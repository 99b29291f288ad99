package natstest_test

import (
	"testing"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
	. "github.com/onsi/ginkgo/v2"
	. "github.com/onsi/gomega"

	"github.com/herald-notify/herald/internal/testutil"
	"github.com/herald-notify/herald/internal/testutil/natstest"
)

func TestNATSTest(t *testing.T) {
	testutil.RunSuite(t, "in-process NATS cluster")
}

var _ = Describe("an in-process NATS cluster", func() {
	It("serves replicated JetStream streams and keeps them across a node's restart", func(ctx SpecContext) {
		cluster, err := natstest.Start(natstest.Options{Dir: GinkgoT().TempDir()})
		Expect(err).NotTo(HaveOccurred())
		DeferCleanup(cluster.Shutdown)
		Expect(cluster.URLs()).To(HaveLen(3))

		nc, err := nats.Connect(cluster.URL(), nats.MaxReconnects(-1), nats.ReconnectWait(50*time.Millisecond))
		Expect(err).NotTo(HaveOccurred())
		DeferCleanup(nc.Close)
		js, err := jetstream.New(nc)
		Expect(err).NotTo(HaveOccurred())
		_, err = js.CreateStream(ctx, jetstream.StreamConfig{Name: "T", Subjects: []string{"t"}, Replicas: 3, Storage: jetstream.FileStorage})
		Expect(err).NotTo(HaveOccurred())
		_, err = js.Publish(ctx, "t", []byte("one"))
		Expect(err).NotTo(HaveOccurred())

		cluster.Stop(0)
		_, err = cluster.Server(0)
		Expect(err).To(MatchError(natstest.ErrNotRunning))
		Eventually(func() error {
			_, err := js.Publish(ctx, "t", []byte("two"))
			return err
		}).WithTimeout(20*time.Second).Should(Succeed(), "two of three nodes keep a quorum")

		Expect(cluster.RestartAll()).To(Succeed())
		By("counting, once RestartAll returns, every node online on every node, so that any meta leader places three replicas")
		for i := range cluster.Size() {
			s, err := cluster.Server(i)
			Expect(err).NotTo(HaveOccurred())
			jsz, err := s.Jsz(nil)
			Expect(err).NotTo(HaveOccurred())
			Expect(jsz.Meta).NotTo(BeNil())
			for _, p := range jsz.Meta.Replicas {
				Expect(p.Offline).To(BeFalse(), "%s as %s sees it", p.Name, s.Name())
			}
		}
		_, err = js.CreateStream(ctx, jetstream.StreamConfig{Name: "U", Subjects: []string{"u"}, Replicas: 3, Storage: jetstream.FileStorage})
		Expect(err).NotTo(HaveOccurred())
		Eventually(func(g Gomega) {
			s, err := cluster.Server(0)
			g.Expect(err).NotTo(HaveOccurred())
			g.Expect(s.JetStreamIsCurrent()).To(BeTrue())
		}).WithTimeout(20 * time.Second).Should(Succeed())
		info, err := js.Stream(ctx, "T")
		Expect(err).NotTo(HaveOccurred())
		Expect(info.CachedInfo().State.Msgs).To(Equal(uint64(2)))
	}, SpecTimeout(time.Minute))

	It("refuses to restart a running node", func() {
		cluster, err := natstest.Start(natstest.Options{Nodes: 1})
		Expect(err).NotTo(HaveOccurred())
		DeferCleanup(cluster.Shutdown)
		Expect(cluster.Restart(0)).To(MatchError(ContainSubstring("is running")))
	})
})
