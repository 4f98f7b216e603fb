package content

import (
	"context"
	"errors"
	"fmt"
	"math/rand/v2"
	"slices"
	"strings"
	"testing"

	dag "github.com/ipfs/boxo/ipld/merkledag"
	"github.com/ipfs/boxo/ipld/unixfs/hamt"
	uio "github.com/ipfs/boxo/ipld/unixfs/io"
	"github.com/ipfs/go-cid"
	ipld "github.com/ipfs/go-ipld-format"
)

// boxoResolve walks path with boxo's directory API (basic and HAMT).
func boxoResolve(t testing.TB, ds ipld.DAGService, root ipld.Node, path string) cid.Cid {
	t.Helper()
	nd := root
	for seg := range strings.SplitSeq(path, "/") {
		dir, err := uio.NewDirectoryFromNode(ds, nd)
		if err != nil {
			t.Fatalf("boxo: %q: %v", path, err)
		}
		if nd, err = dir.Find(context.Background(), seg); err != nil {
			t.Fatalf("boxo: %q: %v", path, err)
		}
	}
	return nd.Cid()
}

// hamtTree is a tree whose root and one subdirectory are HAMTs, with
// directories and a symlink stored inside the shards.
func hamtTree() []dtEntry {
	var entries []dtEntry
	// Names of ~1000 bytes reach the threshold with few entries (cheap
	// under -race), and ~300 entries in 256 slots collide a lot.
	for i := range 300 {
		entries = append(entries, dtEntry{path: fmt.Sprintf("root-file-%04d-%s", i, strings.Repeat("r", 1000)), kind: TFile, size: i % 20, seed: uint64(i)})
	}
	for i := range 320 {
		entries = append(entries, dtEntry{path: fmt.Sprintf("big/%s-%04d", strings.Repeat("b", 1000), i), kind: TFile, size: 3, seed: uint64(10000 + i)})
	}
	return append(entries,
		dtEntry{path: "big/sub/inner", kind: TFile, size: 5, seed: 1},
		dtEntry{path: "big/empty", kind: TDirectory},
		dtEntry{path: "big/link", kind: TSymlink, target: "sub/inner"},
		dtEntry{path: "plain/x", kind: TFile, size: 7, seed: 2},
	)
}

// dtDirs lists the directories of a tree, "" (the root) included.
func dtDirs(entries []dtEntry) []string {
	dirs := []string{""}
	for _, e := range entries {
		for p := e.path; ; {
			p = dtParent(p)
			if p == "" {
				break
			}
			dirs = append(dirs, p)
		}
		if e.kind == TDirectory {
			dirs = append(dirs, e.path)
		}
	}
	slices.Sort(dirs)
	return slices.Compact(dirs)
}

func TestResolveAndListMatchBoxo(t *testing.T) {
	trees := map[string][]dtEntry{"hamt": hamtTree()}
	for seed := range 3 {
		trees[fmt.Sprint("random", seed)] = dtRandomTree(rand.New(rand.NewPCG(uint64(seed), 3)), 4<<10)
	}
	for name, entries := range trees {
		t.Run(name, func(t *testing.T) {
			ctx := context.Background()
			want, ds := dtBoxoTree(t, entries)
			store := newDTStore()
			got := buildWithDirBuilder(t, entries, store)
			if got.CID != want.Cid() {
				t.Fatalf("root %s, boxo %s", got.CID, want.Cid())
			}
			if name == "hamt" {
				for _, p := range []string{"", "big"} {
					c := mustResolve(t, store, got.CID, p)
					if typ := rootType(t, store, c); typ != THAMTShard {
						t.Fatalf("%q is a %s, want a HAMT", p, typ)
					}
					if d := hamtDepth(t, store, c); d < 2 {
						t.Fatalf("%q has %d HAMT levels, want sub-shards", p, d)
					}
				}
			}
			byPath := map[string]dtEntry{}
			for i, e := range entries {
				byPath[e.path] = e
				c, err := Resolve(ctx, store, got.CID, e.path)
				if err != nil {
					t.Fatal(err)
				}
				if len(entries) > 100 && i%16 != 0 {
					continue // boxo is slow under -race: compare a sample
				}
				if wc := boxoResolve(t, ds, want, e.path); c != wc {
					t.Fatalf("Resolve(%q) = %s, boxo %s", e.path, c, wc)
				}
			}
			for _, dir := range dtDirs(entries) {
				dc, err := Resolve(ctx, store, got.CID, "/"+dir+"/")
				if err != nil {
					t.Fatal(err)
				}
				list, err := List(ctx, store, dc)
				if err != nil {
					t.Fatalf("List(%q): %v", dir, err)
				}
				var names []string
				for _, de := range list {
					names = append(names, de.Name)
					p := strings.TrimPrefix(dir+"/"+de.Name, "/")
					if c, _ := Resolve(ctx, store, got.CID, p); c != de.CID {
						t.Fatalf("List(%q) entry %q has CID %s, Resolve gives %s", dir, de.Name, de.CID, c)
					}
					checkEntryType(t, de, byPath[p])
				}
				if wantNames := dtChildNames(entries, dir); !slices.Equal(names, wantNames) {
					t.Fatalf("List(%q) gave %d names, want %d; first difference at %d", dir, len(names), len(wantNames), firstDiff(names, wantNames))
				}
			}
		})
	}
}

func checkEntryType(t testing.TB, de DirEntry, e dtEntry) {
	t.Helper()
	wantType, wantSize := TDirectory, de.Size // directories: Tsize, any
	switch e.kind {
	case TFile:
		wantType, wantSize = TFile, uint64(e.size)
	case TSymlink:
		wantType, wantSize = TSymlink, uint64(len(e.target))
	}
	if de.Type != wantType || de.Size != wantSize {
		t.Fatalf("entry %q: type %s size %d, want %s %d", de.Name, de.Type, de.Size, wantType, wantSize)
	}
}

func TestResolveErrors(t *testing.T) {
	ctx := context.Background()
	for _, tree := range []string{"basic", "hamt"} {
		entries := []dtEntry{
			{path: "dir/file", kind: TFile, size: 10, seed: 1},
			{path: "dir/link", kind: TSymlink, target: "file"},
			{path: "dir/multi", kind: TFile, size: 1<<20 + 5, seed: 2},
		}
		if tree == "hamt" {
			for i := range 300 {
				entries = append(entries, dtEntry{path: fmt.Sprintf("dir/%s%d", strings.Repeat("h", 1000), i), kind: TFile, size: 1, seed: uint64(i)})
			}
		}
		store := newDTStore()
		root := buildWithDirBuilder(t, entries, store).CID
		if tree == "hamt" {
			dc, err := Resolve(ctx, store, root, "dir")
			if err != nil {
				t.Fatal(err)
			}
			if typ := rootType(t, store, dc); typ != THAMTShard {
				t.Fatalf("dir is a %s, want a HAMT", typ)
			}
		}
		for _, tc := range []struct {
			path    string
			err     error
			mention string
		}{
			{"dir/missing", ErrNoSuchPath, `"missing"`},
			{"nope/file", ErrNoSuchPath, `"nope"`},
			{"dir/file/x", ErrNotDirectory, "/dir/file"},
			{"dir/multi/x", ErrNotDirectory, "UnixFS file"},
			{"dir/link/x", ErrNotDirectory, "symlink"},
			{"dir/../dir", ErrInvalidPath, `".."`},
			{"./dir", ErrInvalidPath, `"."`},
		} {
			_, err := Resolve(ctx, store, root, tc.path)
			if !errors.Is(err, tc.err) || !strings.Contains(err.Error(), tc.mention) {
				t.Errorf("%s: Resolve(%q) = %v, want %v mentioning %s", tree, tc.path, err, tc.err, tc.mention)
			}
		}
		for _, p := range []string{"", "/", "//"} {
			if c, err := Resolve(ctx, store, root, p); err != nil || c != root {
				t.Errorf("Resolve(%q) = %s, %v; want the root", p, c, err)
			}
		}
		if a, err := Resolve(ctx, store, root, "/dir//file/"); err != nil {
			t.Error(err)
		} else if b, _ := Resolve(ctx, store, root, "dir/file"); a != b {
			t.Errorf("extra slashes changed the result: %s vs %s", a, b)
		}
	}
}

func TestListErrors(t *testing.T) {
	ctx := context.Background()
	store := newDTStore()
	root := buildWithDirBuilder(t, []dtEntry{
		{path: "f", kind: TFile, size: 10},
		{path: "m", kind: TFile, size: 1<<20 + 1},
		{path: "l", kind: TSymlink, target: "f"},
	}, store).CID
	for _, p := range []string{"f", "m", "l"} {
		c, err := Resolve(ctx, store, root, p)
		if err != nil {
			t.Fatal(err)
		}
		if _, err := List(ctx, store, c); !errors.Is(err, ErrNotDirectory) {
			t.Errorf("List(%s) = %v, want ErrNotDirectory", p, err)
		}
	}
	missing, _ := cid.V1Builder{Codec: cid.DagProtobuf, MhType: 0x12}.Sum([]byte("not stored"))
	if _, err := List(ctx, store, missing); err == nil || !strings.Contains(err.Error(), "not found") {
		t.Errorf("List of a missing block: %v", err)
	}
	// A directory whose child block is missing fails, naming the entry.
	delete(store.blocks, mustResolve(t, store, root, "l"))
	if _, err := List(ctx, store, root); err == nil || !strings.Contains(err.Error(), `"l"`) {
		t.Errorf("List with a missing child: %v", err)
	}
	cctx, cancel := context.WithCancel(ctx)
	cancel()
	if _, err := Resolve(cctx, store, root, "f"); !errors.Is(err, context.Canceled) {
		t.Errorf("Resolve with cancelled context: %v", err)
	}
}

func mustResolve(t testing.TB, g BlockGetter, root cid.Cid, p string) cid.Cid {
	t.Helper()
	c, err := Resolve(context.Background(), g, root, p)
	if err != nil {
		t.Fatal(err)
	}
	return c
}

func firstDiff(a, b []string) int {
	for i := range min(len(a), len(b)) {
		if a[i] != b[i] {
			return i
		}
	}
	return min(len(a), len(b))
}

// HAMTs of other fanouts (Kubo's Import.UnixFSHAMTDirectoryMaxFanout)
// are read too: boxo builds them, Resolve and List must find every entry.
func TestReadBoxoHAMTFanouts(t *testing.T) {
	ctx := context.Background()
	for _, fanout := range []int{8, 16, 64, 1024} {
		t.Run(fmt.Sprint(fanout), func(t *testing.T) {
			dtProfile()
			ds := mdtestMock()
			shard, err := hamt.NewShard(ds, fanout)
			if err != nil {
				t.Fatal(err)
			}
			shard.SetCidBuilder(uio.UnixFS_v1_2025.CidBuilder())
			store := newDTStore()
			want := map[string]cid.Cid{}
			for i := range 300 {
				e := dtEntry{size: i % 9, seed: uint64(i)}
				nd := dtBoxoFile(t, ds, e.content())
				name := fmt.Sprintf("entry %d", i)
				if err := shard.Set(ctx, name, nd); err != nil {
					t.Fatal(err)
				}
				want[name] = nd.Cid()
				store.blocks[nd.Cid()] = nd.RawData()
			}
			root, err := shard.Node()
			if err != nil {
				t.Fatal(err)
			}
			err = dag.Walk(ctx, dag.GetLinksWithDAG(ds), root.Cid(), func(c cid.Cid) bool {
				nd, err := ds.Get(ctx, c)
				if err != nil {
					t.Fatal(err)
				}
				store.blocks[c] = nd.RawData()
				return true
			})
			if err != nil {
				t.Fatal(err)
			}
			list, err := List(ctx, store, root.Cid())
			if err != nil {
				t.Fatal(err)
			}
			if len(list) != len(want) {
				t.Fatalf("listed %d entries, want %d", len(list), len(want))
			}
			for _, e := range list {
				if want[e.Name] != e.CID || e.Type != TFile {
					t.Fatalf("entry %q: %s %s, want file %s", e.Name, e.Type, e.CID, want[e.Name])
				}
			}
			for name, c := range want {
				if got := mustResolve(t, store, root.Cid(), name); got != c {
					t.Fatalf("Resolve(%q) = %s, want %s", name, got, c)
				}
			}
			if _, err := Resolve(ctx, store, root.Cid(), "absent"); !errors.Is(err, ErrNoSuchPath) {
				t.Fatalf("Resolve(absent): %v", err)
			}
		})
	}
}
