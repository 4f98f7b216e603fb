package protocol

import (
	"bytes"
	"context"
	"testing"
	"time"

	"github.com/ipfs/boxo/bitswap"
	"github.com/ipfs/boxo/bitswap/network/bsnet"
	"github.com/ipfs/boxo/blockstore"
	blocks "github.com/ipfs/go-block-format"
	"github.com/ipfs/go-cid"
	ds "github.com/ipfs/go-datastore"
	dssync "github.com/ipfs/go-datastore/sync"
	mh "github.com/multiformats/go-multihash"
)

// TestInteropBoxoClientFetches: boxo's Bitswap client (as in Kubo), with
// no content routing, fetches blocks from our server over real hosts.
func TestInteropBoxoClientFetches(t *testing.T) {
	blks := seqBlocks(t, 6, 300<<10)
	// A CIDv0 (dag-pb, sha2-256) block as well, as old Kubo data has.
	v0data := []byte{0x0a, 0x03, 0x08, 0x02, 0x18}
	h, err := mh.Sum(v0data, mh.SHA2_256, -1)
	if err != nil {
		t.Fatal(err)
	}
	blks = append(blks, Block{CID: cid.NewCidV0(h), Data: v0data})
	srv := newServerNode(t, DefaultServerConfig(), blks...)

	hb := bsTestHost(t)
	store := blockstore.NewBlockstore(dssync.MutexWrap(ds.NewMapDatastore()))
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	bs := bitswap.New(ctx, bsnet.NewFromIpfsHost(hb), nil, store, bitswap.WithServerEnabled(false))
	defer bs.Close()
	bsConnect(t, hb, srv.h)

	cids := make([]cid.Cid, len(blks))
	for i, b := range blks {
		cids[i] = b.CID
	}
	ch, err := bs.GetBlocks(ctx, cids)
	if err != nil {
		t.Fatal(err)
	}
	got := map[cid.Cid][]byte{}
	for b := range ch {
		got[b.Cid()] = b.RawData()
	}
	for _, b := range blks {
		if !bytes.Equal(got[b.CID], b.Data) {
			t.Fatalf("boxo client did not get block %s intact (got %d of %d blocks; ctx %v)", b.CID, len(got), len(blks), ctx.Err())
		}
	}
	// Counted when the server's Send returns, maybe after boxo read it.
	deadline := time.Now().Add(10 * time.Second)
	st := srv.srv.PeerStats()[hb.ID()]
	for st.BlocksSent < uint64(len(blks)) && time.Now().Before(deadline) {
		time.Sleep(5 * time.Millisecond)
		st = srv.srv.PeerStats()[hb.ID()]
	}
	if st.BlocksSent < uint64(len(blks)) {
		t.Fatalf("server stats %+v", st)
	}
}

// TestInteropBoxoServerAnswersOurNetwork: wants sent through our Network
// to boxo's Bitswap server are answered, and the answers (sent by boxo on
// streams it opens) reach our client receiver intact.
func TestInteropBoxoServerAnswersOurNetwork(t *testing.T) {
	blks := seqBlocks(t, 4, 200<<10)
	hb := bsTestHost(t)
	store := blockstore.NewBlockstore(dssync.MutexWrap(ds.NewMapDatastore()))
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	for _, b := range blks {
		blk, err := blocks.NewBlockWithCid(b.Data, b.CID)
		if err != nil {
			t.Fatal(err)
		}
		if err := store.Put(ctx, blk); err != nil {
			t.Fatal(err)
		}
	}
	bs := bitswap.New(ctx, bsnet.NewFromIpfsHost(hb), nil, store)
	defer bs.Close()

	ha := bsTestHost(t)
	na := bsTestNetwork(t, ha)
	rec := newBsRecorder()
	na.SetReceivers(nil, rec)
	if err := na.Start(); err != nil {
		t.Fatal(err)
	}
	bsConnect(t, ha, hb)
	missing := rawCID(t, []byte("boxo does not have this"))
	wants := []Entry{
		{CID: blks[0].CID, WantType: WantHave, SendDontHave: true},
		{CID: missing, WantType: WantHave, SendDontHave: true},
	}
	for _, b := range blks[1:] {
		wants = append(wants, Entry{CID: b.CID, WantType: WantBlock, SendDontHave: true})
	}
	if err := na.Send(ctx, hb.ID(), &Message{Wants: wants}); err != nil {
		t.Fatal(err)
	}
	gotBlocks := map[cid.Cid][]byte{}
	gotPres := map[cid.Cid]PresenceType{}
	answered := func() bool {
		_, havePres := gotPres[blks[0].CID]
		_, haveBlock := gotBlocks[blks[0].CID]
		_, dontHave := gotPres[missing]
		return (havePres || haveBlock) && dontHave && len(gotBlocks) >= len(blks)-1
	}
	for !answered() {
		m := bsExpect(t, rec.msgs)
		for _, b := range m.Blocks {
			gotBlocks[b.CID] = b.Data
		}
		for _, p := range m.Presences {
			gotPres[p.CID] = p.Type
		}
	}
	for _, b := range blks[1:] {
		if !bytes.Equal(gotBlocks[b.CID], b.Data) {
			t.Fatalf("block %s from boxo: wrong bytes", b.CID)
		}
	}
	// boxo may answer a want-have for a small block with the block itself.
	if p, ok := gotPres[blks[0].CID]; ok && p != Have {
		t.Fatalf("boxo said %v for a block it has", p)
	}
	if gotPres[missing] != DontHave {
		t.Fatalf("presences %v; want DONT_HAVE for the missing CID", gotPres)
	}
}
