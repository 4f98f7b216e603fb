package protocol

import (
	"context"
	"errors"
	"fmt"
	"hash/fnv"
	"log/slog"
	"sync"
	"sync/atomic"
	"time"

	"github.com/ipfs/go-cid"
	"github.com/libp2p/go-libp2p/core/host"
	"github.com/libp2p/go-libp2p/core/peer"
)

// Blocks is where the client looks for blocks it already has and stores the
// verified blocks it fetches. If it also has GetSize(ctx, c) (int, error),
// local leaves are sized without being read.
//
// Put (and VerifiedPutter's PutVerified) must not keep data after it
// returns: the bytes are the network's pooled receive buffer (see
// Receiver), reused for the next frame. A store that keeps blocks in memory
// copies them into memory of its own; one that writes them out is done with
// them when the write returns.
type Blocks interface {
	Has(ctx context.Context, c cid.Cid) (bool, error)
	Get(ctx context.Context, c cid.Cid) ([]byte, error)
	Put(ctx context.Context, c cid.Cid, data []byte) error
}

// VerifiedPutter is a Blocks that can store a block without hashing it
// again; the client uses it for blocks it has just verified.
type VerifiedPutter interface {
	PutVerified(ctx context.Context, c cid.Cid, data []byte) error
}

type sizer interface {
	GetSize(ctx context.Context, c cid.Cid) (int, error)
}

// Providers finds peers that provide a CID; the DHT streams them in and
// closes the channel when the search ends (or ctx ends).
type Providers interface {
	FindProviders(ctx context.Context, c cid.Cid) <-chan peer.AddrInfo
}

// ClientNetwork is what the client needs from the network: sending Bitswap
// messages, the peers connected now, and dialling providers. Use
// HostNetwork to make one from a *Network and its host.
type ClientNetwork interface {
	Send(ctx context.Context, p peer.ID, m *Message) error
	ConnectedPeers() []peer.ID
	Connect(ctx context.Context, ai peer.AddrInfo) error
	Self() peer.ID
}

type hostNetwork struct {
	*Network
	h host.Host
}

func (n hostNetwork) Connect(ctx context.Context, ai peer.AddrInfo) error {
	return n.h.Connect(ctx, ai)
}

// HostNetwork joins a Network and the host it runs on into a ClientNetwork.
func HostNetwork(n *Network, h host.Host) ClientNetwork { return hostNetwork{Network: n, h: h} }

// LinksFunc returns the child links of a verified block, in order (nil for a
// leaf). The node plugs in the dag-pb/UnixFS decoder.
type LinksFunc func(c cid.Cid, data []byte) ([]cid.Cid, error)

// ClientConfig configures a Client.
type ClientConfig struct {
	Scheduler SchedulerConfig
	// Links decodes a block's child links. Required.
	Links LinksFunc
	// TickInterval is how often stalls are checked.
	TickInterval time.Duration
	// ProgressInterval is how often Fetch.Updates receives a snapshot.
	ProgressInterval time.Duration
	// DialTimeout bounds connecting to one provider; DialConcurrency bounds
	// provider dials in flight per fetch, and peer-exchange dials in flight
	// for the whole client (AddProviders).
	DialTimeout     time.Duration
	DialConcurrency int
	// MaxExchangePeers: peer exchange dials no one while this many swarm
	// peers are connected (BitTorrent clients stop at 50-80 per torrent).
	MaxExchangePeers int
	// SearchTimeout is the default FetchOptions.SearchTimeout (0: search
	// until cancelled); SearchBackoff is the pause after the first provider
	// lookup, doubling up to SearchBackoffMax.
	SearchTimeout    time.Duration
	SearchBackoff    time.Duration
	SearchBackoffMax time.Duration
	// SendTimeout bounds one message send to a peer.
	SendTimeout time.Duration
	// BanFor is how long a peer that sent a corrupt block is refused.
	BanFor time.Duration
	Logger *slog.Logger
	// OnFetching, when set, hears that a fetch under root (a whole DAG or
	// one block) started (active) or that the last one ended; OnVerified
	// hears each block of a whole-DAG fetch that is now held here, verified. Both are
	// called on the client's loop and must not block (the swarm
	// extension queues its messages).
	OnFetching func(root cid.Cid, active bool)
	OnVerified func(root, c cid.Cid)
	// OnInterest, when set, hears that this node became interested in
	// swarm peer p for root (p is known to hold a block of root that a
	// running fetch still needs: BitTorrent's interest) or stopped being
	// so. Called on the client's loop; it must not block.
	OnInterest func(p peer.ID, root cid.Cid, interested bool)
}

// DefaultClientConfig returns the defaults; Links must still be set.
func DefaultClientConfig() ClientConfig {
	return ClientConfig{
		Scheduler:        DefaultSchedulerConfig(),
		TickInterval:     100 * time.Millisecond,
		ProgressInterval: 250 * time.Millisecond,
		DialTimeout:      15 * time.Second,
		DialConcurrency:  8,
		MaxExchangePeers: 50,
		SearchTimeout:    2 * time.Minute,
		SearchBackoff:    time.Second,
		SearchBackoffMax: 10 * time.Second,
		SendTimeout:      30 * time.Second,
		BanFor:           10 * time.Minute,
		Logger:           slog.New(slog.DiscardHandler),
	}
}

// Validate reports the first unusable field.
func (c ClientConfig) Validate() error {
	if err := c.Scheduler.Validate(); err != nil {
		return err
	}
	switch {
	case c.Links == nil:
		return fmt.Errorf("%w: ClientConfig.Links must be set (the DAG link decoder)", ErrFetchConfig)
	case c.TickInterval <= 0 || c.ProgressInterval <= 0:
		return fmt.Errorf("%w: ClientConfig intervals must be positive", ErrFetchConfig)
	case c.DialTimeout <= 0 || c.DialConcurrency <= 0 || c.SendTimeout <= 0 || c.MaxExchangePeers <= 0:
		return fmt.Errorf("%w: ClientConfig dial/send limits (DialTimeout, DialConcurrency, SendTimeout, MaxExchangePeers) must be positive", ErrFetchConfig)
	case c.SearchTimeout < 0 || c.SearchBackoff <= 0 || c.SearchBackoffMax < c.SearchBackoff:
		return fmt.Errorf("%w: ClientConfig SearchTimeout=%v must be >= 0 and 0 < SearchBackoff=%v <= SearchBackoffMax=%v",
			ErrFetchConfig, c.SearchTimeout, c.SearchBackoff, c.SearchBackoffMax)
	case c.BanFor < 0:
		return fmt.Errorf("%w: ClientConfig.BanFor must be >= 0", ErrFetchConfig)
	case c.Logger == nil:
		return fmt.Errorf("%w: ClientConfig.Logger must be set (slog.New(slog.DiscardHandler) for none)", ErrFetchConfig)
	}
	return nil
}

// Client fetches DAGs from many peers at once. One goroutine (the loop) owns
// every fetch's Scheduler; network read goroutines verify, decode and store
// blocks, then hand the loop small events; one sender goroutine per peer
// writes the loop's wants. Plug the Client into a Network as the client
// Receiver and as a PeerListener.
type Client struct {
	cfg   ClientConfig
	net   ClientNetwork
	store Blocks
	// putVerified stores a block accept has just hashed: the store's
	// PutVerified when it is a VerifiedPutter (no second hash), else Put.
	putVerified func(ctx context.Context, c cid.Cid, data []byte) error
	providers   Providers
	log         *slog.Logger
	scores      *PeerScores

	ctx    context.Context
	cancel context.CancelFunc
	wg     sync.WaitGroup
	events chan func()

	startOnce, closeOnce sync.Once
	started              chan struct{}

	askedMu sync.Mutex
	asked   map[cid.Cid]time.Time // CIDs we sent wants for, for telling late blocks from bogus ones

	// Owned by the loop goroutine.
	fetches  map[*Fetch]struct{}
	peers    map[peer.ID]bool
	outboxes map[peer.ID]*outbox
	waiters  map[cid.Cid][]chan error
	swarm    map[peer.ID]bool // peers that speak the swarm extension
	choked   map[peer.ID]bool // swarm peers that choke us
	fetching map[cid.Cid]int  // running recursive fetches per root
	// interest counts, per root and swarm peer, the running fetches
	// interested in the peer (OnInterest).
	interest map[cid.Cid]map[peer.ID]int
	// heard keeps, per root being fetched and swarm peer, the peer's
	// last map and the HAVE deltas since, so a fetch of a root that
	// starts while another runs (a whole-DAG fetch while a read session
	// of it runs) knows what the first one was told: the extension
	// sends a root's maps once, when its first fetch starts.
	heard map[cid.Cid]map[peer.ID]*heardMap
	// Peer exchange dials (AddProviders): in flight, and waiting.
	exchDialing map[peer.ID]bool
	exchQueued  map[peer.ID]bool
	exchQueue   []exchangeDial

	exchangeDials atomic.Uint64 // exchange dials started, for tests and stats

	sentWants wantCounters
}

// NewClient returns a Client; call Start before Fetch.
func NewClient(cfg ClientConfig, net ClientNetwork, store Blocks, providers Providers) (*Client, error) {
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	if net == nil || store == nil {
		return nil, fmt.Errorf("%w: NewClient needs a network and a block store", ErrFetchConfig)
	}
	ctx, cancel := context.WithCancel(context.Background())
	c := &Client{
		cfg: cfg, net: net, store: store, providers: providers, log: cfg.Logger,
		scores: NewPeerScores(cfg.BanFor),
		ctx:    ctx, cancel: cancel,
		events:   make(chan func()),
		started:  make(chan struct{}),
		asked:    make(map[cid.Cid]time.Time),
		fetches:  make(map[*Fetch]struct{}),
		peers:    make(map[peer.ID]bool),
		outboxes: make(map[peer.ID]*outbox),
		waiters:  make(map[cid.Cid][]chan error),
		swarm:    make(map[peer.ID]bool),
		choked:   make(map[peer.ID]bool),
		fetching: make(map[cid.Cid]int),
		interest: make(map[cid.Cid]map[peer.ID]int),
		heard:    make(map[cid.Cid]map[peer.ID]*heardMap),

		exchDialing: make(map[peer.ID]bool),
		exchQueued:  make(map[peer.ID]bool),
	}
	c.cfg.Scheduler.Scores = c.scores
	c.putVerified = store.Put
	if vp, ok := store.(VerifiedPutter); ok {
		c.putVerified = vp.PutVerified
	}
	if c.cfg.Scheduler.TieBreak == 0 {
		h := fnv.New64a()
		h.Write([]byte(net.Self()))
		c.cfg.Scheduler.TieBreak = h.Sum64() | 1
	}
	return c, nil
}

// Scores returns the node-lifetime peer score table.
func (c *Client) Scores() *PeerScores { return c.scores }

// Start launches the loop and adds the peers connected now.
func (c *Client) Start() error {
	started := false
	c.startOnce.Do(func() {
		if c.ctx.Err() != nil {
			return
		}
		started = true
		c.wg.Add(1)
		go func() {
			defer c.wg.Done()
			c.loop()
		}()
		close(c.started)
		for _, p := range c.net.ConnectedPeers() {
			c.PeerConnected(p)
		}
	})
	if !started {
		return errors.New("protocol: Client.Start called twice or after Close")
	}
	return nil
}

// Close ends every fetch with ErrFetchClosed and waits for the client's
// goroutines. Safe to call twice.
func (c *Client) Close() error {
	c.closeOnce.Do(func() {
		c.cancel()
		c.wg.Wait()
	})
	return nil
}

// post runs fn on the loop goroutine; false if the client is closed. The
// channel is unbuffered so that true means the loop has taken fn and will
// run it.
func (c *Client) post(fn func()) bool {
	select {
	case <-c.started:
	case <-c.ctx.Done():
		return false
	}
	select {
	case c.events <- fn:
		return true
	case <-c.ctx.Done():
		return false
	}
}

func (c *Client) loop() {
	t := time.NewTicker(c.cfg.TickInterval)
	defer t.Stop()
	for {
		select {
		case <-c.ctx.Done():
			c.shutdown()
			return
		case fn := <-c.events:
			fn()
		case now := <-t.C:
			c.tick(now)
		}
		c.flush(time.Now())
	}
}

func (c *Client) shutdown() {
	for f := range c.fetches {
		f.s.Close()
		c.finish(f, time.Now())
	}
	for k, ws := range c.waiters {
		for _, w := range ws {
			w <- ErrFetchClosed
		}
		delete(c.waiters, k)
	}
	for p, o := range c.outboxes {
		o.close()
		delete(c.outboxes, p)
	}
}

func (c *Client) tick(now time.Time) {
	for f := range c.fetches {
		f.s.Tick(now)
		if now.Sub(f.lastUpdate) >= c.cfg.ProgressInterval {
			f.publish(now)
		}
	}
	c.askedMu.Lock()
	for k, at := range c.asked {
		if now.Sub(at) > 5*time.Minute {
			delete(c.asked, k)
		}
	}
	c.askedMu.Unlock()
}

// flush sends every fetch's pending actions and retires finished fetches.
func (c *Client) flush(now time.Time) {
	for f := range c.fetches {
		if f.s.HasReady() {
			c.route(f.s.Ready(), now)
		}
		c.takeInterest(f, false)
		if f.s.Done() || f.s.Err() != nil {
			c.finish(f, now)
		}
	}
}

func (c *Client) route(acts []Action, now time.Time) {
	c.askedMu.Lock()
	for _, a := range acts {
		if a.Kind != ActCancel {
			c.asked[a.CID] = now
		}
	}
	c.askedMu.Unlock()
	for _, a := range acts {
		c.sentWants.count(a.Kind)
		o := c.outboxes[a.Peer]
		if o == nil {
			if a.Kind == ActCancel {
				continue
			}
			o = c.newOutbox(a.Peer)
		}
		e := Entry{CID: a.CID, Priority: 1, SendDontHave: true}
		if a.Urgent {
			e.Priority = 2 // servers answer higher priorities first
		}
		switch a.Kind {
		case ActWantHave:
			e.WantType = WantHave
		case ActCancel:
			e = Entry{CID: a.CID, Cancel: true}
		}
		o.add(e)
	}
}

func (c *Client) wasAsked(k cid.Cid) bool {
	c.askedMu.Lock()
	defer c.askedMu.Unlock()
	_, ok := c.asked[k]
	return ok
}

// PeerConnected adds p to every running fetch (PeerListener).
func (c *Client) PeerConnected(p peer.ID) {
	if p == c.net.Self() {
		return
	}
	c.post(func() {
		c.peers[p] = true
		now := time.Now()
		for f := range c.fetches {
			c.addPeerTo(f, p, now)
		}
	})
}

// PeerDisconnected removes p from every running fetch (PeerListener).
func (c *Client) PeerDisconnected(p peer.ID) {
	c.post(func() { c.dropPeer(p, time.Now()) })
}

func (c *Client) dropPeer(p peer.ID, now time.Time) {
	delete(c.peers, p)
	c.forgetHeard(p)
	for f := range c.fetches {
		f.s.RemovePeer(p, now)
	}
	if o := c.outboxes[p]; o != nil {
		o.close()
		delete(c.outboxes, p)
	}
}
