package protocol

import (
	"context"
	"errors"
	"fmt"
	"hash/maphash"
	"log/slog"
	"sync"
	"time"

	"github.com/ipfs/go-cid"
	"github.com/libp2p/go-libp2p/core/peer"
)

// Blockstore is what the server reads blocks from.
type Blockstore interface {
	Get(ctx context.Context, c cid.Cid) ([]byte, error)
	Has(ctx context.Context, c cid.Cid) (bool, error)
	GetSize(ctx context.Context, c cid.Cid) (int, error)
}

// MessageSender sends a message to a peer; *Network is one. Send must
// not read m, nor its blocks' bytes, after it returns: the Server reuses
// the buffers they lie in (sendBufs).
type MessageSender interface {
	Send(ctx context.Context, p peer.ID, m *Message) error
}

// ErrServerClosed is returned by Start after Close.
var ErrServerClosed = errors.New("protocol: server closed")

// maxBatchBytes leaves room in a message for a batch, one maximal block and
// the small entries that may overshoot the budget by one.
const maxBatchBytes = MaxMessageSize - MaxBlockSize - 64<<10

// ServerConfig configures a Server.
type ServerConfig struct {
	// Workers answer wants; each serves one peer's batch at a time, peers
	// taken in round-robin order.
	Workers int
	// MaxWantsPerPeer bounds the wants held per peer (queued or waiting for
	// a block). Wants past it are refused: answered DONT_HAVE if asked
	// (at most MaxWantsPerPeer such answers pending), else dropped.
	MaxWantsPerPeer int
	// MaxInflightSends bounds responses being written at once (each holds
	// up to a batch in memory); a peer slow to read holds one of these, not
	// a worker.
	MaxInflightSends int
	// MaxBatchBytes is the size a response message is filled up to. One
	// block bigger than this still goes, alone.
	MaxBatchBytes int
	// UploadBytesPerSecond limits the bytes of all responses together;
	// 0 means unlimited.
	UploadBytesPerSecond int64
	// SwarmSendsAtOnce is how many responses carrying blocks to swarm
	// peers are written at once (upload turns, turn.go): 1 sends one block
	// at a time at the uplink's full rate, the unchoked peers taking turns,
	// so a block reaches its first holder in one block's time instead of
	// Slots+1 blocks' time and can be passed on that much sooner. 0 (the
	// default) leaves them to MaxInflightSends alone: in the simulator one
	// turn cut the seeder's copies to 2 but made completion later
	// (bench/sim.md, "Block hop latency"). Peers without the extension
	// never wait for a turn.
	SwarmSendsAtOnce int
	// SwarmTurnSlices ends a turn when its send has run as long as it
	// would at the uplink's rate (turn.go): a send still running then goes
	// on beside the next turn's, up to SwarmSendsAtOnce at once, so slow
	// sends (cold connections, receivers fed by others too) do not leave
	// the uplink idle and fast ones have it to themselves.
	SwarmTurnSlices bool
	// UploadSlots is how many swarm peers are unchoked at once besides the
	// optimistic unchoke (choker.go); 0 sizes it from the uplink: the
	// UploadBytesPerSecond limit if set, else the measured peak upload
	// rate, one slot per 10 Mbit/s, at least 2 and at most 16 (choker.go
	// says why not BitTorrent's 4 + 1). Peers without the swarm extension
	// are never choked.
	UploadSlots int
	// ChokeInterval is the rechoke round: rates are re-measured and the
	// regular slots re-ranked (BitTorrent's 10 s). Between rounds idle
	// slots are handed on every second.
	ChokeInterval time.Duration
	// OptimisticUnchokeInterval is how long an optimistic unchoke lasts
	// before it rotates to the peer that waited longest.
	OptimisticUnchokeInterval time.Duration
	// ReceivedFrom returns the block bytes this node has received from p
	// (a counter that only grows while p is connected); the tit-for-tat
	// rank of a leecher's swarm peers. Nil: every peer ranks as if it
	// gave nothing back (seeding rules). It must not call the Server.
	ReceivedFrom func(p peer.ID) uint64
	// SwarmAllPeers treats every peer as a swarm peer (as if SetSwarmPeer
	// were called on its first want). For simulations that measure
	// choking before the swarm extension exists; never in production,
	// where a Kubo peer would be choked without being told.
	SwarmAllPeers bool
	// IsNotFound tells a "not found" from a real blockstore failure; both
	// are answered as "don't have", but real failures are logged. Nil means
	// every error is "not found".
	IsNotFound func(error) bool
	Logger     *slog.Logger
}

// DefaultServerConfig returns the defaults.
func DefaultServerConfig() ServerConfig {
	return ServerConfig{
		Workers:          4,
		MaxWantsPerPeer:  1024,
		MaxInflightSends: 32,
		MaxBatchBytes:    1 << 20,
		ChokeInterval:    10 * time.Second,
		// Ten seconds, one choke round (BitTorrent's 30 s is three): an
		// optimistic slot has a fifth of a 20 Mbit/s uplink, so it moves a
		// few 1 MiB blocks in 10 s — enough for a newcomer to start
		// trading — and a crowd of 30 gets its first blocks from the
		// optimistic rotation within minutes rather than a quarter hour.
		OptimisticUnchokeInterval: 10 * time.Second,
		Logger:                    slog.New(slog.DiscardHandler),
	}
}

// Validate reports the first invalid field.
func (c ServerConfig) Validate() error {
	switch {
	case c.Workers <= 0:
		return errors.New("protocol: ServerConfig.Workers must be positive")
	case c.MaxInflightSends <= 0:
		return errors.New("protocol: ServerConfig.MaxInflightSends must be positive")
	case c.MaxWantsPerPeer <= 0:
		return errors.New("protocol: ServerConfig.MaxWantsPerPeer must be positive")
	case c.MaxBatchBytes <= 0 || c.MaxBatchBytes > maxBatchBytes:
		return fmt.Errorf("protocol: ServerConfig.MaxBatchBytes must be in (0, %d] so a batch plus one block fits a message", maxBatchBytes)
	case c.UploadBytesPerSecond < 0:
		return errors.New("protocol: ServerConfig.UploadBytesPerSecond must be >= 0 (0 = unlimited)")
	case c.SwarmSendsAtOnce < 0:
		return errors.New("protocol: ServerConfig.SwarmSendsAtOnce must be >= 0 (0 = bounded by MaxInflightSends alone)")
	case c.UploadSlots < 0:
		return errors.New("protocol: ServerConfig.UploadSlots must be >= 0 (0 = sized from the uplink)")
	case c.ChokeInterval < 100*time.Millisecond:
		return errors.New("protocol: ServerConfig.ChokeInterval must be at least 100ms (BitTorrent uses 10s)")
	case c.OptimisticUnchokeInterval < c.ChokeInterval:
		return errors.New("protocol: ServerConfig.OptimisticUnchokeInterval must be at least ChokeInterval (it rotates at a choke round)")
	case c.Logger == nil:
		return errors.New("protocol: ServerConfig.Logger must be set (use slog.New(slog.DiscardHandler) for none)")
	}
	return nil
}

// Server answers other peers' wants from a Blockstore: HAVE/DONT_HAVE for
// want-have, the block (or DONT_HAVE) for want-block. It keeps a bounded
// ledger per peer and serves peers fairly, in round-robin order, under a
// node-wide upload rate limit. Plug it into a Network as the server
// Receiver and as a PeerListener.
type Server struct {
	cfg    ServerConfig
	bs     Blockstore
	into   BlockstoreInto // bs, if it has GetInto; else nil
	bufs   blockBufPool   // where blocks read with into go (sendBufs)
	sender MessageSender
	log    *slog.Logger
	limit  *uploadLimiter

	ctx       context.Context
	cancel    context.CancelFunc
	wg        sync.WaitGroup // workers and sender goroutines
	sendSlots chan struct{}  // one token per send in flight
	turns     *turnGate      // swarm block sends in flight (turn.go); nil: no turns; guarded by mu

	mu      sync.Mutex
	cond    *sync.Cond // signals: ring non-empty, or closed
	started bool
	closed  bool
	ledgers map[peer.ID]*ledger
	ring    []*ledger // peers with work, served front to back
	total   PeerStats // all peers, including departed ones

	// Upload slots (choker.go) and origin mode (origin.go).
	swarm     map[peer.ID]*swarmPeer
	declared  map[peer.ID]bool // interest said before SetSwarmPeer (PeerInterested)
	retell    map[peer.ID]bool // choked peers that asked for blocks: tell them again
	chokeSt   chokeState
	onChoke   func(peer.ID, bool)
	chokeWake chan struct{}
	tieSeed   maphash.Seed
	origin    *sentCounts
	originOn  bool
	lastRound time.Time
	peakAt    time.Time // start of the uplink sample under way (samplePeak)
	peakBase  uint64    // total.BytesSent at peakAt
	upPeak    float64   // bytes/s
	turnRate  float64   // fastest turn's send rate seen, bytes/s (turn.go)
	stalls    int       // sends that overran their turn (turn.go)
}

// NewServer returns a Server reading from bs and answering through sender.
func NewServer(cfg ServerConfig, bs Blockstore, sender MessageSender) (*Server, error) {
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	if bs == nil || sender == nil {
		return nil, errors.New("protocol: NewServer needs a Blockstore and a MessageSender")
	}
	ctx, cancel := context.WithCancel(context.Background())
	s := &Server{
		cfg: cfg, bs: bs, bufs: sendBufs, sender: sender, log: cfg.Logger,
		limit: newUploadLimiter(cfg.UploadBytesPerSecond),
		ctx:   ctx, cancel: cancel,
		ledgers:   make(map[peer.ID]*ledger),
		sendSlots: make(chan struct{}, cfg.MaxInflightSends),
		swarm:     make(map[peer.ID]*swarmPeer),
		declared:  make(map[peer.ID]bool),
		retell:    make(map[peer.ID]bool),
		chokeWake: make(chan struct{}, 1),
		tieSeed:   maphash.MakeSeed(),
		origin:    newSentCounts(),
	}
	s.into, _ = bs.(BlockstoreInto)
	s.turns = newTurnGate(cfg.SwarmSendsAtOnce, cfg.SwarmTurnSlices)
	s.cond = sync.NewCond(&s.mu)
	return s, nil
}

// Start launches the workers.
func (s *Server) Start() error {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.closed {
		return ErrServerClosed
	}
	if s.started {
		return errors.New("protocol: Server.Start called twice")
	}
	s.started = true
	for range s.cfg.Workers {
		s.wg.Add(1)
		go func() {
			defer s.wg.Done()
			s.work()
		}()
	}
	s.wg.Add(1)
	go func() {
		defer s.wg.Done()
		s.chokeLoop()
	}()
	return nil
}

// Close stops the workers and waits for them; pending wants are dropped.
// Safe to call twice.
func (s *Server) Close() error {
	s.mu.Lock()
	s.closed = true
	s.cond.Broadcast()
	s.mu.Unlock()
	s.cancel()
	s.wg.Wait()
	return nil
}

// ReceiveMessage takes the wantlist part of a peer's message.
func (s *Server) ReceiveMessage(_ context.Context, from peer.ID, m *Message) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.closed || (!m.Full && len(m.Wants) == 0) {
		return
	}
	l := s.ledgers[from]
	if l == nil {
		l = s.newLedger(from)
	}
	refusedBefore := l.stats.WantsRefused
	if m.Full {
		l.clear()
	}
	for _, e := range m.Wants {
		if e.Cancel {
			l.stats.CancelsReceived++
			s.total.CancelsReceived++
			l.cancel(e.CID)
			continue
		}
		l.stats.WantsReceived++
		s.total.WantsReceived++
		l.add(e, s.cfg.MaxWantsPerPeer)
	}
	s.total.WantsRefused += l.stats.WantsRefused - refusedBefore
	s.schedule(l)
	s.wantSlot(l)
	s.askedChoked(l, m)
}

// newLedger makes and registers p's ledger, a swarm peer's choked unless
// unchoked already. Caller holds s.mu.
func (s *Server) newLedger(p peer.ID) *ledger {
	l := newLedger(p)
	s.ledgers[p] = l
	if s.cfg.SwarmAllPeers {
		s.addSwarm(p)
	}
	if sp := s.swarm[p]; sp != nil {
		l.swarm, l.choked = true, !sp.unchoked
	}
	return l
}

// wantSlot asks for a fill round when a choked swarm peer has want-blocks
// waiting and a slot may be free. Caller holds s.mu.
func (s *Server) wantSlot(l *ledger) {
	if l.choked && len(l.blocks) > 0 && s.unchokedCount() <= s.slots() {
		s.pokeChoker()
	}
}

// NotifyNewBlocks tells the server these blocks are now in the blockstore,
// so peers whose wants for them were answered "don't have" get them now.
func (s *Server) NotifyNewBlocks(cids ...cid.Cid) {
	s.mu.Lock()
	defer s.mu.Unlock()
	for _, l := range s.ledgers {
		woke := false
		for _, c := range cids {
			woke = l.wake(c) || woke
		}
		if woke {
			s.schedule(l)
			s.wantSlot(l)
		}
	}
}

// PeerConnected is part of PeerListener; ledgers are made on first want.
func (s *Server) PeerConnected(peer.ID) {}

// PeerDisconnected drops the peer's ledger and its wants.
func (s *Server) PeerDisconnected(p peer.ID) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if l := s.ledgers[p]; l != nil {
		l.gone = true
		delete(s.ledgers, p)
	}
	if sp := s.swarm[p]; sp != nil {
		delete(s.swarm, p)
		delete(s.declared, p)
		if sp.unchoked {
			s.pokeChoker()
		}
	}
}

// schedule puts l at the back of the ready ring if it has work and is
// neither queued nor being served. Caller holds s.mu.
func (s *Server) schedule(l *ledger) {
	if l.gone || l.queued || l.building || l.sending >= peerPipeline || l.stalled || !l.hasWork() {
		return
	}
	l.queued = true
	s.ring = append(s.ring, l)
	s.cond.Signal()
}

// next blocks for the next peer to serve and marks it building; nil when closed.
func (s *Server) next() *ledger {
	s.mu.Lock()
	defer s.mu.Unlock()
	for {
		if s.closed {
			return nil
		}
		for len(s.ring) > 0 {
			l := s.ring[0]
			s.ring[0] = nil
			s.ring = s.ring[1:]
			l.queued = false
			if !l.gone && l.hasWork() {
				l.building = true
				return l
			}
		}
		s.cond.Wait()
	}
}

// peerPipeline is how many batches of one peer may be on their way at
// once: two, so the next batch is read from the blockstore while the
// previous one is being written, keeping a single fast peer's stream busy.
const peerPipeline = 2

// work is one worker: take the next peer in round-robin order, answer a
// batch of its wants, and hand the batch to a sender goroutine, so that a
// peer slow to read holds a send slot, not a worker. A peer is back in the
// ring as soon as its batch is handed over (if it has fewer than
// peerPipeline batches on their way).
func (s *Server) work() {
	for {
		select {
		case s.sendSlots <- struct{}{}:
		case <-s.ctx.Done():
			return
		}
		l := s.next()
		if l == nil {
			<-s.sendSlots
			return
		}
		t, ok := s.takeTurn(l)
		if !ok { // closing
			s.mu.Lock()
			l.building = false
			s.mu.Unlock()
			<-s.sendSlots
			return
		}
		b := s.buildBatch(l, t)
		s.mu.Lock()
		l.building = false
		empty := b.m.Empty()
		if !empty {
			l.sending++
		}
		s.schedule(l)
		s.mu.Unlock()
		if len(b.m.Blocks) == 0 {
			t.release() // a turn is for blocks
		}
		if empty {
			b.release(s.bufs) // holds none: buffers come with blocks
			<-s.sendSlots
			continue
		}
		s.wg.Add(1)
		go func() {
			defer s.wg.Done()
			s.sendBatch(l, b, t)
			t.release()
			s.mu.Lock()
			l.sending--
			s.schedule(l)
			if l.choked && l.sending == 0 && !l.building {
				s.pokeChoker() // its slot is free now
			}
			s.mu.Unlock()
			<-s.sendSlots
		}()
	}
}
