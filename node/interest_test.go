package node

import (
	"bytes"
	"context"
	"slices"
	"testing"
	"time"

	"github.com/ipfs/go-cid"
)

// TestSwarmNotInterestedInPeerWithNothingNeeded: a leecher that already
// holds the root and two leaves fetches the rest from a seeder while
// connected to a third node that holds only the root and the first leaf
// (blocks the leecher has). The leecher fetches the root there too, so
// with per-root interest that node's server gave it a slot; with
// BitTorrent's interest the leecher never says it wants that node's
// blocks, and the node never unchokes it, for the whole fetch and the
// second after it. The seeder, which holds what the leecher needs, serves
// it: the fetch completes with the right bytes.
func TestSwarmNotInterestedInPeerWithNothingNeeded(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	scfg := swarmConfig(true)
	scfg.Transfer.UploadLimit = 2 << 20 // 8 MiB in ~3 s: choke rounds run meanwhile
	seeder := startNode(t, scfg)
	data := randomBytes(8<<20+1000, 31)
	res, err := seeder.AddFile(ctx, bytes.NewReader(data))
	if err != nil {
		t.Fatal(err)
	}
	leaves := rootLinks(t, ctx, seeder, res.CID)
	leecher := startNode(t, swarmConfig(true, seeder.Info().Addresses[0]))
	holder := startNode(t, swarmConfig(true))
	copyBlocks(t, ctx, seeder, leecher, res.CID, leaves[0], leaves[1])
	copyBlocks(t, ctx, seeder, holder, res.CID, leaves[0])
	if err := leecher.Connect(ctx, holder.Info().Addresses[0]); err != nil {
		t.Fatal(err)
	}
	waitSwarm(t, ctx, []*Node{leecher}, seeder)
	waitSwarm(t, ctx, []*Node{leecher}, holder)

	tr, err := leecher.Fetch(ctx, res.CID, "test")
	if err != nil {
		t.Fatal(err)
	}
	defer tr.Cancel()
	me := leecher.host.ID().String()
	var samples int
	watch := func(until <-chan struct{}) {
		for {
			if slices.Contains(holder.UploadSlots().Unchoked, me) {
				t.Fatalf("the holder unchoked the leecher, which needs none of its blocks (after %d samples)", samples)
			}
			samples++
			select {
			case <-until:
				return
			case <-ctx.Done():
				t.Fatal("the fetch did not complete")
			case <-time.After(5 * time.Millisecond):
			}
		}
	}
	watch(tr.Done())
	if err := tr.Err(); err != nil {
		t.Fatalf("fetch: %v", err)
	}
	after := make(chan struct{})
	time.AfterFunc(time.Second, func() { close(after) })
	watch(after)
	readSwarmFile(t, ctx, leecher, res.CID, data)
	if ps := holder.server.PeerStats()[leecher.host.ID()]; ps.BlockBytesSent != 0 {
		t.Fatalf("the holder sent the leecher %d block bytes it already had", ps.BlockBytesSent)
	}
	t.Logf("%d samples of the holder's slots, leecher never unchoked there", samples)
}

// copyBlocks puts blocks of from's store into to's, as if to had fetched
// them earlier.
func copyBlocks(t *testing.T, ctx context.Context, from, to *Node, cs ...cid.Cid) {
	t.Helper()
	for _, c := range cs {
		b, err := from.store.Get(ctx, c)
		if err != nil {
			t.Fatal(err)
		}
		if err := to.store.Put(ctx, c, b); err != nil {
			t.Fatal(err)
		}
	}
}
