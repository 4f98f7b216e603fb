package node

import (
	"bytes"
	"context"
	"testing"
	"time"

	"github.com/ipfs/boxo/bitswap"
	"github.com/ipfs/boxo/bitswap/network/bsnet"
	bsblockstore "github.com/ipfs/boxo/blockstore"
	blocks "github.com/ipfs/go-block-format"
	"github.com/ipfs/go-cid"
	ds "github.com/ipfs/go-datastore"
	dssync "github.com/ipfs/go-datastore/sync"
	"github.com/libp2p/go-libp2p"
	"github.com/libp2p/go-libp2p/core/peer"
)

// TestSwarmMixedWithBoxo: one fetch from a shoal seeder that holds the
// root and every even leaf (it speaks the extension: its map says so)
// and a boxo Bitswap peer that holds the odd leaves (probed with
// want-have, as Kubo is), beside a second shoal leecher. Both leechers
// complete with the right bytes, and each got the odd leaves from boxo.
func TestSwarmMixedWithBoxo(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	seeder := startNode(t, swarmConfig(true))
	data := randomBytes(7<<20+5, 23)
	res, err := seeder.AddFile(ctx, bytes.NewReader(data))
	if err != nil {
		t.Fatal(err)
	}
	links := rootLinks(t, ctx, seeder, res.CID)

	h, err := libp2p.New(libp2p.ListenAddrStrings("/ip4/127.0.0.1/tcp/0"))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { h.Close() })
	bstore := bsblockstore.NewBlockstore(dssync.MutexWrap(ds.NewMapDatastore()))
	var oddBytes uint64
	for i, c := range append([]cid.Cid{res.CID}, links...) {
		raw, err := seeder.store.Get(ctx, c)
		if err != nil {
			t.Fatal(err)
		}
		blk, err := blocks.NewBlockWithCid(raw, c)
		if err != nil {
			t.Fatal(err)
		}
		if i == 0 || i%2 == 0 { // the root, and leaves 1, 3, 5, … (odd link index)
			if err := bstore.Put(ctx, blk); err != nil {
				t.Fatal(err)
			}
			if i > 0 {
				oddBytes += uint64(len(raw))
			}
		}
	}
	bs := bitswap.New(ctx, bsnet.NewFromIpfsHost(h), nil, bstore)
	t.Cleanup(func() { bs.Close() })
	if err := seeder.store.Unpin(ctx, res.CID); err != nil {
		t.Fatal(err)
	}
	for i := 1; i < len(links); i += 2 {
		if err := seeder.store.Delete(ctx, links[i]); err != nil {
			t.Fatal(err)
		}
	}

	boot := seeder.Info().Addresses[0]
	boxo := peer.AddrInfo{ID: h.ID(), Addrs: h.Addrs()}
	var ls []*Node
	var trs []*Transfer
	for range 2 {
		l := startNode(t, swarmConfig(true, boot))
		if err := l.host.Connect(ctx, boxo); err != nil {
			t.Fatal(err)
		}
		ls = append(ls, l)
	}
	if err := ls[0].Connect(ctx, ls[1].Info().Addresses[0]); err != nil {
		t.Fatal(err)
	}
	for _, l := range ls {
		tr, err := l.Fetch(ctx, res.CID, "test")
		if err != nil {
			t.Fatal(err)
		}
		trs = append(trs, tr)
	}
	for i, tr := range trs {
		<-tr.Done()
		if err := tr.Err(); err != nil {
			t.Fatalf("leecher %d: %v", i, err)
		}
		readSwarmFile(t, ctx, ls[i], res.CID, data)
		if ls[i].swarm.IsSwarmPeer(h.ID()) || !ls[i].swarm.IsSwarmPeer(seeder.host.ID()) {
			t.Fatalf("leecher %d: extension with boxo %v, with the seeder %v; want false, true", i,
				ls[i].swarm.IsSwarmPeer(h.ID()), ls[i].swarm.IsSwarmPeer(seeder.host.ID()))
		}
	}
	// The odd leaves came from boxo, or from the other leecher that got
	// them from boxo: boxo served at least one copy of each.
	var fromBoxo uint64
	for _, tr := range trs {
		for _, p := range tr.Info().Peers {
			if p.Peer == h.ID().String() {
				fromBoxo += p.Bytes
			}
		}
	}
	if fromBoxo < oddBytes {
		t.Fatalf("boxo served %d bytes, want at least the %d of the leaves only it held", fromBoxo, oddBytes)
	}
}
