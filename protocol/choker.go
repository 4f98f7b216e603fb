package protocol

import (
	"hash/maphash"
	"time"

	"github.com/ipfs/go-cid"
	"github.com/libp2p/go-libp2p/core/peer"
)

// Upload slots. A swarm peer (one that negotiated the shoal swarm
// extension, Server.SetSwarmPeer) gets blocks only while this node unchokes
// it; at most Slots regular + 1 optimistic swarm peers are unchoked at once
// (choke.go decides who). Peers without the extension (Kubo, boxo, Helia)
// are never choked: they stay in the round-robin ring beside the unchoked
// swarm peers, each taking one turn per round as an unchoked swarm peer
// does, so a Kubo peer gets the share of one upload slot however busy the
// slots are.

const (
	// chokeFillInterval is how often idle slots are handed on between full
	// rounds (a peer that stopped asking holds no slot for long).
	chokeFillInterval = time.Second
	// interestGrace: a peer served within it still counts as interested
	// though its queue is empty (its next requests are on their way).
	interestGrace = time.Second
	// Automatic slot count (UploadSlots 0): one slot per slotBytesPerSec of
	// uplink (10 Mbit/s, a 1 MiB block in under a second), within
	// [minAutoSlots, maxAutoSlots]. Two slots per 20 Mbit/s rather than
	// BitTorrent's four: a block can be passed on only once it is whole,
	// so the fewer receivers share an uplink, the sooner each block is
	// relayable, and the fewer copies the origin sends. Measured in
	// virtual time (bench/sim.md, "slots"), 1 + 100 flash crowd, two runs
	// against main's: the seeder's copies 2.06 / 2.31 against 2.63, wire
	// ÷ content 1.12 / 1.12 against 1.14, p50 2.56 / 2.91 × T_min against
	// 2.78 (inside the ±0.2 spread); flash-crowd-30 the same (copies mean
	// 2.43 against 2.86 over 5 and 8 runs, p50 2.75 against 2.86); hetero
	// and multi-source within their spread. One slot left uplinks idle
	// (flash-crowd-30: p99 3.73 ×, uplink 55 % busy).
	slotBytesPerSec = 10e6 / 8
	minAutoSlots    = 2
	maxAutoSlots    = 16
	// idleUnchoke: an unchoked swarm peer that has had no want-block
	// queued or served here for this long gives its slot back, and its
	// declared interest alone does not make it a candidate again for
	// idleCooldown (it needs a block this node has but asks another
	// holder for it; a peer of an older shoal, whose interest is per
	// root, may need nothing this node has).
	idleUnchoke  = 2 * interestGrace
	idleCooldown = 5 * time.Second
	// seedRoundRobin: a node that receives from none of its interested
	// peers ranks them by the rate they take data (false) or rotates its
	// slots among them (true). Chosen by measurement (bench/sim.md).
	seedRoundRobin = false
	// peakSample is the span over which the uplink's rate is sampled for
	// its peak (and so the automatic slot count): every choke round,
	// fill rounds included, ends a sample once it is this long. Sampled
	// only at full rounds (ten seconds), the peak was zero through a whole
	// flash crowd, so every node ran on minAutoSlots: in the hetero
	// simulation the 100 Mbit/s seeder unchoked 2 + 1 peers and its
	// uplink was 20–27 % busy (bench/sim.md, "peak"). The bytes counted
	// are those the transport accepted, so a block it buffers beyond the
	// link can lift a sample: 4–6 of the 101 nodes of the 1 + 100 flash
	// crowd (20 Mbit/s) read over 30 Mbit/s and had 3 slots. Two-second
	// samples gave hetero p50 2.12 and 2.45 × T_min against 1.78–1.90.
	peakSample = time.Second
)

// swarmPeer is the choking state of one swarm peer; guarded by Server.mu.
type swarmPeer struct {
	unchoked     bool
	lastUnchoked time.Time
	lastServed   time.Time
	unchokedAt   time.Time // when the current unchoke began
	idleAt       time.Time // when it was last choked for not asking (idleUnchoke)
	declared     bool      // said it is interested (PeerInterested)
	tie          uint64
	// Byte counters and the rates derived from them at each full round.
	recvBase       uint64 // ReceivedFrom at the last round
	recvSeen       bool
	sent, sentBase uint64 // block bytes sent to it
	pass, passBase uint64 // block bytes it passed on (PeerHas)
	recvRate       float64
	takeRate       float64
	passRate       float64
}

// chokeChange is one OnChoke call to make.
type chokeChange struct {
	p      peer.ID
	choked bool
}

// SwarmServerStats is the upload-slot state, for the dashboard and the sim.
type SwarmServerStats struct {
	Slots      int       // regular slots now (the optimistic one is extra)
	Unchoked   []peer.ID // swarm peers unchoked now
	Optimistic peer.ID   // the optimistic unchoke, or ""
	SwarmPeers int       // swarm peers known
	Origin     bool      // origin mode (least-sent blocks first) is on
	UplinkPeak float64   // measured peak upload rate, bytes/s
	// TurnStalls counts block sends that overran their upload turn
	// (turn.go): a peer slow to read, or gone.
	TurnStalls int
}

// SetSwarmPeer marks p as a peer that negotiated the swarm extension (yes)
// or no longer does (false). A new swarm peer starts choked (no OnChoke
// call for that); its want-blocks wait until it is unchoked. When p
// disconnects it stops being a swarm peer; call SetSwarmPeer again after a
// reconnect.
func (s *Server) SetSwarmPeer(p peer.ID, yes bool) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if yes {
		s.addSwarm(p)
		return
	}
	sp := s.swarm[p]
	if sp == nil {
		return
	}
	delete(s.swarm, p)
	delete(s.declared, p)
	if l := s.ledgers[p]; l != nil {
		l.swarm, l.choked = false, false
		s.schedule(l)
	}
	if sp.unchoked {
		s.pokeChoker()
	}
}

// addSwarm adds p as a choked swarm peer. Caller holds s.mu.
func (s *Server) addSwarm(p peer.ID) {
	if s.closed || s.swarm[p] != nil {
		return
	}
	sp := &swarmPeer{tie: maphash.String(s.tieSeed, string(p)), declared: s.declared[p]}
	delete(s.declared, p)
	s.swarm[p] = sp
	if l := s.ledgers[p]; l != nil {
		l.swarm, l.choked = true, true
	}
	if l := s.ledgers[p]; sp.declared || (l != nil && len(l.blocks) > 0) {
		s.pokeChoker()
	}
}

// PeerInterested records the swarm extension's interest message from p:
// a peer that says it is interested is a candidate for a slot even while
// it has no want-blocks queued here (a peer that does not ask while choked,
// as BitTorrent peers do not, is still unchoked in its turn). Want-blocks
// queued here count as interest whatever p said.
func (s *Server) PeerInterested(p peer.ID, yes bool) {
	s.mu.Lock()
	defer s.mu.Unlock()
	sp := s.swarm[p]
	if sp == nil {
		// The extension's messages and its negotiation notice race: keep
		// what p said for addSwarm, or its interest is lost and a peer
		// that waits to be unchoked before it asks is never unchoked.
		if yes && !s.closed {
			s.declared[p] = true
		} else {
			delete(s.declared, p)
		}
		return
	}
	if sp.declared == yes {
		return
	}
	sp.declared = yes
	if yes && !sp.unchoked && s.unchokedCount() <= s.slots() {
		s.pokeChoker()
	}
}

// OnChoke sets f, called when the server's choke decision for a swarm peer
// changes (choked true: this node stopped uploading to p), and again with
// the unchanged decision for every swarm peer at each full round, and for
// a choked peer that asks for blocks at the next round: a peer that missed
// a message (or got two in the wrong order) believes the server again
// within a round, so it neither waits for blocks a choking server holds
// back nor stops asking a server that keeps its slot. f is called from the
// server's choker goroutine, in order, never with a lock held; it should
// not block (a slow f delays the next decision, not the uploads).
func (s *Server) OnChoke(f func(p peer.ID, choked bool)) {
	s.mu.Lock()
	s.onChoke = f
	s.mu.Unlock()
}

// Choking reports whether this node chokes p: true for a swarm peer it
// does not upload to now, false for an unchoked one and for any peer
// without the swarm extension.
func (s *Server) Choking(p peer.ID) bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	sp := s.swarm[p]
	return sp != nil && !sp.unchoked
}

// PeerHas tells the server that p holds block c (the swarm extension's
// HAVE). If c went first to another swarm peer, that peer passed it on,
// and it ranks higher when this node seeds (origin mode's "prefer peers
// that pass blocks on").
func (s *Server) PeerHas(p peer.ID, c cid.Cid) {
	s.mu.Lock()
	defer s.mu.Unlock()
	e := s.origin.m[c]
	if e == nil || e.first == p || e.credited {
		return
	}
	if sp := s.swarm[e.first]; sp != nil {
		e.credited = true
		sp.pass += uint64(e.size)
	}
}

// Swarm returns the upload-slot state.
func (s *Server) Swarm() SwarmServerStats {
	s.mu.Lock()
	defer s.mu.Unlock()
	st := SwarmServerStats{
		Slots: s.slots(), Optimistic: s.chokeSt.Optimistic, SwarmPeers: len(s.swarm),
		Origin: s.originOn, UplinkPeak: s.upPeak, TurnStalls: s.stalls,
	}
	for p, sp := range s.swarm {
		if sp.unchoked {
			st.Unchoked = append(st.Unchoked, p)
		}
	}
	if sp := s.swarm[st.Optimistic]; sp == nil || !sp.unchoked {
		st.Optimistic = ""
	}
	return st
}

// slots is the number of regular upload slots. Caller holds s.mu.
func (s *Server) slots() int {
	if s.cfg.UploadSlots > 0 {
		return s.cfg.UploadSlots
	}
	up := float64(s.cfg.UploadBytesPerSecond)
	if up == 0 {
		up = s.upPeak
	}
	return min(max(int(up/slotBytesPerSec), minAutoSlots), maxAutoSlots)
}

// pokeChoker asks for a fill round soon; never blocks.
func (s *Server) pokeChoker() {
	select {
	case s.chokeWake <- struct{}{}:
	default:
	}
}

// chokeLoop runs the choke rounds until the server closes.
func (s *Server) chokeLoop() {
	full := time.NewTicker(s.cfg.ChokeInterval)
	defer full.Stop()
	fill := time.NewTicker(chokeFillInterval)
	defer fill.Stop()
	s.rechoke(true)
	for {
		select {
		case <-s.ctx.Done():
			return
		case <-full.C:
			s.rechoke(true)
		case <-fill.C:
			s.rechoke(false)
		case <-s.chokeWake:
			s.rechoke(false)
		}
	}
}

// rechoke runs one round: a full one re-measures the rates first.
func (s *Server) rechoke(full bool) {
	var recv map[peer.ID]uint64
	if full && s.cfg.ReceivedFrom != nil {
		// ReceivedFrom is the node's code: call it without the lock.
		s.mu.Lock()
		ids := make([]peer.ID, 0, len(s.swarm))
		for p := range s.swarm {
			ids = append(ids, p)
		}
		s.mu.Unlock()
		recv = make(map[peer.ID]uint64, len(ids))
		for _, p := range ids {
			recv[p] = s.cfg.ReceivedFrom(p)
		}
	}
	s.mu.Lock()
	now := time.Now()
	// The first round, at Start, has told nobody anything yet.
	retellAll := full && !s.lastRound.IsZero()
	s.samplePeak(now)
	if full {
		s.measure(now, recv)
	}
	if len(s.swarm) == 0 {
		s.originOn = false
		s.mu.Unlock()
		return
	}
	par, cands := s.chokeInputs(now, full)
	res := decideChoke(par, s.chokeSt, cands)
	s.chokeSt = res.State
	changes := s.applyChoke(now, res.Unchoked)
	changes = s.retellChoke(retellAll, changes)
	f := s.onChoke
	s.mu.Unlock()
	if f != nil {
		for _, c := range changes {
			f(c.p, c.choked)
		}
	}
}

// samplePeak ends the uplink sample under way once it spans peakSample,
// raising the peak to its rate, and starts the next. A sample shorter than
// that is left running: over less than a second, what the transport
// buffers before the link takes it would read as uplink. Caller holds s.mu.
func (s *Server) samplePeak(now time.Time) {
	sent := s.total.BytesSent
	if s.peakAt.IsZero() {
		s.peakAt, s.peakBase = now, sent
		return
	}
	dt := now.Sub(s.peakAt)
	if dt < peakSample {
		return
	}
	s.upPeak = max(s.upPeak, float64(sent-s.peakBase)/dt.Seconds())
	s.peakAt, s.peakBase = now, sent
}

// measure updates the rolling rates, each the mean of the last round's rate
// and the one before (about two rounds of memory, as BitTorrent's 20 s
// average). Caller holds s.mu.
func (s *Server) measure(now time.Time, recv map[peer.ID]uint64) {
	dt := now.Sub(s.lastRound).Seconds()
	first := s.lastRound.IsZero()
	s.lastRound = now
	roll := func(rate *float64, cur, base uint64) {
		d := 0.0
		if cur > base && dt > 0 && !first {
			d = float64(cur-base) / dt
		}
		*rate = (*rate + d) / 2
	}
	for p, sp := range s.swarm {
		if r, ok := recv[p]; ok {
			if sp.recvSeen {
				roll(&sp.recvRate, r, sp.recvBase)
			}
			sp.recvBase, sp.recvSeen = r, true // a counter reset (reconnect) starts over
		}
		roll(&sp.takeRate, sp.sent, sp.sentBase)
		roll(&sp.passRate, sp.pass, sp.passBase)
		sp.sentBase, sp.passBase = sp.sent, sp.pass
	}
}

// chokeInputs builds the decision's inputs from the ledgers. A node that
// receives from none of its interested peers is seeding: it ranks them by
// what they take and pass on. Caller holds s.mu.
func (s *Server) chokeInputs(now time.Time, full bool) (chokeParams, []chokeCandidate) {
	cands := make([]chokeCandidate, 0, len(s.swarm))
	seeding, interested := true, 0
	for p, sp := range s.swarm {
		// Declared interest counts unless the peer left a slot of ours
		// unused lately (idleUnchoke, idleCooldown).
		idle := sp.unchoked && now.Sub(later(sp.unchokedAt, sp.lastServed)) >= idleUnchoke
		if idle {
			sp.idleAt = now
		}
		cooling := !sp.idleAt.IsZero() && now.Sub(sp.idleAt) < idleCooldown
		c := chokeCandidate{ID: p, Unchoked: sp.unchoked, LastUnchoked: sp.lastUnchoked, Tie: sp.tie, Interested: sp.declared && !cooling}
		if l := s.ledgers[p]; l != nil && !l.gone {
			// A send that overran its upload turn (turn.go) holds no slot:
			// the peer may be choked and its slot given to another.
			c.Busy = (l.building || l.sending > 0) && !l.stalled
			// An unchoked peer whose wants are all on their way is still
			// interested, and for a moment after (its next ones are coming).
			c.Interested = c.Interested || len(l.blocks) > 0 || (sp.unchoked && (c.Busy || now.Sub(sp.lastServed) < interestGrace))
		}
		if c.Interested {
			interested++
			if sp.recvRate > 0 {
				seeding = false
			}
		}
		cands = append(cands, c)
	}
	for i := range cands {
		sp := s.swarm[cands[i].ID]
		if seeding {
			cands[i].Rate = sp.takeRate + sp.passRate
		} else {
			cands[i].Rate = sp.recvRate
		}
	}
	s.originOn = interested >= 2
	return chokeParams{
		Now: now, Slots: s.slots(), Full: full, OptimisticInterval: s.cfg.OptimisticUnchokeInterval,
		RoundRobin: seeding && seedRoundRobin,
	}, cands
}

// applyChoke sets every swarm peer's state to the decision and returns
// the changes. Caller holds s.mu.
func (s *Server) applyChoke(now time.Time, unchoked []peer.ID) []chokeChange {
	want := make(map[peer.ID]bool, len(unchoked))
	for _, p := range unchoked {
		want[p] = true
	}
	var changes []chokeChange
	for p, sp := range s.swarm {
		if want[p] == sp.unchoked {
			continue
		}
		sp.unchoked = want[p]
		if !sp.unchoked {
			sp.lastUnchoked = now
		} else {
			sp.unchokedAt = now
		}
		if l := s.ledgers[p]; l != nil {
			l.choked = !sp.unchoked
			s.schedule(l)
		}
		changes = append(changes, chokeChange{p: p, choked: !sp.unchoked})
	}
	return changes
}

// retellChoke adds to changes the decisions to say again: every swarm
// peer's (all: a full round), else those of the choked peers that asked for
// blocks since the last round. Caller holds s.mu.
func (s *Server) retellChoke(all bool, changes []chokeChange) []chokeChange {
	told := make(map[peer.ID]bool, len(changes))
	for _, c := range changes {
		told[c.p] = true
	}
	for p, sp := range s.swarm {
		if !told[p] && (all || (s.retell[p] && !sp.unchoked)) {
			changes = append(changes, chokeChange{p: p, choked: !sp.unchoked})
		}
	}
	clear(s.retell)
	return changes
}

// askedChoked records that choked swarm peer l asked for blocks: it may not
// know it is choked, and is told again at the next round. Caller holds s.mu.
func (s *Server) askedChoked(l *ledger, m *Message) {
	if !l.swarm || !l.choked || s.retell[l.p] {
		return
	}
	for _, e := range m.Wants {
		if !e.Cancel && e.WantType == WantBlock {
			s.retell[l.p] = true
			s.pokeChoker()
			return
		}
	}
}

// unchokedCount is how many swarm peers are unchoked. Caller holds s.mu.
func (s *Server) unchokedCount() int {
	n := 0
	for _, sp := range s.swarm {
		if sp.unchoked {
			n++
		}
	}
	return n
}

func later(a, b time.Time) time.Time {
	if a.After(b) {
		return a
	}
	return b
}
