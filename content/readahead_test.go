package content_test

import (
	"bytes"
	"context"
	"io"
	"math/rand/v2"
	"sync"
	"sync/atomic"
	"testing"

	"github.com/ipfs/go-cid"

	"github.com/shoalnet/shoal/content"
)

// TestFileReaderReadAheadStaysInRange: with read-ahead on and told the
// range, a range read gets exactly the blocks a reader without read-ahead
// gets (each once, none outside the range); a sequential read of the
// whole file gets every block once; a read outside the range told (a
// sniff of the first bytes) fetches nothing ahead.
func TestFileReaderReadAheadStaysInRange(t *testing.T) {
	const chunk, width, leaves = 10, 4, 151 // depth 4
	data := patternBytes(chunk*leaves-7, "seq251", 0)
	st, res := importInto(t, data, chunk, width)
	ctx := context.Background()
	rng := rand.New(rand.NewPCG(7, 8))
	pathBlocks := func(off, ln int64) int64 { // below the root, to leaves first..last
		first, last := off/chunk, (off+ln-1)/chunk
		n := int64(0)
		for span := int64(1); span < 256; span *= width {
			n += last/span - first/span + 1
		}
		return n
	}
	for range 200 {
		off := rng.Int64N(int64(len(data)))
		ln := 1 + rng.Int64N(min(int64(len(data))-off, 12*chunk))
		r, err := content.NewFileReader(ctx, st, res.CID)
		if err != nil {
			t.Fatal(err)
		}
		r.ReadAhead(4, uint64(off), uint64(off+ln), nil)
		before := st.gets.Load()
		if _, err := r.Seek(off, io.SeekStart); err != nil {
			t.Fatal(err)
		}
		buf := make([]byte, ln)
		// Small reads, as an HTTP response copies.
		for done := 0; done < len(buf); {
			k, err := r.Read(buf[done:min(done+3, len(buf))])
			if err != nil {
				t.Fatal(err)
			}
			done += k
		}
		if err := r.Close(); err != nil {
			t.Fatal(err)
		}
		if !bytes.Equal(buf, data[off:off+ln]) {
			t.Fatalf("range %d+%d differs", off, ln)
		}
		if got, want := st.gets.Load()-before, pathBlocks(off, ln); got != want {
			t.Fatalf("range %d+%d with read-ahead: %d gets, want %d", off, ln, got, want)
		}
	}

	r, err := content.NewFileReader(ctx, st, res.CID)
	if err != nil {
		t.Fatal(err)
	}
	r.ReadAhead(4, 500, 600, nil)
	before := st.gets.Load()
	var sniff [16]byte
	if _, err := r.ReadAt(sniff[:], 0); err != nil || !bytes.Equal(sniff[:], data[:16]) {
		t.Fatalf("sniff: %v", err)
	}
	if err := r.Close(); err != nil {
		t.Fatal(err)
	}
	if got := st.gets.Load() - before; got != pathBlocks(0, 16) {
		t.Fatalf("a read before the range: %d gets, want %d (nothing ahead)", got, pathBlocks(0, 16))
	}

	r, err = content.NewFileReader(ctx, st, res.CID)
	if err != nil {
		t.Fatal(err)
	}
	r.ReadAhead(4, 0, r.Size(), nil)
	before = st.gets.Load()
	var out bytes.Buffer
	if _, err := io.CopyBuffer(&out, struct{ io.Reader }{r}, make([]byte, 7)); err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(out.Bytes(), data) {
		t.Fatal("sequential read with read-ahead differs")
	}
	if got := st.gets.Load() - before; got != int64(res.Blocks-1) {
		t.Fatalf("sequential read with read-ahead: %d gets, want %d (every block but the root, once)", got, res.Blocks-1)
	}
}

// stallGetter answers the blocks in quick at once and blocks on every
// other until its context ends, counting the calls in flight.
type stallGetter struct {
	g        content.BlockGetter
	mu       sync.Mutex
	quick    map[cid.Cid]bool
	inFlight atomic.Int64
	started  chan struct{} // one send per stalled call
}

func (s *stallGetter) Get(ctx context.Context, c cid.Cid) ([]byte, error) {
	s.mu.Lock()
	quick := s.quick[c]
	s.mu.Unlock()
	if quick {
		return s.g.Get(ctx, c)
	}
	s.inFlight.Add(1)
	defer s.inFlight.Add(-1)
	s.started <- struct{}{}
	<-ctx.Done()
	return nil, ctx.Err()
}

// stalledRead opens a 4-leaf file whose only blocks that arrive are the
// root and the first leaf, turns read-ahead on and reads the first 10
// bytes: what follows is fetched ahead and stalls. With onlyMissing ≥ 0
// every leaf but that one counts as held.
func stalledRead(t *testing.T, onlyMissing int) (*content.FileReader, *stallGetter) {
	t.Helper()
	data := patternBytes(3*mib+5, "seq251", 2)
	st, res := importInto(t, data, 0, 0)
	links, err := content.Links(res.CID, mustGet(t, st, res.CID))
	if err != nil || len(links) != 4 {
		t.Fatalf("root links %d (%v), want 4", len(links), err)
	}
	g := &stallGetter{g: st, quick: map[cid.Cid]bool{res.CID: true, links[0]: true}, started: make(chan struct{}, 8)}
	r, err := content.NewFileReader(context.Background(), g, res.CID)
	if err != nil {
		t.Fatal(err)
	}
	var held func(cid.Cid) bool
	if onlyMissing >= 0 {
		held = func(c cid.Cid) bool { return c != links[onlyMissing] }
	}
	r.ReadAhead(4, 0, r.Size(), held)
	buf := make([]byte, 10)
	if _, err := r.Read(buf); err != nil || !bytes.Equal(buf, data[:10]) {
		t.Fatalf("first read: %v", err)
	}
	return r, g
}

// TestFileReaderReadAheadClose: blocks fetched ahead that never arrive are
// abandoned by Close, which returns once every fetch it started has ended.
func TestFileReaderReadAheadClose(t *testing.T) {
	r, g := stalledRead(t, -1)
	for range 3 { // leaves 1..3 are fetched ahead and stall
		<-g.started
	}
	if err := r.Close(); err != nil {
		t.Fatal(err)
	}
	if n := g.inFlight.Load(); n != 0 {
		t.Fatalf("%d fetches still running after Close", n)
	}
	if err := r.Close(); err != nil {
		t.Fatalf("second Close: %v", err)
	}
}

func mustGet(t *testing.T, g content.BlockGetter, c cid.Cid) []byte {
	t.Helper()
	b, err := g.Get(context.Background(), c)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

// TestFileReaderReadAheadSkipsHeld: blocks the held function names are
// not fetched ahead (a stored block costs no round trip).
func TestFileReaderReadAheadSkipsHeld(t *testing.T) {
	r, g := stalledRead(t, 2)
	<-g.started // leaf 2, the one not held
	if err := r.Close(); err != nil {
		t.Fatal(err)
	}
	if n := len(g.started); n != 0 {
		t.Fatalf("%d more blocks fetched ahead; want only the one not held", n)
	}
}
