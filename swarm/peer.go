package swarm

import (
	"context"
	"sync"
	"time"

	"github.com/ipfs/go-cid"
	"github.com/libp2p/go-libp2p/core/network"
	"github.com/libp2p/go-libp2p/core/peer"
)

// segmentsPerMessage bounds one map message; a bigger map is split.
const segmentsPerMessage = 1024

// rootState is what a peer told us about one root.
type rootState struct {
	interested bool // it fetches the root: it wants our HAVEs
	holds      bool // its map or HAVEs named blocks of the root
	// saysWant: its maps say it tells its interest in us with KindWant;
	// wants: the last KindWant said it is interested in us.
	saysWant, wants bool
}

// wantsUs is what the choker hears of the peer's interest in this node
// for the root: BitTorrent's (KindWant) from a peer that says it, else
// that it fetches the root (a peer that does not send KindWant).
func (r rootState) wantsUs() bool {
	return r.interested && (!r.saysWant || r.wants)
}

// outItem is one message for the sender; build: a map message whose
// segments the sender fills from Local (which may block) before writing.
type outItem struct {
	m     *Message
	build bool
}

// peerConn is the extension with one peer. Its sender goroutine (run)
// opens the outbound stream and writes everything queued for the peer;
// the queues are guarded by mu, which is never held across I/O (a
// goroutine waiting for a mutex would stop a synctest bubble's clock).
type peerConn struct {
	s  *Service
	id peer.ID

	mu        sync.Mutex
	up        bool // the outbound stream is open: the peer speaks the extension
	stopped   bool
	items     []outItem
	haves     map[cid.Cid][]cid.Cid // HAVEs not yet sent, per root
	nHaves    int
	firstHave time.Time
	roots     map[cid.Cid]rootState
	wantTold  map[cid.Cid]bool // roots this node told the peer it wants its blocks of (KindWant)
	// The choke state this node's server has for the peer. Only the
	// latest one matters, so it is a value, not a queued message: choked
	// is what to tell the peer, chokeDue that it has not been sent since
	// it was set, chokeTold that the server set it during this session
	// (then the state read at the session's start is stale).
	choked, chokeDue, chokeTold bool
	endedAt                     time.Time // when run ended; zero while it runs

	wake chan struct{}
	quit chan struct{}
	once sync.Once
}

func newPeerConn(s *Service, p peer.ID) *peerConn {
	return &peerConn{
		s: s, id: p, haves: make(map[cid.Cid][]cid.Cid), roots: make(map[cid.Cid]rootState), wantTold: make(map[cid.Cid]bool),
		wake: make(chan struct{}, 1), quit: make(chan struct{}),
	}
}

func (pc *peerConn) stop() {
	pc.once.Do(func() {
		pc.mu.Lock()
		pc.stopped = true
		pc.mu.Unlock()
		close(pc.quit)
	})
}

func (pc *peerConn) poke() {
	select {
	case pc.wake <- struct{}{}:
	default:
	}
}

func (pc *peerConn) push(it outItem, onlyUp bool) {
	pc.mu.Lock()
	ok := !pc.stopped && (pc.up || !onlyUp)
	if ok {
		pc.items = append(pc.items, it)
	}
	pc.mu.Unlock()
	if ok {
		pc.poke()
	}
}

func (pc *peerConn) queue(m *Message) { pc.push(outItem{m: m}, false) }

// queueMap sends our map of root, asking for the peer's: we fetch root.
func (pc *peerConn) queueMap(root cid.Cid) {
	pc.push(outItem{m: &Message{Kind: KindMap, Root: root, Interested: true, Ask: true}, build: true}, true)
}

// queueReply answers a peer's map with ours.
func (pc *peerConn) queueReply(root cid.Cid) {
	pc.push(outItem{m: &Message{Kind: KindMap, Root: root}, build: true}, false)
}

func (pc *peerConn) queueInterest(root cid.Cid, yes bool) {
	pc.push(outItem{m: &Message{Kind: KindInterest, Root: root, Interested: yes}}, true)
}

// queueChoke tells the peer the server's choke decision (sent before
// anything queued, replacing a decision not yet sent).
func (pc *peerConn) queueChoke(choked bool) {
	pc.mu.Lock()
	ok := pc.up && !pc.stopped
	if ok {
		pc.choked, pc.chokeDue, pc.chokeTold = choked, true, true
	}
	pc.mu.Unlock()
	if ok {
		pc.poke()
	}
}

// startChoke sets the state the session starts with, read from the
// server once it knows the peer, unless the server has decided since: a
// choke round may run between the read and this call, and its decision
// is the newer one. A peer starts out thinking itself unchoked, so only
// "choked" needs a message.
func (pc *peerConn) startChoke(choked bool) {
	pc.mu.Lock()
	if !pc.chokeTold {
		pc.choked, pc.chokeDue = choked, choked
	}
	pc.mu.Unlock()
	pc.poke()
}

// queueHave adds c to the next HAVE batch for root, if the peer fetches root.
func (pc *peerConn) queueHave(root, c cid.Cid) {
	pc.mu.Lock()
	ok := pc.up && !pc.stopped && pc.roots[root].interested
	if ok {
		if pc.nHaves == 0 {
			pc.firstHave = time.Now()
		}
		pc.haves[root] = append(pc.haves[root], c)
		pc.nHaves++
	}
	wake := ok && (pc.nHaves == 1 || pc.nHaves >= pc.s.cfg.BatchMax)
	pc.mu.Unlock()
	if wake {
		pc.poke()
	}
}

// updateRoot applies f to what the peer told us of root and reports
// whether its interest in this node (rootState.wantsUs) changed, and to what.
func (pc *peerConn) updateRoot(root cid.Cid, f func(*rootState)) (changed, wantsUs bool) {
	pc.mu.Lock()
	defer pc.mu.Unlock()
	st, seen := pc.roots[root]
	before := st.wantsUs()
	f(&st)
	pc.roots[root] = st
	return !seen || st.wantsUs() != before, st.wantsUs()
}

// queueWant tells the peer whether this node wants its blocks of root
// (KindWant), if that differs from what it was last told. A "no" is sent
// only after a "yes": the peer starts out assuming none.
func (pc *peerConn) queueWant(root cid.Cid, yes bool) {
	pc.mu.Lock()
	send := pc.up && !pc.stopped && pc.wantTold[root] != yes
	if send {
		if yes {
			pc.wantTold[root] = true
		} else {
			delete(pc.wantTold, root)
		}
		pc.items = append(pc.items, outItem{m: &Message{Kind: KindWant, Root: root, Interested: yes}})
	}
	pc.mu.Unlock()
	if send {
		pc.poke()
	}
}

// forgetWant: this node stopped fetching root, which the peer hears as
// an interest message that ends any want too.
func (pc *peerConn) forgetWant(root cid.Cid) {
	pc.mu.Lock()
	delete(pc.wantTold, root)
	pc.mu.Unlock()
}

// ended is when the sender stopped (zero while it runs).
func (pc *peerConn) ended() time.Time {
	pc.mu.Lock()
	defer pc.mu.Unlock()
	return pc.endedAt
}

func (pc *peerConn) isUp() bool {
	pc.mu.Lock()
	defer pc.mu.Unlock()
	return pc.up
}

func (pc *peerConn) interestedIn(root cid.Cid) bool {
	pc.mu.Lock()
	defer pc.mu.Unlock()
	return pc.roots[root].interested
}

// sharesRoot reports whether the peer fetches or holds root, and the
// extension runs with it (it is worth naming in a peer exchange).
func (pc *peerConn) sharesRoot(root cid.Cid) bool {
	pc.mu.Lock()
	defer pc.mu.Unlock()
	r := pc.roots[root]
	return pc.up && (r.interested || r.holds)
}

// take returns what is ready to send, and how long until the pending
// HAVE batch is due (0: none pending).
func (pc *peerConn) take(now time.Time) ([]outItem, time.Duration) {
	pc.mu.Lock()
	defer pc.mu.Unlock()
	out := pc.items
	pc.items = nil
	if pc.chokeDue {
		pc.chokeDue = false
		out = append([]outItem{{m: &Message{Kind: KindChoke, Choked: pc.choked}}}, out...)
	}
	if pc.nHaves == 0 {
		return out, 0
	}
	if age := now.Sub(pc.firstHave); pc.nHaves < pc.s.cfg.BatchMax && age < pc.s.cfg.BatchDelay {
		return out, pc.s.cfg.BatchDelay - age
	}
	for root, cs := range pc.haves {
		for len(cs) > 0 {
			n := min(len(cs), MaxCIDs)
			out = append(out, outItem{m: &Message{Kind: KindHave, Root: root, CIDs: cs[:n:n]}})
			cs = cs[n:]
		}
	}
	clear(pc.haves)
	pc.nHaves = 0
	return out, 0
}

// run opens the outbound stream and sends until the peer goes or the
// service closes. A peer that does not speak the protocol ends it at once.
func (pc *peerConn) run() {
	s := pc.s
	wasUp := false
	defer func() { s.ended(pc, wasUp) }()
	ctx, cancel := context.WithTimeout(s.ctx, s.cfg.OpenTimeout)
	str, err := s.h.NewStream(network.WithNoDial(ctx, "swarm extension"), pc.id, ProtocolID)
	cancel()
	if err != nil {
		s.log.Debug("swarm: peer does not speak the extension", "peer", pc.id, "err", err)
		return
	}
	defer func() { _ = str.Reset() }()
	pc.mu.Lock()
	if pc.stopped {
		pc.mu.Unlock()
		return
	}
	pc.up = true
	pc.mu.Unlock()
	wasUp = true
	if s.choker != nil {
		s.choker.SetSwarmPeer(pc.id, true)
	}
	s.ev.SwarmPeer(pc.id, true)
	if s.choker != nil {
		pc.startChoke(s.choker.Choking(pc.id))
	}
	s.mu.Lock()
	for root := range s.fetching {
		pc.queueMap(root)
	}
	for root := range s.wants[pc.id] {
		pc.queueWant(root, true)
	}
	s.mu.Unlock()
	pc.sendLoop(str)
}

func (pc *peerConn) sendLoop(str network.Stream) {
	s := pc.s
	var timer *time.Timer
	var due <-chan time.Time
	defer func() {
		if timer != nil {
			timer.Stop()
		}
	}()
	for {
		items, wait := pc.take(time.Now())
		for _, it := range items {
			for _, m := range pc.expand(it) {
				if !pc.write(str, m) {
					return
				}
			}
		}
		due = nil
		if wait > 0 {
			if timer == nil {
				timer = time.NewTimer(wait)
			} else {
				timer.Reset(wait)
			}
			due = timer.C
		}
		select {
		case <-pc.quit:
			return
		case <-s.ctx.Done():
			return
		case <-pc.wake:
		case <-due:
		}
	}
}

// expand fills a map item from Local, split into messages of at most
// segmentsPerMessage segments (only the first asks for a reply).
func (pc *peerConn) expand(it outItem) []*Message {
	if !it.build {
		return []*Message{it.m}
	}
	s, m := pc.s, *it.m
	if !m.Interested {
		m.Interested = s.isFetching(m.Root)
	}
	var segs []Segment
	m.Complete, segs = s.local.Map(s.ctx, m.Root)
	if m.Complete {
		segs = nil
		pc.impliedWant(m.Root)
	}
	var out []*Message
	for first := true; first || len(segs) > 0; first = false {
		n := min(len(segs), segmentsPerMessage)
		out = append(out, &Message{Kind: KindMap, Root: m.Root, Complete: m.Complete, Interested: m.Interested,
			Ask: first && m.Ask, SaysWant: true, Segments: segs[:n:n]})
		segs = segs[n:]
	}
	return out
}

// impliedWant: this node holds the whole DAG under root (its map, being
// built, is Complete), so a peer that fetches root is interested in it —
// every block the peer lacks is here — whatever its KindWant says next
// (BitTorrent: a seeder is interesting to every leecher). The choker hears
// it now rather than a round trip later, when the peer's KindWant, sent on
// this map, would come back: a fetcher's first want-blocks to a seeder no
// longer wait for map → map → want → unchoke, only for map → map +
// unchoke (bench/sim.md, "multi-source"). A peer that does not say
// SaysWant is interested while it fetches already.
func (pc *peerConn) impliedWant(root cid.Cid) {
	pc.mu.Lock()
	st, seen := pc.roots[root]
	imply := seen && st.interested && st.saysWant && !st.wants
	if imply {
		st.wants = true
		pc.roots[root] = st
	}
	pc.mu.Unlock()
	if imply {
		pc.s.interest(pc.id, root, true)
	}
}

func (pc *peerConn) write(str network.Stream, m *Message) bool {
	s := pc.s
	_ = str.SetWriteDeadline(time.Now().Add(s.cfg.SendTimeout))
	body := m.Encode(nil)
	if err := writeFrame(str, body); err != nil {
		if s.ctx.Err() == nil {
			s.log.Debug("swarm: send failed; ending the extension with the peer", "peer", pc.id, "kind", m.Kind, "err", err)
		}
		return false
	}
	s.st.msgsSent.Add(1)
	s.st.bytesSent.Add(uint64(len(body)))
	if m.Kind == KindHave {
		s.st.haveMsgs.Add(1)
	}
	return true
}
