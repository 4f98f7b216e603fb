package protocol

import (
	"bytes"
	"context"
	"fmt"
	"io"
	"testing"
	"time"

	"github.com/ipfs/boxo/blockservice"
	bsblockstore "github.com/ipfs/boxo/blockstore"
	"github.com/ipfs/boxo/ipld/merkledag"
	ufsio "github.com/ipfs/boxo/ipld/unixfs/io"
	blocks "github.com/ipfs/go-block-format"
	"github.com/ipfs/go-cid"
	ds "github.com/ipfs/go-datastore"
	dssync "github.com/ipfs/go-datastore/sync"
)

// interopContent is a multi-block file and a directory holding it and two
// more files, imported by boxo as Kubo would.
type interopContent struct {
	file     *unixfsDAG
	fileData []byte
	dir      *unixfsDAG
}

func makeInteropContent(t *testing.T) *interopContent {
	t.Helper()
	bstore := bsblockstore.NewBlockstore(dssync.MutexWrap(ds.NewMapDatastore()))
	dag := merkledag.NewDAGService(blockservice.New(bstore, nil))
	ctx := context.Background()
	data := benchData(5<<20+4321, 7)
	fileNode := boxoImportFile(t, dag, data)
	dir, err := ufsio.NewDirectory(dag)
	if err != nil {
		t.Fatal(err)
	}
	dir.SetCidBuilder(ufsio.UnixFS_v1_2025.CidBuilder())
	for i, size := range []int{0, 1 << 20, 3<<20 + 1} {
		nd := boxoImportFile(t, dag, benchData(size, uint64(10+i)))
		if err := dir.AddChild(ctx, fmt.Sprintf("file-%d.bin", i), nd); err != nil {
			t.Fatal(err)
		}
	}
	if err := dir.AddChild(ctx, "big.bin", fileNode); err != nil {
		t.Fatal(err)
	}
	dirNode, err := dir.GetNode()
	if err != nil {
		t.Fatal(err)
	}
	if err := dag.Add(ctx, dirNode); err != nil {
		t.Fatal(err)
	}
	return &interopContent{
		file:     collectDAG(t, bstore, fileNode.Cid(), int64(len(data))),
		fileData: data,
		dir:      collectDAG(t, bstore, dirNode.Cid(), 0),
	}
}

// TestInteropBoxoFetchesFromShoal: boxo's Bitswap (what Kubo runs) fetches
// a multi-block file and a directory from a shoal server over real libp2p
// hosts; the file reads back byte for byte through boxo's UnixFS reader.
func TestInteropBoxoFetchesFromShoal(t *testing.T) {
	c := makeInteropContent(t)
	store := newClientStore()
	for _, d := range []*unixfsDAG{c.file, c.dir} {
		for _, blk := range d.blocks {
			store.Set(blk.Cid(), blk.RawData())
		}
	}
	seeder := newShoalPeer(t, "tcp", store)
	leech := newBoxoPeer(t, "tcp", nil)
	benchConnect(t, leech.h, seeder.h)
	dag := merkledag.NewDAGService(blockservice.New(leech.store, leech.bs))
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()

	for _, d := range []*unixfsDAG{c.dir, c.file} {
		if err := merkledag.FetchGraph(ctx, d.root, dag); err != nil {
			t.Fatalf("boxo fetching %s from shoal: %v", d.root, err)
		}
		for _, blk := range d.blocks {
			got, err := leech.store.Get(ctx, blk.Cid())
			if err != nil || !bytes.Equal(got.RawData(), blk.RawData()) {
				t.Fatalf("boxo holds a wrong or no block %s (err %v)", blk.Cid(), err)
			}
		}
	}
	nd, err := dag.Get(ctx, c.file.root)
	if err != nil {
		t.Fatal(err)
	}
	r, err := ufsio.NewDagReader(ctx, nd, dag)
	if err != nil {
		t.Fatal(err)
	}
	got, err := io.ReadAll(r)
	if err != nil || !bytes.Equal(got, c.fileData) {
		t.Fatalf("boxo read %d bytes (err %v), want the %d shared", len(got), err, len(c.fileData))
	}
}

// TestInteropShoalFetchesFromBoxo: shoal's client fetches the same file and
// directory from a boxo Bitswap server; every block arrives intact and the
// file reads back byte for byte.
func TestInteropShoalFetchesFromBoxo(t *testing.T) {
	c := makeInteropContent(t)
	var all = append(append([]blocksBlock(nil), c.file.blocks...), c.dir.blocks...)
	seeder := newBoxoPeer(t, "tcp", all)
	store := newClientStore()
	leech := newShoalPeer(t, "tcp", store)
	benchConnect(t, leech.h, seeder.h)
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()

	for _, d := range []*unixfsDAG{c.dir, c.file} {
		f, err := leech.cl.Fetch(ctx, d.root)
		if err != nil {
			t.Fatal(err)
		}
		res, err := f.Wait()
		if err != nil {
			t.Fatalf("shoal fetching %s from boxo: %v", d.root, err)
		}
		if res.Blocks != len(d.blocks) {
			t.Fatalf("fetched %d blocks of %s, DAG has %d", res.Blocks, d.root, len(d.blocks))
		}
		for _, blk := range d.blocks {
			got, err := store.Get(ctx, blk.Cid())
			if err != nil || !bytes.Equal(got, blk.RawData()) {
				t.Fatalf("shoal holds a wrong or no block %s (err %v)", blk.Cid(), err)
			}
		}
	}
	// Read the file back from shoal's store through boxo's reader.
	bstore := bsblockstore.NewBlockstore(dssync.MutexWrap(ds.NewMapDatastore()))
	for k, v := range store.All() {
		blk, err := newBasicBlock(v, k)
		if err != nil {
			t.Fatal(err)
		}
		if err := bstore.Put(ctx, blk); err != nil {
			t.Fatal(err)
		}
	}
	dag := merkledag.NewDAGService(blockservice.New(bstore, nil))
	nd, err := dag.Get(ctx, c.file.root)
	if err != nil {
		t.Fatal(err)
	}
	r, err := ufsio.NewDagReader(ctx, nd, dag)
	if err != nil {
		t.Fatal(err)
	}
	got, err := io.ReadAll(r)
	if err != nil || !bytes.Equal(got, c.fileData) {
		t.Fatalf("read %d bytes from shoal's store (err %v), want %d", len(got), err, len(c.fileData))
	}
}

type blocksBlock = blocks.Block

func newBasicBlock(data []byte, c cid.Cid) (blocks.Block, error) {
	return blocks.NewBlockWithCid(data, c)
}
