package content

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"math/rand/v2"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"syscall"
	"testing"

	"github.com/ipfs/go-cid"
)

// buildWithDirBuilder adds entries to a DirBuilder in the given order,
// files from memory.
func buildWithDirBuilder(t testing.TB, entries []dtEntry, dst BlockPutter) ImportResult {
	t.Helper()
	ctx := context.Background()
	b := NewDirBuilder(dst, ImportOptions{})
	for _, e := range entries {
		var err error
		switch e.kind {
		case TDirectory:
			err = b.AddDir(e.path)
		case TSymlink:
			err = b.AddSymlink(ctx, e.path, e.target)
		case TFile:
			if len(entries) > 100 && e.size <= 1<<20 {
				// Large trees: skip the file pipeline (tested on its own and
				// by the random trees), which is slow under -race.
				res := dtSmallFile(t, e)
				if st, ok := dst.(*dtStore); ok {
					st.blocks[res.CID] = e.content()
				}
				err = b.AddImported(e.path, res)
				break
			}
			_, err = b.AddFile(ctx, e.path, bytes.NewReader(e.content()))
		}
		if err != nil {
			t.Fatalf("adding %q: %v", e.path, err)
		}
	}
	res, err := b.Finish(ctx)
	if err != nil {
		t.Fatal(err)
	}
	return res
}

func TestImportPathRandomTreesMatchBoxo(t *testing.T) {
	seeds := 8
	if testing.Short() {
		seeds = 3
	}
	for seed := range seeds {
		t.Run(fmt.Sprint(seed), func(t *testing.T) {
			r := rand.New(rand.NewPCG(uint64(seed), 99))
			maxFile := 64 << 10
			if seed < 2 {
				maxFile = 3 << 20 // a few multi-chunk files
			}
			entries := dtRandomTree(r, maxFile)
			if seed == 0 {
				// Chunk boundaries, and a file spanning three chunks.
				for i, size := range []int{1 << 20, 1<<20 + 1, 3 << 20} {
					entries = append(entries, dtEntry{path: fmt.Sprintf("big/%d", i), kind: TFile, size: size, seed: uint64(i)})
				}
			}
			want, ds := dtBoxoTree(t, entries)

			dir := t.TempDir()
			dtWriteTree(t, dir, entries)
			store := newDTStore()
			got, err := ImportPath(context.Background(), dir, store, ImportOptions{})
			if err != nil {
				t.Fatal(err)
			}
			if got.CID != want.Cid() {
				t.Fatalf("ImportPath root %s, boxo %s", got.CID, want.Cid())
			}
			wantTsize, _ := want.Size()
			if got.Tsize != wantTsize {
				t.Errorf("Tsize %d, boxo %d", got.Tsize, wantTsize)
			}
			dtRequireSameDAG(t, want, ds, store)

			// The same entries streamed in a random order give the same root.
			shuffled := append([]dtEntry(nil), entries...)
			r.Shuffle(len(shuffled), func(i, j int) { shuffled[i], shuffled[j] = shuffled[j], shuffled[i] })
			if res := buildWithDirBuilder(t, shuffled, nil); res.CID != got.CID || res.Tsize != got.Tsize || res.Size != got.Size {
				t.Fatalf("DirBuilder (hash only, shuffled) %+v, ImportPath %+v", res, got)
			}
		})
	}
}

// dtSmallFile is the import result of a file of at most one chunk: a
// single raw block (the file half's ImportFile is checked against boxo in
// its own tests; this keeps large flat directories fast under -race).
func dtSmallFile(t testing.TB, e dtEntry) ImportResult {
	t.Helper()
	if e.size > 1<<20 {
		t.Fatalf("dtSmallFile: %d bytes is more than one chunk", e.size)
	}
	c, err := cid.V1Builder{Codec: cid.Raw, MhType: 0x12}.Sum(e.content())
	if err != nil {
		t.Fatal(err)
	}
	return ImportResult{CID: c, Size: uint64(e.size), Tsize: uint64(e.size), Blocks: 1}
}

// buildFlat adds small files with AddImported.
func buildFlat(t testing.TB, entries []dtEntry, dst *dtStore) ImportResult {
	t.Helper()
	b := NewDirBuilder(dst, ImportOptions{})
	for _, e := range entries {
		res := dtSmallFile(t, e)
		if dst != nil {
			dst.blocks[res.CID] = e.content()
		}
		if err := b.AddImported(e.path, res); err != nil {
			t.Fatal(err)
		}
	}
	res, err := b.Finish(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	return res
}

// flatDir returns n small files whose basic directory block is exactly
// size bytes. With withDir, the last entry is a subdirectory holding one
// file instead: Kubo's adder links it with an empty-directory placeholder
// first and its final Tsize only when flushing, so this checks that the
// HAMT decision depends on the final links only.
func flatDir(t testing.TB, n, size int, withDir bool) []dtEntry {
	t.Helper()
	entries := make([]dtEntry, n)
	links := make([]dirLink, n)
	for i := range entries {
		entries[i] = dtEntry{path: fmt.Sprintf("f%05d-%s", i, strings.Repeat("n", 200)), kind: TFile, size: 10, seed: uint64(i)}
		res := dtSmallFile(t, entries[i])
		links[i] = dirLink{name: entries[i].path, c: res.CID, tsize: res.Tsize}
	}
	pad := n
	if withDir {
		pad = n - 1
		inner := dtEntry{path: "zz-subdir/inner", kind: TFile, size: 10, seed: 1 << 40}
		b := NewDirBuilder(nil, ImportOptions{})
		if err := b.AddImported("inner", dtSmallFile(t, inner)); err != nil {
			t.Fatal(err)
		}
		sub, err := b.Finish(context.Background())
		if err != nil {
			t.Fatal(err)
		}
		entries[n-1] = inner
		links[n-1] = dirLink{name: "zz-subdir", c: sub.CID, tsize: sub.Tsize}
	}
	// Lengthen names one byte at a time (each adds exactly one byte while
	// no varint grows) until the block has the wanted size.
	cur := basicDirSize(links)
	for i := 0; cur < size; i = (i + 1) % pad {
		before := pbLinkBytes(&links[i])
		entries[i].path += "x"
		links[i].name += "x"
		cur += pbLinkBytes(&links[i]) - before
	}
	if got := basicDirSize(links); got != size {
		t.Fatalf("tuned directory to %d bytes, want %d", got, size)
	}
	return entries
}

func rootType(t testing.TB, store *dtStore, c cid.Cid) FSType {
	t.Helper()
	n, err := DecodePBNode(store.blocks[c])
	if err != nil {
		t.Fatal(err)
	}
	d, err := DecodeFSData(n.Data)
	if err != nil {
		t.Fatal(err)
	}
	return d.Type
}

func TestHAMTThresholdMatchesBoxo(t *testing.T) {
	for _, tc := range []struct {
		size    int
		withDir bool
		want    FSType
	}{
		{hamtShardingSize, false, TDirectory},     // exactly at the threshold: stays basic
		{hamtShardingSize + 1, false, THAMTShard}, // one byte over: sharded
		{hamtShardingSize, true, TDirectory},
		{hamtShardingSize + 1, true, THAMTShard},
	} {
		t.Run(fmt.Sprint(tc.size, "/subdir=", tc.withDir), func(t *testing.T) {
			entries := flatDir(t, 1000, tc.size, tc.withDir)
			want, ds := dtBoxoTree(t, entries)
			store := newDTStore()
			got := buildFlat(t, entries, store)
			if got.CID != want.Cid() {
				t.Fatalf("root %s, boxo %s", got.CID, want.Cid())
			}
			if typ := rootType(t, store, got.CID); typ != tc.want {
				t.Fatalf("root is a %s, want %s", typ, tc.want)
			}
			dtRequireSameDAG(t, want, ds, store)
		})
	}
}

// hamtDepth returns the number of shard levels under a HAMT root.
func hamtDepth(t testing.TB, store *dtStore, c cid.Cid) int {
	t.Helper()
	d, err := loadDir(context.Background(), store, c)
	if err != nil {
		t.Fatal(err)
	}
	depth := 0
	for i := range d.shard.links {
		if d.shard.isShard(i) {
			depth = max(depth, hamtDepth(t, store, d.shard.links[i].Hash))
		}
	}
	return depth + 1
}

func TestBigFlatDirectoryMultiLevelHAMT(t *testing.T) {
	// 1500 names of ~170 bytes: about 340 KB as a basic directory, and
	// with ~17 expected pairs of names sharing 16 hash bits, a third
	// level is all but certain (and checked).
	n := 1500
	entries := make([]dtEntry, n)
	for i := range entries {
		entries[i] = dtEntry{path: fmt.Sprintf("entry-%06d-%s.dat", i, strings.Repeat("é", 80)), kind: TFile, size: 1 + i%50, seed: uint64(i)}
	}
	want, ds := dtBoxoTree(t, entries)
	store := newDTStore()
	got := buildFlat(t, entries, store)
	if got.CID != want.Cid() {
		t.Fatalf("root %s, boxo %s", got.CID, want.Cid())
	}
	dtRequireSameDAG(t, want, ds, store)
	if d := hamtDepth(t, store, got.CID); d < 3 {
		t.Fatalf("HAMT has %d levels, want at least 3 for %d entries", d, n)
	}
}

func TestImportPathSpecialRoots(t *testing.T) {
	ctx := context.Background()
	dir := t.TempDir()

	empty := filepath.Join(dir, "empty")
	if err := os.Mkdir(empty, 0o755); err != nil {
		t.Fatal(err)
	}
	res, err := ImportPath(ctx, empty, nil, ImportOptions{})
	if err != nil {
		t.Fatal(err)
	}
	if want := "bafybeiczsscdsbs7ffqz55asqdf3smv6klcw3gofszvwlyarci47bgf354"; res.CID.String() != want {
		t.Errorf("empty directory %s, want %s", res.CID, want)
	}
	if res.Tsize != 4 || res.Blocks != 1 || res.Size != 0 {
		t.Errorf("empty directory result %+v", res)
	}

	link := filepath.Join(dir, "link")
	if err := os.Symlink("empty", link); err != nil {
		t.Fatal(err)
	}
	ds := newDTStore()
	res, err = ImportPath(ctx, link, ds, ImportOptions{})
	if err != nil {
		t.Fatal(err)
	}
	dtProfile()
	if want := dtBoxoSymlink(t, mdtestMock(), "empty"); res.CID != want.Cid() || !bytes.Equal(ds.blocks[res.CID], want.RawData()) {
		t.Errorf("root symlink %s, boxo %s", res.CID, want.Cid())
	}

	file := filepath.Join(dir, "f")
	data := bytes.Repeat([]byte("shoal"), 1000)
	if err := os.WriteFile(file, data, 0o644); err != nil {
		t.Fatal(err)
	}
	res, err = ImportPath(ctx, file, nil, ImportOptions{})
	if err != nil {
		t.Fatal(err)
	}
	fr, err := ImportFile(ctx, bytes.NewReader(data), nil, ImportOptions{})
	if err != nil {
		t.Fatal(err)
	}
	if res != fr {
		t.Errorf("ImportPath of a file %+v, ImportFile %+v", res, fr)
	}
}

func TestSymlinkEmptyTargetMatchesBoxo(t *testing.T) {
	dtProfile()
	want := dtBoxoSymlink(t, mdtestMock(), "")
	got := symlinkBlock("")
	if !bytes.Equal(got, want.RawData()) {
		t.Fatalf("symlink block %x, boxo %x", got, want.RawData())
	}
}

func TestImportPathErrors(t *testing.T) {
	ctx := context.Background()
	dir := t.TempDir()
	missing := filepath.Join(dir, "missing")
	if _, err := ImportPath(ctx, missing, nil, ImportOptions{}); !errors.Is(err, os.ErrNotExist) || !strings.Contains(err.Error(), missing) {
		t.Errorf("missing path: %v", err)
	}
	fifo := filepath.Join(dir, "sub", "pipe")
	if err := os.Mkdir(filepath.Dir(fifo), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := syscall.Mkfifo(fifo, 0o644); err != nil {
		t.Skip("mkfifo:", err)
	}
	if _, err := ImportPath(ctx, dir, nil, ImportOptions{}); !errors.Is(err, ErrUnsupportedFileType) || !strings.Contains(err.Error(), fifo) {
		t.Errorf("named pipe in tree: %v", err)
	}
	if _, err := ImportPath(ctx, fifo, nil, ImportOptions{}); !errors.Is(err, ErrUnsupportedFileType) {
		t.Errorf("named pipe as root: %v", err)
	}
	if err := os.Remove(fifo); err != nil {
		t.Fatal(err)
	}
	dtWriteTree(t, dir, dtRandomTree(rand.New(rand.NewPCG(1, 1)), 1024))
	cctx, cancel := context.WithCancel(ctx)
	cancel()
	if _, err := ImportPath(cctx, dir, nil, ImportOptions{}); !errors.Is(err, context.Canceled) {
		t.Errorf("cancelled import: %v", err)
	}
}

// failingPutter fails every Put.
type failingPutter struct{}

var errPutFailed = errors.New("disk full")

func (failingPutter) Put(context.Context, cid.Cid, []byte) error { return errPutFailed }

// failAfterReader fails after n bytes.
type failAfterReader struct{ n int }

var errReadFailed = errors.New("read failed")

func (r *failAfterReader) Read(p []byte) (int, error) {
	if r.n == 0 {
		return 0, errReadFailed
	}
	k := min(len(p), r.n)
	r.n -= k
	return k, nil
}

func TestDirBuilderErrors(t *testing.T) {
	ctx := context.Background()
	b := NewDirBuilder(nil, ImportOptions{})
	if _, err := b.AddFile(ctx, "a/f", strings.NewReader("x")); err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct {
		name string
		err  error
		add  func() error
	}{
		{"same file twice", ErrPathConflict, func() error { _, err := b.AddFile(ctx, "a/f", strings.NewReader("y")); return err }},
		{"file over dir, before reading", ErrPathConflict, func() error { _, err := b.AddFile(ctx, "a", nil); return err }},
		{"below a file", ErrPathConflict, func() error { return b.AddDir("a/f/g") }},
		{"symlink over dir", ErrPathConflict, func() error { return b.AddSymlink(ctx, "a", "x") }},
		{"file at root", ErrPathConflict, func() error { _, err := b.AddFile(ctx, "/", strings.NewReader("")); return err }},
		{"dot dot", ErrInvalidPath, func() error { return b.AddDir("a/../b") }},
		{"dot", ErrInvalidPath, func() error { return b.AddSymlink(ctx, "a/./l", "t") }},
		{"empty segment", ErrInvalidPath, func() error { return b.AddDir("a//b") }},
		{"read error", errReadFailed, func() error { _, err := b.AddFile(ctx, "r", &failAfterReader{n: 10}); return err }},
	} {
		if err := tc.add(); !errors.Is(err, tc.err) {
			t.Errorf("%s: got %v, want %v", tc.name, err, tc.err)
		} else if tc.name == "read error" && !strings.Contains(err.Error(), `"r"`) {
			t.Errorf("read error does not name the path: %v", err)
		}
	}
	// Errors left the builder usable, and the tree unchanged.
	if err := b.AddDir("a"); err != nil {
		t.Fatalf("re-adding existing dir: %v", err)
	}
	res, err := b.Finish(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := b.Finish(ctx); err == nil {
		t.Error("second Finish succeeded")
	}
	if err := b.AddDir("late"); err == nil {
		t.Error("AddDir after Finish succeeded")
	}
	if res.Size != 1 {
		t.Errorf("Size %d, want 1", res.Size)
	}

	fb := NewDirBuilder(failingPutter{}, ImportOptions{})
	if err := fb.AddDir("x"); err != nil {
		t.Fatal(err)
	}
	if _, err := fb.Finish(ctx); !errors.Is(err, errPutFailed) {
		t.Errorf("Finish with failing putter: %v", err)
	}
	if err := NewDirBuilder(failingPutter{}, ImportOptions{}).AddSymlink(ctx, "l", "t"); !errors.Is(err, errPutFailed) {
		t.Errorf("AddSymlink with failing putter: %v", err)
	}
}

func TestDirBuilderConcurrentAdds(t *testing.T) {
	r := rand.New(rand.NewPCG(5, 5))
	entries := dtRandomTree(r, 8<<10)
	want := buildWithDirBuilder(t, entries, nil)

	ctx := context.Background()
	b := NewDirBuilder(nil, ImportOptions{Workers: 1})
	var wg sync.WaitGroup
	errs := make(chan error, len(entries))
	for _, e := range entries {
		wg.Go(func() {
			var err error
			switch e.kind {
			case TDirectory:
				err = b.AddDir(e.path)
			case TSymlink:
				err = b.AddSymlink(ctx, e.path, e.target)
			case TFile:
				_, err = b.AddFile(ctx, e.path, bytes.NewReader(e.content()))
			}
			errs <- err
		})
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		if err != nil {
			t.Fatal(err)
		}
	}
	got, err := b.Finish(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if got != want {
		t.Fatalf("concurrent adds %+v, sequential %+v", got, want)
	}
}

func TestDirBuilderAddImported(t *testing.T) {
	ctx := context.Background()
	data := []byte("imported elsewhere")
	fr, err := ImportFile(ctx, bytes.NewReader(data), nil, ImportOptions{})
	if err != nil {
		t.Fatal(err)
	}
	b := NewDirBuilder(nil, ImportOptions{})
	if err := b.AddImported("d/f", fr); err != nil {
		t.Fatal(err)
	}
	got, err := b.Finish(ctx)
	if err != nil {
		t.Fatal(err)
	}
	b2 := NewDirBuilder(nil, ImportOptions{})
	if _, err := b2.AddFile(ctx, "./d/f", bytes.NewReader(data)); err != nil {
		t.Fatal(err)
	}
	want, err := b2.Finish(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if got.CID != want.CID {
		t.Fatalf("AddImported root %s, AddFile root %s", got.CID, want.CID)
	}
	if err := NewDirBuilder(nil, ImportOptions{}).AddImported("x", ImportResult{}); err == nil {
		t.Error("AddImported with undefined CID succeeded")
	}
}
