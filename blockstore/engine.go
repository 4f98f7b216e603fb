package blockstore

import (
	"context"
	"errors"
	"fmt"
	"io/fs"
	"iter"
	"log/slog"
	"sync"

	"github.com/ipfs/go-cid"
)

// backend is where block bytes live. The engine serializes operations on
// one key (the inflight map), so a backend never sees two concurrent
// operations on the same key; it is called without the engine's lock.
type backend interface {
	// write stores data under key atomically: afterwards read returns all
	// of data, and a crash leaves either all of it or nothing.
	write(key string, data []byte) error
	// read returns the bytes in a buffer of the caller's own; an error
	// wrapping fs.ErrNotExist if absent.
	read(key string) ([]byte, error)
	// readInto is read for GetInto: the bytes (size of them, as indexed)
	// in dst's array if they fit its capacity (Disk), or a slice the
	// backend holds and nobody writes (Memory); never a reference to
	// dst kept past the call. Bytes of another length than size are
	// returned as read would return them.
	readInto(key string, size int64, dst []byte) ([]byte, error)
	// remove deletes key; absent is not an error.
	remove(key string) error
	// savePins persists the pin roots atomically.
	savePins(roots []cid.Cid) error
	// saveRefs durably records references (those with a Path); dropRefs
	// records that keys are no longer references (not synced: a
	// reference that comes back after a crash is verified when read).
	saveRefs(refs []Ref, durable bool) error
	dropRefs(keys []string) error
	// where names the place key is kept, for logs ("" in memory).
	where(key string) string
	close() error
}

// entry is one stored block in the index.
type entry struct {
	key        string
	size       int64
	pinned     bool
	ref        *refLoc // non-nil: the bytes are in a file outside the store
	prev, next *entry  // LRU links; only unpinned blocks (not refs) are in the list
}

// stored is the bytes the entry takes in the store itself: a reference
// takes none, so it counts toward no capacity and is never evicted.
func (en *entry) stored() int64 {
	if en.ref != nil {
		return 0
	}
	return en.size
}

// engine is the index, accounting, LRU, pin set and per-key serialization
// shared by Disk and Memory.
type engine struct {
	cfg Config
	log *slog.Logger
	be  backend

	mu       sync.Mutex
	pinsMu   sync.Mutex     // serializes changes of the pin roots and GC; taken before mu
	ops      sync.WaitGroup // operations in progress, waited by Close
	closed   bool
	entries  map[string]*entry
	lru      entry                    // sentinel: lru.next is most recent
	inflight map[string]chan struct{} // keys whose backend I/O is running
	used     int64                    // bytes of committed entries
	reserved int64                    // bytes of puts being written
	evicted  int64
	evictedB int64
	pins     pinSet
	refs     refIndex
}

func newEngine(cfg Config, be backend) *engine {
	e := &engine{
		cfg:      cfg,
		log:      cfg.logger(),
		be:       be,
		entries:  make(map[string]*entry),
		inflight: make(map[string]chan struct{}),
		pins:     newPinSet(),
	}
	e.lru.next, e.lru.prev = &e.lru, &e.lru
	return e
}

// begin registers an operation, failing once the store is closed. The
// caller holds e.mu.
func (e *engine) beginLocked() error {
	if e.closed {
		return ErrClosed
	}
	e.ops.Add(1)
	return nil
}

func (e *engine) lruRemove(en *entry) {
	if en.prev != nil {
		en.prev.next = en.next
		en.next.prev = en.prev
		en.prev, en.next = nil, nil
	}
}

func (e *engine) lruPushFront(en *entry) {
	en.prev, en.next = &e.lru, e.lru.next
	e.lru.next.prev = en
	e.lru.next = en
}

func (e *engine) lruPushBack(en *entry) {
	en.prev, en.next = e.lru.prev, &e.lru
	e.lru.prev.next = en
	e.lru.prev = en
}

// touch marks en most recently used.
func (e *engine) touch(en *entry) {
	if !en.pinned && en.ref == nil && e.lru.next != en {
		e.lruRemove(en)
		e.lruPushFront(en)
	}
}

// addLocked indexes a block that is in the backend. Blocks loaded at
// startup go to the LRU back in the order given (oldest first).
func (e *engine) addLocked(key string, size int64, front bool) *entry {
	en := &entry{key: key, size: size}
	e.entries[key] = en
	e.used += size
	if front {
		e.lruPushFront(en)
	} else {
		e.lruPushBack(en)
	}
	return en
}

// dropLocked removes en from the index and marks its key in flight; the
// caller removes it from the backend and then calls finishLocked.
func (e *engine) dropLocked(en *entry) {
	delete(e.entries, en.key)
	e.used -= en.stored()
	e.lruRemove(en)
	if en.pinned {
		e.pins.storedGone(en)
	}
	if en.ref != nil {
		e.refs.droppedLocked(en)
	}
	e.inflight[en.key] = make(chan struct{})
}

func (e *engine) finishLocked(key string) {
	if ch, ok := e.inflight[key]; ok {
		delete(e.inflight, key)
		close(ch)
	}
}

// removeKeys removes dropped keys from the backend, outside the lock.
func (e *engine) removeKeys(keys []string) {
	e.flushRefDrops()
	for _, k := range keys {
		if err := e.be.remove(k); err != nil {
			e.log.Warn("blockstore: cannot remove block; it stays on disk until the next open", "cid", keyCid(k), "err", err)
		}
	}
	e.mu.Lock()
	for _, k := range keys {
		e.finishLocked(k)
	}
	e.mu.Unlock()
}

// lockIdle locks e.mu and waits until no I/O runs on key, then registers
// an operation. On success the caller holds e.mu and must call e.ops.Done.
func (e *engine) lockIdle(ctx context.Context, key string) error {
	for {
		e.mu.Lock()
		if err := e.beginLocked(); err != nil {
			e.mu.Unlock()
			return err
		}
		ch, busy := e.inflight[key]
		if !busy {
			return nil
		}
		e.mu.Unlock()
		e.ops.Done()
		select {
		case <-ch:
		case <-ctx.Done():
			return ctx.Err()
		}
	}
}

// Put implements Store.
func (e *engine) Put(ctx context.Context, c cid.Cid, data []byte) error {
	if err := ctx.Err(); err != nil {
		return err
	}
	if err := verifyBlock(c, data); err != nil {
		return err
	}
	return e.put(ctx, c, data)
}

// PutVerified is Put for bytes the caller has just hashed to c itself.
func (e *engine) PutVerified(ctx context.Context, c cid.Cid, data []byte) error {
	if err := ctx.Err(); err != nil {
		return err
	}
	return e.put(ctx, c, data)
}

func (e *engine) put(ctx context.Context, c cid.Cid, data []byte) error {
	if isIdentity(c) {
		return nil // the bytes are the CID; nothing to store
	}
	key := string(c.Hash())
	if err := e.lockIdle(ctx, key); err != nil {
		return err
	}
	defer e.ops.Done()
	if en := e.entries[key]; en != nil {
		e.touch(en)
		e.mu.Unlock()
		return nil
	}
	size := int64(len(data))
	victims, err := e.makeRoomLocked(size)
	if err != nil {
		e.mu.Unlock()
		return fmt.Errorf("put %s (%d bytes): %w", c, size, err)
	}
	e.reserved += size
	e.inflight[key] = make(chan struct{})
	e.mu.Unlock()

	e.removeKeys(victims)
	werr := e.be.write(key, data)

	if werr != nil {
		e.mu.Lock()
	} else {
		// The links a pin walk from this block needs are read first,
		// without the lock (pinwalk.go).
		e.lockWalk(func() []walkItem {
			if wc, ok := e.pins.wanted[key]; ok {
				return []walkItem{{wc, data}}
			}
			return nil
		}, true)
	}
	defer e.unlockWalk()
	e.reserved -= size
	e.finishLocked(key)
	if werr != nil {
		return fmt.Errorf("blockstore: put %s: %w", c, werr)
	}
	en := e.addLocked(key, size, true)
	e.pins.arrivedLocked(e, en, data)
	return nil
}

// makeRoomLocked evicts least-recently-used unpinned blocks until size
// more bytes fit, and returns their keys for removal from the backend.
func (e *engine) makeRoomLocked(size int64) ([]string, error) {
	capB := e.cfg.CapacityBytes
	if capB == 0 || e.used+e.reserved+size <= capB {
		return nil, nil
	}
	if fixed := e.pins.bytes + e.reserved + size; fixed > capB {
		return nil, fmt.Errorf("%w: %d bytes needed but %d of the %d-byte capacity are pinned or being written; raise CapacityBytes or unpin something",
			ErrFull, size, e.pins.bytes+e.reserved, capB)
	}
	return e.evictToLocked(capB - size), nil
}

// evictToLocked evicts least-recently-used unpinned blocks until at most
// target bytes are used or none is left, and returns their keys.
func (e *engine) evictToLocked(target int64) []string {
	var victims []string
	for e.used+e.reserved > target {
		en := e.lru.prev
		if en == &e.lru {
			break
		}
		e.dropLocked(en)
		e.evicted++
		e.evictedB += en.size
		victims = append(victims, en.key)
	}
	return victims
}

// Get implements Store.
func (e *engine) Get(ctx context.Context, c cid.Cid) ([]byte, error) {
	return e.get(ctx, c, nil, false)
}

// GetInto is Get for a caller that reuses its read buffers (the block
// exchange's server, which reads each block it sends into one of a
// pool): the result is the block's bytes in dst's array when they fit
// its capacity, else a buffer of their own, or (Memory) the store's own
// copy. The caller must treat the result as read-only, may reuse dst
// once it no longer uses the result, and the store keeps no reference to
// either. Verification is Get's: with VerifyOnRead (and for every
// reference) the bytes are hashed before they are returned.
func (e *engine) GetInto(ctx context.Context, c cid.Cid, dst []byte) ([]byte, error) {
	return e.get(ctx, c, dst, true)
}

// get is Get (into false) or GetInto.
func (e *engine) get(ctx context.Context, c cid.Cid, dst []byte, into bool) ([]byte, error) {
	if err := ctx.Err(); err != nil {
		return nil, err
	}
	if data, ok := identityData(c); ok {
		return data, nil
	}
	key := string(c.Hash())
	e.mu.Lock()
	if err := e.beginLocked(); err != nil {
		e.mu.Unlock()
		return nil, err
	}
	defer e.ops.Done()
	en := e.entries[key]
	if en == nil {
		e.mu.Unlock()
		return nil, fmt.Errorf("%w: %s", ErrNotFound, c)
	}
	e.touch(en)
	size := en.size
	if en.ref != nil {
		loc := *en.ref
		e.mu.Unlock()
		return e.getRef(c, en, loc, dst)
	}
	e.mu.Unlock()

	var data []byte
	var err error
	if into {
		data, err = e.be.readInto(key, size, dst)
	} else {
		data, err = e.be.read(key)
	}
	if errors.Is(err, fs.ErrNotExist) {
		// Evicted or deleted since we looked, or removed behind our back.
		e.forget(en, "vanished")
		return nil, fmt.Errorf("%w: %s", ErrNotFound, c)
	}
	if err != nil {
		return nil, fmt.Errorf("blockstore: get %s: %w", c, err)
	}
	if e.cfg.VerifyOnRead {
		if err := checkHash(c.Hash(), data); err != nil {
			e.forget(en, "corrupt: failed its hash check on read; removed, so it counts as missing and is fetched again")
			return nil, fmt.Errorf("%w: %s failed its hash check on read (%v) and was removed; fetch it again", ErrCorrupt, c, err)
		}
	}
	return data, nil
}

// forget drops en if it is still the indexed entry for its key (a block
// that vanished or failed its hash) and removes what is left of it.
// It reports whether it dropped en.
func (e *engine) forget(en *entry, why string) bool {
	e.mu.Lock()
	if e.entries[en.key] != en {
		e.mu.Unlock()
		return false
	}
	args := []any{"cid", keyCid(en.key), "reason", why}
	if w := e.be.where(en.key); w != "" {
		args = append(args, "path", w)
	}
	e.log.Warn("blockstore: dropping block", args...)
	e.dropLocked(en)
	e.mu.Unlock()
	e.removeKeys([]string{en.key})
	return true
}

// Has implements Store.
func (e *engine) Has(ctx context.Context, c cid.Cid) (bool, error) {
	if err := ctx.Err(); err != nil {
		return false, err
	}
	if _, ok := identityData(c); ok {
		return true, nil
	}
	e.mu.Lock()
	defer e.mu.Unlock()
	if e.closed {
		return false, ErrClosed
	}
	return e.entries[string(c.Hash())] != nil, nil
}

// GetSize implements Store.
func (e *engine) GetSize(ctx context.Context, c cid.Cid) (int, error) {
	if err := ctx.Err(); err != nil {
		return 0, err
	}
	if data, ok := identityData(c); ok {
		return len(data), nil
	}
	e.mu.Lock()
	defer e.mu.Unlock()
	if e.closed {
		return 0, ErrClosed
	}
	en := e.entries[string(c.Hash())]
	if en == nil {
		return 0, fmt.Errorf("%w: %s", ErrNotFound, c)
	}
	return int(en.size), nil
}

// Delete implements Store.
func (e *engine) Delete(ctx context.Context, c cid.Cid) error {
	if isIdentity(c) {
		return nil
	}
	key := string(c.Hash())
	if err := e.lockIdle(ctx, key); err != nil {
		return err
	}
	defer e.ops.Done()
	en := e.entries[key]
	if en == nil {
		e.mu.Unlock()
		return fmt.Errorf("%w: %s", ErrNotFound, c)
	}
	if en.pinned {
		e.mu.Unlock()
		return fmt.Errorf("%w: %s is under a pin; unpin its root first", ErrPinned, c)
	}
	e.dropLocked(en)
	e.mu.Unlock()
	e.removeKeys([]string{key})
	return nil
}

// AllKeys implements Store.
func (e *engine) AllKeys(ctx context.Context) iter.Seq2[cid.Cid, error] {
	return func(yield func(cid.Cid, error) bool) {
		e.mu.Lock()
		if e.closed {
			e.mu.Unlock()
			yield(cid.Undef, ErrClosed)
			return
		}
		keys := make([]string, 0, len(e.entries))
		for k := range e.entries {
			keys = append(keys, k)
		}
		e.mu.Unlock()
		for _, k := range keys {
			if err := ctx.Err(); err != nil {
				yield(cid.Undef, err)
				return
			}
			if !yield(keyCid(k), nil) {
				return
			}
		}
	}
}

// Stat implements Store.
func (e *engine) Stat() Stats {
	e.mu.Lock()
	defer e.mu.Unlock()
	return Stats{
		Blocks:        len(e.entries),
		Refs:          e.refs.count,
		RefBytes:      e.refs.bytes,
		Bytes:         e.used + e.reserved,
		CapacityBytes: e.cfg.CapacityBytes,
		Pinned:        len(e.pins.set),
		PinnedBytes:   e.pins.bytes,
		Pins:          len(e.pins.roots),
		Missing:       len(e.pins.wanted),
		Evicted:       e.evicted,
		EvictedBytes:  e.evictedB,
	}
}

// Close implements Store.
func (e *engine) Close() error {
	e.mu.Lock()
	if e.closed {
		e.mu.Unlock()
		return nil
	}
	e.closed = true
	e.mu.Unlock()
	e.ops.Wait()
	return e.be.close()
}
