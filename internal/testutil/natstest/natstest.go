// Package natstest runs a real NATS cluster with JetStream inside the test
// process: nodes listen on loopback ports picked at start, keep their
// JetStream stores in a temporary folder, and can be stopped and restarted
// (on the same ports and stores) to test what the code under test does when
// the broker goes away and comes back.
package natstest

import (
	"errors"
	"fmt"
	"net/url"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"time"

	"github.com/nats-io/nats-server/v2/server"

	"github.com/herald-notify/herald/internal/testutil/freeport"
)

// Options shape a cluster. Zero values are the defaults.
type Options struct {
	// Nodes is the number of servers; 0 means 3, the smallest cluster that
	// keeps a quorum with a node down.
	Nodes int
	// Dir holds the nodes' stores; empty means a temporary folder that
	// Shutdown removes.
	Dir string
	// ReadyTimeout bounds each wait for a node or the cluster to be ready;
	// 0 means 30 s.
	ReadyTimeout time.Duration
	// PeriodicSync leaves NATS's default fsync (every two minutes) instead of
	// syncing every write before acknowledging it, as Herald recommends: the
	// benchmarks measure what the recommendation costs.
	PeriodicSync bool
	// Token, when set, is the token every client must present.
	Token string
	// Users, when set, are the users a client must authenticate as (with
	// their permissions); not with Token.
	Users []*server.User
}

// Cluster is a running NATS cluster. Its methods are safe for concurrent use.
type Cluster struct {
	name         string
	dir          string
	ownsDir      bool
	timeout      time.Duration
	periodicSync bool

	mu    sync.Mutex
	token string
	users []*server.User
	nodes []*node
}

// node is one server and the fixed addresses it comes back on.
type node struct {
	name        string
	storeDir    string
	clientPort  int
	clusterPort int
	srv         *server.Server // nil while stopped
}

// Start starts a cluster and returns once every node accepts connections and
// JetStream has a meta leader that knows all of them.
func Start(opts Options) (*Cluster, error) {
	if opts.Nodes <= 0 {
		opts.Nodes = 3
	}
	if opts.ReadyTimeout <= 0 {
		opts.ReadyTimeout = 30 * time.Second
	}
	c := &Cluster{name: "herald-test", dir: opts.Dir, timeout: opts.ReadyTimeout, periodicSync: opts.PeriodicSync, token: opts.Token, users: opts.Users}
	if opts.Token != "" && len(opts.Users) > 0 {
		return nil, errors.New("a cluster takes a token or users, not both")
	}
	if c.dir == "" {
		dir, err := os.MkdirTemp("", "natstest-")
		if err != nil {
			return nil, fmt.Errorf("failed to create the cluster's folder: %w", err)
		}
		c.dir, c.ownsDir = dir, true
	}
	ports, err := freeport.Stable(2 * opts.Nodes) // a node restarts on its ports
	if err != nil {
		c.Shutdown()
		return nil, err
	}
	for i := range opts.Nodes {
		name := fmt.Sprintf("n%d", i+1)
		c.nodes = append(c.nodes, &node{
			name:        name,
			storeDir:    filepath.Join(c.dir, name),
			clientPort:  ports[2*i],
			clusterPort: ports[2*i+1],
		})
	}
	for i := range c.nodes {
		if err := c.Restart(i); err != nil {
			c.Shutdown()
			return nil, err
		}
	}
	if err := c.WaitReady(); err != nil {
		c.Shutdown()
		return nil, err
	}
	return c, nil
}

// URL is every node's client URL, comma-separated, as nats.Connect takes
// them: a client reconnects to whichever node is up.
func (c *Cluster) URL() string {
	return strings.Join(c.URLs(), ",")
}

// URLs are the nodes' client URLs, in node order.
func (c *Cluster) URLs() []string {
	urls := make([]string, len(c.nodes))
	for i, n := range c.nodes {
		urls[i] = fmt.Sprintf("nats://127.0.0.1:%d", n.clientPort)
	}
	return urls
}

// Size is the number of nodes, running or not.
func (c *Cluster) Size() int { return len(c.nodes) }

// Stop shuts node i down, keeping its store for Restart.
func (c *Cluster) Stop(i int) {
	c.mu.Lock()
	srv := c.nodes[i].srv
	c.nodes[i].srv = nil
	c.mu.Unlock()
	if srv != nil {
		srv.Shutdown()
		srv.WaitForShutdown()
	}
}

// StopAll stops every node: the broker is unreachable until RestartAll.
func (c *Cluster) StopAll() {
	for i := range c.nodes {
		c.Stop(i)
	}
}

// Restart starts node i again (it must be stopped) on its ports and store,
// and returns once it accepts connections. It does not wait for JetStream:
// a node alone has no quorum; see WaitReady.
func (c *Cluster) Restart(i int) error {
	c.mu.Lock()
	defer c.mu.Unlock()
	n := c.nodes[i]
	if n.srv != nil {
		return fmt.Errorf("node %s is running", n.name)
	}
	srv, err := server.NewServer(c.serverOptions(n))
	if err != nil {
		return fmt.Errorf("failed to create node %s: %w", n.name, err)
	}
	srv.Start()
	if !srv.ReadyForConnections(c.timeout) {
		srv.Shutdown()
		return fmt.Errorf("node %s did not accept connections within %s", n.name, c.timeout)
	}
	n.srv = srv
	return nil
}

// RestartAll starts every stopped node and waits for the cluster to be
// ready.
func (c *Cluster) RestartAll() error {
	for i := range c.nodes {
		if c.running(i) {
			continue
		}
		if err := c.Restart(i); err != nil {
			return err
		}
	}
	return c.WaitReady()
}

// WaitReady returns once JetStream has a meta leader that sees every node as
// a peer and every running node is current with it and counts every other
// node as online, or fails after the cluster's ReadyTimeout.
func (c *Cluster) WaitReady() error {
	deadline := time.Now().Add(c.timeout)
	for {
		if c.ready() {
			return nil
		}
		if time.Now().After(deadline) {
			return fmt.Errorf("the cluster had no JetStream meta leader with %d current peers within %s", len(c.nodes), c.timeout)
		}
		time.Sleep(20 * time.Millisecond) // polling: JetStream offers no event to wait on
	}
}

func (c *Cluster) ready() bool {
	c.mu.Lock()
	defer c.mu.Unlock()
	if len(c.nodes) == 1 {
		srv := c.nodes[0].srv
		return srv != nil && srv.JetStreamEnabled()
	}
	var leader *server.Server
	for _, n := range c.nodes {
		if n.srv != nil && n.srv.JetStreamIsLeader() {
			leader = n.srv
		}
	}
	if leader == nil || len(leader.JetStreamClusterPeers()) != len(c.nodes) {
		return false
	}
	for _, n := range c.nodes {
		if n.srv != nil && (!n.srv.JetStreamIsCurrent() || !seesEveryPeerOnline(n.srv, len(c.nodes))) {
			return false
		}
	}
	return true
}

// seesEveryPeerOnline reports whether srv counts every other node of the
// meta group as online. Any node may lead the meta group next, and a leader
// that still counts a restarted node as offline refuses to place a stream
// of three replicas ("no suitable peers for placement, peer offline").
func seesEveryPeerOnline(srv *server.Server, size int) bool {
	jsz, err := srv.Jsz(nil)
	if err != nil || jsz.Meta == nil {
		return false
	}
	online := 0
	for _, p := range jsz.Meta.Replicas {
		if p.Offline {
			return false
		}
		if p.Name != srv.Name() {
			online++
		}
	}
	return online == size-1
}

func (c *Cluster) running(i int) bool {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.nodes[i].srv != nil
}

// Shutdown stops every node and removes the stores if the cluster made their
// folder.
func (c *Cluster) Shutdown() {
	c.StopAll()
	if c.ownsDir {
		_ = os.RemoveAll(c.dir)
	}
}

// serverOptions are node n's options, built anew for each start since a
// server keeps and changes the ones it is given.
func (c *Cluster) serverOptions(n *node) *server.Options {
	var routes []*url.URL
	for _, other := range c.nodes {
		if other != n {
			routes = append(routes, &url.URL{Scheme: "nats", Host: fmt.Sprintf("127.0.0.1:%d", other.clusterPort)})
		}
	}
	opts := &server.Options{
		ServerName: n.name,
		Host:       "127.0.0.1",
		Port:       n.clientPort,
		JetStream:  true,
		StoreDir:   n.storeDir,
		// As Herald documents for production (unless PeriodicSync): no
		// acknowledged write waits for a periodic fsync.
		SyncAlways:         !c.periodicSync,
		JetStreamMaxMemory: 64 << 20,
		JetStreamMaxStore:  1 << 30,
		NoLog:              true,
		NoSigs:             true,
		Authorization:      c.token,
	}
	for _, u := range c.users { // a copy each start: a server keeps what it is given
		user := *u
		opts.Users = append(opts.Users, &user)
	}
	if len(c.nodes) > 1 { // a lone node runs JetStream unclustered
		opts.Cluster = server.ClusterOpts{Name: c.name, Host: "127.0.0.1", Port: n.clusterPort}
		opts.Routes = routes
	}
	return opts
}

// SetToken changes the token clients must present on the nodes started
// from now on (Restart): a node that is running keeps the old one.
func (c *Cluster) SetToken(token string) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.token = token
}

// ErrNotRunning is returned by Server for a stopped node.
var ErrNotRunning = errors.New("node is not running")

// Server is node i's server, for assertions on its state.
func (c *Cluster) Server(i int) (*server.Server, error) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.nodes[i].srv == nil {
		return nil, ErrNotRunning
	}
	return c.nodes[i].srv, nil
}
