package blockstore

import (
	"context"
	"fmt"
	"slices"
	"strings"

	"github.com/ipfs/go-cid"
)

// pinSet is the set of blocks the pin roots reach. It is kept current
// incrementally: Pin walks the new root, and a Put of a block some pinned
// block links to (one in wanted) extends the walk from it, so a DAG being
// fetched under a pin is protected block by block as it arrives. Unpin
// and GC recompute it from the roots; the links of pinned blocks are
// cached, so that walk reads only blocks that were never pinned.
//
// Blocks removed because they were corrupt or vanished leave their
// descendants pinned until the next recomputation (safe: it only keeps
// more).
//
// All fields are guarded by engine.mu.
type pinSet struct {
	roots  map[string]cid.Cid   // pin roots by CID bytes
	set    map[string]*entry    // stored blocks reached, by multihash
	bytes  int64                // their bytes
	wanted map[string]cid.Cid   // reached but not stored, as linked
	links  map[string][]cid.Cid // links of reached non-raw blocks
	// pre holds links read without the lock for the walk running now
	// (pinwalk.go); nil outside lockWalk.
	pre map[string][]cid.Cid
}

func newPinSet() pinSet {
	return pinSet{
		roots:  make(map[string]cid.Cid),
		set:    make(map[string]*entry),
		wanted: make(map[string]cid.Cid),
		links:  make(map[string][]cid.Cid),
	}
}

func (ps *pinSet) pin(e *engine, en *entry) {
	en.pinned = true
	e.lruRemove(en)
	ps.set[en.key] = en
	ps.bytes += en.stored()
}

// unpin returns en to the LRU as most recently used: unpinning says the
// DAG is no longer needed for sure, not that it is stale.
func (ps *pinSet) unpin(e *engine, en *entry) {
	en.pinned = false
	delete(ps.set, en.key)
	ps.bytes -= en.stored()
	if en.ref == nil {
		e.lruPushFront(en)
	}
}

// storedGone is called when a pinned entry leaves the index (corrupt or
// vanished); the block becomes wanted again. Its cached links survive, so
// its children stay protected and a new copy is walked from them.
func (ps *pinSet) storedGone(en *entry) {
	en.pinned = false
	delete(ps.set, en.key)
	ps.bytes -= en.stored()
	ps.wanted[en.key] = keyCid(en.key)
}

// linksOf returns the links of a block (cached, given, or read). Blocks
// that cannot be read or decoded are treated as leaves, with a warning.
func (ps *pinSet) linksOf(e *engine, c cid.Cid, data []byte) []cid.Cid {
	key := string(c.Hash())
	if ls, ok := ps.links[key]; ok {
		return ls // first: a block re-stored after corruption is wanted under a raw CID
	}
	if c.Prefix().Codec == cid.Raw || e.cfg.Links == nil {
		return nil
	}
	if data == nil {
		if ls, ok := ps.pre[key]; ok {
			return ls // read by lockWalk, outside the lock
		}
		// Only a walk not begun with lockWalk gets here (none should).
		var err error
		if data, err = e.be.read(key); err != nil {
			e.log.Warn("blockstore: cannot read block to walk its links; treating it as a leaf", "cid", c, "err", err)
			return nil
		}
	}
	ls, err := e.cfg.Links(c, data)
	if err != nil {
		e.log.Warn("blockstore: cannot decode links of pinned block; treating it as a leaf", "cid", c, "err", err)
		return nil
	}
	return ls
}

type walkItem struct {
	c    cid.Cid
	data []byte
}

// markLocked extends the pinned set from c (whose bytes may be given).
// Blocks already pinned or wanted are not walked again: the invariant is
// that every link of a pinned block is pinned or wanted.
func (ps *pinSet) markLocked(e *engine, c cid.Cid, data []byte) {
	stack := []walkItem{{c, data}}
	for len(stack) > 0 {
		it := stack[len(stack)-1]
		stack = stack[:len(stack)-1]
		if isIdentity(it.c) {
			continue
		}
		key := string(it.c.Hash())
		en := e.entries[key]
		if en == nil {
			if _, ok := ps.wanted[key]; !ok {
				ps.wanted[key] = it.c
				for _, l := range ps.links[key] {
					stack = append(stack, walkItem{c: l})
				}
			}
			continue
		}
		if en.pinned {
			continue
		}
		ps.pin(e, en)
		delete(ps.wanted, key)
		ls := ps.linksOf(e, it.c, it.data)
		if len(ls) > 0 {
			ps.links[key] = ls
		}
		for _, l := range ls {
			stack = append(stack, walkItem{c: l})
		}
	}
}

// arrivedLocked is called for each newly stored block.
func (ps *pinSet) arrivedLocked(e *engine, en *entry, data []byte) {
	if c, ok := ps.wanted[en.key]; ok {
		ps.markLocked(e, c, data)
	}
}

// walkLocked calls visit once for every block reachable from roots,
// depth first, identity CIDs aside: en is the block's entry, nil for a
// block not stored, whose links are then the ones recorded for it; ls
// are the links the walk follows from it.
func (ps *pinSet) walkLocked(e *engine, roots []cid.Cid, visit func(c cid.Cid, key string, en *entry, ls []cid.Cid)) {
	seen := make(map[string]bool)
	stack := append([]cid.Cid(nil), roots...)
	for len(stack) > 0 {
		c := stack[len(stack)-1]
		stack = stack[:len(stack)-1]
		key := string(c.Hash())
		if isIdentity(c) || seen[key] {
			continue
		}
		seen[key] = true
		en := e.entries[key]
		var ls []cid.Cid
		if en == nil {
			ls = ps.links[key]
		} else {
			ls = ps.linksOf(e, c, nil)
		}
		visit(c, key, en, ls)
		stack = append(stack, ls...)
	}
}

// recomputeLocked rebuilds the pinned set from the roots.
func (ps *pinSet) recomputeLocked(e *engine) {
	set := make(map[string]*entry, len(ps.set))
	wanted := make(map[string]cid.Cid)
	links := make(map[string][]cid.Cid)
	roots := make([]cid.Cid, 0, len(ps.roots))
	for _, r := range ps.roots {
		roots = append(roots, r)
	}
	ps.walkLocked(e, roots, func(c cid.Cid, key string, en *entry, ls []cid.Cid) {
		if en == nil {
			wanted[key] = c
		} else {
			set[key] = en
		}
		if len(ls) > 0 {
			links[key] = ls
		}
	})
	for key, en := range ps.set {
		if set[key] == nil {
			ps.unpin(e, en)
		}
	}
	for _, en := range set {
		if !en.pinned {
			ps.pin(e, en)
		}
	}
	ps.wanted, ps.links = wanted, links
}

// setRoot adds root (key k) to the pin roots, or with on false removes
// it; the caller saves the roots and updates the pinned set.
func (ps *pinSet) setRoot(k string, root cid.Cid, on bool) {
	if on {
		ps.roots[k] = root
	} else {
		delete(ps.roots, k)
	}
}

func (ps *pinSet) sortedRoots() []cid.Cid {
	out := make([]cid.Cid, 0, len(ps.roots))
	for _, r := range ps.roots {
		out = append(out, r)
	}
	slices.SortFunc(out, func(a, b cid.Cid) int { return strings.Compare(a.KeyString(), b.KeyString()) })
	return out
}

// Pin implements Store.
func (e *engine) Pin(ctx context.Context, root cid.Cid) error { return e.changeRoot(ctx, root, true) }

// Unpin implements Store.
func (e *engine) Unpin(ctx context.Context, root cid.Cid) error {
	return e.changeRoot(ctx, root, false)
}

// changeRoot makes root a pin root (pin) or no longer one, saves the
// roots and updates what they reach; a failed save undoes the change.
// Pinning a root twice is no error; unpinning a CID that is not a root is
// ErrNotPinned.
func (e *engine) changeRoot(ctx context.Context, root cid.Cid, pin bool) error {
	if err := ctx.Err(); err != nil {
		return err
	}
	op := "unpin"
	if pin {
		op = "pin"
		if !root.Defined() {
			return fmt.Errorf("blockstore: pin: undefined CID")
		}
	}
	// Root changes are serialized by pinsMu, not e.mu: the roots are
	// saved (write, fsync, rename) without the store's lock, then
	// published under it, so no Has or Get waits for the disk here.
	e.pinsMu.Lock()
	defer e.pinsMu.Unlock()
	e.mu.Lock()
	if err := e.beginLocked(); err != nil {
		e.mu.Unlock()
		return err
	}
	defer e.ops.Done()
	k := root.KeyString()
	if _, isRoot := e.pins.roots[k]; isRoot == pin {
		e.mu.Unlock()
		if pin {
			return nil
		}
		return fmt.Errorf("%w: %s is not a pin root (see Pins)", ErrNotPinned, root)
	}
	e.pins.setRoot(k, root, pin)
	roots := e.pins.sortedRoots()
	e.pins.setRoot(k, root, !pin)
	e.mu.Unlock()
	if err := e.be.savePins(roots); err != nil {
		return fmt.Errorf("blockstore: %s %s: saving pins: %w", op, root, err)
	}
	if pin {
		e.lockWalk(func() []walkItem { return []walkItem{{c: root}} }, true)
	} else {
		e.lockWalk(func() []walkItem {
			items := e.pins.rootItems()
			return slices.DeleteFunc(items, func(it walkItem) bool { return it.c.KeyString() == k })
		}, false)
	}
	defer e.unlockWalk()
	e.pins.setRoot(k, root, pin)
	if pin {
		e.pins.markLocked(e, root, nil) // only root's DAG gains pins
	} else {
		e.pins.recomputeLocked(e) // what root reached another root may reach
	}
	return nil
}

// Pins implements Store. Roots are sorted by CID bytes.
func (e *engine) Pins(ctx context.Context) ([]cid.Cid, error) {
	if err := ctx.Err(); err != nil {
		return nil, err
	}
	e.mu.Lock()
	defer e.mu.Unlock()
	if e.closed {
		return nil, ErrClosed
	}
	return e.pins.sortedRoots(), nil
}

// IsPinned implements Store.
func (e *engine) IsPinned(ctx context.Context, c cid.Cid) (bool, error) {
	if err := ctx.Err(); err != nil {
		return false, err
	}
	e.mu.Lock()
	defer e.mu.Unlock()
	if e.closed {
		return false, ErrClosed
	}
	if e.pins.set[string(c.Hash())] != nil {
		return true, nil
	}
	_, wanted := e.pins.wanted[string(c.Hash())]
	return wanted, nil
}

// PinStatus implements Store. root need not be a pin root.
func (e *engine) PinStatus(ctx context.Context, root cid.Cid) (PinStatus, error) {
	if err := ctx.Err(); err != nil {
		return PinStatus{}, err
	}
	e.mu.Lock()
	err := e.beginLocked()
	e.mu.Unlock()
	if err != nil {
		return PinStatus{}, err
	}
	defer e.ops.Done()
	e.lockWalk(func() []walkItem { return []walkItem{{c: root}} }, false)
	defer e.unlockWalk()
	return e.pinStatusLocked(root), nil
}

func (e *engine) pinStatusLocked(root cid.Cid) PinStatus {
	st := PinStatus{Root: root}
	_, st.Pinned = e.pins.roots[root.KeyString()]
	e.pins.walkLocked(e, []cid.Cid{root}, func(c cid.Cid, _ string, en *entry, _ []cid.Cid) {
		if en == nil {
			st.Missing++
			if len(st.FirstMissing) < 16 {
				st.FirstMissing = append(st.FirstMissing, c)
			}
			return
		}
		st.Blocks++
		st.Bytes += en.size
	})
	st.Complete = st.Missing == 0
	return st
}

// GC implements Store.
func (e *engine) GC(ctx context.Context) (GCResult, error) {
	if err := ctx.Err(); err != nil {
		return GCResult{}, err
	}
	e.pinsMu.Lock() // the roots stay as they are while GC drops what they do not reach
	defer e.pinsMu.Unlock()
	e.mu.Lock()
	err := e.beginLocked()
	e.mu.Unlock()
	if err != nil {
		return GCResult{}, err
	}
	defer e.ops.Done()
	e.lockWalk(e.pins.rootItems, false)
	e.pins.recomputeLocked(e)
	e.pins.pre = nil
	var res GCResult
	var keys []string
	for en := e.lru.prev; en != &e.lru; en = e.lru.prev {
		e.dropLocked(en)
		res.Removed++
		res.RemovedBytes += en.size
		keys = append(keys, en.key)
	}
	// References take no room, so they are never evicted; GC drops the
	// ones no pin reaches.
	for _, en := range e.entries {
		if en.ref != nil && !en.pinned {
			e.dropLocked(en)
			res.Removed++
			res.RemovedRefs++
			keys = append(keys, en.key)
		}
	}
	res.Kept = len(e.pins.set)
	e.mu.Unlock()
	e.removeKeys(keys)
	return res, nil
}
