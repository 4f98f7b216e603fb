package blockstore

import (
	"bytes"
	"context"
	"testing"
)

// poolRefs is how many stores hold key in the process's pool (0: absent).
func poolRefs(key string) int {
	sharedPool.mu.Lock()
	defer sharedPool.mu.Unlock()
	if e := sharedPool.blocks[key]; e != nil {
		return e.refs
	}
	return 0
}

// TestMemoryStoresShareBlocks: two Memory stores holding the same block
// hold one copy of its bytes; a reader may change what it got without
// touching either store; the bytes go when the last store lets go.
func TestMemoryStoresShareBlocks(t *testing.T) {
	ctx := context.Background()
	a, b := NewMemory(testConfig(t)), NewMemory(testConfig(t))
	defer b.Close()
	blk := sizedBlock(t.Name(), 4096)
	key := string(blk.c.Hash())
	put(t, a, blk)
	put(t, b, blk)
	if got := poolRefs(key); got != 2 {
		t.Fatalf("pool holds the block for %d stores, want 2", got)
	}
	a.mem.mu.Lock()
	ba := a.mem.blocks[key]
	a.mem.mu.Unlock()
	b.mem.mu.Lock()
	bb := b.mem.blocks[key]
	b.mem.mu.Unlock()
	if &ba[0] != &bb[0] {
		t.Fatal("the two stores hold separate copies of one block")
	}
	if &ba[0] == &blk.data[0] {
		t.Fatal("the pool kept the caller's slice instead of a copy")
	}

	got, err := a.Get(ctx, blk.c)
	if err != nil {
		t.Fatal(err)
	}
	got[0] ^= 0xff
	mustGet(t, a, blk)
	mustGet(t, b, blk)

	if err := a.Delete(ctx, blk.c); err != nil {
		t.Fatal(err)
	}
	if got := poolRefs(key); got != 1 {
		t.Fatalf("after one delete the pool counts %d holders, want 1", got)
	}
	mustGet(t, b, blk)
	if err := a.Close(); err != nil {
		t.Fatal(err)
	}
	b.Close()
	if got := poolRefs(key); got != 0 {
		t.Fatalf("after both stores closed the pool counts %d holders, want the block gone", got)
	}
}

// TestMemoryPoolKeepsLiesPrivate: bytes given to PutVerified under a CID
// they do not hash to stay in that store; the other store's block, and
// later stores sharing it, keep the true bytes.
func TestMemoryPoolKeepsLiesPrivate(t *testing.T) {
	ctx := context.Background()
	good, liar, late := NewMemory(testConfig(t)), NewMemory(testConfig(t)), NewMemory(testConfig(t))
	defer good.Close()
	defer late.Close()
	blk := sizedBlock(t.Name(), 512)
	key := string(blk.c.Hash())
	put(t, good, blk)
	bad := bytes.Clone(blk.data)
	bad[7] ^= 1
	if err := liar.PutVerified(ctx, blk.c, bad); err != nil {
		t.Fatal(err)
	}
	put(t, late, blk)
	mustGet(t, good, blk)
	mustGet(t, late, blk)
	if got := poolRefs(key); got != 2 {
		t.Fatalf("pool counts %d holders, want 2 (the liar's bytes are its own)", got)
	}
	liar.mem.mu.Lock()
	lb := liar.mem.blocks[key]
	liar.mem.mu.Unlock()
	if !bytes.Equal(lb, bad) {
		t.Fatal("the liar's store does not hold the bytes it was given")
	}
	if err := liar.Close(); err != nil {
		t.Fatal(err)
	}
	if got := poolRefs(key); got != 2 {
		t.Fatalf("closing the liar changed the pool's count to %d, want 2", got)
	}
}
