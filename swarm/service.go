package swarm

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"log/slog"
	"sync"
	"sync/atomic"
	"time"

	"github.com/ipfs/go-cid"
	"github.com/libp2p/go-libp2p/core/host"
	"github.com/libp2p/go-libp2p/core/network"
	"github.com/libp2p/go-libp2p/core/peer"
	libp2pproto "github.com/libp2p/go-libp2p/core/protocol"
	ma "github.com/multiformats/go-multiaddr"
)

// ProtocolID is the libp2p protocol of the swarm extension.
const ProtocolID libp2pproto.ID = "/shoal/swarm/1.0.0"

// Config tunes a Service.
type Config struct {
	// BatchDelay is how long a verified block's HAVE may wait to be sent
	// with others; BatchMax sends a batch at once when it holds that many.
	BatchDelay time.Duration
	BatchMax   int
	// MaxExchange bounds the peers named in one peer-exchange message.
	MaxExchange int
	// OpenTimeout bounds opening the stream to a peer (one negotiation);
	// SendTimeout bounds writing one message.
	OpenTimeout time.Duration
	SendTimeout time.Duration
	Logger      *slog.Logger
}

// DefaultConfig returns the defaults.
func DefaultConfig() Config {
	return Config{
		BatchDelay:  50 * time.Millisecond,
		BatchMax:    512,
		MaxExchange: 32,
		OpenTimeout: 10 * time.Second,
		SendTimeout: 30 * time.Second,
		Logger:      slog.New(slog.DiscardHandler),
	}
}

// ErrConfig marks an unusable Config.
var ErrConfig = errors.New("swarm: invalid configuration")

// Validate reports the first unusable field.
func (c Config) Validate() error {
	switch {
	case c.BatchDelay <= 0 || c.BatchMax < 1 || c.BatchMax > MaxCIDs:
		return fmt.Errorf("%w: BatchDelay=%v must be > 0 and BatchMax=%d in 1..%d", ErrConfig, c.BatchDelay, c.BatchMax, MaxCIDs)
	case c.MaxExchange < 0 || c.MaxExchange > MaxPeers:
		return fmt.Errorf("%w: MaxExchange=%d must be in 0..%d", ErrConfig, c.MaxExchange, MaxPeers)
	case c.OpenTimeout <= 0 || c.SendTimeout <= 0:
		return fmt.Errorf("%w: OpenTimeout and SendTimeout must be positive", ErrConfig)
	case c.Logger == nil:
		return fmt.Errorf("%w: Logger must be set (slog.New(slog.DiscardHandler) for none)", ErrConfig)
	}
	return nil
}

// Local is what the service asks about this node's own blocks.
type Local interface {
	// Map returns what this node holds of the DAG under root: complete,
	// or one segment per interior block it holds (in walk order).
	Map(ctx context.Context, root cid.Cid) (complete bool, segs []Segment)
}

// Events hears what swarm peers say. Calls come from the service's
// goroutines, one peer's in order; they may block briefly.
type Events interface {
	// SwarmPeer: the extension with p started (yes) or ended.
	SwarmPeer(p peer.ID, yes bool)
	// PeerMap: p's availability map for root.
	PeerMap(p peer.ID, root cid.Cid, complete bool, segs []Segment)
	// PeerHaves: blocks of root p verified since its map.
	PeerHaves(p peer.ID, root cid.Cid, cids []cid.Cid)
	// PeerChoked: p chokes (or unchokes) this node.
	PeerChoked(p peer.ID, choked bool)
	// PeersFor: peers fetching or holding root, learned by peer exchange,
	// for a root this node is fetching.
	PeersFor(root cid.Cid, peers []peer.AddrInfo)
}

// Choker is the upload side (the block server): it is told which peers
// speak the extension and decides whom this node chokes.
type Choker interface {
	SetSwarmPeer(p peer.ID, yes bool)
	OnChoke(func(p peer.ID, choked bool))
	Choking(p peer.ID) bool
}

// HaveListener is an optional Choker method: what each swarm peer holds
// (the HAVEs it pushes), for origin mode.
type HaveListener interface {
	PeerHas(p peer.ID, c cid.Cid)
}

// InterestListener is an optional Choker method: a swarm peer started or
// stopped fetching root.
type InterestListener interface {
	PeerInterested(p peer.ID, root cid.Cid, yes bool)
}

// Stats counts the service's traffic since it started.
type Stats struct {
	MessagesSent, MessagesReceived uint64
	BytesSent, BytesReceived       uint64 // frame bodies
	MapsReceived, HavesReceived    uint64 // map messages; CIDs in HAVE messages
	HaveMessagesSent               uint64
	PeersLearned                   uint64 // peers named in exchange messages received
}

type stats struct {
	msgsSent, msgsRecv, bytesSent, bytesRecv, maps, haves, haveMsgs, learned atomic.Uint64
}

// Service runs the swarm extension on a libp2p host: one stream each way
// with every peer that speaks it, the maps, HAVE batches, choke messages
// and peer exchange. Create it with New, then Start; Close ends it.
type Service struct {
	h      host.Host
	cfg    Config
	local  Local
	ev     Events
	choker Choker
	log    *slog.Logger
	st     stats
	view   views // what peers said, for View (view.go)

	ctx    context.Context
	cancel context.CancelFunc
	wg     sync.WaitGroup

	mu       sync.Mutex
	closed   bool
	peers    map[peer.ID]*peerConn
	fetching map[cid.Cid]bool
	notifee  *network.NotifyBundle
	once     sync.Once
}

// New returns a Service on h. choker may be nil (every peer is served
// unchoked over Bitswap and no choke message is sent).
func New(h host.Host, cfg Config, local Local, ev Events, choker Choker) (*Service, error) {
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	if h == nil || local == nil || ev == nil {
		return nil, fmt.Errorf("%w: New needs a host, a Local and Events", ErrConfig)
	}
	ctx, cancel := context.WithCancel(context.Background())
	return &Service{
		h: h, cfg: cfg, local: local, ev: ev, choker: choker, log: cfg.Logger,
		ctx: ctx, cancel: cancel,
		peers: make(map[peer.ID]*peerConn), fetching: make(map[cid.Cid]bool),
	}, nil
}

// Start registers the protocol and opens the extension with every
// connected peer that speaks it, and with each that connects later.
func (s *Service) Start() {
	s.h.SetStreamHandler(ProtocolID, s.handleStream)
	if s.choker != nil {
		s.choker.OnChoke(s.sendChoke)
	}
	s.notifee = &network.NotifyBundle{
		ConnectedF: func(_ network.Network, c network.Conn) { s.connected(c.RemotePeer()) },
		DisconnectedF: func(n network.Network, c network.Conn) {
			if n.Connectedness(c.RemotePeer()) != network.Connected {
				s.disconnected(c.RemotePeer())
			}
		},
	}
	s.h.Network().Notify(s.notifee)
	for _, p := range s.h.Network().Peers() {
		s.connected(p)
	}
}

// Close ends every stream and waits for the service's goroutines. Safe to
// call twice.
func (s *Service) Close() error {
	s.once.Do(func() {
		s.h.RemoveStreamHandler(ProtocolID)
		if s.notifee != nil {
			s.h.Network().StopNotify(s.notifee)
		}
		s.mu.Lock()
		s.closed = true
		for _, pc := range s.peers {
			pc.stop()
		}
		s.mu.Unlock()
		s.cancel()
		s.wg.Wait()
	})
	return nil
}

// Stats returns the traffic counters.
func (s *Service) Stats() Stats {
	return Stats{
		MessagesSent: s.st.msgsSent.Load(), MessagesReceived: s.st.msgsRecv.Load(),
		BytesSent: s.st.bytesSent.Load(), BytesReceived: s.st.bytesRecv.Load(),
		MapsReceived: s.st.maps.Load(), HavesReceived: s.st.haves.Load(),
		HaveMessagesSent: s.st.haveMsgs.Load(), PeersLearned: s.st.learned.Load(),
	}
}

// IsSwarmPeer reports whether the extension runs with p.
func (s *Service) IsSwarmPeer(p peer.ID) bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	pc := s.peers[p]
	return pc != nil && pc.isUp()
}

// goLocked starts fn in the service's group unless it is closed; s.mu is held.
func (s *Service) goLocked(fn func()) bool {
	if s.closed {
		return false
	}
	s.wg.Add(1)
	go func() {
		defer s.wg.Done()
		fn()
	}()
	return true
}

// peerLocked returns p's connection state, creating it (and its sender,
// which opens the outbound stream) on first sight; s.mu is held.
func (s *Service) peerLocked(p peer.ID) *peerConn {
	if pc := s.peers[p]; pc != nil || s.closed {
		return pc
	}
	pc := newPeerConn(s, p)
	s.peers[p] = pc
	s.goLocked(pc.run)
	return pc
}

func (s *Service) connected(p peer.ID) {
	if p == s.h.ID() {
		return
	}
	s.mu.Lock()
	s.peerLocked(p)
	s.mu.Unlock()
}

func (s *Service) disconnected(p peer.ID) {
	s.mu.Lock()
	pc := s.peers[p]
	if pc != nil {
		delete(s.peers, p)
		pc.stop()
	}
	s.mu.Unlock()
}

// ended runs when pc's sender stops; if pc was up, the extension ends.
func (s *Service) ended(pc *peerConn, wasUp bool) {
	s.mu.Lock()
	if s.peers[pc.id] == pc {
		delete(s.peers, pc.id)
	}
	s.mu.Unlock()
	if wasUp {
		s.view.forget(pc.id)
		if s.choker != nil {
			s.choker.SetSwarmPeer(pc.id, false)
		}
		s.ev.SwarmPeer(pc.id, false)
	}
}

// Fetching tells the service this node started (yes) or stopped fetching
// the DAG under root. It does not block.
func (s *Service) Fetching(root cid.Cid, yes bool) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if yes {
		s.fetching[root] = true
	} else {
		delete(s.fetching, root)
	}
	for _, pc := range s.peers {
		if yes {
			pc.queueMap(root)
		} else {
			pc.queueInterest(root, false)
		}
	}
}

// Holding tells the service this node now holds blocks of root it did not
// hold before (content shared here): swarm peers fetching root get its
// map again. It does not block.
func (s *Service) Holding(root cid.Cid) {
	s.mu.Lock()
	defer s.mu.Unlock()
	for _, pc := range s.peers {
		if pc.interestedIn(root) {
			pc.queueReply(root)
		}
	}
}

func (s *Service) isFetching(root cid.Cid) bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.fetching[root]
}

// Verified tells the service that block c of root is now held here,
// verified: swarm peers fetching root hear of it in their next HAVE
// batch. It does not block.
func (s *Service) Verified(root, c cid.Cid) {
	s.mu.Lock()
	defer s.mu.Unlock()
	for _, pc := range s.peers {
		pc.queueHave(root, c)
	}
}

func (s *Service) sendChoke(p peer.ID, choked bool) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if pc := s.peers[p]; pc != nil {
		pc.queueChoke(choked)
	}
}

// handleStream reads a peer's inbound stream until it ends.
func (s *Service) handleStream(str network.Stream) {
	p := str.Conn().RemotePeer()
	s.mu.Lock()
	pc := s.peerLocked(p)
	ok := pc != nil && s.goLocked(func() { s.readLoop(pc, str) })
	s.mu.Unlock()
	if !ok {
		_ = str.Reset()
	}
}

func (s *Service) readLoop(pc *peerConn, str network.Stream) {
	defer func() { _ = str.Reset() }()
	stop := context.AfterFunc(s.ctx, func() { _ = str.Reset() })
	defer stop()
	r := bufio.NewReader(str)
	for {
		body, err := readFrame(r)
		var m *Message
		if err == nil {
			s.st.bytesRecv.Add(uint64(len(body)))
			m, err = Decode(body)
		}
		if errors.Is(err, ErrUnknownKind) {
			continue // a newer peer's message: skip it
		}
		if err != nil {
			if s.ctx.Err() == nil {
				s.log.Debug("swarm: inbound stream ended", "peer", pc.id, "err", err)
			}
			return
		}
		s.st.msgsRecv.Add(1)
		s.handle(pc, m)
	}
}

// handle acts on one message from pc.
func (s *Service) handle(pc *peerConn, m *Message) {
	switch m.Kind {
	case KindMap:
		s.st.maps.Add(1)
		pc.setRoot(m.Root, m.Interested, m.Complete || len(m.Segments) > 0)
		s.view.gotMap(pc.id, m)
		s.interest(pc.id, m.Root, m.Interested)
		s.ev.PeerMap(pc.id, m.Root, m.Complete, m.Segments)
		if m.Ask {
			pc.queueReply(m.Root)
		}
		if m.Interested {
			s.exchange(pc, m.Root)
		}
	case KindHave:
		s.st.haves.Add(uint64(len(m.CIDs)))
		pc.setRoot(m.Root, pc.interestedIn(m.Root), true)
		s.view.gotHaves(pc.id, m.Root, m.CIDs)
		s.ev.PeerHaves(pc.id, m.Root, m.CIDs)
		if hl, ok := s.choker.(HaveListener); ok {
			for _, c := range m.CIDs {
				hl.PeerHas(pc.id, c)
			}
		}
	case KindInterest:
		pc.setRoot(m.Root, m.Interested, pc.holdsRoot(m.Root))
		s.view.gotInterest(pc.id, m.Root, m.Interested)
		s.interest(pc.id, m.Root, m.Interested)
	case KindChoke:
		s.view.gotChoke(pc.id, m.Choked)
		s.ev.PeerChoked(pc.id, m.Choked)
	case KindPeers:
		s.st.learned.Add(uint64(len(m.Peers)))
		if !s.isFetching(m.Root) {
			return
		}
		var fresh []peer.AddrInfo
		for _, ai := range m.Peers {
			if ai.ID != s.h.ID() && s.h.Network().Connectedness(ai.ID) != network.Connected {
				fresh = append(fresh, ai)
			}
		}
		if len(fresh) > 0 {
			s.ev.PeersFor(m.Root, fresh)
		}
	}
}

func (s *Service) interest(p peer.ID, root cid.Cid, yes bool) {
	if il, ok := s.choker.(InterestListener); ok {
		il.PeerInterested(p, root, yes)
	}
}

// exchange tells pc, which fetches root, of other peers that fetch or
// hold it.
func (s *Service) exchange(pc *peerConn, root cid.Cid) {
	if s.cfg.MaxExchange == 0 {
		return
	}
	s.mu.Lock()
	var ids []peer.ID
	for id, q := range s.peers {
		if q != pc && q.sharesRoot(root) {
			ids = append(ids, id)
			if len(ids) == s.cfg.MaxExchange {
				break
			}
		}
	}
	s.mu.Unlock()
	var out []peer.AddrInfo
	for _, id := range ids {
		addrs := s.h.Peerstore().Addrs(id)
		if len(addrs) == 0 {
			continue
		}
		out = append(out, peer.AddrInfo{ID: id, Addrs: clipAddrs(addrs)})
	}
	if len(out) > 0 {
		pc.queue(&Message{Kind: KindPeers, Root: root, Peers: out})
	}
}

func clipAddrs(a []ma.Multiaddr) []ma.Multiaddr {
	if len(a) > MaxAddrs {
		a = a[:MaxAddrs]
	}
	return a
}
