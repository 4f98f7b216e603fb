package blockstore

import (
	"context"
	"fmt"
	"sync"
	"testing"

	"github.com/ipfs/go-cid"
)

// lockWatch wraps a store's backend and records every call made while
// the engine's lock is held (the tests using it run one operation at a
// time, so a lock that cannot be taken is the caller's). It can also
// hold the next read of one key until released, to be a slow disk.
type lockWatch struct {
	backend
	e *engine

	mu      sync.Mutex
	held    []string      // backend calls made under the lock
	slowKey string        // the next read of it waits for release
	reached chan struct{} // closed when that read has begun
	release chan struct{}
}

// watchLock installs a lockWatch in s; s must not be in use yet.
func watchLock(s Store) *lockWatch {
	e := engineOf(s)
	w := &lockWatch{backend: e.be, e: e}
	e.be = w
	return w
}

// underLock reports whether the caller holds the engine's lock, and
// records op if it does.
func (w *lockWatch) underLock(op, key string) bool {
	if w.e.mu.TryLock() {
		w.e.mu.Unlock()
		return false
	}
	if key != "" {
		op = fmt.Sprintf("%s %s", op, keyCid(key))
	}
	w.mu.Lock()
	w.held = append(w.held, op)
	w.mu.Unlock()
	return true
}

// slow makes the next read of c wait until the returned function runs;
// reached is closed once that read has begun.
func (w *lockWatch) slow(c cid.Cid) (reached <-chan struct{}, release func()) {
	w.mu.Lock()
	defer w.mu.Unlock()
	w.slowKey = string(c.Hash())
	w.reached, w.release = make(chan struct{}), make(chan struct{})
	return w.reached, sync.OnceFunc(func() { close(w.release) })
}

// calls returns the calls made under the lock since the last call.
func (w *lockWatch) calls() []string {
	w.mu.Lock()
	defer w.mu.Unlock()
	held := w.held
	w.held = nil
	return held
}

func (w *lockWatch) read(key string) ([]byte, error) {
	locked := w.underLock("read", key)
	w.mu.Lock()
	slow := key == w.slowKey
	var reached, release chan struct{}
	if slow {
		w.slowKey = ""
		reached, release = w.reached, w.release
	}
	w.mu.Unlock()
	if slow {
		close(reached)
		if !locked { // under the lock it would hang the test, not fail it
			<-release
		}
	}
	return w.backend.read(key)
}

func (w *lockWatch) write(key string, data []byte) error {
	w.underLock("write", key)
	return w.backend.write(key, data)
}

func (w *lockWatch) remove(key string) error {
	w.underLock("remove", key)
	return w.backend.remove(key)
}

func (w *lockWatch) savePins(roots []cid.Cid) error {
	w.underLock("savePins", "")
	return w.backend.savePins(roots)
}

func (w *lockWatch) saveRefs(refs []Ref, durable bool) error {
	w.underLock("saveRefs", "")
	return w.backend.saveRefs(refs, durable)
}

func (w *lockWatch) dropRefs(keys []string) error {
	w.underLock("dropRefs", "")
	return w.backend.dropRefs(keys)
}

// testNoBackendIOUnderTheLock: no operation of either store calls its
// backend (the disk, for Disk) while holding the store's lock — among
// them the pin walks that read blocks for their links (Pin of stored
// blocks, a block arriving under a pin with stored children, PinStatus
// of unpinned content, Unpin, GC, Verify) and the saving of the pins.
func testNoBackendIOUnderTheLock(t *testing.T, im impl) {
	ctx := context.Background()
	s := im.open(t, testConfig(t))
	w := watchLock(s)
	a, b, c := newDAG("a", 100), newDAG("b", 100), newDAG("c", 100)
	put(t, s, a.all()...) // unpinned: no links cached
	put(t, s, b.mid, b.leaves[0], b.leaves[1], b.leaves[2])
	put(t, s, c.all()...)
	steps := []struct {
		name string
		do   func() error
	}{
		{"Pin of stored blocks", func() error { return s.Pin(ctx, a.root.c) }},
		{"Pin before the root arrives", func() error { return s.Pin(ctx, b.root.c) }},
		{"Put of a root whose children are stored", func() error { return s.Put(ctx, b.root.c, b.root.data) }},
		{"PinStatus of unpinned content", func() error { _, err := s.PinStatus(ctx, c.root.c); return err }},
		{"Unpin", func() error { return s.Unpin(ctx, a.root.c) }},
		{"Verify", func() error { _, err := s.Verify(ctx); return err }},
		{"Get", func() error { _, err := s.Get(ctx, b.mid.c); return err }},
		{"Delete", func() error { return s.Delete(ctx, sizedBlock("gone", 10).c) }},
		{"GC", func() error { _, err := s.GC(ctx); return err }},
	}
	put(t, s, sizedBlock("gone", 10))
	for _, st := range steps {
		if err := st.do(); err != nil {
			t.Fatalf("%s: %v", st.name, err)
		}
		if held := w.calls(); len(held) > 0 {
			t.Errorf("%s called the backend while holding the store's lock: %v", st.name, held)
		}
	}
	if ps, _ := s.PinStatus(ctx, b.root.c); !ps.Complete || ps.Blocks != 5 {
		t.Fatalf("PinStatus of b = %+v, want complete with 5 blocks", ps)
	}
	if has(t, s, a.root) || !has(t, s, b.leaves[0]) {
		t.Fatal("GC kept the unpinned DAG or dropped the pinned one")
	}
}

// testSlowReadBlocksNoOtherBlock: while a Pin's walk waits for a slow
// read of one block, Has and Get of other blocks and a Put of a new one
// go on; the Pin then completes.
func testSlowReadBlocksNoOtherBlock(t *testing.T, im impl) {
	ctx := context.Background()
	s := im.open(t, testConfig(t))
	w := watchLock(s)
	d := newDAG("slow", 100)
	other, fresh := sizedBlock("other", 100), sizedBlock("fresh", 100)
	put(t, s, d.all()...)
	put(t, s, other)
	reached, release := w.slow(d.root.c)
	defer release()
	pinned := make(chan error, 1)
	go func() { pinned <- s.Pin(ctx, d.root.c) }()
	<-reached
	if held := w.calls(); len(held) > 0 {
		t.Fatalf("the pin walk reads blocks holding the store's lock (%v): one slow read stops every Has and Get", held)
	}
	if !has(t, s, other) {
		t.Fatal("Has(other) = false")
	}
	mustGet(t, s, other)
	put(t, s, fresh)
	mustGet(t, s, d.leaves[0])
	release()
	if err := <-pinned; err != nil {
		t.Fatal(err)
	}
	if ps, _ := s.PinStatus(ctx, d.root.c); !ps.Complete || ps.Blocks != 5 {
		t.Fatalf("PinStatus = %+v, want complete with 5 blocks", ps)
	}
}
