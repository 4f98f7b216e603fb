package dht

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"math/rand/v2"
	"sort"
	"sync"
	"sync/atomic"
	"time"

	"github.com/ipfs/go-cid"
	"github.com/ipfs/go-datastore"
	"github.com/ipfs/go-datastore/namespace"
	dssync "github.com/ipfs/go-datastore/sync"
	kaddht "github.com/libp2p/go-libp2p-kad-dht"
	"github.com/libp2p/go-libp2p-kad-dht/provider"
	"github.com/libp2p/go-libp2p-kad-dht/provider/keystore"
	kb "github.com/libp2p/go-libp2p-kbucket"
	"github.com/libp2p/go-libp2p/core/host"
	"github.com/libp2p/go-libp2p/core/network"
	"github.com/libp2p/go-libp2p/core/peer"
	mh "github.com/multiformats/go-multihash"
)

// Sentinel errors.
var (
	// ErrClosed is returned by operations on a closed Router.
	ErrClosed = errors.New("dht: router closed")
	// ErrInvalidCID is returned for an undefined CID.
	ErrInvalidCID = errors.New("dht: invalid CID")
	// ErrNoBootstrapPeer is returned by Bootstrap when no bootstrap peer
	// could be reached.
	ErrNoBootstrapPeer = errors.New("dht: no bootstrap peer reachable")
)

// Datastore namespaces under Config.Datastore.
var (
	nsRecords  = datastore.NewKey("/dht/records")
	nsKeystore = datastore.NewKey("/dht/provide/keys")
	nsProvider = datastore.NewKey("/dht/provide/state")
)

// Router is one node's view of the DHT: its routing table, the set of roots
// it provides, and provider lookups. Create with New, then Start (or Run).
type Router struct {
	cfg       Config
	log       *slog.Logger
	host      host.Host
	dht       *kaddht.IpfsDHT
	prov      *provider.SweepingProvider
	keys      keystore.Keystore
	roots     *rootSet
	bootstrap []peer.AddrInfo
	ownedDS   datastore.Batching // in-memory store we created, closed by Close

	ctx    context.Context // cancelled by Close
	cancel context.CancelFunc
	wg     sync.WaitGroup // every goroutine the Router starts

	mu      sync.Mutex
	started bool
	closed  bool
	mdns    *lanDiscovery
	pending []mh.Multihash // roots accepted by Provide, not yet given to prov
	wake    chan struct{}  // signals runBatcher; capacity 1

	provMu sync.Mutex // serialises handing roots to prov with StopProviding

	closeOnce sync.Once
	closeErr  error

	joining *joinAttempt // the Bootstrap in progress, under mu
	// firstJoin is closed when the first Bootstrap attempt ends, whatever
	// its result (awaitTable).
	firstJoin     chan struct{}
	firstJoinOnce sync.Once

	ownKey ownKeyResult // the last own-key lookup, for the provider

	checks    *checkPacer  // kad-dht's admission checks, per peer (upkeep.go)
	refreshes atomic.Int64 // routing-table refreshes runRefresh ran

	bootstrapFailures atomic.Int64 // background bootstrap attempts that failed
	rejoins           atomic.Int64 // bootstraps after every bootstrap peer left the table
}

// New builds a Router on h: it joins the DHT of cfg.Network in cfg.Mode and
// prepares the sweeping provider. Nothing is dialled until Start or Bootstrap.
// The host stays owned by the caller; close it after the Router.
func New(h host.Host, cfg Config) (_ *Router, err error) {
	if h == nil {
		return nil, fmt.Errorf("%w: nil host", ErrInvalidConfig)
	}
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	r := &Router{
		cfg:    cfg,
		log:    cfg.logger().With("component", "dht"),
		host:   h,
		roots:  newRootSet(),
		wake:   make(chan struct{}, 1),
		checks: newCheckPacer(),

		firstJoin: make(chan struct{}),
	}
	// A fleet often shares one bootstrap list; the bootstrap node itself
	// must not wait for itself.
	for _, ai := range cfg.bootstrapPeers() {
		if ai.ID != h.ID() {
			r.bootstrap = append(r.bootstrap, ai)
		}
	}
	r.ctx, r.cancel = context.WithCancel(context.Background())
	var cleanup []func() error
	defer func() {
		if err != nil {
			r.cancel()
			for i := len(cleanup) - 1; i >= 0; i-- {
				_ = cleanup[i]()
			}
		}
	}()

	ds := cfg.Datastore
	if ds == nil {
		r.ownedDS = dssync.MutexWrap(datastore.NewMapDatastore())
		ds = r.ownedDS
		cleanup = append(cleanup, ds.Close)
	}
	if r.dht, err = kaddht.New(h, r.dhtOptions(ds)...); err != nil {
		return nil, fmt.Errorf("dht: start kademlia on %s network: %w", cfg.Network, err)
	}
	cleanup = append(cleanup, r.dht.Close)
	if r.keys, err = keystore.NewKeystore(namespace.Wrap(ds, nsKeystore)); err != nil {
		return nil, fmt.Errorf("dht: open provide keystore: %w", err)
	}
	cleanup = append(cleanup, r.keys.Close)
	if err = r.loadRoots(); err != nil {
		return nil, err
	}
	if r.prov, err = provider.New(r.providerOptions(namespace.Wrap(ds, nsProvider))...); err != nil {
		return nil, fmt.Errorf("dht: start sweeping provider: %w", err)
	}
	r.wg.Add(1)
	go r.runBatcher()
	return r, nil
}

func (r *Router) dhtOptions(ds datastore.Batching) []kaddht.Option {
	mode := kaddht.ModeServer
	if r.cfg.Mode == ModeClient {
		mode = kaddht.ModeClient
	}
	return append([]kaddht.Option{
		kaddht.Mode(mode),
		kaddht.ProtocolPrefix(r.cfg.protocolPrefix()),
		kaddht.BucketSize(r.cfg.BucketSize),
		kaddht.Datastore(namespace.Wrap(ds, nsRecords)),
		// kad-dht dials these whenever its table is empty, from construction
		// on; handing them over only after Start keeps New free of I/O.
		kaddht.BootstrapPeersFunc(func() []peer.AddrInfo {
			r.mu.Lock()
			defer r.mu.Unlock()
			if !r.started || r.closed {
				return nil
			}
			return r.bootstrap
		}),
	}, append(r.upkeepOptions(), r.cfg.extraDHTOptions...)...)
}

// providerOptions wires kad-dht's sweeping provider to our DHT the way its
// dual package does, with the message sender wrapped to time announcements.
func (r *Router) providerOptions(state datastore.Batching) []provider.Option {
	d := r.dht
	periodic := min(2, r.cfg.ProvideWorkers-1)
	return []provider.Option{
		provider.WithHost(r.host),
		provider.WithRouter(providerRouter{r}),
		provider.WithReplicationFactor(d.BucketSize()),
		provider.WithSelfAddrs(d.FilteredAddrs),
		provider.WithMessageSender(recordingSender{MessageSender: d.MessageSender(), roots: r.roots}),
		provider.WithAddLocalRecord(func(ctx context.Context, h mh.Multihash) error {
			return d.Provide(ctx, cid.NewCidV1(cid.Raw, h), false)
		}),
		provider.WithKeystore(r.keys),
		provider.WithDatastore(state),
		provider.WithReprovideInterval(r.cfg.ReprovideInterval),
		provider.WithMaxReprovideDelay(min(provider.DefaultMaxReprovideDelay, r.cfg.ReprovideInterval/2+1)),
		provider.WithMaxWorkers(r.cfg.ProvideWorkers),
		provider.WithDedicatedPeriodicWorkers(periodic),
		provider.WithDedicatedBurstWorkers(1),
		provider.WithMaxProvideConnsPerWorker(r.cfg.ProvideConnsPerWorker),
		provider.WithLoggerName("shoal/dht/provider"),
	}
}

// loadRoots fills the root set from a persistent keystore, so roots provided
// before a restart stay in the set (with no announcement time yet).
func (r *Router) loadRoots() error {
	keys, err := r.keys.Get(r.ctx, "")
	if err != nil {
		return fmt.Errorf("dht: read provide keystore: %w", err)
	}
	r.roots.add(keys...)
	return nil
}

// Start begins LAN discovery (if configured) and bootstraps in the
// background. kad-dht keeps re-dialling the bootstrap peers whenever the
// routing table runs low, so a failed first attempt is only logged.
func (r *Router) Start() error {
	r.mu.Lock()
	defer r.mu.Unlock()
	if r.closed {
		return ErrClosed
	}
	if r.started {
		return nil
	}
	r.started = true
	if r.cfg.MDNS {
		d, err := startLANDiscovery(r.ctx, r.host, r.cfg.mdnsServiceName(), r.log, &r.wg)
		if err != nil {
			// LAN discovery is an extra: a host without multicast still works.
			r.log.Warn("dht: mDNS discovery unavailable", "err", err)
		} else {
			r.mdns = d
		}
	}
	r.wg.Add(1)
	go func() {
		defer r.wg.Done()
		r.bootstrapUntilJoined()
		r.rejoinWhenCutOff()
	}()
	if r.cfg.RefreshDelay >= 0 {
		r.wg.Add(1)
		go r.runRefresh()
	}
	return nil
}

// rejoinWhenCutOff bootstraps again whenever no bootstrap peer is left in
// the routing table, checking every RejoinInterval (±25%). After a network
// split, each side's lookups to the other fail and kad-dht evicts those
// peers; once the split heals nobody dials across it, because kad-dht
// re-dials bootstrap peers only when its table is empty and each side's
// table still holds its own side. The bootstrap peers are the fleet's
// meeting point: rejoining through them (and the own-key lookup that
// follows) refills the table across the healed link. A check costs a
// table lookup per bootstrap peer; a dial happens only when all are gone.
func (r *Router) rejoinWhenCutOff() {
	every := r.cfg.RejoinInterval
	if every == 0 {
		every = DefaultRejoinInterval
	}
	if every < 0 || len(r.bootstrap) == 0 {
		return
	}
	delay := every
	for {
		wait := delay*3/4 + rand.N(delay/2+1)
		select {
		case <-time.After(wait):
		case <-r.ctx.Done():
			return
		}
		if r.knowsBootstrapPeer() {
			delay = every
			continue
		}
		r.rejoins.Add(1)
		ctx, cancel := context.WithTimeout(r.ctx, every)
		err := r.Bootstrap(ctx)
		cancel()
		if r.ctx.Err() != nil {
			return
		}
		if err != nil || !r.knowsBootstrapPeer() {
			// Unreachable, or reachable but kept out of a full bucket:
			// back off so a fleet does not lean on its bootstrap peers
			// every interval.
			delay = min(2*delay, maxRejoinInterval(every))
			r.log.Info("dht: no bootstrap peer left in the routing table; rejoin did not bring one back",
				"next_check_in", delay, "err", err)
		}
	}
}

// maxRejoinInterval caps the rejoin backoff at 16 intervals (8 min at the
// default).
func maxRejoinInterval(every time.Duration) time.Duration { return 16 * every }

// knowsBootstrapPeer reports whether a bootstrap peer is in the routing
// table.
func (r *Router) knowsBootstrapPeer() bool {
	rt := r.dht.RoutingTable()
	for _, ai := range r.bootstrap {
		if rt.Find(ai.ID) != "" {
			return true
		}
	}
	return false
}

// Bootstrap retry backoff: doubling from the first delay up to the cap,
// with ±25% jitter so nodes that failed together do not retry together.
const (
	bootstrapRetryFirst = time.Second
	bootstrapRetryMax   = time.Minute
)

// bootstrapUntilJoined bootstraps, retrying with backoff while it fails
// and the routing table is still empty: bootstrap peers may start after
// us, and two nodes that list each other can collide on their first dials.
func (r *Router) bootstrapUntilJoined() {
	delay := bootstrapRetryFirst
	for {
		err := r.Bootstrap(r.ctx)
		if err == nil || r.ctx.Err() != nil {
			return
		}
		r.bootstrapFailures.Add(1)
		if r.dht.RoutingTable().Size() > 0 {
			// Someone found us: the DHT is joined through them, and
			// kad-dht's own refresh takes it from here.
			r.log.Info("dht: bootstrap peers unreachable, but the routing table has peers", "err", err)
			return
		}
		wait := delay/2 + delay/4 + rand.N(delay/2)
		r.log.Warn("dht: bootstrap failed; retrying", "in", wait.Round(time.Millisecond), "err", err)
		select {
		case <-time.After(wait):
		case <-r.ctx.Done():
			return
		}
		delay = min(2*delay, bootstrapRetryMax)
	}
}

// Run starts the router and blocks until ctx is done, then closes it.
func (r *Router) Run(ctx context.Context) error {
	if err := r.Start(); err != nil {
		return err
	}
	select {
	case <-ctx.Done():
	case <-r.ctx.Done():
	}
	return r.Close()
}

// Bootstrap dials every bootstrap peer (concurrently), waits until one of
// them is in the routing table, and looks up this node's own key, which fills
// the table with the peers closest to us; the refresh of the farther buckets
// continues in the background. It fails with ErrNoBootstrapPeer if bootstrap
// peers are configured but none answered, and does nothing when none are
// configured and the table is empty (the first node of a fleet).
//
// Calls that overlap share one attempt: Start bootstraps in the background
// and a node that also waits for its join (or a rejoin check that fires
// meanwhile) would otherwise walk the DHT twice for the same answer. A
// caller whose own context is still live retries if the attempt it joined
// ended with the other caller's context.
func (r *Router) Bootstrap(ctx context.Context) error {
	for {
		if r.isClosed() {
			return ErrClosed
		}
		r.mu.Lock()
		f := r.joining
		lead := f == nil
		if lead {
			f = &joinAttempt{done: make(chan struct{})}
			r.joining = f
		}
		r.mu.Unlock()
		if lead {
			f.err = r.join(ctx)
			r.firstJoinOnce.Do(func() { close(r.firstJoin) })
			r.mu.Lock()
			r.joining = nil
			r.mu.Unlock()
			close(f.done)
			return f.err
		}
		select {
		case <-f.done:
		case <-ctx.Done():
			return fmt.Errorf("dht: bootstrap: %w", ctx.Err())
		}
		ended := errors.Is(f.err, context.Canceled) || errors.Is(f.err, context.DeadlineExceeded)
		if f.err == nil || !ended || ctx.Err() != nil {
			return f.err
		}
	}
}

// joinAttempt is a Bootstrap in progress; err is set before done closes.
type joinAttempt struct {
	done chan struct{}
	err  error
}

func (r *Router) join(ctx context.Context) error {
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	defer context.AfterFunc(r.ctx, cancel)()
	rejoin := r.dht.RoutingTable().Size() > 0
	if len(r.bootstrap) > 0 {
		if err := r.connectAll(ctx, r.bootstrap); err != nil {
			return err
		}
	} else if !rejoin {
		return nil
	}
	// Identify runs after the connection is up; kad-dht adds the peer to
	// the table only once it knows the peer speaks the DHT protocol.
	if err := r.waitRoutingTable(ctx); err != nil {
		return err
	}
	if _, err := r.ownKeyLookup(ctx); err != nil {
		return fmt.Errorf("dht: bootstrap lookup of own key: %w", err)
	}
	switch {
	case rejoin:
		// A rejoin (the table was not empty) refreshes at once: the table
		// lost its way to the bootstrap peers, so its buckets are stale.
		_ = r.dht.Bootstrap(ctx)
	case r.cfg.RefreshDelay >= 0 && r.dht.RoutingTable().Size() <= lowTable:
		// The join's lookup left a table too thin to wait for the
		// deferred refresh (upkeep.go) with.
		r.dht.RefreshRoutingTable()
	}
	return nil
}

// waitRoutingTable waits until the routing table holds at least one peer.
func (r *Router) waitRoutingTable(ctx context.Context) error {
	t := time.NewTicker(25 * time.Millisecond)
	defer t.Stop()
	for r.dht.RoutingTable().Size() == 0 {
		select {
		case <-t.C:
		case <-ctx.Done():
			if r.isClosed() {
				return ErrClosed
			}
			return fmt.Errorf("dht: bootstrap peers connected but none joined the routing table (do they run the %s DHT in server mode?): %w",
				r.cfg.Network, ctx.Err())
		}
	}
	return nil
}

// connectAll dials peers concurrently and fails only if none connects.
func (r *Router) connectAll(ctx context.Context, peers []peer.AddrInfo) error {
	errs := make([]error, len(peers))
	var wg sync.WaitGroup
	for i, ai := range peers {
		wg.Go(func() {
			// An explicit bootstrap ignores the dial backoff of an earlier
			// failure: the user is asking for a retry now.
			ctx := network.WithForceDirectDial(ctx, "shoal bootstrap")
			if err := r.host.Connect(ctx, ai); err != nil {
				errs[i] = fmt.Errorf("peer %s: %w", ai.ID, err)
			}
		})
	}
	wg.Wait()
	for _, err := range errs {
		if err == nil {
			return nil
		}
	}
	return fmt.Errorf("%w (tried %d; check the addresses and that the peers run): %w",
		ErrNoBootstrapPeer, len(peers), errors.Join(errs...))
}

// FindProviders streams the providers of c (other than this node) as they
// are found; the channel closes when the lookup ends, ctx is done or the
// Router closes.
func (r *Router) FindProviders(ctx context.Context, c cid.Cid) <-chan peer.AddrInfo {
	out := make(chan peer.AddrInfo)
	r.mu.Lock()
	if r.closed || !c.Defined() {
		r.mu.Unlock()
		close(out)
		return out
	}
	r.wg.Add(1)
	r.mu.Unlock()
	go func() {
		defer r.wg.Done()
		defer close(out)
		ctx, cancel := context.WithCancel(ctx)
		defer cancel()
		stop := context.AfterFunc(r.ctx, cancel)
		defer stop()
		r.awaitTable(ctx)
		for ai := range r.dht.FindProvidersAsync(ctx, c, 0) {
			if ai.ID == r.host.ID() {
				continue
			}
			select {
			case out <- ai:
			case <-ctx.Done():
			}
		}
	}()
	return out
}

// awaitTable holds a lookup that starts while this node's first join is
// under way, its routing table still empty, until the join has put a peer
// in the table (or the join ends, or ctx does). kad-dht fails a lookup on
// an empty table at once ("failed to find any peer in table"), so a fetch
// started with the daemon — a fleet that boots and fetches, the simulated
// flash crowds — found no provider by the DHT and searched again only
// after its backoff (1 s); in the multi-source plan the leecher then took
// 7 of its 8 seeders from the first one's peer exchange, 0.19 s after the
// first (bench/sim.md, "lookupjoin"). A node with no bootstrap peers, or
// not started, does not wait.
func (r *Router) awaitTable(ctx context.Context) {
	if len(r.bootstrap) == 0 || r.dht.RoutingTable().Size() > 0 {
		return
	}
	r.mu.Lock()
	started := r.started
	r.mu.Unlock()
	if !started {
		return
	}
	t := time.NewTicker(10 * time.Millisecond)
	defer t.Stop()
	for r.dht.RoutingTable().Size() == 0 {
		select {
		case <-t.C:
		case <-r.firstJoin:
			return
		case <-ctx.Done():
			return
		}
	}
}

// BucketInfo is one routing-table bucket: the peers sharing Index leading
// bits with this node's key.
type BucketInfo struct {
	Index int `json:"index"`
	Peers int `json:"peers"`
}

// RoutingTable returns the non-empty buckets, by increasing index.
func (r *Router) RoutingTable() []BucketInfo {
	self := kb.ConvertPeerID(r.host.ID())
	counts := map[int]int{}
	for _, p := range r.dht.RoutingTable().ListPeers() {
		counts[kb.CommonPrefixLen(self, kb.ConvertPeerID(p))]++
	}
	out := make([]BucketInfo, 0, len(counts))
	for i, n := range counts {
		out = append(out, BucketInfo{Index: i, Peers: n})
	}
	sort.Slice(out, func(a, b int) bool { return out[a].Index < out[b].Index })
	return out
}

// Size is the number of peers in the routing table.
func (r *Router) Size() int { return r.dht.RoutingTable().Size() }

// Peers lists the peers in the routing table.
func (r *Router) Peers() []peer.ID { return r.dht.RoutingTable().ListPeers() }

// Mode is the configured DHT mode.
func (r *Router) Mode() Mode { return r.cfg.Mode }

// Network is the configured network name.
func (r *Router) Network() string { return r.cfg.Network }

func (r *Router) isClosed() bool {
	r.mu.Lock()
	defer r.mu.Unlock()
	return r.closed
}

// Close stops discovery, lookups, the provider and the DHT, and waits for
// every goroutine the Router started. The provide set stays in the
// Datastore. Safe to call more than once.
func (r *Router) Close() error {
	r.closeOnce.Do(func() {
		r.mu.Lock()
		r.closed = true
		d := r.mdns
		r.mu.Unlock()
		r.cancel()
		var errs []error
		if d != nil {
			errs = append(errs, d.close())
		}
		r.wg.Wait()
		errs = append(errs, r.prov.Close(), r.keys.Close(), r.dht.Close())
		if r.ownedDS != nil {
			errs = append(errs, r.ownedDS.Close())
		}
		r.closeErr = errors.Join(errs...)
	})
	return r.closeErr
}
