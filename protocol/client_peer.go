package protocol

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"time"

	"github.com/ipfs/go-cid"
	"github.com/libp2p/go-libp2p/core/peer"
	mh "github.com/multiformats/go-multihash"
)

// maxEntriesPerMessage keeps want messages far below MaxMessageSize.
const maxEntriesPerMessage = 4096

// outbox collects wantlist entries for one peer; its goroutine sends them,
// coalescing whatever accumulated while the previous send was in progress.
type outbox struct {
	p    peer.ID
	mu   sync.Mutex
	pend []Entry
	wake chan struct{}
	quit chan struct{}
	once sync.Once
}

func (c *Client) newOutbox(p peer.ID) *outbox {
	o := &outbox{p: p, wake: make(chan struct{}, 1), quit: make(chan struct{})}
	c.outboxes[p] = o
	c.wg.Add(1)
	go func() {
		defer c.wg.Done()
		c.runOutbox(o)
	}()
	return o
}

func (o *outbox) add(e Entry) {
	o.mu.Lock()
	o.pend = append(o.pend, e)
	o.mu.Unlock()
	select {
	case o.wake <- struct{}{}:
	default:
	}
}

func (o *outbox) close() { o.once.Do(func() { close(o.quit) }) }

func (o *outbox) take() []Entry {
	o.mu.Lock()
	defer o.mu.Unlock()
	n := min(len(o.pend), maxEntriesPerMessage)
	out := o.pend[:n:n]
	o.pend = o.pend[n:]
	if len(o.pend) > 0 {
		select {
		case o.wake <- struct{}{}:
		default:
		}
	}
	return out
}

func (c *Client) runOutbox(o *outbox) {
	for {
		select {
		case <-o.quit:
			return
		case <-c.ctx.Done():
			return
		case <-o.wake:
		}
		entries := o.take()
		if len(entries) == 0 {
			continue
		}
		ctx, cancel := context.WithTimeout(c.ctx, c.cfg.SendTimeout)
		err := c.net.Send(ctx, o.p, &Message{Wants: entries})
		cancel()
		if err != nil && c.ctx.Err() == nil {
			c.log.Debug("bitswap client: send failed; dropping peer from fetches", "peer", o.p, "err", err)
			p := o.p
			c.post(func() { c.dropPeer(p, time.Now()) })
			return
		}
	}
}

// received is one verified, stored block with what the loop needs.
type received struct {
	c      cid.Cid
	size   int
	links  []cid.Cid
	locals []localEntry // children (and their subtrees) already in the store
}

type localEntry struct {
	c     cid.Cid
	size  int
	links []cid.Cid
}

// ReceiveMessage takes blocks and presences from a peer (Receiver). It runs
// on the peer's stream goroutine: blocks are verified against their CID,
// decoded and stored here, in parallel across peers, before the loop hears
// of them. A block we never asked anyone for cuts the peer off.
func (c *Client) ReceiveMessage(ctx context.Context, from peer.ID, m *Message) {
	var blocks []received
	var bad error
	var failed []storeFailure
	for _, b := range m.Blocks {
		r, err := c.accept(ctx, b)
		switch {
		case errors.Is(err, errDropped):
		case errors.Is(err, ErrStore):
			failed = append(failed, storeFailure{b.CID, err})
		case err != nil:
			if bad == nil {
				bad = err
			}
		default:
			blocks = append(blocks, r)
		}
	}
	if len(blocks) == 0 && len(m.Presences) == 0 && bad == nil && len(failed) == 0 {
		return
	}
	c.post(func() {
		now := time.Now()
		c.onMessage(from, blocks, m.Presences, bad, now)
		for _, sf := range failed {
			c.storeFailed(sf, now)
		}
	})
}

// storeFailure is a verified block the local store refused.
type storeFailure struct {
	c   cid.Cid
	err error // wraps ErrStore and the store's error
}

// storeFailed ends every fetch that needs sf's block with its error (on
// the loop): retrying would ask peers for the block again and again while
// the store keeps refusing it. The sending peer did nothing wrong, so it
// is neither credited nor scored down.
func (c *Client) storeFailed(sf storeFailure, now time.Time) {
	for f := range c.fetches {
		if f.s.Known(sf.c) {
			f.s.closeWith(sf.err)
			c.finish(f, now)
		}
	}
	c.wake(sf.c, sf.err)
}

// errNotAsked marks a block whose CID no fetch asked for.
var errNotAsked = errors.New("block was never requested")

// errDropped marks a block left unstored because its stream was closing:
// nobody's fault, and the fetch asks for it again.
var errDropped = errors.New("block dropped: stream closing")

func (c *Client) accept(ctx context.Context, b Block) (received, error) {
	if !c.wasAsked(b.CID) {
		return received{}, fmt.Errorf("%w: %s", errNotAsked, b.CID)
	}
	// A block decoded from the wire got its CID by hashing its bytes
	// (DecodeMessage), so CID and bytes agree and wasAsked has just checked
	// the CID: that is the block's one hash between the wire and the store
	// (PutVerified does not hash again). Only a Block built by a caller of
	// ReceiveMessage is hashed here.
	if !b.hashed {
		if err := verifyBlock(b.CID, b.Data); err != nil {
			return received{}, err
		}
	}
	r := received{c: b.CID, size: len(b.Data)}
	links, err := c.cfg.Links(b.CID, b.Data)
	if err != nil {
		// The bytes match the CID, so the peer is honest; the DAG itself is
		// malformed. Keep the block and fetch nothing below it.
		c.log.Warn("bitswap client: block has undecodable links", "cid", b.CID, "err", err)
	}
	r.links = links
	if has, err := c.store.Has(ctx, b.CID); err != nil || !has {
		if err := c.putVerified(ctx, b.CID, b.Data); err != nil {
			if ctx.Err() != nil {
				return received{}, errDropped // the stream is closing, not the store failing
			}
			c.log.Error("bitswap client: storing block", "err", err) // the store's error names the CID
			return received{}, fmt.Errorf("%w: %w", ErrStore, err)
		}
	}
	r.locals = c.localSubtree(ctx, links, nil)
	return r, nil
}

// verifyBlock checks that data hashes to c.
func verifyBlock(c cid.Cid, data []byte) error {
	got, err := sumBlock(c.Prefix(), data)
	if err != nil {
		return fmt.Errorf("hashing block %s: %w", c, err)
	}
	if !got.Equals(c) {
		return fmt.Errorf("block data hashes to %s, not %s", got, c)
	}
	return nil
}

// localSubtree returns the blocks among links (recursively) the store
// already holds, so a resumed fetch never requests them.
func (c *Client) localSubtree(ctx context.Context, links []cid.Cid, out []localEntry) []localEntry {
	for _, l := range links {
		c.storeInline(ctx, l)
		if has, err := c.store.Has(ctx, l); err != nil || !has {
			continue
		}
		e, ok := c.localBlock(ctx, l)
		if !ok {
			continue
		}
		out = append(out, e)
		out = c.localSubtree(ctx, e.links, out)
	}
	return out
}

func (c *Client) localBlock(ctx context.Context, k cid.Cid) (localEntry, bool) {
	if k.Type() == cid.Raw {
		size := 0
		if s, ok := c.store.(sizer); ok {
			size, _ = s.GetSize(ctx, k)
		}
		return localEntry{c: k, size: size}, true
	}
	data, err := c.store.Get(ctx, k)
	if err != nil {
		return localEntry{}, false
	}
	links, err := c.cfg.Links(k, data)
	if err != nil {
		return localEntry{}, false
	}
	return localEntry{c: k, size: len(data), links: links}, true
}

func (c *Client) onMessage(from peer.ID, blocks []received, pres []Presence, bad error, now time.Time) {
	for _, r := range blocks {
		for f := range c.fetches {
			if !f.s.Known(r.c) {
				continue
			}
			links := r.links
			if !f.recursive {
				links = nil
			}
			if links != nil {
				for _, l := range r.locals {
					f.s.MarkLocal(l.c, l.size, l.links, now)
				}
			}
			_ = f.s.BlockReceived(from, r.c, r.size, links, now)
			if f.recursive && c.cfg.OnVerified != nil {
				c.cfg.OnVerified(f.root, r.c)
				for _, l := range r.locals {
					c.cfg.OnVerified(f.root, l.c)
				}
			}
		}
		c.wake(r.c, nil)
	}
	for _, p := range pres {
		for f := range c.fetches {
			if p.Type == Have {
				f.s.Have(from, p.CID, now)
			} else {
				f.s.DontHave(from, p.CID, now)
			}
		}
	}
	if bad != nil {
		c.log.Info("bitswap client: peer sent a bad block; cutting it off", "peer", from, "err", bad)
		// Each fetch's scheduler scores the peer down; with no fetch
		// running, do it here.
		if len(c.fetches) == 0 {
			c.scores.Bad(from, now)
		}
		for f := range c.fetches {
			f.s.BadBlock(from, bad, now)
		}
	}
}

// wake tells readers waiting in Get that k arrived (err nil) or will not.
func (c *Client) wake(k cid.Cid, err error) {
	for _, w := range c.waiters[k] {
		w <- err
	}
	delete(c.waiters, k)
}

// storeInline puts into the store, without asking any peer, the blocks
// whose data the CID alone determines: identity multihashes (the data is
// inside the CID) and the empty block (zero bytes hashing to the CID's
// digest). The empty block must be made locally: boxo's server, and so
// Kubo, never sends a zero-length block, answering HAVE instead, so the
// empty file of a directory could otherwise never be fetched from them.
func (c *Client) storeInline(ctx context.Context, k cid.Cid) {
	var data []byte
	if k.Prefix().MhType == mh.IDENTITY {
		dec, err := mh.Decode(k.Hash())
		if err != nil {
			return
		}
		data = dec.Digest
	} else if !isEmptyBlock(k) {
		return
	}
	if has, err := c.store.Has(ctx, k); err == nil && !has {
		_ = c.store.Put(ctx, k, data)
	}
}

// isEmptyBlock reports whether k is the CID of zero bytes.
func isEmptyBlock(k cid.Cid) bool {
	p := k.Prefix()
	empty, err := p.Sum(nil)
	return err == nil && empty.Equals(k)
}
