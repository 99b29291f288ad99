// Package chaos_test is Herald's chaos test, in the style of NATS's own
// JetStream chaos tests: users spread over three streamers (herald
// processes) of one channel over a three-node NATS cluster in the test
// process, notifications published through random replicas while a NATS
// node (the stream's leader) and a streamer (SIGKILL) are taken down and
// brought back, and clients resume with Last-Event-ID on a random replica
// whenever their stream ends. Afterwards every user must have every
// notification addressed to them (a bitset each), nothing addressed to
// anyone else, in publish order per publisher and in log order, every 202's
// event among what each recipient received; notifications stored twice (a
// publish retried after its answer was lost) are allowed, counted and
// reported.
//
// The default size fits "make test" (race detector on a small machine). A
// longer run sizes itself from the environment:
//
//	HERALD_CHAOS_NOTIFICATIONS=100000 HERALD_CHAOS_USERS=1000 HERALD_CHAOS_TIMEOUT=25m \
//	  go test -race -count=1 -timeout 30m ./test/chaos/ -ginkgo.v
//
// HERALD_CHAOS_PUBLISHERS (default 8) sets the concurrent publishers and
// HERALD_CHAOS_SEED repeats a run's plan and choices (the report prints it).
// -ginkgo.v shows the report of a passing run.
package chaos_test

import (
	"testing"
	"time"

	. "github.com/onsi/ginkgo/v2"
	. "github.com/onsi/gomega"

	"github.com/herald-notify/herald/internal/testutil"
	"github.com/herald-notify/herald/internal/testutil/fleettest"
	"github.com/herald-notify/herald/internal/testutil/natstest"
)

func TestChaos(t *testing.T) {
	testutil.RunSuite(t, "chaos: a streamer fleet over NATS, with a node and a streamer killed")
}

// buildTimeout is generous: under -race with a cold build cache, building
// herald (operator and Kubernetes clients included) takes minutes here.
const buildTimeout = 20 * time.Minute

var (
	cfg, cfgErr = loadConfig()
	herald      string // the binary the streamers run
	cluster     *natstest.Cluster
)

var _ = BeforeSuite(func(ctx SpecContext) {
	Expect(cfgErr).NotTo(HaveOccurred())
	SetDefaultEventuallyTimeout(time.Minute)
	SetDefaultEventuallyPollingInterval(100 * time.Millisecond)
	var err error
	herald, err = fleettest.BuildHerald(ctx, GinkgoT().TempDir())
	Expect(err).NotTo(HaveOccurred())
	cluster, err = natstest.Start(natstest.Options{Dir: GinkgoT().TempDir()})
	Expect(err).NotTo(HaveOccurred())
	DeferCleanup(cluster.Shutdown)
}, NodeTimeout(buildTimeout))
