package blockstore

import (
	"context"
	"errors"
	"fmt"
	"io/fs"
)

// Verify implements Store. It reads blocks without holding the store's
// lock, so the store stays usable while it runs; blocks put meanwhile may
// or may not be checked.
func (e *engine) Verify(ctx context.Context) (VerifyReport, error) {
	var rep VerifyReport
	e.mu.Lock()
	if err := e.beginLocked(); err != nil {
		e.mu.Unlock()
		return rep, err
	}
	defer e.ops.Done()
	entries := make([]*entry, 0, len(e.entries))
	for _, en := range e.entries {
		entries = append(entries, en)
	}
	e.mu.Unlock()

	for _, en := range entries {
		if err := ctx.Err(); err != nil {
			return rep, err
		}
		e.mu.Lock()
		var loc *refLoc
		if en.ref != nil {
			l := *en.ref
			loc = &l
		}
		e.mu.Unlock()
		if loc != nil {
			rep.Checked++
			rep.Bytes += en.size
			if _, err := e.getRef(keyCid(en.key), en, *loc, nil); err != nil && errors.Is(err, ErrNotFound) {
				rep.RefsGone = append(rep.RefsGone, keyCid(en.key))
			} else if err != nil {
				return rep, fmt.Errorf("blockstore: verify: %w", err)
			}
			continue
		}
		data, err := e.be.read(en.key)
		switch {
		case errors.Is(err, fs.ErrNotExist):
			if e.forget(en, "vanished") {
				rep.Vanished = append(rep.Vanished, keyCid(en.key))
			}
			continue
		case err != nil:
			return rep, fmt.Errorf("blockstore: verify: reading %s: %w", keyCid(en.key), err)
		}
		rep.Checked++
		rep.Bytes += int64(len(data))
		if checkHash([]byte(en.key), data) != nil {
			if e.forget(en, "corrupt") {
				rep.Corrupt = append(rep.Corrupt, keyCid(en.key))
			}
		}
	}

	e.lockWalk(e.pins.rootItems, false)
	defer e.unlockWalk()
	for _, r := range e.pins.sortedRoots() {
		rep.Pins = append(rep.Pins, e.pinStatusLocked(r))
	}
	return rep, nil
}
