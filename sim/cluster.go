package sim

import (
	"context"
	"fmt"
	"log/slog"
	"sync"
	"testing"

	"github.com/shoalnet/shoal/blockstore"
	"github.com/shoalnet/shoal/content"
	"github.com/shoalnet/shoal/node"
)

// ClusterOptions shape a test cluster's nodes.
type ClusterOptions struct {
	// UpMbit and DownMbit are every node's link rates; 0 is 1000.
	UpMbit, DownMbit float64
	// LatencyMS is every node's one-way access latency; 0 is none.
	LatencyMS float64
	// Seed picks the nodes' keys (so their peer IDs).
	Seed uint64
	// Logger receives the nodes' logs; nil discards them.
	Logger *slog.Logger
	// Config, when set, edits node i's configuration before it starts
	// (and again before each restart).
	Config func(i int, cfg *node.Config)
	// Store, when set, gives node i its store in place of the in-memory
	// one it is passed (a test's wrapper of it, such as a disk that
	// fills up). Kept across Kill and Restart like the default one.
	Store func(i int, mem blockstore.Store) blockstore.Store
}

// Cluster is n real nodes on sim's simulated network, for tests of
// multi-node behaviour: a node can be killed (taken off the network and
// closed), restarted (the same key and store on a fresh address) and the
// nodes split into two sides that cannot reach each other until Heal.
// Real time; the cluster is closed when the test ends.
type Cluster struct {
	t     testing.TB
	opts  ClusterOptions
	log   *slog.Logger
	net   *simNet
	ctx   context.Context
	mu    sync.Mutex
	nodes []*clusterNode
	hosts int // addresses handed out, so a restarted node gets a fresh one
}

type clusterNode struct {
	index int // key index: the same across restarts
	sh    *simHost
	n     *node.Node
	store keptStore
}

// keptStore is a node's store that outlives the node: a node closes its
// store when it closes, and a restarted node needs the blocks it had.
// The cluster closes the store itself at the end.
type keptStore struct{ blockstore.Store }

func (keptStore) Close() error { return nil }

// NewCluster starts n nodes; every node after the first bootstraps from
// node 0. It fails t if a node does not start.
func NewCluster(t testing.TB, n int, opts ClusterOptions) *Cluster {
	t.Helper()
	if n < 1 {
		t.Fatalf("sim.NewCluster: n is %d: give at least 1 node", n)
	}
	if opts.UpMbit == 0 {
		opts.UpMbit = 1000
	}
	if opts.DownMbit == 0 {
		opts.DownMbit = 1000
	}
	log := opts.Logger
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	ctx, cancel := context.WithCancel(context.Background())
	c := &Cluster{t: t, opts: opts, log: log, net: newSimNet(nil), ctx: ctx}
	c.net.sn.Logger = slog.New(slog.DiscardHandler)
	c.net.sn.Start()
	t.Cleanup(func() {
		c.closeAll()
		cancel()
		c.net.sn.Close()
	})
	for i := range n {
		store := memStore()
		if opts.Store != nil {
			store = opts.Store(i, store)
		}
		cn := &clusterNode{index: i + 1, store: keptStore{store}}
		c.nodes = append(c.nodes, cn)
		if err := c.start(cn); err != nil {
			t.Fatalf("sim.NewCluster: %v", err)
		}
	}
	return c
}

// start runs cn on a fresh address, bootstrapping from the first other
// node that runs.
func (c *Cluster) start(cn *clusterNode) error {
	c.mu.Lock()
	c.hosts++
	spec := hostSpec{index: cn.index, addrIndex: c.hosts, upMbit: c.opts.UpMbit, downMbit: c.opts.DownMbit,
		latency: seconds(c.opts.LatencyMS / 1000), seed: c.opts.Seed}
	boot := ""
	for _, o := range c.nodes {
		if o != cn && o.n != nil {
			boot = o.sh.addr
			break
		}
	}
	c.mu.Unlock()
	sh, err := c.net.newHost(spec)
	if err != nil {
		return err
	}
	c.net.revive(sh.host.ID())
	name := fmt.Sprint(cn.index - 1)
	var edit func(*node.Config)
	if c.opts.Config != nil {
		edit = func(cfg *node.Config) { c.opts.Config(cn.index-1, cfg) }
	}
	n, err := startNodeWith(c.ctx, sh, cn.store, boot, name, false, c.log.With("node", name), edit)
	if err != nil {
		return err
	}
	c.mu.Lock()
	cn.sh, cn.n = sh, n
	c.mu.Unlock()
	return nil
}

func (c *Cluster) node(i int) *clusterNode {
	c.t.Helper()
	c.mu.Lock()
	defer c.mu.Unlock()
	if i < 0 || i >= len(c.nodes) {
		c.t.Fatalf("sim.Cluster: node %d: the cluster has nodes 0 to %d", i, len(c.nodes)-1)
	}
	return c.nodes[i]
}

// Node is node i, nil while it is killed.
func (c *Cluster) Node(i int) *node.Node {
	c.t.Helper()
	cn := c.node(i)
	c.mu.Lock()
	defer c.mu.Unlock()
	return cn.n
}

// Store is node i's block store, kept across Kill and Restart.
func (c *Cluster) Store(i int) blockstore.Store {
	c.t.Helper()
	return c.node(i).store.Store
}

// Addr is node i's multiaddr (with /p2p/), "" while it is killed.
func (c *Cluster) Addr(i int) string {
	c.t.Helper()
	cn := c.node(i)
	c.mu.Lock()
	defer c.mu.Unlock()
	if cn.n == nil {
		return ""
	}
	return cn.sh.addr
}

// Kill takes node i off the network, as if its machine went away, and
// closes it; its store is kept for Restart.
func (c *Cluster) Kill(i int) {
	c.t.Helper()
	cn := c.node(i)
	c.mu.Lock()
	sh, n := cn.sh, cn.n
	cn.n = nil
	c.mu.Unlock()
	if n == nil {
		c.t.Fatalf("sim.Cluster.Kill: node %d is not running", i)
	}
	c.net.isolate(sh)
	if err := n.Close(); err != nil {
		c.log.Debug("closing a killed node", "node", i, "err", err)
	}
	// The node does not close a host it was given.
	if err := sh.host.Close(); err != nil {
		c.log.Debug("closing a killed node's host", "node", i, "err", err)
	}
}

// Restart starts a killed node i again: the same key and store, a fresh
// address, bootstrapping from a running node.
func (c *Cluster) Restart(i int) {
	c.t.Helper()
	cn := c.node(i)
	c.mu.Lock()
	running := cn.n != nil
	c.mu.Unlock()
	if running {
		c.t.Fatalf("sim.Cluster.Restart: node %d is running: Kill it first", i)
	}
	if err := c.start(cn); err != nil {
		c.t.Fatalf("sim.Cluster.Restart: %v", err)
	}
}

// Partition splits the running nodes: those in a on one side, those in b
// on the other (a node in neither is on a's side). Connections across are
// closed, packets across are lost and new connections refused until
// Heal. A node restarted during the partition is on a's side.
func (c *Cluster) Partition(a, b []int) {
	c.t.Helper()
	inB := map[int]bool{}
	for _, i := range b {
		c.node(i)
		inB[i] = true
	}
	for _, i := range a {
		c.node(i)
		if inB[i] {
			c.t.Fatalf("sim.Cluster.Partition: node %d is on both sides", i)
		}
	}
	sides := map[*simHost]int{}
	c.mu.Lock()
	for i, cn := range c.nodes {
		if cn.n == nil {
			continue
		}
		sides[cn.sh] = 0
		if inB[i] {
			sides[cn.sh] = 1
		}
	}
	c.mu.Unlock()
	c.net.partition(sides)
}

// Heal ends a partition.
func (c *Cluster) Heal() { c.net.heal() }

// closeAll closes every running node, each off the network first so that
// none waits on another's answers.
func (c *Cluster) closeAll() {
	c.mu.Lock()
	var running []*clusterNode
	for _, cn := range c.nodes {
		if cn.n != nil {
			running = append(running, cn)
		}
	}
	c.mu.Unlock()
	defer func() {
		for _, cn := range c.nodes {
			_ = cn.store.Store.Close()
		}
	}()
	var wg sync.WaitGroup
	for _, cn := range running {
		c.net.isolate(cn.sh)
		wg.Go(func() {
			if err := cn.n.Close(); err != nil {
				c.log.Debug("closing node", "node", cn.index-1, "err", err)
			}
			_ = cn.sh.host.Close()
		})
	}
	wg.Wait()
}

// memStore is an in-memory store as sim's nodes use it (no fsync).
func memStore() blockstore.Store {
	bcfg := blockstore.DefaultConfig("")
	bcfg.Sync = false
	bcfg.Links = content.Links
	return blockstore.NewMemory(bcfg)
}

// startNodeWith builds the node called name on sh with store and starts
// it, bootstrapping from boot (a multiaddr) unless it is "", treating
// every peer as a swarm peer if swarmAll (Options.SwarmAllPeers); edit,
// when not nil, changes the configuration last.
func startNodeWith(ctx context.Context, sh *simHost, store blockstore.Store, boot, name string, swarmAll bool, log *slog.Logger, edit func(*node.Config)) (*node.Node, error) {
	cfg := node.DefaultConfig("")
	cfg.Network.Listen = []string{sh.host.Addrs()[0].String()}
	cfg.Network.MDNS = false
	if boot != "" {
		cfg.Network.Bootstrap = []string{boot}
	}
	cfg.Store.Sync = false
	cfg.Network.SwarmExtension = true // the default; a test's Config edit may turn it off
	cfg.Transfer.SwarmAllPeers = swarmAll
	cfg.Transfer.MaxInflightSends = simInflightSends
	cfg.Logger = log
	if edit != nil {
		edit(&cfg)
	}
	n, err := node.NewWithParts(cfg, node.Parts{Host: sh.host, Store: store})
	if err != nil {
		_ = sh.host.Close() // the node closes only hosts it made
		return nil, fmt.Errorf("sim: node %s: %w", name, err)
	}
	if err := n.Start(ctx); err != nil {
		n.Close()
		_ = sh.host.Close()
		return nil, fmt.Errorf("sim: starting node %s: %w", name, err)
	}
	return n, nil
}
