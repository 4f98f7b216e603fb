package content_test

import (
	"bytes"
	"context"
	"errors"
	"math/rand/v2"
	"testing"

	chunker "github.com/ipfs/boxo/chunker"
	"github.com/ipfs/boxo/ipld/unixfs/importer/balanced"
	"github.com/ipfs/boxo/ipld/unixfs/importer/helpers"
	"github.com/ipfs/go-cid"
	"github.com/multiformats/go-multihash"

	"github.com/shoalnet/shoal/content"
)

// assemble writes every piece of l at its offset, as the daemon writes a
// fetched file, and checks that the pieces cover the file without gaps.
func assemble(t *testing.T, g content.BlockGetter, l content.Layout) []byte {
	t.Helper()
	out := make([]byte, l.Size)
	var next uint64
	for _, p := range l.Pieces {
		if p.Offset != next {
			t.Fatalf("piece %s starts at %d, want %d (gap or overlap)", p.C, p.Offset, next)
		}
		next += p.Size
		block, err := g.Get(context.Background(), p.C)
		if err != nil {
			t.Fatal(err)
		}
		b, err := p.PieceData(block)
		if err != nil {
			t.Fatal(err)
		}
		copy(out[p.Offset:], b)
	}
	if next != l.Size {
		t.Fatalf("pieces end at %d, size %d", next, l.Size)
	}
	return out
}

func TestFileLayout(t *testing.T) {
	rng := rand.New(rand.NewPCG(7, 8))
	random := func(n int) []byte {
		b := make([]byte, n)
		for i := range b {
			b[i] = byte(rng.Uint32())
		}
		return b
	}
	repeated := bytes.Repeat(random(1000), 7) // chunks of 1000 repeat: one leaf at several offsets
	for _, tc := range []struct {
		name         string
		data         []byte
		chunk, width int
	}{
		{"empty", nil, 0, 0},
		{"one raw block", random(5000), 0, 0},
		{"profile, 3 leaves", random(2<<20 + 17), 0, 0},
		{"three levels", random(40_000), 1000, 3},
		{"repeated leaves", repeated, 1000, 4},
	} {
		t.Run(tc.name, func(t *testing.T) {
			st, res := importInto(t, tc.data, tc.chunk, tc.width)
			internal := 0
			for _, c := range walkCIDs(t, st, res.CID) {
				if c.Type() != cid.Raw || c == res.CID {
					internal++
				}
			}
			st.gets.Store(0)
			l, err := content.FileLayout(context.Background(), st, res.CID)
			if err != nil {
				t.Fatal(err)
			}
			if got := st.gets.Load(); got != int64(internal) {
				t.Fatalf("the layout read %d blocks, want only the %d internal ones (and the root)", got, internal)
			}
			if l.Size != uint64(len(tc.data)) {
				t.Fatalf("size %d, want %d", l.Size, len(tc.data))
			}
			if got := assemble(t, st, l); !bytes.Equal(got, tc.data) {
				t.Fatal("the pieces put at their offsets differ from the imported bytes")
			}
		})
	}
}

// TestFileLayoutLegacyLeaves: a DAG with dag-pb leaves (boxo without raw
// leaves) has pieces that carry their bytes.
func TestFileLayoutLegacyLeaves(t *testing.T) {
	data := patternBytes(30_000, "seq251", 3)
	dag := &oracleDAG{store: newFileStore()}
	params := helpers.DagBuilderParams{Dagserv: dag, Maxlinks: 3, RawLeaves: false, CidBuilder: cid.V1Builder{Codec: cid.DagProtobuf, MhType: multihash.SHA2_256}}
	db, err := params.New(chunker.NewSizeSplitter(bytes.NewReader(data), 4096))
	if err != nil {
		t.Fatal(err)
	}
	nd, err := balanced.Layout(db)
	if err != nil {
		t.Fatal(err)
	}
	root := nd.Cid()
	l, err := content.FileLayout(context.Background(), dag.store, root)
	if err != nil {
		t.Fatal(err)
	}
	for _, p := range l.Pieces {
		if p.Data == nil {
			t.Fatalf("piece %s of a dag-pb-leaf DAG has no data", p.C)
		}
	}
	if got := assemble(t, dag.store, l); !bytes.Equal(got, data) {
		t.Fatal("legacy DAG: the pieces differ from the imported bytes")
	}
}

func TestFileLayoutErrors(t *testing.T) {
	st, res := importInto(t, bytes.Repeat([]byte("x"), 3000), 1000, 2)
	l, err := content.FileLayout(context.Background(), st, res.CID)
	if err != nil {
		t.Fatal(err)
	}
	for _, p := range l.Pieces {
		if p.Data == nil {
			if _, err := p.PieceData(make([]byte, p.Size+1)); !errors.Is(err, content.ErrMalformed) {
				t.Fatalf("a block longer than its parent says: %v, want ErrMalformed", err)
			}
			break
		}
	}
	h, _ := multihash.Sum([]byte("{}"), multihash.SHA2_256, -1)
	cbor := cid.NewCidV1(cid.DagCBOR, h)
	st.blocks[cbor] = []byte{0xa0}
	if _, err := content.FileLayout(context.Background(), st, cbor); !errors.Is(err, content.ErrNotFile) {
		t.Fatalf("layout of a dag-cbor block: %v, want ErrNotFile", err)
	}
	missing := cid.NewCidV1(cid.DagProtobuf, h)
	if _, err := content.FileLayout(context.Background(), st, missing); err == nil {
		t.Fatal("layout of a block the getter does not have succeeded")
	}
}
