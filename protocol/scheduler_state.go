package protocol

import (
	"slices"
	"time"

	"github.com/ipfs/go-cid"
	"github.com/libp2p/go-libp2p/core/peer"
)

// availability is what the scheduler knows about one peer holding one block.
type availability uint8

const (
	availUnknown  availability = iota
	availAsked                 // want-have sent, no answer yet
	availHave                  // HAVE received
	availDontHave              // DONT_HAVE received, or a want-have went unanswered
)

// block is one node of the DAG being fetched.
type block struct {
	c    cid.Cid
	path []uint32 // link indices from the root: file order is path order
	seq  uint64   // discovery order, for the tie-break of equally rare blocks

	done     bool
	queued   bool // needed and not in flight to any peer
	urgent   bool
	inflight []*peerState
	avail    map[peer.ID]availability
	timedOut map[peer.ID]bool // peers this block was moved away from after a stall
	haves    int              // peers that said HAVE
	kids     []*block         // the blocks of its links, in link order, once done
}

func (b *block) state(p *peerState) availability { return b.avail[p.id] }

func (b *block) setState(p *peerState, a availability) {
	if b.avail == nil {
		b.avail = make(map[peer.ID]availability)
	}
	old := b.avail[p.id]
	if a == availUnknown {
		p.probedGen = -1 // something to ask again
	}
	if old == availHave && a != availHave {
		b.haves--
		if !b.done {
			p.needs--
		}
	}
	if a == availHave && old != availHave {
		b.haves++
		p.haves = append(p.haves, b)
		if !b.done {
			p.needs++
		}
	}
	b.avail[p.id] = a
}

func (b *block) inflightAt(p *peerState) bool { return slices.Contains(b.inflight, p) }

func (b *block) dropInflight(p *peerState) {
	if i := slices.Index(b.inflight, p); i >= 0 {
		b.inflight = slices.Delete(b.inflight, i, i+1)
	}
}

// req is one outstanding want (block or have) to a peer.
type req struct {
	b     *block
	sent  time.Time // when the want was sent, for latency
	armed time.Time // when the stall timer was (re)started
}

// peerState is one candidate peer of the fetch.
type peerState struct {
	id     peer.ID
	w      window
	active bool
	reason error // why the peer left, when !active

	reqs []req // want-blocks in send order
	asks []req // want-haves in send order

	// claimsRoot: the peer said HAVE for the root or sent it, so it is
	// assumed to hold the whole DAG until misses prove otherwise.
	claimsRoot bool
	revoked    bool // optimism withdrawn after too many DONT_HAVEs
	probedGen  int  // Scheduler.gen when a probe scan found nothing to ask
	misses     int
	haves      []*block

	// partial: the peer said HAVE for, or sent, some block of this DAG.
	// Its DONT_HAVEs are provisional (it may be fetching the DAG too):
	// they are forgotten at recheckAt, and it keeps the fetch from failing.
	partial   bool
	gainedAt  time.Time // last HAVE or block from it
	lapsed    bool      // Tick has seen it stop being hopeful (one checkAll)
	recheckAt time.Time // zero: nothing to recheck

	// swarm: it speaks shoal's swarm extension (scheduler_swarm.go);
	// mapped: its availability map arrived; complete: the map says it
	// holds the whole DAG; choked: it will not serve us now.
	swarm, mapped, complete, choked bool
	// needs counts the blocks not yet received here that the peer is
	// known to hold (availHave); wantSaid is the interest last reported
	// for it (Scheduler.Interest).
	needs    int
	wantSaid bool

	answered bool  // it sent any presence or block to this fetch
	bytes    int64 // all block bytes received, duplicates included
	blocks   int   // blocks this peer delivered first
	dupBytes int64
}

// gained records that p showed it holds a block of the DAG.
func (p *peerState) gained(now time.Time) {
	p.partial, p.gainedAt, p.lapsed = true, now, false
}

func removeReq(rs []req, b *block) ([]req, bool) {
	for i := range rs {
		if rs[i].b == b {
			return slices.Delete(rs, i, i+1), true
		}
	}
	return rs, false
}

func findReq(rs []req, b *block) int {
	for i := range rs {
		if rs[i].b == b {
			return i
		}
	}
	return -1
}

// insertQueue adds fresh blocks (children of one parent, in link order) to the
// file-ordered list of needed blocks.
func (s *Scheduler) insertQueue(fresh []*block) {
	if len(fresh) == 0 {
		return
	}
	cmp := func(b *block, path []uint32) int { return slices.Compare(b.path, path) }
	pos, _ := slices.BinarySearchFunc(s.order, fresh[0].path, cmp)
	last := fresh[len(fresh)-1].path
	if pos == len(s.order) || slices.Compare(s.order[pos].path, last) > 0 {
		s.order = slices.Insert(s.order, pos, fresh...)
	} else {
		// Some known block sorts between the fresh ones (a DAG that
		// reuses nodes); place each one separately.
		for _, b := range fresh {
			p, _ := slices.BinarySearchFunc(s.order, b.path, cmp)
			s.order = slices.Insert(s.order, p, b)
		}
	}
	s.head = min(s.head, pos)
}

// requeue makes b available for picking again after its last request ended.
func (s *Scheduler) requeue(b *block) {
	if b.done || b.queued || len(b.inflight) > 0 {
		return
	}
	b.queued = true
	s.queued++
	cmp := func(x *block, path []uint32) int { return slices.Compare(x.path, path) }
	if i, ok := slices.BinarySearchFunc(s.order, b.path, cmp); ok {
		s.head = min(s.head, i)
	}
}

// advanceHead skips finished blocks at the front and compacts the list when
// most of it is finished.
func (s *Scheduler) advanceHead() {
	for s.head < len(s.order) && s.order[s.head].done {
		s.head++
	}
	if s.head > 1024 && s.head > len(s.order)/2 {
		s.order = slices.DeleteFunc(s.order, func(b *block) bool { return b.done })
		s.head = 0
	}
}
