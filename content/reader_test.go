package content_test

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"math/rand/v2"
	"testing"

	chunker "github.com/ipfs/boxo/chunker"
	"github.com/ipfs/boxo/ipld/unixfs/importer/balanced"
	"github.com/ipfs/boxo/ipld/unixfs/importer/helpers"
	"github.com/ipfs/boxo/ipld/unixfs/importer/trickle"
	"github.com/ipfs/go-cid"
	ipld "github.com/ipfs/go-ipld-format"

	"github.com/shoalnet/shoal/content"
)

// importInto imports data with the given layout (chunk 0 means the
// profile) into a new full store.
func importInto(t *testing.T, data []byte, chunk, width int) (*fileStore, content.ImportResult) {
	t.Helper()
	st := newFileStore()
	var res content.ImportResult
	var err error
	if chunk == 0 {
		res, err = content.ImportFile(context.Background(), bytes.NewReader(data), st, content.ImportOptions{})
	} else {
		res, err = content.ImportFileLayout(context.Background(), bytes.NewReader(data), st, content.ImportOptions{}, chunk, width)
	}
	if err != nil {
		t.Fatal(err)
	}
	return st, res
}

// checkReads reads the whole file, then random ranges with ReadAt and with
// Seek+Read, and compares with data.
func checkReads(t *testing.T, g content.BlockGetter, root cid.Cid, data []byte, rng *rand.Rand) {
	t.Helper()
	ctx := context.Background()
	r, err := content.NewFileReader(ctx, g, root)
	if err != nil {
		t.Fatal(err)
	}
	if r.Size() != uint64(len(data)) {
		t.Fatalf("Size %d, want %d", r.Size(), len(data))
	}
	all, err := io.ReadAll(r)
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(all, data) {
		t.Fatalf("whole read differs (%d bytes, want %d)", len(all), len(data))
	}
	n := int64(len(data))
	for range 20 {
		off := rng.Int64N(n + 2)
		ln := rng.Int64N(n/3 + 3)
		buf := make([]byte, ln)
		got, err := r.ReadAt(buf, off)
		wantN := max(0, min(ln, n-off))
		if int64(got) != wantN || !bytes.Equal(buf[:got], data[min(off, n):min(off, n)+wantN]) {
			t.Fatalf("ReadAt(%d, %d): %d bytes, want %d", ln, off, got, wantN)
		}
		if wantN < ln && err != io.EOF || wantN == ln && err != nil {
			t.Fatalf("ReadAt(%d, %d): error %v", ln, off, err)
		}
		if _, err := r.Seek(off, io.SeekStart); err != nil {
			t.Fatal(err)
		}
		got2, err := io.ReadFull(r, buf)
		if int64(got2) != wantN || !bytes.Equal(buf[:got2], data[min(off, n):min(off, n)+wantN]) {
			t.Fatalf("Seek(%d)+Read(%d): %d bytes (%v), want %d", off, ln, got2, err, wantN)
		}
	}
}

func TestFileReaderReadsImports(t *testing.T) {
	rng := rand.New(rand.NewPCG(3, 4))
	for _, size := range []int64{0, 1, mib - 1, mib, mib + 1, 3*mib + 5} {
		data := patternBytes(size, "seq251", 1)
		st, res := importInto(t, data, 0, 0)
		t.Run(fmt.Sprint(size), func(t *testing.T) { checkReads(t, st, res.CID, data, rng) })
	}
	for _, width := range []int{2, 3, 5} {
		for _, size := range []int64{0, 4, 5, 6, 27, 80, 127, 300, 641} {
			data := patternBytes(size, "seq251", size)
			st, res := importInto(t, data, 5, width)
			t.Run(fmt.Sprintf("w%d/%d", width, size), func(t *testing.T) { checkReads(t, st, res.CID, data, rng) })
		}
	}
}

// TestFileReaderRangeFetchesOnlyNeeded counts block fetches: a range read
// gets the path down to each needed leaf, once.
func TestFileReaderRangeFetchesOnlyNeeded(t *testing.T) {
	const chunk, width, leaves = 10, 4, 151 // depth 4: 64 < 151 <= 256
	data := patternBytes(chunk*leaves-7, "seq251", 0)
	st, res := importInto(t, data, chunk, width)
	ctx := context.Background()
	rng := rand.New(rand.NewPCG(5, 6))
	for range 200 {
		off := rng.Int64N(int64(len(data)))
		ln := 1 + rng.Int64N(min(int64(len(data))-off, 3*chunk))
		if rng.IntN(4) == 0 {
			ln = int64(len(data)) - off
		}
		r, err := content.NewFileReader(ctx, st, res.CID)
		if err != nil {
			t.Fatal(err)
		}
		before := st.gets.Load()
		buf := make([]byte, ln)
		if _, err := r.ReadAt(buf, off); err != nil {
			t.Fatal(err)
		}
		if !bytes.Equal(buf, data[off:off+ln]) {
			t.Fatalf("range %d+%d differs", off, ln)
		}
		// Blocks below the root on the paths to leaves first..last.
		first, last := off/chunk, (off+ln-1)/chunk
		want := int64(0)
		for span := int64(1); span < 256; span *= width {
			want += last/span - first/span + 1
		}
		if got := st.gets.Load() - before; got != want {
			t.Fatalf("range %d+%d: %d gets, want %d", off, ln, got, want)
		}
	}
	// A sequential read in small pieces fetches every block once.
	r, err := content.NewFileReader(ctx, st, res.CID)
	if err != nil {
		t.Fatal(err)
	}
	before := st.gets.Load()
	var out bytes.Buffer
	if _, err := io.CopyBuffer(&out, struct{ io.Reader }{r}, make([]byte, 7)); err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(out.Bytes(), data) {
		t.Fatal("sequential read differs")
	}
	if got := st.gets.Load() - before; got != int64(res.Blocks-1) {
		t.Fatalf("sequential read: %d gets, want %d (every block but the root, once)", got, res.Blocks-1)
	}
}

// TestFileReaderLegacyLayouts reads DAGs shoal does not write: CIDv0 with
// dag-pb leaves, balanced and trickle.
func TestFileReaderLegacyLayouts(t *testing.T) {
	v0 := cid.Prefix{Version: 0, Codec: cid.DagProtobuf, MhType: 0x12, MhLength: -1}
	v1 := cid.Prefix{Version: 1, Codec: cid.DagProtobuf, MhType: 0x12, MhLength: -1}
	rng := rand.New(rand.NewPCG(7, 8))
	for _, tc := range []struct {
		name    string
		prefix  cid.Prefix
		raw     bool
		trickle bool
	}{
		{"balanced-v0", v0, false, false},
		{"trickle-v0", v0, false, true},
		{"trickle-v1-raw", v1, true, true},
	} {
		for _, size := range []int64{0, 3, 100, 101, 2000, 12345} {
			t.Run(fmt.Sprintf("%s/%d", tc.name, size), func(t *testing.T) {
				data := patternBytes(size, "seq251", 9)
				dag := &oracleDAG{store: newFileStore()}
				params := helpers.DagBuilderParams{Dagserv: dag, Maxlinks: 5, RawLeaves: tc.raw, CidBuilder: tc.prefix}
				db, err := params.New(chunker.NewSizeSplitter(bytes.NewReader(data), 100))
				if err != nil {
					t.Fatal(err)
				}
				var nd ipld.Node
				if tc.trickle {
					nd, err = trickle.Layout(db)
				} else {
					nd, err = balanced.Layout(db)
				}
				if err != nil {
					t.Fatal(err)
				}
				checkReads(t, dag.store, nd.Cid(), data, rng)
			})
		}
	}
}

// putPB stores a dag-pb node with UnixFS data and returns its CID.
func putPB(st *fileStore, links []cid.Cid, fs *content.FSData) cid.Cid {
	n := content.PBNode{}
	for _, l := range links {
		n.Links = append(n.Links, content.PBLink{Hash: l})
	}
	if fs != nil {
		n.Data = fs.Marshal()
	}
	b := n.Marshal()
	c, _ := cid.Prefix{Version: 1, Codec: cid.DagProtobuf, MhType: 0x12, MhLength: -1}.Sum(b)
	_ = st.Put(context.Background(), c, b)
	return c
}

func putRaw(st *fileStore, data []byte) cid.Cid {
	c, _ := cid.Prefix{Version: 1, Codec: cid.Raw, MhType: 0x12, MhLength: -1}.Sum(data)
	_ = st.Put(context.Background(), c, data)
	return c
}

func TestFileReaderMalformed(t *testing.T) {
	ctx := context.Background()
	st := newFileStore()
	leaf3 := putRaw(st, []byte("abc"))
	dir := putPB(st, nil, &content.FSData{Type: content.TDirectory})
	file := func(links []cid.Cid, sizes []uint64, filesize uint64) cid.Cid {
		return putPB(st, links, &content.FSData{Type: content.TFile, BlockSizes: sizes, FileSize: filesize, HasFileSize: true})
	}
	cbor, _ := cid.Prefix{Version: 1, Codec: cid.DagCBOR, MhType: 0x12, MhLength: -1}.Sum([]byte{0xa0})
	_ = st.Put(ctx, cbor, []byte{0xa0})
	missing, _ := cid.Prefix{Version: 1, Codec: cid.Raw, MhType: 0x12, MhLength: -1}.Sum([]byte("nope"))
	garbage, _ := cid.Prefix{Version: 1, Codec: cid.DagProtobuf, MhType: 0x12, MhLength: -1}.Sum([]byte{0xff})
	_ = st.Put(ctx, garbage, []byte{0xff})

	openErr := []struct {
		name string
		root cid.Cid
		want error
	}{
		{"directory", dir, content.ErrNotFile},
		{"dag-cbor", cbor, content.ErrNotFile},
		{"missing", missing, errNotFound},
		{"garbage", garbage, content.ErrMalformed},
		{"no unixfs data", putPB(st, nil, nil), content.ErrMalformed},
		{"filesize disagrees", file([]cid.Cid{leaf3}, []uint64{3}, 4), content.ErrMalformed},
		{"links without blocksizes", file([]cid.Cid{leaf3, leaf3}, []uint64{3}, 3), content.ErrMalformed},
		{"blocksizes overflow", file([]cid.Cid{leaf3, leaf3}, []uint64{1 << 63, 1 << 63}, 0), content.ErrMalformed},
		{"symlink", putPB(st, nil, &content.FSData{Type: content.TSymlink, Data: []byte("x")}), content.ErrNotFile},
	}
	for _, tc := range openErr {
		_, err := content.NewFileReader(ctx, st, tc.root)
		if !errors.Is(err, tc.want) {
			t.Errorf("%s: NewFileReader: %v, want %v", tc.name, err, tc.want)
		}
	}

	readErr := []struct {
		name string
		root cid.Cid
		want error
	}{
		{"child smaller than blocksize", file([]cid.Cid{leaf3, leaf3}, []uint64{3, 4}, 7), content.ErrMalformed},
		{"child larger than blocksize", file([]cid.Cid{leaf3, leaf3}, []uint64{3, 2}, 5), content.ErrMalformed},
		{"directory inside", file([]cid.Cid{leaf3, dir}, []uint64{3, 5}, 8), content.ErrMalformed},
		{"missing child", file([]cid.Cid{leaf3, missing}, []uint64{3, 4}, 7), errNotFound},
		{"garbage child", file([]cid.Cid{leaf3, garbage}, []uint64{3, 4}, 7), content.ErrMalformed},
	}
	for _, tc := range readErr {
		r, err := content.NewFileReader(ctx, st, tc.root)
		if err != nil {
			t.Errorf("%s: NewFileReader: %v", tc.name, err)
			continue
		}
		_, err = io.ReadAll(r)
		if !errors.Is(err, tc.want) {
			t.Errorf("%s: read: %v, want %v", tc.name, err, tc.want)
		}
	}
}

func TestFileReaderSeek(t *testing.T) {
	data := patternBytes(100, "seq251", 0)
	st, res := importInto(t, data, 10, 3)
	r, err := content.NewFileReader(context.Background(), st, res.CID)
	if err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct {
		off    int64
		whence int
		want   int64
		ok     bool
	}{
		{10, io.SeekStart, 10, true},
		{5, io.SeekCurrent, 15, true},
		{-1, io.SeekEnd, 99, true},
		{50, io.SeekEnd, 150, true},
		{-151, io.SeekCurrent, 150, false},
		{-1, io.SeekStart, 150, false},
		{0, 7, 150, false},
	} {
		got, err := r.Seek(tc.off, tc.whence)
		if (err == nil) != tc.ok || got != tc.want {
			t.Fatalf("Seek(%d, %d) = %d, %v; want %d ok=%v", tc.off, tc.whence, got, err, tc.want, tc.ok)
		}
	}
	if n, err := r.Read(make([]byte, 4)); n != 0 || err != io.EOF {
		t.Fatalf("read past end: %d, %v", n, err)
	}
	if _, err := r.ReadAt(make([]byte, 1), -1); err == nil {
		t.Fatal("ReadAt at -1 succeeded")
	}
	r.Seek(-1, io.SeekEnd)
	b := make([]byte, 4)
	if n, err := r.Read(b); n != 1 || err != nil || b[0] != data[99] {
		t.Fatalf("last byte: %d, %v", n, err)
	}
}

// fuzzGetter serves one block as the root and answers every other CID with
// a fixed 4-byte block, so fuzzed links lead somewhere.
type fuzzGetter struct {
	root cid.Cid
	data []byte
}

func (g fuzzGetter) Get(_ context.Context, c cid.Cid) ([]byte, error) {
	if c.Equals(g.root) {
		return g.data, nil
	}
	if c.Type() == cid.Raw {
		return []byte("leaf"), nil
	}
	return nil, errNotFound
}

func FuzzFileReaderSingleBlock(f *testing.F) {
	st := newFileStore()
	leaf := putRaw(st, []byte("leaf"))
	good := putPB(st, []cid.Cid{leaf, leaf}, &content.FSData{Type: content.TFile, BlockSizes: []uint64{4, 4}, FileSize: 8, HasFileSize: true})
	inline := putPB(st, []cid.Cid{leaf}, &content.FSData{Type: content.TFile, Data: []byte("xy"), BlockSizes: []uint64{4}, FileSize: 6, HasFileSize: true})
	for _, c := range []cid.Cid{good, inline} {
		b, _ := st.Get(context.Background(), c)
		f.Add(b, uint16(3))
	}
	f.Add([]byte{}, uint16(0))
	f.Fuzz(func(t *testing.T, block []byte, off uint16) {
		root, _ := cid.Prefix{Version: 1, Codec: cid.DagProtobuf, MhType: 0x12, MhLength: -1}.Sum(block)
		r, err := content.NewFileReader(context.Background(), fuzzGetter{root, block}, root)
		if err != nil {
			if !errors.Is(err, content.ErrMalformed) && !errors.Is(err, content.ErrNotFile) {
				t.Fatalf("open: unexpected error %v", err)
			}
			return
		}
		if r.Size() > 1<<20 {
			return // children are 4-byte blocks: a reader this big fails fast, but reading is pointless
		}
		all, err := io.ReadAll(r)
		if err == nil && uint64(len(all)) != r.Size() {
			t.Fatalf("read %d bytes of a %d-byte file", len(all), r.Size())
		}
		buf := make([]byte, 5)
		n, err := r.ReadAt(buf, int64(off))
		if err == nil && n != len(buf) || n > len(buf) {
			t.Fatalf("ReadAt: %d, %v", n, err)
		}
	})
}
