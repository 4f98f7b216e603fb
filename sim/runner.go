package sim

import (
	"bytes"
	"context"
	"crypto/sha256"
	"fmt"
	"io"
	"log/slog"
	"math/rand/v2"
	"os"
	"runtime"
	"runtime/debug"
	"sync"
	"time"

	"github.com/ipfs/go-cid"

	"github.com/shoalnet/shoal/node"
)

// Options tune a run without changing the plan.
type Options struct {
	Logger *slog.Logger
	// Progress, when set, is called after every traffic sample.
	Progress func(Progress)
	// Commit is recorded in the results (the caller knows it; sim does not).
	Commit string
	// Mode is "virtual" (inside a testing/synctest bubble) or "real".
	Mode string
	// SwarmAllPeers makes every node treat every peer as a swarm peer for
	// upload slots (node's transfer.swarm_all_peers), to measure choking
	// and origin mode before the swarm extension negotiates it.
	SwarmAllPeers bool
	// PlainBitswap turns the swarm extension off in every node, so peers
	// speak plain Bitswap 1.2.0 to each other as Kubo peers do (the
	// simulator runs it on by default).
	PlainBitswap bool
	// MaxInflightSends is how many Bitswap responses each node writes at
	// once (node: transfer.max_inflight_sends); 0 is the simulator's
	// simInflightSends. The docker runner gives its daemons the same
	// number (DockerOptions), so a plan run both ways runs one config.
	MaxInflightSends int
	// Light runs every node as a light node (as the plan's transport =
	// "light" does): the same node code on in-process streams through
	// shaped links, without QUIC, TLS or packets (light.go).
	Light bool
}

// nodeEdit is what the options change in every node's config, after
// startNodeWith's settings (daemonConfig writes the same for containers).
func (o Options) nodeEdit(c *node.Config) {
	c.Transfer.MaxInflightSends = inflightSends(o.MaxInflightSends)
	if o.PlainBitswap {
		c.Network.SwarmExtension = false
	}
}

// inflightSends is the transfer.max_inflight_sends every node of a run
// gets, in process and in containers alike.
func inflightSends(n int) int {
	if n > 0 {
		return n
	}
	return simInflightSends
}

// Progress is a snapshot of a running simulation for a progress line.
type Progress struct {
	SimS      float64
	Fetchers  int
	Completed int
	BytesDown int64
}

// simNode is one simulated node: the plan's description of it and its
// record (member, whose mu guards the fields below too), and what runs it.
type simNode struct {
	member

	sh      *simHost
	n       *node.Node
	corrupt *corruptStore
	left    bool
	closed  bool
	// up/down keep the wire counters of a node that left.
	up, down int64
	slots    slotTally
}

// run is the state of one simulation.
type run struct {
	plan    *Plan
	opts    Options
	log     *slog.Logger
	net     *simNet
	nodes   []*simNode
	members []*member // the nodes' members, in the same order
	data    []byte
	sum     [32]byte
	root    cid.Cid
	boot    string
	t0      time.Time
	ctx     context.Context
	wg      sync.WaitGroup
	samples []Sample
	peakMem uint64
}

// Run executes a plan: it builds every node on the shaped network, lets
// the seeders share the content, starts the fetches on the plan's
// timeline and records what happened. Inside a testing/synctest bubble
// all of it runs in virtual time.
func Run(ctx context.Context, p *Plan, opts Options) (*Results, error) {
	if err := p.Validate(); err != nil {
		return nil, err
	}
	if opts.Logger == nil {
		opts.Logger = slog.New(slog.DiscardHandler)
	}
	if opts.Mode == "" {
		opts.Mode = "real"
	}
	wall0 := wallNow()
	defer tuneGC()()
	r := &run{plan: p, opts: opts, log: opts.Logger}
	r.data = makeContent(p.Seed, p.ContentBytes())
	r.sum = sha256.Sum256(r.data)
	lat := map[[2]string]time.Duration{}
	for _, l := range p.Latency {
		lat[[2]string{l.A, l.B}] = seconds(l.MS / 1000)
	}
	if r.light() {
		r.net = newLightNet(lat)
	} else {
		r.net = newSimNet(lat)
	}
	r.net.start()
	defer r.net.close()
	r.layout()

	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	r.ctx = ctx
	sim0 := time.Now()
	err := r.setup()
	if err == nil {
		r.t0 = time.Now()
		r.schedule()
		r.sample()
	}
	cancel()
	r.wg.Wait()
	r.collect()
	simulated := time.Since(sim0) // the closing drain is not part of the run
	r.closeAll()
	if err != nil {
		return nil, err
	}
	res := r.results()
	res.SimulatedS = simulated.Seconds()
	res.WallS = wallNow().Sub(wall0).Seconds()
	return res, nil
}

// light reports whether the run's nodes are light nodes.
func (r *run) light() bool { return r.opts.Light || r.plan.Transport == TransportLight }

// simGCPercent is the garbage collector's target for a run (Go's default
// is 100). A simulation's live heap is mostly block bytes and protocol
// state that churn fast (every block served is read, framed and dropped);
// at 100 the heap grows to twice what is live before a collection,
// which at a thousand nodes is gigabytes of garbage. At 50 the peak heap
// is 1.5 × live, for more collector work (bench/sim.md).
const simGCPercent = 50

// tuneGC sets the collector's target for a run unless the user set one
// (GOGC), and returns the function that restores the previous setting
// once the last of the runs in progress (tests run plans side by side)
// has ended.
func tuneGC() (restore func()) {
	if os.Getenv("GOGC") != "" {
		return func() {}
	}
	gcTune.mu.Lock()
	defer gcTune.mu.Unlock()
	if gcTune.runs == 0 {
		gcTune.prev = debug.SetGCPercent(simGCPercent)
	}
	gcTune.runs++
	return func() {
		gcTune.mu.Lock()
		defer gcTune.mu.Unlock()
		if gcTune.runs--; gcTune.runs == 0 {
			debug.SetGCPercent(gcTune.prev)
		}
	}
}

var gcTune struct {
	mu   sync.Mutex
	runs int
	prev int
}

// WallNow is the real clock, also inside a testing/synctest bubble
// (where time.Now is virtual): for a caller's progress lines.
func WallNow() time.Time { return wallNow() }

func seconds(s float64) time.Duration { return time.Duration(s * float64(time.Second)) }

// makeContent is the plan's content: pseudo-random bytes from its seed.
func makeContent(seed uint64, n int64) []byte {
	rng := rand.New(rand.NewPCG(seed, seed^0x5eed))
	b := make([]byte, n)
	for i := 0; i+8 <= len(b); i += 8 {
		v := rng.Uint64()
		for j := range 8 {
			b[i+j] = byte(v >> (8 * j))
		}
	}
	return b
}

// layout gives every node of the plan (layoutNodes) a record.
func (r *run) layout() {
	for _, s := range layoutNodes(r.plan) {
		sn := &simNode{}
		sn.init(s)
		r.nodes = append(r.nodes, sn)
		r.members = append(r.members, &sn.member)
	}
}

// setup starts the nodes that are there from the beginning, has the
// seeders (and byzantine nodes) share the content, and lets the DHT
// settle.
func (r *run) setup() error {
	// The first seeder is everyone's bootstrap peer, so it starts alone.
	var first *simNode
	for _, sn := range r.nodes {
		if sn.group.Role == RoleSeeder {
			first = sn
			break
		}
	}
	if err := r.start(first); err != nil {
		return err
	}
	r.boot = first.sh.addr
	for _, sn := range r.nodes {
		// Fetchers start when they join; lookup nodes start now so their
		// routing tables fill while the DHT settles, and look up later.
		if sn == first || sn.fetches() {
			continue
		}
		if err := r.start(sn); err != nil {
			return err
		}
	}
	for _, sn := range r.nodes {
		if sn.n == nil || !sn.shares() {
			continue
		}
		res, err := sn.n.AddFile(r.ctx, bytes.NewReader(r.data))
		if err != nil {
			return fmt.Errorf("sim: %s sharing the content: %w", sn.name, err)
		}
		r.root = res.CID
		sn.shared(false)
	}
	select {
	case <-time.After(seconds(r.plan.SettleS)):
	case <-r.ctx.Done():
		return r.ctx.Err()
	}
	return nil
}

// start builds a node on a fresh simulated host and starts it.
func (r *run) start(sn *simNode) error {
	sh, err := r.net.newHost(sn.link)
	if err != nil {
		return err
	}
	store := memStore()
	if sn.group.Role == RoleByzantine {
		sn.corrupt = &corruptStore{Store: store}
		store = sn.corrupt
	}
	n, err := startNodeWith(r.ctx, sh, store, r.boot, sn.name, r.opts.SwarmAllPeers, r.log.With("node", sn.name), r.opts.nodeEdit)
	if err != nil {
		return err
	}
	sn.mu.Lock()
	sn.sh, sn.n = sh, n
	sn.mu.Unlock()
	sn.started(sh.host.ID().String())
	return nil
}

// schedule starts a goroutine per fetcher, lookup node, leaver and the
// partition, each following the plan's timeline from t0.
func (r *run) schedule() {
	for _, sn := range r.nodes {
		switch {
		case sn.fetches():
			r.goAt(sn.joinAt, func() { r.fetch(sn) })
		case sn.group.Role == RoleLookup:
			r.goAt(sn.joinAt, func() { r.lookup(sn) })
		}
		if sn.leaveAt > 0 {
			r.goAt(sn.leaveAt, func() { r.leave(sn) })
		}
	}
	if pt := r.plan.Partition; pt != nil {
		r.goAt(seconds(pt.AtS), r.partition)
		r.goAt(seconds(pt.HealS), r.net.heal)
	}
}

// goAt runs f in a tracked goroutine at t0+d, unless the run ends first.
func (r *run) goAt(d time.Duration, f func()) {
	r.wg.Add(1)
	go func() {
		defer r.wg.Done()
		if wait := time.Until(r.t0.Add(d)); wait > 0 {
			t := time.NewTimer(wait)
			defer t.Stop()
			select {
			case <-t.C:
			case <-r.ctx.Done():
				return
			}
		}
		f()
	}()
}

// fetch starts a fetcher's node (if new) and fetches the content,
// starting again after a failure (as a user would) until the run ends.
func (r *run) fetch(sn *simNode) {
	if sn.n == nil {
		if err := r.start(sn); err != nil {
			sn.failed(err)
			return
		}
	}
	start := time.Now()
	for r.ctx.Err() == nil {
		sn.mu.Lock()
		n, left := sn.n, sn.left
		sn.mu.Unlock()
		if left {
			return
		}
		tr, err := n.Fetch(r.ctx, r.root, "sim")
		if err == nil {
			select {
			case <-tr.Done():
				err = tr.Err()
			case <-r.ctx.Done():
				return
			}
		}
		if err == nil {
			sn.fetched(time.Since(start))
			return
		}
		sn.retried(err)
		select {
		case <-time.After(time.Second):
		case <-r.ctx.Done():
		}
	}
}

// leave takes a node off the network mid-run, keeping its counters. The
// node is closed with everyone else at the end: closing it now can stall
// a synctest bubble (kad-dht's SweepingProvider.Close waits on a mutex
// that a provide in progress holds while it sleeps, and a goroutine
// waiting on a mutex stops the bubble's clock). To its peers an isolated
// node and a closed one look the same: connections closed, then silence.
func (r *run) leave(sn *simNode) {
	sn.mu.Lock()
	defer sn.mu.Unlock()
	if sn.n == nil || sn.left {
		sn.left = true
		return
	}
	sn.snapshotLocked()
	r.verifyLocked(sn)
	sn.left = true
	sn.leftAtLocked(time.Since(r.t0).Seconds())
	r.net.isolate(sn.sh)
	if r.opts.Mode != "virtual" {
		if err := sn.n.Close(); err != nil {
			r.log.Debug("closing a leaving node", "node", sn.name, "err", err)
		}
		sn.closed = true
	}
}

// partition splits the swarm by the plan's side_a groups.
func (r *run) partition() {
	sideA := map[string]bool{}
	for _, g := range r.plan.Partition.SideA {
		sideA[g] = true
	}
	sides := map[*simHost]int{}
	for _, sn := range r.nodes {
		sn.mu.Lock()
		if sn.sh != nil && !sn.left {
			side := 1
			if sideA[sn.group.Name] {
				side = 0
			}
			sides[sn.sh] = side
		}
		sn.mu.Unlock()
	}
	r.net.partition(sides)
}

// sample records everyone's traffic every sample_s until all fetchers are
// done or the plan's timeout passes.
func (r *run) sample() {
	tick := time.NewTicker(seconds(r.plan.SampleS))
	defer tick.Stop()
	slots := time.NewTicker(slotSampleInterval)
	defer slots.Stop()
	deadline := time.NewTimer(seconds(r.plan.TimeoutS))
	defer deadline.Stop()
	for {
		if r.record() {
			return
		}
		for next := false; !next; {
			select {
			case <-tick.C:
				next = true
			case <-slots.C:
				r.sampleSlots()
			case <-deadline.C:
				r.record()
				return
			case <-r.ctx.Done():
				return
			}
		}
	}
}

// record takes one traffic sample; it reports whether every fetcher and
// lookup has finished (or left).
func (r *run) record() bool {
	s := Sample{T: time.Since(r.t0).Seconds(), Up: make([]int64, len(r.nodes)), Down: make([]int64, len(r.nodes))}
	finished := true
	for i, sn := range r.nodes {
		sn.mu.Lock()
		s.Up[i], s.Down[i] = sn.trafficLocked()
		if sn.awaited() && !sn.res.Completed && !sn.left {
			finished = false
		}
		sn.mu.Unlock()
	}
	r.samples = append(r.samples, s)
	var ms runtime.MemStats
	runtime.ReadMemStats(&ms)
	if m := ms.HeapInuse + ms.StackInuse; m > r.peakMem {
		if m > r.peakMem+r.peakMem/20 {
			r.writeHeapProfile()
		}
		r.peakMem = m
	}
	if r.opts.Progress != nil {
		r.opts.Progress(progress(s.T, r.members, func(i int) int64 { return s.Down[i] }))
	}
	return finished
}

// trafficLocked is the node's wire bytes up and down so far.
func (sn *simNode) trafficLocked() (up, down int64) {
	if sn.sh == nil || sn.left {
		return sn.up, sn.down
	}
	return sn.sh.traffic()
}

// snapshotLocked keeps what a node did before it is closed, its peers
// by peer ID (finishResults names them).
func (sn *simNode) snapshotLocked() {
	if sn.n == nil || sn.left {
		return
	}
	sn.up, sn.down = sn.trafficLocked()
	sn.res.BytesUp, sn.res.BytesDown = sn.up, sn.down
	sn.res.Protocols = sn.sh.proto.bytes()
	tr := sn.n.Traffic()
	sn.res.Upload = &UploadSplit{
		BlockBytes: int64(tr.BlockBytesServed), BitswapBytes: int64(tr.BitswapBytesOut),
		SwarmBytes: int64(tr.SwarmBytesOut), SwarmMsgs: int64(tr.SwarmMessagesOut),
		BlockBytesDown: int64(tr.BlockBytesReceived),
	}
	sn.res.Slots = sn.slots.use(nil)
	if su := sn.res.Slots; su != nil && sn.link.upMbit > 0 {
		sn.res.Upload.LinkUse = float64(sn.up) / (sn.link.upMbit * 1e6 / 8 * su.SampledS)
	}
	for _, t := range sn.n.Transfers() {
		if sn.res.BytesPerPeer == nil {
			sn.res.BytesPerPeer = map[string]int64{}
		}
		for _, pc := range t.Peers {
			sn.res.BytesPerPeer[pc.Peer] += int64(pc.Bytes)
		}
	}
	if sn.corrupt != nil {
		sn.res.CorruptServed = sn.corrupt.served.Load()
		sn.res.servedTo = map[string]int64{}
		for _, p := range sn.n.Peers() {
			sn.res.servedTo[p.ID] += int64(p.BytesOut)
		}
	}
}

// collect snapshots every node still running and checks that every
// completed fetcher holds exactly the content (one that left was checked
// when it left).
func (r *run) collect() {
	for _, sn := range r.nodes {
		sn.mu.Lock()
		if sn.n != nil && !sn.left {
			sn.snapshotLocked()
			r.verifyLocked(sn)
		}
		sn.mu.Unlock()
	}
}

// verifyLocked checks a completed fetcher's content (before it leaves,
// or at the end): a fetch that completed with the wrong bytes does not
// count as complete.
func (r *run) verifyLocked(sn *simNode) {
	sn.checkedLocked(func() (bool, error) { return verify(sn.n, r.root, r.sum) })
}

// verify reads the whole file back from a node's store and compares its
// hash with the content's.
func verify(n *node.Node, root cid.Cid, sum [32]byte) (bool, error) {
	f, err := n.Open(context.Background(), root)
	if err != nil {
		return false, err
	}
	defer f.Close()
	h := sha256.New()
	if _, err := io.Copy(h, f); err != nil {
		return false, err
	}
	if !bytes.Equal(h.Sum(nil), sum[:]) {
		return false, errContentDiffers
	}
	return true, nil
}

// drainTime is how long, in virtual time, the isolated nodes are left
// alone before they are closed, so that DHT work in progress (which may
// hold locks that Close needs) runs into its timeouts first.
const drainTime = 2 * time.Minute

// calmTime is how long, in virtual time, the nodes are left on an intact
// network after the run ends and before they are isolated. A node that
// has not yet measured the DHT's prefix length (kad-dht's
// SweepingProvider.approxPrefixLen, run by its connectivity checker)
// retries every second for as long as it believes itself online, and
// once isolated it never learns otherwise; its Close then waits on the
// mutex that measurement holds, which stops a synctest bubble's clock
// for good. A run stopped early (Ctrl-C a second into a plan) has such
// nodes; on an intact network the measurement finishes in seconds.
const calmTime = 30 * time.Second

func (r *run) closeAll() {
	if r.opts.Mode == "virtual" {
		time.Sleep(calmTime)
	}
	for _, sn := range r.nodes {
		sn.mu.Lock()
		if sn.sh != nil && !sn.closed {
			r.net.isolate(sn.sh)
		}
		sn.mu.Unlock()
	}
	if r.opts.Mode == "virtual" {
		time.Sleep(drainTime)
	}
	var wg sync.WaitGroup
	for _, sn := range r.nodes {
		sn.mu.Lock()
		n, closed := sn.n, sn.closed
		sn.left, sn.closed = true, true
		sn.mu.Unlock()
		if n != nil && !closed {
			wg.Go(func() {
				if err := n.Close(); err != nil {
					r.log.Debug("closing node", "node", sn.name, "err", err)
				}
			})
		}
	}
	wg.Wait()
	for _, sn := range r.nodes {
		if sn.sh != nil && sn.sh.light != nil {
			sn.sh.light.stop()
		}
	}
}
