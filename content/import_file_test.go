package content_test

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"math/rand/v2"
	"os"
	"runtime"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"testing/iotest"
	"time"

	"github.com/ipfs/go-cid"
	"go.uber.org/goleak"

	"github.com/shoalnet/shoal/content"
)

// checkAgainstBoxo imports the same content with shoal and boxo and
// requires the same root, sizes, block count and every block CID in walk
// order.
func checkAgainstBoxo(t *testing.T, mk func() io.Reader, chunkSize, maxLinks, workers int) {
	t.Helper()
	ctx := context.Background()
	ours := newLightStore()
	var res content.ImportResult
	var err error
	if chunkSize == mib && maxLinks == 1024 {
		res, err = content.ImportFile(ctx, mk(), ours, content.ImportOptions{Workers: workers})
	} else {
		res, err = content.ImportFileLayout(ctx, mk(), ours, content.ImportOptions{Workers: workers}, chunkSize, maxLinks)
	}
	if err != nil {
		t.Fatal(err)
	}
	root, tsize, dag := boxoImport(t, mk(), int64(chunkSize), maxLinks, true)
	if !res.CID.Equals(root) {
		t.Fatalf("root %s, boxo %s", res.CID, root)
	}
	if res.Tsize != tsize {
		t.Errorf("Tsize %d, boxo %d", res.Tsize, tsize)
	}
	if got := int(dag.adds.Load()); res.Blocks != got {
		t.Errorf("Blocks %d, boxo added %d", res.Blocks, got)
	}
	if got := ours.puts.Load(); got != int64(res.Blocks) {
		t.Errorf("Blocks %d but %d puts", res.Blocks, got)
	}
	want := walkCIDs(t, dag.store, root)
	got := walkCIDs(t, ours, res.CID)
	if !slices.EqualFunc(got, want, cid.Cid.Equals) {
		t.Fatalf("walk differs: %d blocks, boxo %d", len(got), len(want))
	}
}

func TestImportFileMatchesBoxo(t *testing.T) {
	sizes := []int64{0, 1, 2, 1000, mib - 1, mib, mib + 1, 2 * mib, 3*mib + 12345}
	rng := rand.New(rand.NewPCG(1, 2))
	for range 3 {
		sizes = append(sizes, rng.Int64N(24*mib))
	}
	for _, size := range sizes {
		for _, pattern := range []string{"seq251", "zero"} {
			t.Run(fmt.Sprintf("%s/%d", pattern, size), func(t *testing.T) {
				checkAgainstBoxo(t, func() io.Reader { return newPattern(size, pattern, 7) }, mib, 1024, 0)
			})
		}
	}
}

// TestImportFileWideMatchesBoxo covers a root of exactly 1024 leaves and the
// first two-level tree (1025 chunks), about a GiB each.
func TestImportFileWideMatchesBoxo(t *testing.T) {
	if testing.Short() || raceEnabled {
		t.Skip("imports 2 GiB twice: too slow for -short and -race")
	}
	for _, size := range []int64{1024 * mib, 1025*mib - 1} {
		t.Run(fmt.Sprint(size), func(t *testing.T) {
			checkAgainstBoxo(t, func() io.Reader { return newPattern(size, "seq251", 3) }, mib, 1024, 0)
		})
	}
}

// TestImportFileSmallLayoutsMatchBoxo runs both importers with tiny chunks
// and widths, reaching depths (and single-child chains) the real profile
// reaches only at terabytes.
func TestImportFileSmallLayoutsMatchBoxo(t *testing.T) {
	const chunk = 5
	for _, width := range []int{2, 3, 4, 7} {
		maxChunks := 70
		if width == 2 {
			maxChunks = 140
		}
		for n := 0; n <= maxChunks; n++ {
			for _, extra := range []int64{0, 2} {
				size := int64(n*chunk) + extra
				name := fmt.Sprintf("w%d/%d", width, size)
				t.Run(name, func(t *testing.T) {
					checkAgainstBoxo(t, func() io.Reader { return newPattern(size, "seq251", int64(n)) }, chunk, width, 1+n%3)
				})
			}
		}
	}
}

func TestImportFileWorkersAgree(t *testing.T) {
	ctx := context.Background()
	data := patternBytes(4*mib+77, "seq251", 11)
	var want content.ImportResult
	for i, workers := range []int{1, 2, 3, 8} {
		for _, dst := range []content.BlockPutter{nil, newFileStore()} {
			res, err := content.ImportFile(ctx, bytes.NewReader(data), dst, content.ImportOptions{Workers: workers})
			if err != nil {
				t.Fatal(err)
			}
			if i == 0 && dst == nil {
				want = res
			}
			if res != want {
				t.Fatalf("workers=%d dst=%T: %+v, want %+v", workers, dst, res, want)
			}
		}
	}
	if want.Size != uint64(len(data)) || want.Blocks != 6 {
		t.Fatalf("result %+v: want size %d and 5 leaves + 1 root", want, len(data))
	}
}

// TestImportFileSingleChunk checks the single-chunk rule without the
// oracle: the root is the raw leaf itself.
func TestImportFileSingleChunk(t *testing.T) {
	for _, size := range []int64{0, 1, mib} {
		data := patternBytes(size, "seq251", 0)
		st := newFileStore()
		res, err := content.ImportFile(context.Background(), bytes.NewReader(data), st, content.ImportOptions{})
		if err != nil {
			t.Fatal(err)
		}
		want, _ := cid.Prefix{Version: 1, Codec: cid.Raw, MhType: 0x12, MhLength: -1}.Sum(data)
		if !res.CID.Equals(want) || res.Size != uint64(size) || res.Tsize != uint64(size) || res.Blocks != 1 {
			t.Fatalf("size %d: %+v, want raw leaf %s", size, res, want)
		}
		if got, _ := st.Get(context.Background(), want); string(got) != string(data) {
			t.Fatalf("size %d: stored leaf differs", size)
		}
	}
}

// failingReader returns its content up to fail bytes, then err.
type failingReader struct {
	r    io.Reader
	left int64
	err  error
}

func (f *failingReader) Read(p []byte) (int, error) {
	if f.left <= 0 {
		return 0, f.err
	}
	if int64(len(p)) > f.left {
		p = p[:f.left]
	}
	n, err := f.r.Read(p)
	f.left -= int64(n)
	return n, err
}

func TestImportFileReadError(t *testing.T) {
	defer goleak.VerifyNone(t, goleak.IgnoreCurrent())
	boom := errors.New("disk on fire")
	for _, at := range []int64{0, 10, mib, 5*mib + 3} {
		r := &failingReader{r: newPattern(100*mib, "seq251", 0), left: at, err: boom}
		_, err := content.ImportFile(context.Background(), r, newLightStore(), content.ImportOptions{Workers: 3})
		if !errors.Is(err, boom) {
			t.Fatalf("fail at %d: got %v, want %v", at, err, boom)
		}
		if !strings.Contains(err.Error(), fmt.Sprintf("at byte %d", at)) {
			t.Errorf("fail at %d: error %q does not say where", at, err)
		}
	}
}

// failingStore fails every put after the first ok ones.
type failingStore struct {
	ok  atomic.Int64
	err error
}

func (f *failingStore) Put(context.Context, cid.Cid, []byte) error {
	if f.ok.Add(-1) < 0 {
		return f.err
	}
	return nil
}

func TestImportFilePutError(t *testing.T) {
	defer goleak.VerifyNone(t, goleak.IgnoreCurrent())
	boom := errors.New("store full")
	for _, ok := range []int64{0, 1, 4, 8} {
		st := &failingStore{err: boom}
		st.ok.Store(ok)
		// 8 chunks of 1 KiB with width 4: puts 8 leaves then 3 nodes.
		_, err := content.ImportFileLayout(context.Background(), newPattern(8<<10, "seq251", 0), st,
			content.ImportOptions{Workers: 2}, 1<<10, 4)
		if !errors.Is(err, boom) {
			t.Fatalf("after %d puts: got %v, want %v", ok, err, boom)
		}
		if !strings.Contains(err.Error(), "bafk") && !strings.Contains(err.Error(), "bafy") {
			t.Errorf("error %q does not name the block", err)
		}
	}
}

// cancelReader cancels its context once it has served after bytes.
type cancelReader struct {
	r      io.Reader
	after  int64
	cancel context.CancelFunc
}

func (c *cancelReader) Read(p []byte) (int, error) {
	n, err := c.r.Read(p)
	c.after -= int64(n)
	if c.after <= 0 {
		c.cancel()
	}
	return n, err
}

func TestImportFileCancel(t *testing.T) {
	defer goleak.VerifyNone(t, goleak.IgnoreCurrent())
	ctx, cancel := context.WithCancel(context.Background())
	r := &cancelReader{r: newPattern(64*mib, "seq251", 0), after: 3 * mib, cancel: cancel}
	_, err := content.ImportFile(ctx, r, newLightStore(), content.ImportOptions{Workers: 2})
	if !errors.Is(err, context.Canceled) {
		t.Fatalf("got %v, want context.Canceled", err)
	}
}

// TestImportFileMemoryBounded imports 200 MiB from a generator and samples
// the heap meanwhile: it must stay far below the input size.
func TestImportFileMemoryBounded(t *testing.T) {
	const size = 200 * mib
	const bound = 64 * mib
	runtime.GC()
	var before runtime.MemStats
	runtime.ReadMemStats(&before)
	var peak atomic.Uint64
	stop := make(chan struct{})
	var wg sync.WaitGroup
	wg.Go(func() {
		var m runtime.MemStats
		for {
			runtime.ReadMemStats(&m)
			if m.HeapInuse > peak.Load() {
				peak.Store(m.HeapInuse)
			}
			select {
			case <-stop:
				return
			case <-time.After(2 * time.Millisecond):
			}
		}
	})
	res, err := content.ImportFile(context.Background(), newPattern(size, "seq251", 5), nil, content.ImportOptions{Workers: 4})
	close(stop)
	wg.Wait()
	if err != nil {
		t.Fatal(err)
	}
	if res.Size != size || res.Blocks != 201 {
		t.Fatalf("result %+v", res)
	}
	grew := int64(peak.Load()) - int64(before.HeapInuse)
	t.Logf("heap in use grew by at most %.1f MiB while importing %d MiB", float64(grew)/mib, size/mib)
	if grew > bound {
		t.Fatalf("heap grew by %d bytes, bound %d", grew, bound)
	}
}

// fileVector is one entry of testdata/files.json: content made by
// patternReader and the CID Kubo's unixfs-v1-2025 profile gives it.
type fileVector struct {
	Name    string `json:"name"`
	Size    int64  `json:"size"`
	Pattern string `json:"pattern"` // "seq251": byte (offset+seed) % 251; "zero"
	Seed    int64  `json:"seed"`
	CID     string `json:"cid"`
	Tsize   uint64 `json:"tsize"`
	Blocks  int    `json:"blocks"`
}

const vectorsPath = "testdata/files.json"

func loadVectors(t *testing.T) []fileVector {
	t.Helper()
	b, err := os.ReadFile(vectorsPath)
	if err != nil {
		t.Fatal(err)
	}
	var vs []fileVector
	if err := json.Unmarshal(b, &vs); err != nil {
		t.Fatal(err)
	}
	if len(vs) == 0 {
		t.Fatal("no vectors")
	}
	return vs
}

// TestFileVectors needs no oracle: fixed content, fixed CIDs.
func TestFileVectors(t *testing.T) {
	for _, v := range loadVectors(t) {
		t.Run(v.Name, func(t *testing.T) {
			res, err := content.ImportFile(context.Background(), newPattern(v.Size, v.Pattern, v.Seed), nil, content.ImportOptions{})
			if err != nil {
				t.Fatal(err)
			}
			if res.CID.String() != v.CID || res.Tsize != v.Tsize || res.Blocks != v.Blocks || res.Size != uint64(v.Size) {
				t.Fatalf("got %s tsize %d blocks %d, want %s tsize %d blocks %d", res.CID, res.Tsize, res.Blocks, v.CID, v.Tsize, v.Blocks)
			}
		})
	}
}

// TestFileVectorsFromBoxo checks the vector file against the oracle;
// SHOAL_WRITE_FILE_VECTORS=1 rewrites it from the oracle.
func TestFileVectorsFromBoxo(t *testing.T) {
	vs := loadVectors(t)
	for i := range vs {
		v := &vs[i]
		root, tsize, dag := boxoImport(t, newPattern(v.Size, v.Pattern, v.Seed), mib, 1024, true)
		got := fileVector{Name: v.Name, Size: v.Size, Pattern: v.Pattern, Seed: v.Seed,
			CID: root.String(), Tsize: tsize, Blocks: int(dag.adds.Load())}
		if os.Getenv("SHOAL_WRITE_FILE_VECTORS") == "1" {
			*v = got
			continue
		}
		if got != *v {
			t.Errorf("vector %s: boxo gives %+v", v.Name, got)
		}
	}
	if os.Getenv("SHOAL_WRITE_FILE_VECTORS") == "1" {
		b, err := json.MarshalIndent(vs, "", "  ")
		if err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(vectorsPath, append(b, '\n'), 0o644); err != nil {
			t.Fatal(err)
		}
	}
}

// orderStore fails a put of a node whose children were not put before it.
type orderStore struct {
	fileStore
}

func (s *orderStore) Put(ctx context.Context, c cid.Cid, data []byte) error {
	links, err := content.Links(c, data)
	if err != nil {
		return err
	}
	s.mu.Lock()
	for _, l := range links {
		if _, ok := s.blocks[l]; !ok {
			s.mu.Unlock()
			return fmt.Errorf("%s put before its child %s", c, l)
		}
	}
	s.mu.Unlock()
	return s.fileStore.Put(ctx, c, data)
}

// TestImportFilePutsChildrenFirst: a store that crashes mid-import never
// holds a node whose subtree is incomplete.
func TestImportFilePutsChildrenFirst(t *testing.T) {
	for _, workers := range []int{1, 2, 5} {
		st := &orderStore{fileStore: fileStore{light: true, blocks: map[cid.Cid][]byte{}}}
		res, err := content.ImportFileLayout(context.Background(), newPattern(3000, "seq251", 1), st,
			content.ImportOptions{Workers: workers}, 7, 3)
		if err != nil {
			t.Fatalf("workers=%d: %v", workers, err)
		}
		if res.Blocks < 400 {
			t.Fatalf("workers=%d: only %d blocks", workers, res.Blocks)
		}
	}
}

// TestImportFileOddReaders: short reads and data returned with io.EOF give
// the same CID as a plain reader.
func TestImportFileOddReaders(t *testing.T) {
	data := patternBytes(2*mib+300, "seq251", 4)
	want, err := content.ImportFile(context.Background(), bytes.NewReader(data), nil, content.ImportOptions{})
	if err != nil {
		t.Fatal(err)
	}
	for name, r := range map[string]io.Reader{
		"half":          iotest.HalfReader(bytes.NewReader(data)),
		"data-with-eof": iotest.DataErrReader(bytes.NewReader(data)),
		"one-byte":      iotest.OneByteReader(bytes.NewReader(data[:mib+3])),
	} {
		got, err := content.ImportFile(context.Background(), r, nil, content.ImportOptions{Workers: 2})
		if err != nil {
			t.Fatalf("%s: %v", name, err)
		}
		if name == "one-byte" {
			w, _ := content.ImportFile(context.Background(), bytes.NewReader(data[:mib+3]), nil, content.ImportOptions{})
			if got != w {
				t.Fatalf("%s: %+v, want %+v", name, got, w)
			}
			continue
		}
		if got != want {
			t.Fatalf("%s: %+v, want %+v", name, got, want)
		}
	}
}
