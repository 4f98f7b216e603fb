package content

import (
	"bytes"
	"context"
	"errors"
	"strings"
	"testing"

	"github.com/ipfs/go-cid"
)

// kindTree imports a 2 MiB file (a dag-pb root over raw leaves), a small
// file (one raw block), a directory of two small files and a symlink.
func kindTree(t *testing.T) (s *dtStore, big, small, dir, link cid.Cid) {
	t.Helper()
	ctx := context.Background()
	s = newDTStore()
	imp := func(b []byte) cid.Cid {
		res, err := ImportFile(ctx, bytes.NewReader(b), s, ImportOptions{})
		if err != nil {
			t.Fatal(err)
		}
		return res.CID
	}
	big = imp(bytes.Repeat([]byte("x"), 2<<20+5))
	small = imp([]byte("abc"))
	b := NewDirBuilder(s, ImportOptions{})
	for name, data := range map[string]string{"a": "abc", "b": "hello"} {
		if _, err := b.AddFile(ctx, name, strings.NewReader(data)); err != nil {
			t.Fatal(err)
		}
	}
	res, err := b.Finish(ctx)
	if err != nil {
		t.Fatal(err)
	}
	dir = res.CID
	lb := symlinkBlock("../target")
	link = dagPBCID(lb)
	if err := s.Put(ctx, link, lb); err != nil {
		t.Fatal(err)
	}
	return s, big, small, dir, link
}

func TestKindOf(t *testing.T) {
	ctx := context.Background()
	s, big, small, dir, link := kindTree(t)
	shard := (&PBNode{Data: (&FSData{Type: THAMTShard, Data: []byte{1}, HashType: 0x22, HasHashType: true, Fanout: 256, HasFanout: true}).Marshal()}).Marshal()
	shardCID := dagPBCID(shard)
	garbage := []byte{0xff, 0xff, 0xff}
	garbageCID := dagPBCID(garbage)
	for _, b := range [][]byte{shard, garbage} {
		if err := s.Put(ctx, dagPBCID(b), b); err != nil {
			t.Fatal(err)
		}
	}
	for _, tc := range []struct {
		name string
		c    cid.Cid
		want FSType
	}{
		{"file over raw leaves", big, TFile},
		{"raw block", small, TFile},
		{"directory", dir, TDirectory},
		{"HAMT shard", shardCID, TDirectory},
		{"symlink", link, TSymlink},
	} {
		got, err := KindOf(ctx, s, tc.c)
		if err != nil || got != tc.want {
			t.Errorf("%s: KindOf = %v, %v; want %v", tc.name, got, err, tc.want)
		}
	}

	_, err := KindOf(ctx, s, garbageCID)
	if !errors.Is(err, ErrMalformed) || !strings.HasPrefix(err.Error(), garbageCID.String()+": ") {
		t.Errorf("KindOf(garbage) = %v; want ErrMalformed naming %s", err, garbageCID)
	}
	missing := dagPBCID([]byte("not stored"))
	if _, err := KindOf(ctx, s, missing); !errors.Is(err, errDTMissing) {
		t.Errorf("KindOf(missing) = %v; want the getter's error", err)
	}
	// A raw CID is a file without reading anything.
	empty := newDTStore()
	if k, err := KindOf(ctx, empty, small); err != nil || k != TFile || empty.gets != 0 {
		t.Errorf("KindOf(raw) on an empty store = %v, %v after %d gets; want file, no get", k, err, empty.gets)
	}
}

func TestDAGSize(t *testing.T) {
	ctx := context.Background()
	s, big, small, dir, _ := kindTree(t)
	for _, tc := range []struct {
		name string
		c    cid.Cid
		want uint64
	}{
		{"file over raw leaves", big, 2<<20 + 5},
		{"raw block", small, 3},
		{"directory: its links' sizes", dir, 3 + 5},
	} {
		got, err := DAGSize(ctx, s, tc.c)
		if err != nil || got != tc.want {
			t.Errorf("%s: DAGSize = %d, %v; want %d", tc.name, got, err, tc.want)
		}
	}
	missing := dagPBCID([]byte("not stored"))
	if n, err := DAGSize(ctx, s, missing); !errors.Is(err, errDTMissing) || n != 0 {
		t.Errorf("DAGSize(missing) = %d, %v; want 0 and the getter's error", n, err)
	}
}

func TestSymlinkTarget(t *testing.T) {
	ctx := context.Background()
	s, big, _, _, link := kindTree(t)
	if got, err := SymlinkTarget(ctx, s, link); err != nil || got != "../target" {
		t.Errorf("SymlinkTarget = %q, %v; want ../target", got, err)
	}
	_, err := SymlinkTarget(ctx, s, big)
	if !errors.Is(err, ErrMalformed) || !strings.Contains(err.Error(), big.String()+" is a file, not a symlink") {
		t.Errorf("SymlinkTarget(file) = %v; want ErrMalformed saying it is a file", err)
	}
}
