package content_test

import (
	"context"
	"errors"
	"fmt"
	"io"
	"sync"
	"sync/atomic"
	"testing"

	chunker "github.com/ipfs/boxo/chunker"
	"github.com/ipfs/boxo/ipld/unixfs/importer/balanced"
	"github.com/ipfs/boxo/ipld/unixfs/importer/helpers"
	uio "github.com/ipfs/boxo/ipld/unixfs/io"
	"github.com/ipfs/go-cid"
	ipld "github.com/ipfs/go-ipld-format"

	"github.com/shoalnet/shoal/content"
)

const mib = 1 << 20

// fileStore is an in-memory BlockPutter and BlockGetter that counts calls.
// A light store keeps the bytes of dag-pb blocks only and answers raw
// blocks with empty data: enough to walk a DAG's CIDs without holding its
// content in memory.
type fileStore struct {
	light  bool
	mu     sync.Mutex
	blocks map[cid.Cid][]byte
	puts   atomic.Int64
	gets   atomic.Int64
}

func newFileStore() *fileStore  { return &fileStore{blocks: map[cid.Cid][]byte{}} }
func newLightStore() *fileStore { return &fileStore{light: true, blocks: map[cid.Cid][]byte{}} }

func (s *fileStore) Put(_ context.Context, c cid.Cid, data []byte) error {
	s.puts.Add(1)
	var keep []byte
	if !s.light || c.Type() != cid.Raw {
		keep = append([]byte{}, data...)
	}
	s.mu.Lock()
	s.blocks[c] = keep
	s.mu.Unlock()
	return nil
}

var errNotFound = errors.New("test store: not found")

func (s *fileStore) Get(_ context.Context, c cid.Cid) ([]byte, error) {
	s.gets.Add(1)
	s.mu.Lock()
	defer s.mu.Unlock()
	b, ok := s.blocks[c]
	if !ok {
		return nil, fmt.Errorf("%w: %s", errNotFound, c)
	}
	return b, nil
}

// oracleDAG is a minimal ipld.DAGService for boxo's importer, light in the
// same way as fileStore, and a content.BlockGetter over what boxo added.
type oracleDAG struct {
	store *fileStore
	adds  atomic.Int64
}

func (d *oracleDAG) Add(ctx context.Context, nd ipld.Node) error {
	d.adds.Add(1)
	return d.store.Put(ctx, nd.Cid(), nd.RawData())
}

func (d *oracleDAG) AddMany(ctx context.Context, nds []ipld.Node) error {
	for _, nd := range nds {
		if err := d.Add(ctx, nd); err != nil {
			return err
		}
	}
	return nil
}

func (d *oracleDAG) Get(context.Context, cid.Cid) (ipld.Node, error) {
	return nil, errors.New("oracleDAG: Get not supported")
}

func (d *oracleDAG) GetMany(context.Context, []cid.Cid) <-chan *ipld.NodeOption {
	ch := make(chan *ipld.NodeOption)
	close(ch)
	return ch
}

func (d *oracleDAG) Remove(context.Context, cid.Cid) error       { return nil }
func (d *oracleDAG) RemoveMany(context.Context, []cid.Cid) error { return nil }

// boxoImport imports r with boxo's balanced importer configured from the
// unixfs-v1-2025 profile, with the given chunk size and width (the
// profile's own are 1 MiB and 1024).
func boxoImport(t testing.TB, r io.Reader, chunkSize int64, maxLinks int, light bool) (root cid.Cid, tsize uint64, dag *oracleDAG) {
	t.Helper()
	prof := uio.UnixFS_v1_2025
	// ApplyGlobals writes process-wide variables; this runs in sequential
	// tests only, so no other test reads them meanwhile.
	prof.ApplyGlobals()
	dag = &oracleDAG{store: newFileStore()}
	dag.store.light = light
	params := helpers.DagBuilderParams{
		Dagserv:    dag,
		Maxlinks:   maxLinks,
		RawLeaves:  prof.RawLeaves,
		CidBuilder: prof.CidBuilder(),
	}
	db, err := params.New(chunker.NewSizeSplitter(r, chunkSize))
	if err != nil {
		t.Fatal(err)
	}
	nd, err := balanced.Layout(db)
	if err != nil {
		t.Fatal(err)
	}
	tsize, err = nd.Size()
	if err != nil {
		t.Fatal(err)
	}
	return nd.Cid(), tsize, dag
}

// walkCIDs lists the CIDs of the DAG under root in Walk order.
func walkCIDs(t testing.TB, g content.BlockGetter, root cid.Cid) []cid.Cid {
	t.Helper()
	var out []cid.Cid
	err := content.Walk(context.Background(), g, root, func(c cid.Cid, _ []byte) error {
		out = append(out, c)
		return nil
	})
	if err != nil {
		t.Fatalf("walk %s: %v", root, err)
	}
	return out
}

// patternReader generates test content without holding it: "seq251" is
// byte (offset+seed) mod 251 at each offset (no two adjacent 1 MiB chunks
// alike), "zero" is all zeros (every full chunk alike).
type patternReader struct {
	size, off int64
	seed      int64
	zero      bool
}

var seqTable = func() []byte {
	b := make([]byte, 251+64<<10)
	for i := range b {
		b[i] = byte(i % 251)
	}
	return b
}()

var zeroTable = make([]byte, 64<<10)

func newPattern(size int64, pattern string, seed int64) *patternReader {
	switch pattern {
	case "seq251":
		return &patternReader{size: size, seed: seed}
	case "zero":
		return &patternReader{size: size, zero: true}
	}
	panic("unknown pattern " + pattern)
}

func (p *patternReader) Read(b []byte) (int, error) {
	if p.off >= p.size {
		return 0, io.EOF
	}
	n := int64(len(b))
	n = min(n, p.size-p.off, 64<<10)
	if p.zero {
		copy(b, zeroTable[:n])
	} else {
		start := (p.off + p.seed) % 251
		copy(b, seqTable[start:start+n])
	}
	p.off += n
	return int(n), nil
}

func patternBytes(size int64, pattern string, seed int64) []byte {
	b, err := io.ReadAll(newPattern(size, pattern, seed))
	if err != nil {
		panic(err)
	}
	return b
}
