package protocol

import (
	"bytes"
	"context"
	"errors"
	"sync/atomic"
	"testing"
	"time"

	"github.com/ipfs/go-cid"
	"github.com/libp2p/go-libp2p/core/peer"
)

// The path from the wire to the store hashes each block exactly once: the
// decoder derives the block's CID from its bytes, the client checks that
// it asked for that CID and stores it with PutVerified, which does not
// hash. blockHashes counts every block hash of this package.

// countingBlocks is a client store with PutVerified, as the node's is; it
// counts which of the two the client uses. Both copy the bytes (the
// network reuses its buffers).
type countingBlocks struct {
	*clientStore
	puts, verifiedPuts atomic.Int64
}

func (s *countingBlocks) Put(ctx context.Context, c cid.Cid, data []byte) error {
	s.puts.Add(1)
	return s.clientStore.Put(ctx, c, data)
}

func (s *countingBlocks) PutVerified(ctx context.Context, c cid.Cid, data []byte) error {
	s.verifiedPuts.Add(1)
	return s.clientStore.Put(ctx, c, data)
}

// TestWireBlocksHashedOnce: a leecher fetches a DAG from an honest seeder
// and from one that serves every leaf with a flipped byte. Each block that
// arrives, corrupt or not, is hashed exactly once (by the decoder); every
// stored block goes through PutVerified; the corrupt blocks are refused
// and their sender is banned and cut off with ErrBadBlock, as before the
// second hash was dropped.
func TestWireBlocksHashedOnce(t *testing.T) {
	d := makeClDAG(t, 16, 256<<10, 31)
	honest, liar := newClientStore(), newClientStore()
	d.fill(honest)
	d.fill(liar)
	liar.corrupt = true
	good := newClNode(t, honest, 0, nil)
	bad := newClNode(t, liar, 0, nil)
	store := &countingBlocks{clientStore: newClientStore()}
	leech := newLeech(t, store, clProviders{[]peer.AddrInfo{bad.info(), good.info()}})

	before := blockHashes.Load()
	ctx, cancel := context.WithTimeout(context.Background(), 90*time.Second)
	defer cancel()
	f, err := leech.cl.Fetch(ctx, d.root)
	if err != nil {
		t.Fatal(err)
	}
	res, err := f.Wait()
	if err != nil {
		t.Fatalf("fetch beside a corrupt seeder: %v", err)
	}
	_ = leech.net.Close() // waits for the read loops: every frame is counted
	hashes := blockHashes.Load() - before
	tr := leech.net.Traffic()

	clCheckStored(t, d, store.clientStore)
	if hashes != tr.BlocksReceived {
		t.Errorf("%d blocks arrived from the wire and %d block hashes were computed, want one per block", tr.BlocksReceived, hashes)
	}
	if got := store.verifiedPuts.Load(); got != int64(len(d.blocks)) || store.puts.Load() != 0 {
		t.Errorf("store got %d PutVerified and %d Put, want %d PutVerified (the block was hashed already) and no Put",
			got, store.puts.Load(), len(d.blocks))
	}
	if !leech.cl.Scores().Banned(bad.h.ID(), time.Now()) {
		t.Error("seeder of corrupt blocks is not banned")
	}
	for _, pp := range res.Peers {
		if pp.Peer == bad.h.ID() && (pp.Active || !errors.Is(pp.Err, ErrBadBlock)) {
			t.Errorf("corrupt seeder in the result: active=%v err=%v, want cut off with ErrBadBlock", pp.Active, pp.Err)
		}
	}
	t.Logf("%d blocks from the wire (%d in the DAG), %d hashes", tr.BlocksReceived, len(d.blocks), hashes)
}

// TestHandBuiltBlockIsHashed: a Block that did not come through the
// decoder (built by a caller of ReceiveMessage) is hashed before it is
// trusted: bytes that do not match the CID are refused and the sender is
// banned; the right bytes are stored.
func TestHandBuiltBlockIsHashed(t *testing.T) {
	d := makeClDAG(t, 1, 4<<10, 32)
	silent, _ := silentPeer(t)
	store := &countingBlocks{clientStore: newClientStore()}
	leech := newLeech(t, store, clProviders{[]peer.AddrInfo{addrInfo(silent)}})
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	if _, err := leech.cl.Fetch(ctx, d.root); err != nil {
		t.Fatal(err)
	}
	for !leech.cl.wasAsked(d.root) {
		if ctx.Err() != nil {
			t.Fatal("the fetch never asked for its root")
		}
		time.Sleep(5 * time.Millisecond)
	}

	liar, honest := peer.ID("hand-built-liar"), peer.ID("hand-built-honest")
	wrong := bytes.Clone(d.blocks[d.root])
	wrong[len(wrong)-1] ^= 0xff
	before := blockHashes.Load()
	leech.cl.ReceiveMessage(ctx, liar, &Message{Blocks: []Block{{CID: d.root, Data: wrong}}})
	if got := blockHashes.Load() - before; got != 1 {
		t.Fatalf("a hand-built block was hashed %d times, want once", got)
	}
	for !leech.cl.Scores().Banned(liar, time.Now()) {
		if ctx.Err() != nil {
			t.Fatal("sender of a hand-built block with wrong bytes is not banned")
		}
		time.Sleep(5 * time.Millisecond)
	}
	if has, _ := store.Has(ctx, d.root); has {
		t.Fatal("wrong bytes were stored under the root's CID")
	}

	leech.cl.ReceiveMessage(ctx, honest, &Message{Blocks: []Block{{CID: d.root, Data: bytes.Clone(d.blocks[d.root])}}})
	got, err := store.Get(ctx, d.root)
	if err != nil || !bytes.Equal(got, d.blocks[d.root]) {
		t.Fatalf("the right hand-built bytes were not stored (%d bytes, err %v)", len(got), err)
	}
	if store.verifiedPuts.Load() != 1 || store.puts.Load() != 0 {
		t.Fatalf("store got %d PutVerified and %d Put, want the one verified block through PutVerified", store.verifiedPuts.Load(), store.puts.Load())
	}
}
