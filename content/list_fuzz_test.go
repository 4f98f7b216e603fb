package content

import (
	"context"
	"errors"
	"fmt"
	"testing"

	"github.com/ipfs/go-cid"
)

// fuzzDirs is a small valid tree for the fuzzers: a HAMT root (built
// directly, below the size threshold) with at least one sub-shard, holding
// files, a symlink and a basic subdirectory.
type fuzzDirs struct {
	blocks map[cid.Cid][]byte
	root   cid.Cid
	sub    cid.Cid // a sub-shard of root
	basic  cid.Cid // a basic directory entry of root
	names  []string
}

func newFuzzDirs(t testing.TB) *fuzzDirs {
	t.Helper()
	ctx := context.Background()
	store := newDTStore()
	sink := &blockSink{dst: store}
	fd := &fuzzDirs{}
	c, tsize, err := encodeDir(ctx, []dirLink{{name: "x", c: dtSmallFile(t, dtEntry{size: 3, seed: 9}).CID, tsize: 3}}, sink)
	if err != nil {
		t.Fatal(err)
	}
	fd.basic = c
	store.blocks[dtSmallFile(t, dtEntry{size: 3, seed: 9}).CID] = dtEntry{size: 3, seed: 9}.content()
	links := []dirLink{{name: "sub", c: c, tsize: tsize}}
	sl := symlinkBlock("target")
	slc, _ := sink.put(ctx, sl)
	links = append(links, dirLink{name: "link", c: slc, tsize: uint64(len(sl))})
	for i := 0; len(links) < 40; i++ {
		e := dtEntry{size: i % 7, seed: uint64(i)}
		res := dtSmallFile(t, e)
		store.blocks[res.CID] = e.content()
		links = append(links, dirLink{name: fmt.Sprintf("e%d", i), c: res.CID, tsize: res.Tsize})
	}
	for _, l := range links {
		fd.names = append(fd.names, l.name)
	}
	if fd.root, _, err = buildHAMT(ctx, links, sink); err != nil {
		t.Fatal(err)
	}
	d, err := loadDir(ctx, store, fd.root)
	if err != nil {
		t.Fatal(err)
	}
	for i := range d.shard.links {
		if d.shard.isShard(i) {
			fd.sub = d.shard.links[i].Hash
		}
	}
	if !fd.sub.Defined() {
		t.Fatal("fuzz tree has no sub-shard; change the names")
	}
	fd.blocks = store.blocks
	return fd
}

// with returns a getter serving the tree with root, sub-shard and basic
// directory blocks replaced (nil: keep). The getter does not check
// hashes, standing in for any source of bad bytes.
func (fd *fuzzDirs) with(root, sub, basic []byte) *dtStore {
	s := newDTStore()
	for c, b := range fd.blocks {
		s.blocks[c] = b
	}
	for c, b := range map[cid.Cid][]byte{fd.root: root, fd.sub: sub, fd.basic: basic} {
		if b != nil {
			s.blocks[c] = b
		}
	}
	return s
}

func TestFuzzDirsValid(t *testing.T) {
	fd := newFuzzDirs(t)
	ctx := context.Background()
	g := fd.with(nil, nil, nil)
	list, err := List(ctx, g, fd.root)
	if err != nil {
		t.Fatal(err)
	}
	if len(list) != len(fd.names) {
		t.Fatalf("listed %d entries, want %d", len(list), len(fd.names))
	}
	for _, n := range fd.names {
		if _, err := Resolve(ctx, g, fd.root, n); err != nil {
			t.Fatal(err)
		}
	}
	if _, err := Resolve(ctx, g, fd.root, "sub/x"); err != nil {
		t.Fatal(err)
	}
}

// A shard that names itself as its sub-shard must fail, not loop.
func TestHAMTSelfReference(t *testing.T) {
	fd := newFuzzDirs(t)
	ctx := context.Background()
	n, err := DecodePBNode(fd.blocks[fd.root])
	if err != nil {
		t.Fatal(err)
	}
	for i := range n.Links {
		if len(n.Links[i].Name) == 2 {
			n.Links[i].Hash = fd.root
		}
	}
	g := fd.with(n.Marshal(), nil, nil)
	if _, err := List(ctx, g, fd.root); !errors.Is(err, ErrMalformed) {
		t.Errorf("List of a self-referencing HAMT: %v", err)
	}
	for _, name := range fd.names {
		if _, err := Resolve(ctx, g, fd.root, name); err != nil && !errors.Is(err, ErrMalformed) && !errors.Is(err, ErrNoSuchPath) {
			t.Errorf("Resolve(%q) in a self-referencing HAMT: %v", name, err)
		}
	}
}

func FuzzListMalformedDirs(f *testing.F) {
	fd := newFuzzDirs(f)
	f.Add(fd.blocks[fd.root], fd.blocks[fd.sub], fd.blocks[fd.basic])
	f.Add(fd.blocks[fd.sub], fd.blocks[fd.root], []byte{})
	f.Add([]byte{0x0a, 0x02, 0x08, 0x05}, []byte{}, fd.blocks[fd.sub])
	f.Add(symlinkBlock("x"), dirDataBytes, []byte{0x12, 0x00})
	f.Fuzz(func(t *testing.T, root, sub, basic []byte) {
		ctx := context.Background()
		g := fd.with(root, sub, basic)
		list, err := List(ctx, g, fd.root)
		if err == nil {
			seen := map[string]bool{}
			for _, e := range list {
				if validName(e.Name) != nil || seen[e.Name] {
					t.Fatalf("List returned a bad or repeated name %q", e.Name)
				}
				seen[e.Name] = true
			}
		}
		for _, p := range append([]string{"sub/x", "link/x", "e1/x"}, fd.names...) {
			if _, err := Resolve(ctx, g, fd.root, p); err != nil &&
				!errors.Is(err, ErrMalformed) && !errors.Is(err, ErrNoSuchPath) && !errors.Is(err, ErrNotDirectory) && !errors.Is(err, errDTMissing) {
				t.Fatalf("Resolve(%q): unexpected error %v", p, err)
			}
		}
		if _, err := List(ctx, g, fd.basic); err != nil && !errors.Is(err, ErrMalformed) && !errors.Is(err, ErrNotDirectory) && !errors.Is(err, errDTMissing) {
			t.Fatalf("List(basic): unexpected error %v", err)
		}
	})
}
