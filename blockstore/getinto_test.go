package blockstore

import (
	"bytes"
	"context"
	"os"
	"testing"

	"github.com/ipfs/go-cid"
)

// getIntoer is GetInto, which Disk and Memory have beside Store.
type getIntoer interface {
	GetInto(ctx context.Context, c cid.Cid, dst []byte) ([]byte, error)
}

// inArray reports whether data starts at dst's first element.
func inArray(data, dst []byte) bool {
	return len(data) > 0 && cap(dst) > 0 && &data[0] == &dst[:1][0]
}

// testGetInto: GetInto answers what Get answers — stored blocks, the
// empty block, references, identity CIDs, missing blocks — reading into
// the caller's buffer where the store reads at all (Disk's blocks and
// every reference; Memory hands out its own copy of a block) and into a
// buffer of its own when the caller's is too small. One buffer reused
// for block after block holds each one right.
func testGetInto(t *testing.T, im impl) {
	ctx := context.Background()
	s := im.open(t, testConfig(t))
	gi := s.(getIntoer)
	blocks := []block{sizedBlock("gi-a", 100), sizedBlock("gi-b", 64<<10), rawBlock(nil)}
	put(t, s, blocks...)
	leaves := []block{sizedBlock("gi-r0", 3000), sizedBlock("gi-r1", 5000)}
	_, refs := seedFile(t, t.TempDir(), leaves)
	if err := s.PutRefs(ctx, refs); err != nil {
		t.Fatal(err)
	}
	dst := make([]byte, 0, 64<<10)
	for round := range 2 {
		for _, b := range append(append([]block{}, blocks...), leaves...) {
			full := dst[:cap(dst)]
			for i := range full {
				full[i] = 0xaa // what a previous block left
			}
			got, err := gi.GetInto(ctx, b.c, dst)
			if err != nil {
				t.Fatalf("GetInto %s: %v", b.c, err)
			}
			if !bytes.Equal(got, b.data) {
				t.Fatalf("round %d: GetInto %s: wrong bytes (%d, want %d)", round, b.c, len(got), len(b.data))
			}
			_, isRef := map[string]bool{string(leaves[0].c.Hash()): true, string(leaves[1].c.Hash()): true}[string(b.c.Hash())]
			wantIn := len(b.data) > 0 && (isRef || im.name == "Disk")
			if inArray(got, dst) != wantIn {
				t.Fatalf("GetInto %s (%d bytes, reference %v): in the caller's buffer %v, want %v", b.c, len(b.data), isRef, !wantIn, wantIn)
			}
		}
	}
	// A buffer too small: the bytes come in one of the store's own.
	small := make([]byte, 0, 10)
	for _, b := range []block{blocks[1], leaves[1]} {
		got, err := gi.GetInto(ctx, b.c, small)
		if err != nil || !bytes.Equal(got, b.data) || inArray(got, small) {
			t.Fatalf("GetInto %s into 10 bytes: %d bytes, %v, in the small buffer %v", b.c, len(got), err, inArray(got, small))
		}
	}
	id, err := cid.Prefix{Version: 1, Codec: cid.Raw, MhType: 0x00, MhLength: -1}.Sum([]byte("inline"))
	if err != nil {
		t.Fatal(err)
	}
	if got, err := gi.GetInto(ctx, id, dst); err != nil || string(got) != "inline" {
		t.Fatalf("GetInto of an identity CID = %q, %v", got, err)
	}
	missing := sizedBlock("gi-missing", 10)
	_, err = gi.GetInto(ctx, missing.c, dst)
	wantErr(t, err, ErrNotFound)
}

// testGetIntoVerifies: GetInto checks what it reads as Get does — a
// corrupt block under VerifyOnRead is removed (ErrCorrupt), a reference
// whose file changed is missing (ErrNotFound), and hashing happens once
// per read, only where Get hashes.
func testGetIntoVerifies(t *testing.T, im impl) {
	ctx := context.Background()
	for _, verifyOnRead := range []bool{false, true} {
		cfg := testConfig(t)
		cfg.VerifyOnRead = verifyOnRead
		s := im.open(t, cfg)
		gi := s.(getIntoer)
		a := sizedBlock("giv-a", 5000)
		put(t, s, a)
		dst := make([]byte, 0, 8000)
		before := blockHashes.Load()
		if _, err := gi.GetInto(ctx, a.c, dst); err != nil {
			t.Fatal(err)
		}
		want := uint64(0)
		if verifyOnRead {
			want = 1
		}
		if got := blockHashes.Load() - before; got != want {
			t.Fatalf("GetInto (VerifyOnRead %v) hashed %d times, want %d", verifyOnRead, got, want)
		}
		leaves := []block{sizedBlock("giv-r", 4000)}
		p, refs := seedFile(t, t.TempDir(), leaves)
		if err := s.PutRefs(ctx, refs); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(p, bytes.Repeat([]byte{1}, 4000), 0o644); err != nil {
			t.Fatal(err)
		}
		_, err := gi.GetInto(ctx, leaves[0].c, dst)
		wantErr(t, err, ErrNotFound)
		if !verifyOnRead {
			continue
		}
		im.corrupt(t, s, a.c)
		_, err = gi.GetInto(ctx, a.c, dst)
		wantErr(t, err, ErrCorrupt)
		if has(t, s, a) {
			t.Fatal("corrupt block still present after GetInto")
		}
	}
}

// TestDiskGetIntoOtherLength: a block file cut short or grown behind the
// store's back is answered by GetInto as by Get — the file's bytes
// without VerifyOnRead, ErrCorrupt with it — never the indexed length's
// worth of the caller's buffer.
func TestDiskGetIntoOtherLength(t *testing.T) {
	ctx := context.Background()
	for _, verifyOnRead := range []bool{false, true} {
		for _, how := range []string{"short", "long"} {
			cfg := testConfig(t)
			cfg.Dir = t.TempDir()
			cfg.VerifyOnRead = verifyOnRead
			d := openDisk(t, cfg)
			a := sizedBlock("len-"+how, 3000)
			put(t, d, a)
			p := d.disk.path(string(a.c.Hash()))
			changed := append([]byte(nil), a.data[:2000]...)
			if how == "long" {
				changed = append(append([]byte(nil), a.data...), "more"...)
			}
			if err := os.WriteFile(p, changed, 0o600); err != nil {
				t.Fatal(err)
			}
			dst := bytes.Repeat([]byte{0xaa}, 8000)[:0]
			got, err := d.GetInto(ctx, a.c, dst)
			if verifyOnRead {
				wantErr(t, err, ErrCorrupt)
				continue
			}
			if err != nil || !bytes.Equal(got, changed) {
				t.Fatalf("%s file: GetInto = %d bytes, %v; want the file's %d", how, len(got), err, len(changed))
			}
		}
	}
}
