package protocol

import (
	"time"

	"github.com/ipfs/go-cid"
	"github.com/libp2p/go-libp2p/core/network"
	"github.com/libp2p/go-libp2p/core/peer"
)

// batch is one response being built for a peer.
type batch struct {
	m     Message
	size  int       // encoded size so far
	stats PeerStats // what sending it will add to the peer's stats
	bufs  []*[]byte // pooled buffers its blocks lie in (sendBufs), given back by sendBatch
}

func (b *batch) presence(c cid.Cid, t PresenceType) {
	p := Presence{CID: c, Type: t}
	b.m.Presences = append(b.m.Presences, p)
	b.size += PresenceWireSize(p)
	if t == Have {
		b.stats.HavesSent++
	} else {
		b.stats.DontHavesSent++
	}
}

// block adds blk, whose data lies in the pooled buffer buf (nil: in
// memory of its own); the batch holds buf until it is sent.
func (b *batch) block(blk Block, buf *[]byte) {
	if buf != nil {
		b.bufs = append(b.bufs, buf)
	}
	b.m.Blocks = append(b.m.Blocks, blk)
	b.size += BlockWireSize(blk)
	b.stats.BlocksSent++
	b.stats.BlockBytesSent += uint64(len(blk.Data))
}

// buildBatch answers l's refused wants and then its most urgent wants
// until the batch reaches MaxBatchBytes or the peer has nothing left; a
// swarm peer's want-blocks only with an upload turn t (turn.go).
// Blockstore reads happen without the server lock.
func (s *Server) buildBatch(l *ledger, t *uploadTurn) *batch {
	b := &batch{}
	for b.size < s.cfg.MaxBatchBytes {
		s.mu.Lock()
		var (
			w       *want
			e       Entry // w.e copied under the lock: ledger.add may update it meanwhile (w.dirty)
			refused cid.Cid
		)
		if !l.gone {
			if len(l.dontHaves) > 0 {
				refused = l.dontHaves[0]
				l.dontHaves = l.dontHaves[1:]
			} else if w = l.pop(s.freshFor(l), s.mayServeBlocks(l, t)); w != nil {
				e = w.e
				if e.WantType == WantBlock {
					s.origin.take(e.CID, l.p)
				}
			}
		}
		s.mu.Unlock()
		if refused.Defined() {
			b.presence(refused, DontHave)
			continue
		}
		if w == nil {
			break
		}
		o := s.answer(e, b)
		s.mu.Lock()
		if e.WantType == WantBlock {
			if o == served && len(b.m.Blocks) > 0 {
				s.origin.sized(e.CID, len(b.m.Blocks[len(b.m.Blocks)-1].Data))
			} else {
				s.origin.untake(e.CID)
			}
		}
		l.finish(w, o)
		s.mu.Unlock()
		if o == deferred {
			break
		}
	}
	return b
}

// freshFor is the send counts a swarm peer's want-blocks are ordered by in
// origin mode, else nil (priority order). Caller holds s.mu.
func (s *Server) freshFor(l *ledger) *sentCounts {
	if l.swarm && s.originOn {
		return s.origin
	}
	return nil
}

// fits reports whether a block of n bytes may join b: within the budget, or
// as the batch's first block whatever its size (a block bigger than the
// budget must still go some time; Validate keeps that under MaxMessageSize).
func (s *Server) fits(b *batch, c cid.Cid, n int) bool {
	bw := blockWireSizeN(c, n)
	return b.size+bw <= s.cfg.MaxBatchBytes || (len(b.m.Blocks) == 0 && b.size+bw <= MaxMessageSize)
}

// answer adds the response to one want to b.
func (s *Server) answer(e Entry, b *batch) outcome {
	if e.WantType == WantHave {
		has, err := s.bs.Has(s.ctx, e.CID)
		if err != nil {
			s.blockstoreError("has", e.CID, err)
			has = false
		}
		if has {
			b.presence(e.CID, Have)
			return served
		}
		if e.SendDontHave {
			b.presence(e.CID, DontHave)
		}
		return missing
	}
	n, err := s.bs.GetSize(s.ctx, e.CID)
	if err == nil && n <= MaxBlockSize {
		if !s.fits(b, e.CID, n) {
			return deferred
		}
		var (
			data []byte
			buf  *[]byte
		)
		if data, buf, err = s.readBlock(e.CID, n); err == nil && len(data) <= MaxBlockSize {
			b.block(Block{CID: e.CID, Data: data}, buf)
			return served
		}
		if buf != nil {
			s.bufs.put(buf)
		}
	}
	if err != nil {
		s.blockstoreError("get", e.CID, err)
	} else {
		s.log.Warn("bitswap server: block too large to send", "cid", e.CID, "limit", MaxBlockSize)
	}
	if e.SendDontHave {
		b.presence(e.CID, DontHave)
	}
	return missing
}

func (s *Server) blockstoreError(op string, c cid.Cid, err error) {
	if s.cfg.IsNotFound == nil || s.cfg.IsNotFound(err) || s.ctx.Err() != nil {
		return
	}
	s.log.Warn("bitswap server: blockstore "+op+" failed; answering don't-have", "cid", c, "err", err)
}

// sendBatch waits for upload budget, sends, and books the stats; a send
// that holds an upload turn t gives it up if it runs too long (turn.go).
// As it returns it gives back the batch's block buffers, whether the
// message went, failed or never started: Send has returned by then, so
// nothing reads them any more (sendBufs).
func (s *Server) sendBatch(l *ledger, b *batch, t *uploadTurn) {
	defer b.release(s.bufs)
	size := b.m.Size()
	if err := s.limit.wait(s.ctx, size); err != nil {
		return // closing
	}
	// A response never dials: if the peer left, the answer is moot.
	ctx := network.WithNoDial(s.ctx, "bitswap server response")
	t0 := time.Now()
	ended := t.hold(size)
	err := s.sender.Send(ctx, l.p, &b.m)
	ended()
	s.mu.Lock()
	defer s.mu.Unlock()
	if err != nil {
		l.stats.SendErrors++
		s.total.SendErrors++
		if s.ctx.Err() == nil {
			s.log.Debug("bitswap server: send failed; dropping the peer's wants", "peer", l.p, "err", err)
		}
		// The network already retried on a fresh stream: the peer is gone
		// or broken. Drop its ledger (a live peer sends its wantlist
		// again), which also frees ledgers made by a message that raced
		// with the disconnect notice.
		if s.ledgers[l.p] == l {
			delete(s.ledgers, l.p)
		}
		l.gone = true
		return
	}
	if t != nil {
		s.turnSent(size, time.Since(t0))
	}
	b.stats.MessagesSent = 1
	b.stats.BytesSent = uint64(size)
	l.stats.add(b.stats)
	s.total.add(b.stats)
	if sp := s.swarm[l.p]; sp != nil && b.stats.BlockBytesSent > 0 {
		sp.sent += b.stats.BlockBytesSent
		sp.lastServed = time.Now()
	}
}

// PeerStats returns the stats of peers that have a ledger (connected peers
// that sent wants).
func (s *Server) PeerStats() map[peer.ID]PeerStats {
	s.mu.Lock()
	defer s.mu.Unlock()
	out := make(map[peer.ID]PeerStats, len(s.ledgers))
	for p, l := range s.ledgers {
		st := l.stats
		st.QueuedWants = len(l.wants)
		out[p] = st
	}
	return out
}

// Stats returns totals over all peers since start; QueuedWants is current.
func (s *Server) Stats() PeerStats {
	s.mu.Lock()
	defer s.mu.Unlock()
	st := s.total
	for _, l := range s.ledgers {
		st.QueuedWants += len(l.wants)
	}
	return st
}
