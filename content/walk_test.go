package content_test

import (
	"bytes"
	"context"
	"errors"
	"slices"
	"testing"

	"github.com/ipfs/go-cid"

	"github.com/shoalnet/shoal/content"
)

// preorder is a reference walk: recursion over DecodePBNode.
func preorder(t *testing.T, st *fileStore, c cid.Cid, out *[]cid.Cid) {
	*out = append(*out, c)
	if c.Type() == cid.Raw {
		return
	}
	b, err := st.Get(context.Background(), c)
	if err != nil {
		t.Fatal(err)
	}
	n, err := content.DecodePBNode(b)
	if err != nil {
		t.Fatal(err)
	}
	for _, l := range n.Links {
		preorder(t, st, l.Hash, out)
	}
}

func TestWalkOrder(t *testing.T) {
	data := patternBytes(5*37+3, "seq251", 0)
	st, res := importInto(t, data, 5, 3) // 38 leaves, depth 4
	var got []cid.Cid
	var leaves bytes.Buffer
	err := content.Walk(context.Background(), st, res.CID, func(c cid.Cid, b []byte) error {
		got = append(got, c)
		if c.Type() == cid.Raw {
			leaves.Write(b)
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	var want []cid.Cid
	preorder(t, st, res.CID, &want)
	if !slices.EqualFunc(got, want, cid.Cid.Equals) || len(got) != res.Blocks {
		t.Fatalf("walk visited %d blocks (want %d, import made %d) or in another order", len(got), len(want), res.Blocks)
	}
	if !got[0].Equals(res.CID) {
		t.Fatal("root not first")
	}
	if !bytes.Equal(leaves.Bytes(), data) {
		t.Fatal("leaves not in file order")
	}
}

func TestWalkErrors(t *testing.T) {
	ctx := context.Background()
	data := patternBytes(50, "seq251", 0)
	st, res := importInto(t, data, 5, 3)

	stop := errors.New("stop here")
	calls := 0
	err := content.Walk(ctx, st, res.CID, func(cid.Cid, []byte) error {
		calls++
		if calls == 3 {
			return stop
		}
		return nil
	})
	if err != stop || calls != 3 {
		t.Fatalf("fn error: got %v after %d calls", err, calls)
	}

	// Remove a leaf: the walk names it.
	var victim cid.Cid
	for c := range st.blocks {
		if c.Type() == cid.Raw {
			victim = c
			break
		}
	}
	delete(st.blocks, victim)
	err = content.Walk(ctx, st, res.CID, func(cid.Cid, []byte) error { return nil })
	if !errors.Is(err, errNotFound) || !bytes.Contains([]byte(err.Error()), []byte(victim.String())) {
		t.Fatalf("missing block: %v", err)
	}

	cctx, cancel := context.WithCancel(ctx)
	cancel()
	if err := content.Walk(cctx, st, res.CID, func(cid.Cid, []byte) error { return nil }); !errors.Is(err, context.Canceled) {
		t.Fatalf("cancelled walk: %v", err)
	}
}

func TestLinks(t *testing.T) {
	st := newFileStore()
	a := putRaw(st, []byte("a"))
	b := putRaw(st, []byte("b"))
	node := putPB(st, []cid.Cid{b, a, b}, &content.FSData{Type: content.TFile, BlockSizes: []uint64{1, 1, 1}})
	data, _ := st.Get(context.Background(), node)

	got, err := content.Links(node, data)
	if err != nil || !slices.EqualFunc(got, []cid.Cid{b, a, b}, cid.Cid.Equals) {
		t.Fatalf("dag-pb links: %v, %v", got, err)
	}
	if got, err := content.Links(a, []byte("a")); err != nil || len(got) != 0 {
		t.Fatalf("raw links: %v, %v", got, err)
	}
	empty := putPB(st, nil, nil)
	if got, err := content.Links(empty, nil); err != nil || len(got) != 0 {
		t.Fatalf("empty dag-pb: %v, %v", got, err)
	}
	if _, err := content.Links(node, []byte{0xff}); !errors.Is(err, content.ErrMalformed) {
		t.Fatalf("garbage dag-pb: %v", err)
	}
	cbor, _ := cid.Prefix{Version: 1, Codec: cid.DagCBOR, MhType: 0x12, MhLength: -1}.Sum([]byte{0xa0})
	if _, err := content.Links(cbor, []byte{0xa0}); !errors.Is(err, content.ErrUnsupportedCodec) {
		t.Fatalf("dag-cbor: %v", err)
	}
}
