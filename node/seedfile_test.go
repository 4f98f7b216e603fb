package node

import (
	"bytes"
	"context"
	"errors"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/shoalnet/shoal/blockstore"
	"github.com/shoalnet/shoal/content"
)

// TestWriteFileIsTheSeed: after b fetches a file into a file of its own
// and places it (rename, FilePlaced), b's store holds only the internal
// nodes and references to the file's leaves; a third node fetches the
// whole file from b alone, served from b's file; an edit of the file
// makes the block under it missing at b, never wrong, and Verify says so.
func TestWriteFileIsTheSeed(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	a := startNode(t, testConfig())
	b := startNode(t, testConfig())
	data := randomBytes(6<<20+777, 41)
	res, err := a.AddFile(ctx, bytes.NewReader(data))
	if err != nil {
		t.Fatal(err)
	}
	if err := b.Connect(ctx, a.Info().Addresses[0]); err != nil {
		t.Fatal(err)
	}
	ls := leaves(t, a, res.CID)
	tr, err := b.FetchWith(ctx, res.CID, FetchOptions{Source: "test", Pin: true})
	if err != nil {
		t.Fatal(err)
	}
	dir := t.TempDir()
	f, err := os.CreateTemp(dir, ".out.*.part")
	if err != nil {
		t.Fatal(err)
	}
	if _, err := b.WriteFile(ctx, tr, f, nil); err != nil {
		t.Fatal(err)
	}
	f.Close()
	<-tr.Done()
	final := filepath.Join(dir, "out.bin")
	if err := os.Rename(f.Name(), final); err != nil {
		t.Fatal(err)
	}
	pf, err := os.Open(final)
	if err != nil {
		t.Fatal(err)
	}
	n, err := b.FilePlaced(ctx, res.CID, pf)
	pf.Close()
	if err != nil || n != len(ls) {
		t.Fatalf("FilePlaced = %d, %v; want the %d leaves", n, err, len(ls))
	}
	// A file the daemon did not write is refused.
	other := filepath.Join(dir, "other.bin")
	os.WriteFile(other, data, 0o644)
	of, _ := os.Open(other)
	if _, err := b.FilePlaced(ctx, res.CID, of); !errors.Is(err, ErrNotWritten) {
		t.Fatalf("FilePlaced of a file the daemon did not write = %v, want ErrNotWritten", err)
	}
	of.Close()

	st := b.store.Stat()
	if st.Refs != len(ls) || st.RefBytes != int64(len(data)) || st.Bytes > 64<<10 {
		t.Fatalf("b's store after the fetch: %+v; want %d references of %d bytes and only the root stored", st, len(ls), len(data))
	}
	if got := readFile(t, ctx, b, res.CID); !bytes.Equal(got, data) {
		t.Fatalf("b reads back %d bytes, want the %d shared", len(got), len(data))
	}

	// c fetches from b alone: a is gone.
	if err := a.Close(); err != nil {
		t.Fatal(err)
	}
	c := startNode(t, testConfig())
	if err := c.Connect(ctx, b.Info().Addresses[0]); err != nil {
		t.Fatal(err)
	}
	if got := readFile(t, ctx, c, res.CID); !bytes.Equal(got, data) {
		t.Fatalf("c fetched %d bytes from b's file, want the %d shared", len(got), len(data))
	}

	// Edit b's file inside the second leaf.
	w, err := os.OpenFile(final, os.O_WRONLY, 0)
	if err != nil {
		t.Fatal(err)
	}
	w.WriteAt([]byte("edited"), 1<<20+100)
	w.Close()
	if _, err := b.store.Get(ctx, ls[1]); !errors.Is(err, blockstore.ErrNotFound) {
		t.Fatalf("Get of the edited leaf = %v, want ErrNotFound", err)
	}
	if _, err := b.store.Get(ctx, ls[2]); err != nil {
		t.Fatalf("Get of an untouched leaf: %v", err)
	}
	rep, err := b.store.Verify(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if inc := rep.Incomplete(); len(inc) != 1 || inc[0].Missing != 1 || inc[0].FirstMissing[0].KeyString() != ls[1].KeyString() {
		t.Fatalf("Verify after the edit: %+v; want the pin missing exactly the edited leaf", rep.Pins)
	}

	// Edit another leaf and fetch into a new file at once: the store
	// still lists the leaf, reads it, finds it changed, and the fetch
	// gets it from c.
	w, err = os.OpenFile(final, os.O_WRONLY, 0)
	if err != nil {
		t.Fatal(err)
	}
	w.WriteAt([]byte("edited"), 3<<20+5)
	w.Close()
	tr2, err := b.FetchWith(ctx, res.CID, FetchOptions{Source: "test", Pin: true})
	if err != nil {
		t.Fatal(err)
	}
	f2, err := os.CreateTemp(dir, ".again.*.part")
	if err != nil {
		t.Fatal(err)
	}
	defer f2.Close()
	if _, err := b.WriteFile(ctx, tr2, f2, nil); err != nil {
		t.Fatalf("fetching again after the file changed: %v", err)
	}
	if got, err := os.ReadFile(f2.Name()); err != nil || !bytes.Equal(got, data) {
		t.Fatalf("the second fetch wrote %d bytes (%v), want the %d shared", len(got), err, len(data))
	}
}

// TestAddFileNoCopy: a file shared without a copy gets the CID AddFile
// gives it, the store holds only its internal nodes, a peer fetches it
// whole from the file, and truncating the file makes its tail missing.
func TestAddFileNoCopy(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	a := startNode(t, testConfig())
	data := randomBytes(5<<20+99, 43)
	p := filepath.Join(t.TempDir(), "shared.bin")
	if err := os.WriteFile(p, data, 0o644); err != nil {
		t.Fatal(err)
	}
	want, err := content.ImportFile(ctx, bytes.NewReader(data), nil, content.ImportOptions{})
	if err != nil {
		t.Fatal(err)
	}
	f, err := os.Open(p)
	if err != nil {
		t.Fatal(err)
	}
	res, err := a.AddFileNoCopy(ctx, f, WithName("shared.bin"))
	f.Close()
	if err != nil {
		t.Fatal(err)
	}
	if !res.CID.Equals(want.CID) {
		t.Fatalf("AddFileNoCopy gave %s, AddFile would give %s", res.CID, want.CID)
	}
	ls := leaves(t, a, res.CID)
	if st := a.store.Stat(); st.Refs != len(ls) || st.Bytes > 64<<10 {
		t.Fatalf("store after sharing without a copy: %+v; want %d references and only the root stored", st, len(ls))
	}
	b := startNode(t, testConfig())
	if err := b.Connect(ctx, a.Info().Addresses[0]); err != nil {
		t.Fatal(err)
	}
	if got := readFile(t, ctx, b, res.CID); !bytes.Equal(got, data) {
		t.Fatalf("b fetched %d bytes from a's file, want the %d shared", len(got), len(data))
	}
	if err := os.Truncate(p, 4<<20); err != nil {
		t.Fatal(err)
	}
	st, err := a.store.PinStatus(ctx, res.CID)
	if err != nil || !st.Complete {
		t.Fatalf("PinStatus before any read: %+v, %v", st, err)
	}
	rep, err := a.Verify(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if len(rep.RefsGone) != 2 || rep.Damaged() || len(rep.Incomplete) != 1 || rep.Incomplete[0].Missing != 2 {
		t.Fatalf("Verify after truncating to 4 MiB: %+v; want the last 2 leaves gone, the pin missing them, no damage", rep)
	}
}
