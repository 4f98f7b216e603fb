package protocol

import (
	"container/heap"

	"github.com/ipfs/go-cid"
	"github.com/libp2p/go-libp2p/core/peer"
)

// maxWantCIDLen bounds the CIDs the server holds wants for, so that memory
// per want is bounded too (identity CIDs can be arbitrarily long).
const maxWantCIDLen = 256

// A want is one entry of a peer's wantlist as the server holds it. It is in
// exactly one state: queued (in the heap, index >= 0), in flight (a worker
// is answering it), or waiting (answered "don't have"; kept so that the
// block is sent if it arrives later, until the peer cancels).
type want struct {
	e        Entry
	seq      uint64 // arrival order, ties in priority are served FIFO
	index    int    // position in the heap; -1 when not queued
	inflight bool
	dirty    bool // updated while in flight: answer again
}

// wantHeap orders queued wants by priority (high first), then arrival.
type wantHeap []*want

// before reports whether a is served before b: priority, then arrival.
func before(a, b *want) bool {
	if a.e.Priority != b.e.Priority {
		return a.e.Priority > b.e.Priority
	}
	return a.seq < b.seq
}

func (h wantHeap) Len() int           { return len(h) }
func (h wantHeap) Less(i, j int) bool { return before(h[i], h[j]) }
func (h wantHeap) Swap(i, j int) {
	h[i], h[j] = h[j], h[i]
	h[i].index, h[j].index = i, j
}
func (h *wantHeap) Push(x any) {
	w := x.(*want)
	w.index = len(*h)
	*h = append(*h, w)
}
func (h *wantHeap) Pop() any {
	old := *h
	w := old[len(old)-1]
	old[len(old)-1] = nil
	*h = old[:len(old)-1]
	w.index = -1
	return w
}

// ledger is the server's state for one peer. All fields are guarded by the
// Server's mutex. Memory is bounded: at most maxWants wants (queued, in
// flight or waiting) and at most maxWants pending DONT_HAVE answers.
//
// Queued want-haves and want-blocks sit in two heaps, so that a choked
// swarm peer's want-haves are still answered while its want-blocks wait
// (a queued want is in the heap of its WantType).
type ledger struct {
	p         peer.ID
	wants     map[cid.Cid]*want
	queue     wantHeap  // want-have
	blocks    wantHeap  // want-block
	dontHaves []cid.Cid // refused wants (over the bound) that asked for DONT_HAVE
	seq       uint64

	swarm  bool // a swarm peer: its want-blocks are subject to choking
	choked bool // swarm peer not unchoked: its want-blocks wait

	queued   bool // in the server's ready ring
	building bool // a worker is answering its wants
	sending  int  // its batches handed to senders and not yet sent
	stalled  bool // a send overran its upload turn and has not returned (turn.go)
	gone     bool // peer disconnected; drop on sight
	stats    PeerStats
}

func newLedger(p peer.ID) *ledger {
	return &ledger{p: p, wants: make(map[cid.Cid]*want)}
}

func (l *ledger) hasWork() bool {
	return len(l.queue) > 0 || len(l.dontHaves) > 0 || (!l.choked && len(l.blocks) > 0)
}

// heapOf is the heap a want of type t queues in.
func (l *ledger) heapOf(t WantType) *wantHeap {
	if t == WantBlock {
		return &l.blocks
	}
	return &l.queue
}

func (l *ledger) push(w *want) { heap.Push(l.heapOf(w.e.WantType), w) }

// add records a want. An existing want for the same CID is updated in place
// (want-block wins over want-have). Past maxWants the want is refused: it
// gets a DONT_HAVE if it asked for one (itself bounded), else nothing.
func (l *ledger) add(e Entry, maxWants int) {
	if w := l.wants[e.CID]; w != nil {
		if w.e.WantType == WantBlock {
			e.WantType = WantBlock
		}
		switch {
		case w.index >= 0:
			heap.Remove(l.heapOf(w.e.WantType), w.index)
			w.e = e
			l.push(w)
		case w.inflight:
			w.e = e
			w.dirty = true
		default: // waiting: ask the blockstore again, the block may be here now
			w.e = e
			l.push(w)
		}
		return
	}
	if len(l.wants) >= maxWants || e.CID.ByteLen() > maxWantCIDLen {
		l.stats.WantsRefused++
		if e.SendDontHave && len(l.dontHaves) < maxWants && e.CID.ByteLen() <= maxWantCIDLen {
			l.dontHaves = append(l.dontHaves, e.CID)
		}
		return
	}
	l.seq++
	w := &want{e: e, seq: l.seq, index: -1}
	l.wants[e.CID] = w
	l.push(w)
}

func (l *ledger) cancel(c cid.Cid) {
	w := l.wants[c]
	if w == nil {
		return
	}
	delete(l.wants, c)
	if w.index >= 0 {
		heap.Remove(l.heapOf(w.e.WantType), w.index)
	}
}

// clear drops the whole wantlist (a Full message replaces it).
func (l *ledger) clear() {
	for _, w := range l.queue {
		w.index = -1
	}
	for _, w := range l.blocks {
		w.index = -1
	}
	clear(l.wants)
	l.queue = l.queue[:0]
	l.blocks = l.blocks[:0]
	l.dontHaves = nil
}

// pop takes the most urgent queued want and marks it in flight; a choked
// peer's want-blocks stay queued, and so do all want-blocks unless blocks
// is set (the batch holds no upload turn, server.go). With fresh set
// (origin mode), the want-block whose block was sent least often goes
// first, priority only breaking ties (a scan: the heap is ordered by
// priority alone, and the counts change as other peers are served).
func (l *ledger) pop(fresh *sentCounts, blocks bool) *want {
	var w *want
	if len(l.queue) > 0 {
		w = l.queue[0]
	}
	if blocks && !l.choked && len(l.blocks) > 0 {
		b := l.blocks[0]
		if fresh != nil {
			b = fresh.least(l.blocks)
		}
		if w == nil || before(b, w) {
			w = b
		}
	}
	if w == nil {
		return nil
	}
	heap.Remove(l.heapOf(w.e.WantType), w.index)
	w.inflight, w.dirty = true, false
	return w
}

// outcome of answering one want.
type outcome int

const (
	served   outcome = iota // block or HAVE sent: forget the want
	missing                 // we don't have it: keep it waiting
	deferred                // not answered (batch full): queue it again
)

// finish ends a want's flight. A want canceled or replaced meanwhile is
// ignored; one updated meanwhile is queued again.
func (l *ledger) finish(w *want, o outcome) {
	w.inflight = false
	if l.wants[w.e.CID] != w {
		return
	}
	if w.dirty {
		o = deferred
	}
	switch o {
	case served:
		delete(l.wants, w.e.CID)
	case deferred:
		l.push(w)
	}
}

// wake queues the waiting want for c again, if any; reports whether it did.
func (l *ledger) wake(c cid.Cid) bool {
	w := l.wants[c]
	if w == nil || w.index >= 0 || w.inflight {
		return false
	}
	l.push(w)
	return true
}
