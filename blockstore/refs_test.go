package blockstore

import (
	"bytes"
	"context"
	"math/rand/v2"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
)

// seedFile writes the leaves of d one after another into a file in dir
// and returns its path and the references to them.
func seedFile(t *testing.T, dir string, leaves []block) (string, []Ref) {
	t.Helper()
	p := filepath.Join(dir, "seed.bin")
	var buf bytes.Buffer
	var refs []Ref
	for _, l := range leaves {
		refs = append(refs, Ref{C: l.c, Offset: int64(buf.Len()), Size: int64(len(l.data)), Path: p})
		buf.Write(l.data)
	}
	if err := os.WriteFile(p, buf.Bytes(), 0o644); err != nil {
		t.Fatal(err)
	}
	return p, refs
}

// testRefServed: a reference is served like a block (Has, GetSize, Get,
// AllKeys) and takes no room in the store.
func testRefServed(t *testing.T, im impl) {
	ctx := context.Background()
	s := im.open(t, testConfig(t))
	leaves := []block{sizedBlock("r0", 3000), sizedBlock("r1", 5000)}
	_, refs := seedFile(t, t.TempDir(), leaves)
	if err := s.PutRefs(ctx, refs); err != nil {
		t.Fatal(err)
	}
	for _, l := range leaves {
		mustGet(t, s, l)
		if n, err := s.GetSize(ctx, l.c); err != nil || n != len(l.data) {
			t.Fatalf("GetSize(%s) = %d, %v; want %d", l.c, n, err, len(l.data))
		}
	}
	if st := s.Stat(); st.Blocks != 2 || st.Refs != 2 || st.RefBytes != 8000 || st.Bytes != 0 {
		t.Fatalf("Stat = %+v, want 2 references of 8000 bytes and nothing stored", st)
	}
	if k := keys(t, s); len(k) != 2 {
		t.Fatalf("AllKeys lists %d keys, want 2", len(k))
	}
	// A reference to a non-raw block is refused: only leaves are files.
	n := nodeBlock(leaves[0].c)
	if err := s.PutRefs(ctx, []Ref{{C: n.c, Size: 10, Path: refs[0].Path}}); err == nil {
		t.Fatal("PutRefs accepted a non-raw CID")
	}
}

// testRefChangedFile: a file that was edited, truncated or moved makes
// its blocks missing, never wrong.
func testRefChangedFile(t *testing.T, im impl) {
	ctx := context.Background()
	for _, how := range []string{"edited", "truncated", "moved"} {
		t.Run(how, func(t *testing.T) {
			s := im.open(t, testConfig(t))
			leaves := []block{sizedBlock("c0", 4000), sizedBlock("c1", 4000), sizedBlock("c2", 4000)}
			p, refs := seedFile(t, t.TempDir(), leaves)
			if err := s.PutRefs(ctx, refs); err != nil {
				t.Fatal(err)
			}
			switch how {
			case "edited":
				f, err := os.OpenFile(p, os.O_WRONLY, 0)
				if err != nil {
					t.Fatal(err)
				}
				f.WriteAt([]byte("X"), 4000+17)
				f.Close()
			case "truncated":
				if err := os.Truncate(p, 8000+100); err != nil {
					t.Fatal(err)
				}
			case "moved":
				if err := os.Rename(p, p+".moved"); err != nil {
					t.Fatal(err)
				}
			}
			gone := map[string][]int{"edited": {1}, "truncated": {2}, "moved": {0, 1, 2}}[how]
			for i, l := range leaves {
				if !slices.Contains(gone, i) {
					mustGet(t, s, l)
					continue
				}
				data, err := s.Get(ctx, l.c)
				wantErr(t, err, ErrNotFound)
				if data != nil {
					t.Fatalf("Get of a changed reference returned %d bytes", len(data))
				}
				if has(t, s, l) {
					t.Fatalf("%s is still listed after its file was %s", l.c, how)
				}
			}
			// Fetched again, the block is stored as an ordinary block.
			put(t, s, leaves[1])
			mustGet(t, s, leaves[1])
		})
	}
}

// testRefPinsGCVerify: pins reach references, GC drops the unpinned
// ones, Verify reports the ones whose file changed.
func testRefPinsGCVerify(t *testing.T, im impl) {
	ctx := context.Background()
	s := im.open(t, testConfig(t))
	pinned, loose := newDAG("pinned", 2000), newDAG("loose", 2000)
	dir := t.TempDir()
	_, prefs := seedFile(t, dir, pinned.leaves)
	lp := filepath.Join(dir, "loose.bin")
	var lrefs []Ref
	var buf bytes.Buffer
	for _, l := range loose.leaves {
		lrefs = append(lrefs, Ref{C: l.c, Offset: int64(buf.Len()), Size: int64(len(l.data)), Path: lp})
		buf.Write(l.data)
	}
	if err := os.WriteFile(lp, buf.Bytes(), 0o644); err != nil {
		t.Fatal(err)
	}
	put(t, s, pinned.root, pinned.mid, loose.root, loose.mid)
	if err := s.Pin(ctx, pinned.root.c); err != nil {
		t.Fatal(err)
	}
	if err := s.PutRefs(ctx, append(prefs, lrefs...)); err != nil {
		t.Fatal(err)
	}
	st, err := s.PinStatus(ctx, pinned.root.c)
	if err != nil || !st.Complete || st.Blocks != 5 {
		t.Fatalf("PinStatus = %+v, %v; want complete with 5 blocks (3 references)", st, err)
	}
	for _, l := range pinned.leaves {
		if ok, _ := s.IsPinned(ctx, l.c); !ok {
			t.Fatalf("reference %s under a pin is not pinned", l.c)
		}
		wantErr(t, s.Delete(ctx, l.c), ErrPinned)
	}
	res, err := s.GC(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if res.Removed != 5 || res.RemovedRefs != 3 {
		t.Fatalf("GC = %+v, want 5 removed of which 3 references", res)
	}
	for _, l := range loose.leaves {
		if has(t, s, l) {
			t.Fatalf("GC kept unpinned reference %s", l.c)
		}
	}
	for _, l := range pinned.leaves {
		mustGet(t, s, l)
	}
	// Edit the pinned file: Verify drops the reference and reports it;
	// the pin shows it missing, to be fetched again.
	f, err := os.OpenFile(prefs[0].Path, os.O_WRONLY, 0)
	if err != nil {
		t.Fatal(err)
	}
	f.WriteAt([]byte("edit"), 2000+5)
	f.Close()
	rep, err := s.Verify(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if len(rep.RefsGone) != 1 || rep.RefsGone[0].KeyString() != pinned.leaves[1].c.KeyString() || len(rep.Corrupt) != 0 || len(rep.Vanished) != 0 {
		t.Fatalf("Verify = %+v, want exactly %s as a reference gone", rep, pinned.leaves[1].c)
	}
	if inc := rep.Incomplete(); len(inc) != 1 || inc[0].Missing != 1 {
		t.Fatalf("Verify's pins = %+v, want one pin missing one block", rep.Pins)
	}
	// A new reference to the right bytes completes the pin again.
	_, again := seedFile(t, t.TempDir(), pinned.leaves[1:2])
	if err := s.PutRefs(ctx, again); err != nil {
		t.Fatal(err)
	}
	if st, _ := s.PinStatus(ctx, pinned.root.c); !st.Complete {
		t.Fatalf("PinStatus after a new reference = %+v", st)
	}
}

// testRefReplacesBlock: a reference to a block the store holds replaces
// the store's copy; Put of a block held as a reference writes nothing.
func testRefReplacesBlock(t *testing.T, im impl) {
	ctx := context.Background()
	s := im.open(t, testConfig(t))
	leaves := []block{sizedBlock("x0", 3000), sizedBlock("x1", 3000)}
	put(t, s, leaves...)
	if err := s.Pin(ctx, leaves[0].c); err != nil {
		t.Fatal(err)
	}
	_, refs := seedFile(t, t.TempDir(), leaves)
	if err := s.PutRefs(ctx, refs); err != nil {
		t.Fatal(err)
	}
	if st := s.Stat(); st.Bytes != 0 || st.Refs != 2 || st.PinnedBytes != 0 || st.Pinned != 1 {
		t.Fatalf("Stat after replacing both blocks = %+v", st)
	}
	put(t, s, leaves...)
	if st := s.Stat(); st.Bytes != 0 || st.Refs != 2 {
		t.Fatalf("Stat after putting blocks held as references = %+v", st)
	}
	for _, l := range leaves {
		mustGet(t, s, l)
	}
}

// testRefOpenFile: a reference through an open file, without a path,
// is served until ReleaseFile and then dropped; one with a path too is
// read from the path after ReleaseFile.
func testRefOpenFile(t *testing.T, im impl) {
	ctx := context.Background()
	s := im.open(t, testConfig(t))
	leaves := []block{sizedBlock("o0", 3000), sizedBlock("o1", 3000)}
	p, refs := seedFile(t, t.TempDir(), leaves)
	f, err := os.Open(p)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	refs[0].Path, refs[0].File = "", f
	refs[1].File = f
	if err := s.PutRefs(ctx, refs); err != nil {
		t.Fatal(err)
	}
	for _, l := range leaves {
		mustGet(t, s, l)
	}
	s.ReleaseFile(f)
	f.Close()
	if has(t, s, leaves[0]) {
		t.Fatal("a reference with only an open file outlived ReleaseFile")
	}
	mustGet(t, s, leaves[1])
}

// TestRefsSurviveReopen: persisted references come back after Close and
// Open, and so do GC's removals; a log line cut short by a crash is
// skipped and the rest kept.
func TestRefsSurviveReopen(t *testing.T) {
	ctx := context.Background()
	dir := t.TempDir()
	cfg := testConfig(t)
	cfg.Dir = filepath.Join(dir, "store")
	s, err := Open(cfg)
	if err != nil {
		t.Fatal(err)
	}
	r := rand.New(rand.NewPCG(1, 2))
	var leaves []block
	for range 4 {
		leaves = append(leaves, randBlock(r, 1000+r.IntN(1000)))
	}
	_, refs := seedFile(t, dir, leaves)
	if err := s.PutRefs(ctx, refs); err != nil {
		t.Fatal(err)
	}
	if err := s.Pin(ctx, leaves[0].c); err != nil {
		t.Fatal(err)
	}
	if err := s.Pin(ctx, leaves[1].c); err != nil {
		t.Fatal(err)
	}
	if _, err := s.GC(ctx); err != nil { // drops leaves 2 and 3
		t.Fatal(err)
	}
	s.Close()
	// A crash while appending leaves a partial record behind.
	lf, err := os.OpenFile(filepath.Join(cfg.Dir, refsFileName), os.O_WRONLY|os.O_APPEND, 0)
	if err != nil {
		t.Fatal(err)
	}
	lf.WriteString("+ abcdefgh 1000 0 \"/nowh")
	lf.Close()

	s, err = Open(cfg)
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	defer checkInvariants(t, s)
	got := slices.Sorted(func(yield func(string) bool) {
		for k := range keys(t, s) {
			yield(k)
		}
	})
	if len(got) != 2 {
		t.Fatalf("after reopening, %d keys (%v), want the 2 pinned references", len(got), got)
	}
	for _, l := range leaves[:2] {
		mustGet(t, s, l)
	}
	if st := s.Stat(); st.Refs != 2 || st.Pinned != 2 {
		t.Fatalf("Stat after reopening = %+v", st)
	}
}

// testRefAlt: a reference whose file was renamed to its Alt name is read
// from there (and moves to it); one whose neither name holds it is gone.
func testRefAlt(t *testing.T, im impl) {
	ctx := context.Background()
	s := im.open(t, testConfig(t))
	leaves := []block{sizedBlock("alt0", 3000), sizedBlock("alt1", 3000)}
	p, refs := seedFile(t, t.TempDir(), leaves)
	final := p + ".final"
	for i := range refs {
		refs[i].Alt = final
	}
	if err := s.PutRefs(ctx, refs); err != nil {
		t.Fatal(err)
	}
	mustGet(t, s, leaves[0]) // from Path, before the rename
	if err := os.Rename(p, final); err != nil {
		t.Fatal(err)
	}
	mustGet(t, s, leaves[0]) // from Alt, after it
	mustGet(t, s, leaves[1])
	if err := os.Remove(final); err != nil {
		t.Fatal(err)
	}
	_, err := s.Get(ctx, leaves[1].c)
	wantErr(t, err, ErrNotFound)
}

// TestRefLogLines: records round-trip through the log's line format,
// paths with spaces and quotes included; bad lines are errors.
func TestRefLogLines(t *testing.T) {
	key := string(sizedBlock("k", 10).c.Hash())
	for _, rec := range []refRec{
		{path: "/a b/\"c\".bin", off: 7, size: 1 << 20},
		{path: "/x", alt: "/y z/w", off: 0, size: 1},
	} {
		var buf bytes.Buffer
		refRecord(&buf, key, rec)
		line := strings.TrimSuffix(buf.String(), "\n")
		k, got, add, err := parseRefLine(line)
		if err != nil || !add || k != key || got != rec {
			t.Fatalf("%q parsed as %+v add=%v err=%v, want %+v", line, got, add, err, rec)
		}
	}
	for _, bad := range []string{"", "* x", "+ !!!! 1 0 \"/p\"", "+ aaaa 0 0 \"/p\"", "+ aaaa 1 -1 \"/p\"", "+ aaaa 1 0 /p", "+ aaaa 1 0 \"/p\" junk"} {
		if _, _, _, err := parseRefLine(bad); err == nil {
			t.Errorf("parseRefLine(%q) accepted it", bad)
		}
	}
}

// FuzzParseRefLine: any line either fails to parse or gives a record
// that is written back as a line parsing to the same record.
func FuzzParseRefLine(f *testing.F) {
	f.Add(`+ aaaa 10 0 "/p"`)
	f.Add(`+ aaaa 10 0 "/p" "/q r"`)
	f.Add(`- aaaa`)
	f.Fuzz(func(t *testing.T, line string) {
		key, rec, add, err := parseRefLine(line)
		if err != nil || !add {
			return
		}
		var buf bytes.Buffer
		refRecord(&buf, key, rec)
		k2, rec2, add2, err := parseRefLine(strings.TrimSuffix(buf.String(), "\n"))
		if err != nil || !add2 || k2 != key || rec2 != rec {
			t.Fatalf("%q -> %+v -> %q -> %+v (%v)", line, rec, buf.String(), rec2, err)
		}
	})
}
