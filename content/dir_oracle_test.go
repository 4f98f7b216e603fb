package content

// boxo (Kubo's UnixFS library) as the oracle for directory imports: the
// same tree is built the way Kubo's adder builds it (an MFS root with
// Mkdir and PutNode, balanced raw-leaf files, symlink nodes) under the
// unixfs-v1-2025 profile, and root CIDs and block bytes must match.

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"math/rand/v2"
	"os"
	"path/filepath"
	"slices"
	"sort"
	"strings"
	"sync"
	"testing"

	chunk "github.com/ipfs/boxo/chunker"
	dag "github.com/ipfs/boxo/ipld/merkledag"
	mdtest "github.com/ipfs/boxo/ipld/merkledag/test"
	"github.com/ipfs/boxo/ipld/unixfs"
	"github.com/ipfs/boxo/ipld/unixfs/importer/balanced"
	ihelper "github.com/ipfs/boxo/ipld/unixfs/importer/helpers"
	uio "github.com/ipfs/boxo/ipld/unixfs/io"
	"github.com/ipfs/boxo/mfs"
	"github.com/ipfs/go-cid"
	ipld "github.com/ipfs/go-ipld-format"
)

var dtProfileOnce sync.Once

// dtProfile applies the unixfs-v1-2025 profile to boxo's globals once.
func dtProfile() {
	dtProfileOnce.Do(uio.UnixFS_v1_2025.ApplyGlobals)
}

// dtEntry is one entry of a test tree: a file (content generated from
// seed and size), a symlink or a directory.
type dtEntry struct {
	path   string // "/"-separated, relative
	kind   FSType // TFile, TSymlink, TDirectory
	size   int
	seed   uint64
	target string
	data   []byte // when set, the file content (size and seed unused)
}

func (e dtEntry) content() []byte {
	if e.data != nil {
		return e.data
	}
	b := make([]byte, e.size)
	r := rand.New(rand.NewPCG(e.seed, 7))
	for i := 0; i+8 <= len(b); i += 8 {
		v := r.Uint64()
		for j := range 8 {
			b[i+j] = byte(v >> (8 * j))
		}
	}
	for i := len(b) &^ 7; i < len(b); i++ {
		b[i] = byte(r.Uint32())
	}
	return b
}

// errDTMissing is returned by dtStore.Get for an absent block.
var errDTMissing = errors.New("test store: block not found")

// dtStore is a BlockPutter/BlockGetter over a map that keeps copies.
type dtStore struct {
	mu     sync.Mutex
	blocks map[cid.Cid][]byte
	gets   int
}

func newDTStore() *dtStore { return &dtStore{blocks: map[cid.Cid][]byte{}} }

func (m *dtStore) Put(_ context.Context, c cid.Cid, data []byte) error {
	m.mu.Lock()
	defer m.mu.Unlock()
	m.blocks[c] = bytes.Clone(data)
	return nil
}

func (m *dtStore) Get(_ context.Context, c cid.Cid) ([]byte, error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	m.gets++
	b, ok := m.blocks[c]
	if !ok {
		return nil, fmt.Errorf("%w: %s", errDTMissing, c)
	}
	return b, nil
}

// dtBoxoTree builds the tree the way Kubo's adder does and returns the
// root node and the DAG service holding every block.
func dtBoxoTree(t testing.TB, entries []dtEntry) (ipld.Node, ipld.DAGService) {
	t.Helper()
	dtProfile()
	ctx := context.Background()
	ds := mdtest.Mock()
	cb := uio.UnixFS_v1_2025.CidBuilder()
	root, err := mfs.NewEmptyRoot(ctx, ds, nil, nil, mfs.WithCidBuilder(cb))
	if err != nil {
		t.Fatal(err)
	}
	for _, e := range entries {
		var nd ipld.Node
		switch e.kind {
		case TDirectory:
			if err := mfs.Mkdir(root, "/"+e.path, mfs.MkdirOpts{Mkparents: true}, mfs.WithCidBuilder(cb)); err != nil {
				t.Fatalf("boxo mkdir %q: %v", e.path, err)
			}
			continue
		case TSymlink:
			nd = dtBoxoSymlink(t, ds, e.target)
		case TFile:
			nd = dtBoxoFile(t, ds, e.content())
		}
		if dir := dtParent(e.path); dir != "" {
			if err := mfs.Mkdir(root, "/"+dir, mfs.MkdirOpts{Mkparents: true}, mfs.WithCidBuilder(cb)); err != nil {
				t.Fatalf("boxo mkdir %q: %v", dir, err)
			}
		}
		if err := mfs.PutNode(root, "/"+e.path, nd); err != nil {
			t.Fatalf("boxo put %q: %v", e.path, err)
		}
	}
	if err := root.GetDirectory().Flush(); err != nil {
		t.Fatal(err)
	}
	nd, err := root.GetDirectory().GetNode()
	if err != nil {
		t.Fatal(err)
	}
	if err := root.Close(); err != nil {
		t.Fatal(err)
	}
	return nd, ds
}

func dtParent(p string) string {
	if i := strings.LastIndexByte(p, '/'); i >= 0 {
		return p[:i]
	}
	return ""
}

func dtBoxoFile(t testing.TB, ds ipld.DAGService, data []byte) ipld.Node {
	t.Helper()
	params := ihelper.DagBuilderParams{
		Dagserv:    ds,
		RawLeaves:  true,
		Maxlinks:   ihelper.DefaultLinksPerBlock,
		CidBuilder: uio.UnixFS_v1_2025.CidBuilder(),
	}
	db, err := params.New(chunk.NewSizeSplitter(bytes.NewReader(data), chunk.DefaultBlockSize))
	if err != nil {
		t.Fatal(err)
	}
	nd, err := balanced.Layout(db)
	if err != nil {
		t.Fatal(err)
	}
	return nd
}

func dtBoxoSymlink(t testing.TB, ds ipld.DAGService, target string) ipld.Node {
	t.Helper()
	sdata, err := unixfs.SymlinkData(target)
	if err != nil {
		t.Fatal(err)
	}
	nd := dag.NodeWithData(sdata)
	if err := nd.SetCidBuilder(uio.UnixFS_v1_2025.CidBuilder()); err != nil {
		t.Fatal(err)
	}
	if err := ds.Add(context.Background(), nd); err != nil {
		t.Fatal(err)
	}
	return nd
}

// dtRequireSameDAG checks that store holds, byte for byte, every block of
// boxo's DAG under root.
func dtRequireSameDAG(t testing.TB, root ipld.Node, ds ipld.DAGService, store *dtStore) {
	t.Helper()
	ctx := context.Background()
	seen := cid.NewSet()
	err := dag.Walk(ctx, dag.GetLinksWithDAG(ds), root.Cid(), func(c cid.Cid) bool {
		if !seen.Visit(c) {
			return false
		}
		nd, err := ds.Get(ctx, c)
		if err != nil {
			t.Fatalf("boxo get %s: %v", c, err)
		}
		got, ok := store.blocks[c]
		if !ok {
			t.Fatalf("block %s of boxo's DAG was not put", c)
		}
		if !bytes.Equal(got, nd.RawData()) {
			t.Fatalf("block %s differs from boxo's", c)
		}
		return true
	})
	if err != nil {
		t.Fatal(err)
	}
}

// dtWriteTree materializes entries under dir.
func dtWriteTree(t testing.TB, dir string, entries []dtEntry) {
	t.Helper()
	for _, e := range entries {
		p := filepath.Join(dir, filepath.FromSlash(e.path))
		if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
			t.Fatal(err)
		}
		var err error
		switch e.kind {
		case TDirectory:
			err = os.MkdirAll(p, 0o755)
		case TSymlink:
			err = os.Symlink(e.target, p)
		case TFile:
			err = os.WriteFile(p, e.content(), 0o644)
		}
		if err != nil {
			t.Fatal(err)
		}
	}
}

// dtRandomTree returns a random tree: nested and empty directories, hidden
// and non-ASCII names, files of 0..maxFile bytes (mostly small), symlinks.
func dtRandomTree(r *rand.Rand, maxFile int) []dtEntry {
	var out []dtEntry
	var gen func(dir string, depth int)
	names := []string{"a", "b.txt", ".hidden", "Ünï cødé", "z z", "README", "data.bin", "x-1", "x_2", "~tmp", "A", "0"}
	gen = func(dir string, depth int) {
		n := r.IntN(9)
		if depth == 0 {
			n += 4
		}
		used := map[string]bool{}
		for range n {
			name := names[r.IntN(len(names))]
			if r.IntN(3) == 0 {
				name = fmt.Sprintf("%s%d", name, r.IntN(1000))
			}
			if used[name] {
				continue
			}
			used[name] = true
			p := name
			if dir != "" {
				p = dir + "/" + name
			}
			switch k := r.IntN(10); {
			case k < 2 && depth < 3:
				out = append(out, dtEntry{path: p, kind: TDirectory})
				gen(p, depth+1)
			case k < 3:
				out = append(out, dtEntry{path: p, kind: TSymlink, target: []string{"../x", "/etc/passwd", "b.txt", "dangling/", "ünï"}[r.IntN(5)]})
			default:
				size := r.IntN(4096)
				switch r.IntN(12) {
				case 0:
					size = 0
				case 1:
					size = r.IntN(maxFile + 1)
				}
				out = append(out, dtEntry{path: p, kind: TFile, size: size, seed: r.Uint64()})
			}
		}
	}
	gen("", 0)
	return out
}

// dtChildNames lists the names directly under dir (sorted), including
// directories that exist only as parents of deeper entries.
func dtChildNames(entries []dtEntry, dir string) []string {
	var out []string
	for _, e := range entries {
		rest := e.path
		if dir != "" {
			var ok bool
			if rest, ok = strings.CutPrefix(e.path, dir+"/"); !ok {
				continue
			}
		}
		name, _, _ := strings.Cut(rest, "/")
		out = append(out, name)
	}
	sort.Strings(out)
	return slices.Compact(out)
}

func mdtestMock() ipld.DAGService { return mdtest.Mock() }
