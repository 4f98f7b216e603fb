package blockstore

import (
	"slices"

	"github.com/ipfs/go-cid"
)

// The pin walks (markLocked, walkLocked) run under engine.mu and need
// the links of every dag-pb block they pass whose links are not cached
// in pinSet.links, which means reading it from the backend. Reading
// there would hold the store's one lock across disk I/O, and every Has
// and Get of any other block would wait for it. So a walk is done in two
// steps: with the lock, a dry run of the same walk lists the blocks
// whose links it would have to read (needLocked); without it, they are
// read (readLinks) into a map the walk consults (pinSet.pre); then with
// the lock again the dry run is repeated, until it needs nothing, and in
// that same critical section the walk itself runs, reading nothing. A
// DAG d levels deep takes at most d rounds; blocks that change between
// rounds are seen by the next dry run.

// lockWalk locks e.mu with the links of every block a walk from the
// items starts returns will pass already read; mark says the walk is
// markLocked's (it stops at pinned blocks), else walkLocked's (it goes
// everywhere). The caller runs the walk and calls unlockWalk.
func (e *engine) lockWalk(starts func() []walkItem, mark bool) {
	pre := map[string][]cid.Cid{}
	for {
		e.mu.Lock()
		e.pins.pre = pre
		need := e.pins.needLocked(e, starts(), mark)
		if len(need) == 0 {
			return
		}
		e.pins.pre = nil
		e.mu.Unlock()
		e.readLinks(need, pre)
	}
}

// unlockWalk ends what lockWalk began.
func (e *engine) unlockWalk() {
	e.pins.pre = nil
	e.mu.Unlock()
}

// rootItems is every pin root as a walk's start (e.mu held).
func (ps *pinSet) rootItems() []walkItem {
	out := make([]walkItem, 0, len(ps.roots))
	for _, r := range ps.roots {
		out = append(out, walkItem{c: r})
	}
	return out
}

// needLocked lists the blocks whose links a walk from starts would read
// from the backend: a superset of what markLocked (mark) or walkLocked
// pass, without changing anything.
func (ps *pinSet) needLocked(e *engine, starts []walkItem, mark bool) []cid.Cid {
	var need []cid.Cid
	seen := make(map[string]bool)
	stack := slices.Clone(starts)
	for len(stack) > 0 {
		it := stack[len(stack)-1]
		stack = stack[:len(stack)-1]
		key := string(it.c.Hash())
		if isIdentity(it.c) || seen[key] {
			continue
		}
		seen[key] = true
		en := e.entries[key]
		if en == nil && it.data == nil {
			for _, l := range ps.links[key] {
				stack = append(stack, walkItem{c: l})
			}
			continue
		}
		if mark && en != nil && en.pinned {
			continue
		}
		ls, known := ps.knownLinks(e, it.c, it.data)
		if !known {
			need = append(need, it.c)
			continue
		}
		for _, l := range ls {
			stack = append(stack, walkItem{c: l})
		}
	}
	return need
}

// knownLinks returns the links of c as linksOf would, and false when
// that would take a read from the backend.
func (ps *pinSet) knownLinks(e *engine, c cid.Cid, data []byte) ([]cid.Cid, bool) {
	key := string(c.Hash())
	if ls, ok := ps.links[key]; ok {
		return ls, true
	}
	if c.Prefix().Codec == cid.Raw || e.cfg.Links == nil {
		return nil, true
	}
	if ls, ok := ps.pre[key]; ok {
		return ls, true
	}
	if data == nil {
		return nil, false
	}
	ls, err := e.cfg.Links(c, data)
	if err != nil {
		return nil, true // linksOf warns and treats it as a leaf
	}
	return ls, true
}

// readLinks reads the blocks of need from the backend, without the
// lock, and records their links in pre; a block that cannot be read or
// decoded is recorded as a leaf, with a warning, as linksOf would.
func (e *engine) readLinks(need []cid.Cid, pre map[string][]cid.Cid) {
	for _, c := range need {
		key := string(c.Hash())
		data, err := e.be.read(key)
		if err != nil {
			e.log.Warn("blockstore: cannot read block to walk its links; treating it as a leaf", "cid", c, "err", err)
			pre[key] = nil
			continue
		}
		ls, err := e.cfg.Links(c, data)
		if err != nil {
			e.log.Warn("blockstore: cannot decode links of pinned block; treating it as a leaf", "cid", c, "err", err)
			ls = nil
		}
		pre[key] = ls
	}
}
