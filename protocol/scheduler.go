package protocol

import (
	"fmt"
	"slices"
	"time"

	"github.com/ipfs/go-cid"
	"github.com/libp2p/go-libp2p/core/peer"
)

// ActionKind is what the caller must send to a peer.
type ActionKind uint8

// Actions produced by the Scheduler.
const (
	ActWantBlock ActionKind = iota + 1 // want-block with send-dont-have
	ActWantHave                        // want-have with send-dont-have
	ActCancel                          // cancel an earlier want
)

func (k ActionKind) String() string {
	switch k {
	case ActWantBlock:
		return "want-block"
	case ActWantHave:
		return "want-have"
	case ActCancel:
		return "cancel"
	}
	return fmt.Sprintf("action(%d)", k)
}

// Action is one message entry the caller must send.
type Action struct {
	Kind ActionKind
	Peer peer.ID
	CID  cid.Cid
	// Urgent marks a want-block for a prioritised block (a reader waits for
	// it); send it with a higher wire priority so the peer serves it first.
	Urgent bool
}

func (a Action) String() string { return fmt.Sprintf("%s %s→%s", a.Kind, a.CID, a.Peer) }

// SchedulerConfig tunes the fetch scheduler.
type SchedulerConfig struct {
	Window WindowConfig
	// Lookahead bounds rarest-first: a pick considers the first Lookahead
	// needed blocks (in file order) the peer can serve and takes the one
	// fewest peers have, so delivery deviates from file order by at most
	// Lookahead blocks per peer.
	Lookahead int
	// MaxScan bounds how many queued blocks one pick examines.
	MaxScan int
	// MaxWantHaves bounds the want-have probes outstanding per peer.
	MaxWantHaves int
	// MaxCopies bounds in-flight copies of one block in the endgame.
	MaxCopies int
	// OptimisticMisses is how many DONT_HAVE answers to optimistic
	// want-blocks make the scheduler stop assuming a peer that has the root
	// has everything; it is then probed with want-have like any other peer.
	OptimisticMisses int
	// RecheckInterval is how long a "don't have" from a partial holder — a
	// peer that has served or announced some block of this DAG, such as
	// another node fetching it — is trusted before the peer is asked again.
	// Such a peer is still gaining blocks, so while one remains the fetch
	// waits for it (bounded by the caller's no-progress timeout) instead of
	// failing for want of a source.
	RecheckInterval time.Duration
	// PartialPatience bounds that wait: a partial holder that has neither
	// announced nor sent a new block for this long no longer keeps the
	// fetch alive.
	PartialPatience time.Duration
	// TieBreak salts the order in which equally rare blocks are picked;
	// zero keeps file order. A Client sets it from its own peer ID, so
	// nodes fetching the same DAG spread their first requests.
	TieBreak uint64
	// Scores, when set, is the node-lifetime peer score table: banned peers
	// are refused and windows start from the peer's last measured rate.
	Scores *PeerScores
}

// DefaultSchedulerConfig returns the configuration used by Client.
func DefaultSchedulerConfig() SchedulerConfig {
	return SchedulerConfig{
		Window:           DefaultWindowConfig(),
		Lookahead:        16,
		MaxScan:          4096,
		MaxWantHaves:     64,
		MaxCopies:        2,
		OptimisticMisses: 4,
		RecheckInterval:  2 * time.Second,
		PartialPatience:  30 * time.Second,
	}
}

// Validate reports whether the configuration is usable.
func (c SchedulerConfig) Validate() error {
	if err := c.Window.Validate(); err != nil {
		return err
	}
	if c.Lookahead < 1 || c.MaxScan < c.Lookahead || c.MaxWantHaves < 0 ||
		c.MaxCopies < 1 || c.OptimisticMisses < 1 || c.RecheckInterval <= 0 || c.PartialPatience < 0 {
		return fmt.Errorf("%w: scheduler Lookahead=%d MaxScan=%d MaxWantHaves=%d MaxCopies=%d OptimisticMisses=%d RecheckInterval=%v PartialPatience=%v",
			ErrFetchConfig, c.Lookahead, c.MaxScan, c.MaxWantHaves, c.MaxCopies, c.OptimisticMisses, c.RecheckInterval, c.PartialPatience)
	}
	return nil
}

// Scheduler decides which block of one DAG to request from which peer. It
// does no I/O, starts no goroutine and reads no clock: the caller feeds it
// events with the current time and, after each, drains Ready() and sends the
// actions — the shape of etcd-io/raft's RawNode. It is not safe for
// concurrent use.
//
// The DAG is discovered as it arrives: the caller reports each verified block
// with its child links, and the children become needed. Blocks the caller
// already holds are reported with MarkLocal and never requested.
//
// Which peer may be asked for which block: a peer that said HAVE for it; any
// peer for the root (it came from a provider search for the root); and,
// optimistically, any peer that said HAVE for the root or sent it — such a
// peer is assumed to hold the whole DAG, because a seeder nearly always has
// whole files, and asking it want-block directly saves a round trip per
// block. Each want-block carries send-dont-have, so a wrong guess costs one
// round trip; after OptimisticMisses such answers the peer is treated like any
// other and probed with want-have (at most MaxWantHaves outstanding) for the
// needed blocks in file order.
//
// Order: urgent blocks (Prioritize) first, then file order with rarest-first
// within a Lookahead window. Duplicates only in the endgame: once no block is
// left unrequested, a peer with a free window slot takes a block in flight
// elsewhere if it is expected to deliver it sooner than the peer holding it
// (at most MaxCopies copies); the first copy to arrive cancels the others.
type Scheduler struct {
	cfg       SchedulerConfig
	root      *block
	blocks    map[cid.Cid]*block
	order     []*block // discovered, not yet received, in file order (plus finished garbage before compaction)
	head      int
	queued    int // blocks needing a request
	remaining int // discovered blocks not yet done
	urgent    []*block
	wantUrgnt map[cid.Cid]bool       // Prioritize before discovery
	local     map[cid.Cid]localBlock // MarkLocal before discovery
	peers     []*peerState           // active, in arrival order
	all       []*peerState           // every peer ever added, in arrival order
	byID      map[peer.ID]*peerState // every peer ever added
	banned    map[peer.ID]bool
	rr        int
	gen       int    // bumped when blocks are discovered, so probe scans resume
	seq       uint64 // blocks discovered so far
	searching bool
	actions   []Action
	interest  []PeerInterest // interest changes not yet taken (Interest)
	done      bool
	open      bool // a session's fetch: never done, blocks are added (Want)
	err       error
	stats     counters

	// Swarm extension state (scheduler_swarm.go).
	swarmIDs map[peer.ID]bool         // peers known to speak it, added or not
	pendSeg  map[cid.Cid][]pendingSeg // map segments under blocks not yet here
	pendHave map[cid.Cid][]peer.ID    // HAVE deltas for blocks not yet discovered
	pendN    int                      // entries in pendSeg and pendHave
}

type localBlock struct {
	size  int
	links []cid.Cid
}

type counters struct {
	bytesReceived, bytesUseful, bytesLocal int64
	blocksDone, blocksLocal                int
	// avgBlock, the mean size of the blocks received (each new one
	// weighted 1/8), prices a request in the endgame (expectedArrival,
	// the steal gate).
	avgBlock float64
	// sizeSq and sizeSum are Σsize² and Σsize of the blocks received, each
	// decayed by 7/8 per block: winBlock is their quotient.
	// The plain mean is pulled down by a DAG's small blocks (its root and
	// interior nodes, a file's short last leaf), which carry almost none
	// of its bytes. After a 1 KiB root and a 1000-byte leaf it took 1 MiB
	// leaves for 0.3 MiB, so windows grew three times too deep. Over
	// plain Bitswap a leecher then had the whole file queued at the
	// seeder before the other leechers' HAVEs came, and took nothing from
	// them (node's TestPlainSwarmLeechersServeEachOther failed 5 times in
	// 150 runs on one CPU, none in 110 with winBlock). The endgame keeps
	// the plain mean: priced with winBlock there, duplicate blocks rose
	// from 1.03 to 1.11–1.16 × content on flash-crowd-30 (bench/sim.md,
	// "winblock").
	sizeSq, sizeSum float64
	// minRTT is the smallest latency of a small block (under
	// minRateSampleBytes) from any peer: about one round trip, the pipe's
	// estimate for a peer that has sent no small block (window.pipe).
	minRTT time.Duration
}

// blockPrior is avgBlock and winBlock before any block has arrived
// (winBlock's sums weigh it as one block of that size).
const blockPrior = 256 << 10

// sized adds a received block of n bytes to avgBlock and winBlock.
func (c *counters) sized(n int) {
	const keep = 7.0 / 8
	f := float64(n)
	c.avgBlock += (f - c.avgBlock) / 8
	c.sizeSq = c.sizeSq*keep + f*f
	c.sizeSum = c.sizeSum*keep + f
}

// winBlock is the size of the block the average byte arrives in, the
// bytes-weighted mean Σsize²/Σsize (sizeSum never reaches 0: it starts at
// blockPrior and only decays by 7/8); windows are sized with it
// (window.target).
func (c *counters) winBlock() float64 { return c.sizeSq / c.sizeSum }

// NewScheduler starts the fetch of the DAG under root. Until SetSearching(false)
// the scheduler assumes more peers may come and never fails for lack of one.
func NewScheduler(cfg SchedulerConfig, root cid.Cid) (*Scheduler, error) {
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	if !root.Defined() {
		return nil, fmt.Errorf("%w: undefined root CID", ErrFetchConfig)
	}
	s := &Scheduler{
		cfg:       cfg,
		blocks:    make(map[cid.Cid]*block),
		wantUrgnt: make(map[cid.Cid]bool),
		local:     make(map[cid.Cid]localBlock),
		byID:      make(map[peer.ID]*peerState),
		banned:    make(map[peer.ID]bool),
		searching: true,
		swarmIDs:  make(map[peer.ID]bool),
		pendSeg:   make(map[cid.Cid][]pendingSeg),
		pendHave:  make(map[cid.Cid][]peer.ID),
	}
	s.stats.avgBlock = blockPrior
	s.stats.sizeSq, s.stats.sizeSum = blockPrior*blockPrior, blockPrior
	s.root = &block{c: root, queued: true}
	s.blocks[root] = s.root
	s.order = []*block{s.root}
	s.queued, s.remaining = 1, 1
	return s, nil
}

// Root returns the CID being fetched.
func (s *Scheduler) Root() cid.Cid { return s.root.c }

// Ready returns the actions produced since the last call and clears them.
func (s *Scheduler) Ready() []Action {
	a := s.actions
	s.actions = nil
	return a
}

// HasReady reports whether actions are waiting.
func (s *Scheduler) HasReady() bool { return len(s.actions) > 0 }

// Done reports whether every block of the DAG has been received or found locally.
func (s *Scheduler) Done() bool { return s.done }

// Err returns the *FetchError that ended the fetch, ErrFetchClosed after
// Close, or nil.
func (s *Scheduler) Err() error { return s.err }

func (s *Scheduler) finished() bool { return s.done || s.err != nil }

func (s *Scheduler) emit(k ActionKind, p *peerState, c cid.Cid) {
	s.actions = append(s.actions, Action{Kind: k, Peer: p.id, CID: c})
}

// AddPeer makes p a candidate. It returns false if p is banned (for this
// fetch or in the score table). A peer that left may be added again.
func (s *Scheduler) AddPeer(p peer.ID, now time.Time) bool {
	if s.finished() || s.banned[p] || (s.cfg.Scores != nil && s.cfg.Scores.Banned(p, now)) {
		return false
	}
	ps := s.byID[p]
	if ps != nil && ps.active {
		return true
	}
	if ps == nil {
		ps = &peerState{id: p, w: newWindow(s.cfg.Window), probedGen: -1}
		if s.cfg.Scores != nil {
			rate, lat := s.cfg.Scores.Hint(p)
			ps.w.seed(rate, lat)
		}
		s.byID[p] = ps
		s.all = append(s.all, ps)
	}
	ps.active, ps.reason = true, nil
	if s.swarmIDs[p] {
		ps.swarm, ps.claimsRoot = true, false
	}
	s.peers = append(s.peers, ps)
	// Ask every newcomer whether it has the root: a HAVE makes it an
	// optimistic source for the whole DAG. A swarm peer's map says it.
	if !ps.claimsRoot && !ps.swarm {
		s.emit(ActWantHave, ps, s.root.c)
	}
	s.schedule(now)
	return true
}

// RemovePeer drops p from the fetch (disconnected, or the caller gave up on
// it); its requests go back to the queue for other peers.
func (s *Scheduler) RemovePeer(p peer.ID, now time.Time) {
	s.removePeer(p, ErrPeerGone, now)
}

// BadBlock reports that p sent bytes that do not hash to the CID it claimed
// or a block nobody asked it for. The peer is cut off for the rest of the
// fetch and scored down in the shared score table.
func (s *Scheduler) BadBlock(p peer.ID, cause error, now time.Time) {
	s.banned[p] = true
	if s.cfg.Scores != nil {
		s.cfg.Scores.Bad(p, now)
	}
	err := ErrBadBlock
	if cause != nil {
		err = fmt.Errorf("%w: %w", ErrBadBlock, cause)
	}
	if ps := s.byID[p]; ps != nil && ps.active && !s.finished() {
		// Withdraw what it still owes us: wants it has queued would be
		// answered with more bad blocks.
		for _, r := range ps.reqs {
			s.emit(ActCancel, ps, r.b.c)
		}
	}
	s.removePeer(p, err, now)
}

func (s *Scheduler) removePeer(p peer.ID, reason error, now time.Time) {
	ps := s.byID[p]
	if ps == nil || !ps.active || s.finished() {
		return
	}
	ps.active, ps.reason = false, reason
	s.peers = slices.DeleteFunc(s.peers, func(x *peerState) bool { return x == ps })
	for _, r := range ps.reqs {
		r.b.dropInflight(ps)
		s.requeue(r.b)
	}
	for _, r := range ps.asks {
		if r.b.state(ps) == availAsked {
			r.b.setState(ps, availUnknown)
		}
	}
	ps.reqs, ps.asks = nil, nil
	s.checkAll(now)
	s.schedule(now)
}

// SetSearching tells the scheduler whether more candidate peers may still
// arrive (a provider search is running). While false, a block every
// remaining peer lacks fails the fetch.
func (s *Scheduler) SetSearching(searching bool, now time.Time) {
	s.searching = searching
	s.checkAll(now)
	s.schedule(now)
}

// Prioritize moves c ahead of every other block (a reader is waiting for it).
// c may be a block not yet discovered.
func (s *Scheduler) Prioritize(c cid.Cid, now time.Time) {
	b := s.blocks[c]
	if b == nil {
		s.wantUrgnt[c] = true
		return
	}
	if !b.done && !b.urgent {
		b.urgent = true
		s.urgent = append(s.urgent, b)
	}
	s.schedule(now)
}

// Close ends the fetch: every outstanding want is cancelled (see Ready).
func (s *Scheduler) Close() { s.closeWith(ErrFetchClosed) }

func (s *Scheduler) closeWith(err error) {
	if s.finished() {
		return
	}
	s.cancelAll()
	s.err = err
}

func (s *Scheduler) cancelAll() {
	for _, p := range s.peers {
		for _, r := range p.reqs {
			s.emit(ActCancel, p, r.b.c)
			r.b.dropInflight(p)
		}
		for _, r := range p.asks {
			s.emit(ActCancel, p, r.b.c)
		}
		p.reqs, p.asks = nil, nil
	}
}
