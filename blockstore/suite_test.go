package blockstore

import (
	"context"
	"errors"
	"math/rand/v2"
	"os"
	"strings"
	"sync"
	"testing"

	"github.com/ipfs/go-cid"
)

// impl is one Store implementation under the shared suite.
type impl struct {
	name string
	open func(t *testing.T, cfg Config) Store
	// corrupt flips bytes of a stored block behind the store's back.
	corrupt func(t *testing.T, s Store, c cid.Cid)
}

var impls = []impl{
	{
		name: "Memory",
		open: func(t *testing.T, cfg Config) Store {
			m := NewMemory(cfg)
			t.Cleanup(func() { m.Close() })
			t.Cleanup(func() { checkInvariants(t, m) }) // runs first
			return m
		},
		corrupt: func(t *testing.T, s Store, c cid.Cid) {
			m := s.(*Memory)
			// The store's bytes are shared with every Memory store
			// holding the block: this one gets a flipped copy.
			m.mem.mu.Lock()
			key := string(c.Hash())
			b := append([]byte(nil), m.mem.blocks[key]...)
			b[0] ^= 0xff
			m.mem.blocks[key] = b
			m.mem.mu.Unlock()
		},
	},
	{
		name: "Disk",
		open: func(t *testing.T, cfg Config) Store {
			cfg.Dir = t.TempDir()
			d, err := Open(cfg)
			if err != nil {
				t.Fatal(err)
			}
			t.Cleanup(func() { d.Close() })
			t.Cleanup(func() { checkInvariants(t, d) }) // runs first
			return d
		},
		corrupt: func(t *testing.T, s Store, c cid.Cid) {
			p := s.(*Disk).disk.path(string(c.Hash()))
			b, err := os.ReadFile(p)
			if err != nil {
				t.Fatal(err)
			}
			b[len(b)/2] ^= 0xff
			if err := os.WriteFile(p, b, 0o600); err != nil {
				t.Fatal(err)
			}
		},
	},
}

func testConfig(t *testing.T) Config {
	return Config{Links: testLinks, Logger: testLogger(t)}
}

// TestStore runs the shared suite against every implementation.
func TestStore(t *testing.T) {
	tests := []struct {
		name string
		fn   func(t *testing.T, im impl)
	}{
		{"Basic", testBasic},
		{"AnyCidSameMultihash", testAnyCid},
		{"HashMismatch", testHashMismatch},
		{"IdempotentPut", testIdempotentPut},
		{"PutVerified", testPutVerified},
		{"HashCount", testHashCount},
		{"KeepsNoCallerBuffer", testKeepsNoCallerBuffer},
		{"IdentityCid", testIdentity},
		{"AllKeys", testAllKeys},
		{"PinsAndGC", testPinsAndGC},
		{"PinBeforeBlocksArrive", testPinBeforeArrival},
		{"LRUOrder", testLRUOrder},
		{"PinnedNeverEvicted", testPinnedNeverEvicted},
		{"Full", testFull},
		{"Verify", testVerify},
		{"VerifyOnRead", testVerifyOnRead},
		{"GetInto", testGetInto},
		{"GetIntoVerifies", testGetIntoVerifies},
		{"Concurrent", testConcurrent},
		{"Closed", testClosed},
		{"RefServed", testRefServed},
		{"RefChangedFile", testRefChangedFile},
		{"RefPinsGCVerify", testRefPinsGCVerify},
		{"RefReplacesBlock", testRefReplacesBlock},
		{"RefOpenFile", testRefOpenFile},
		{"RefAlt", testRefAlt},
		{"NoBackendIOUnderTheLock", testNoBackendIOUnderTheLock},
		{"SlowReadBlocksNoOtherBlock", testSlowReadBlocksNoOtherBlock},
	}
	for _, im := range impls {
		t.Run(im.name, func(t *testing.T) {
			for _, tc := range tests {
				t.Run(tc.name, func(t *testing.T) { tc.fn(t, im) })
			}
		})
	}
}

func testBasic(t *testing.T, im impl) {
	ctx := context.Background()
	s := im.open(t, testConfig(t))
	a, b := sizedBlock("a", 100), sizedBlock("b", 5000)
	if has(t, s, a) {
		t.Fatal("Has before Put")
	}
	_, err := s.Get(ctx, a.c)
	wantErr(t, err, ErrNotFound)
	if err == nil || !strings.Contains(err.Error(), a.c.String()) {
		t.Fatalf("error %v does not name the CID", err)
	}
	put(t, s, a, b)
	mustGet(t, s, a)
	mustGet(t, s, b)
	if n, err := s.GetSize(ctx, b.c); err != nil || n != 5000 {
		t.Fatalf("GetSize = %d, %v", n, err)
	}
	if st := s.Stat(); st.Blocks != 2 || st.Bytes != 5100 {
		t.Fatalf("Stat = %+v", st)
	}
	if err := s.Delete(ctx, a.c); err != nil {
		t.Fatal(err)
	}
	if has(t, s, a) {
		t.Fatal("Has after Delete")
	}
	wantErr(t, s.Delete(ctx, a.c), ErrNotFound)
	_, err = s.GetSize(ctx, a.c)
	wantErr(t, err, ErrNotFound)
	if st := s.Stat(); st.Blocks != 1 || st.Bytes != 5000 {
		t.Fatalf("Stat after delete = %+v", st)
	}
	// Empty block.
	e := rawBlock(nil)
	put(t, s, e)
	if got, err := s.Get(ctx, e.c); err != nil || len(got) != 0 {
		t.Fatalf("empty block: %q, %v", got, err)
	}
}

// testAnyCid: keys are multihashes, so the codec and version of the CID
// used to look a block up do not matter.
func testAnyCid(t *testing.T, im impl) {
	ctx := context.Background()
	s := im.open(t, testConfig(t))
	a := sizedBlock("a", 10)
	put(t, s, a)
	v0 := cid.NewCidV0(a.c.Hash())
	other := cid.NewCidV1(cid.DagProtobuf, a.c.Hash())
	for _, c := range []cid.Cid{v0, other} {
		got, err := s.Get(ctx, c)
		if err != nil || string(got) != string(a.data) {
			t.Fatalf("Get(%s) = %v", c, err)
		}
		if ok, _ := s.Has(ctx, c); !ok {
			t.Fatalf("Has(%s) = false", c)
		}
	}
}

func testHashMismatch(t *testing.T, im impl) {
	ctx := context.Background()
	s := im.open(t, testConfig(t))
	a := sizedBlock("a", 100)
	err := s.Put(ctx, a.c, []byte("something else"))
	wantErr(t, err, ErrHashMismatch)
	if !strings.Contains(err.Error(), a.c.String()) {
		t.Fatalf("error %q does not name the CID", err)
	}
	if has(t, s, a) || s.Stat().Blocks != 0 {
		t.Fatal("mismatched block was stored")
	}
	wantErr(t, s.Put(ctx, cid.Undef, nil), ErrHashMismatch)
	// Another hash function go-multihash supports is verified too.
	h, err := mhSum([]byte("blake"), 0xb220) // blake2b-256
	if err != nil {
		t.Fatal(err)
	}
	bc := cid.NewCidV1(cid.Raw, h)
	wantErr(t, s.Put(ctx, bc, []byte("blakE")), ErrHashMismatch)
	if err := s.Put(ctx, bc, []byte("blake")); err != nil {
		t.Fatal(err)
	}
}

func testIdempotentPut(t *testing.T, im impl) {
	s := im.open(t, testConfig(t))
	a := sizedBlock("a", 1000)
	put(t, s, a, a, a)
	if st := s.Stat(); st.Blocks != 1 || st.Bytes != 1000 {
		t.Fatalf("Stat = %+v", st)
	}
	mustGet(t, s, a)
}

// testPutVerified: PutVerified stores like Put; bytes that do not match
// (the caller's bug) are stored, and Verify finds and removes them.
func testPutVerified(t *testing.T, im impl) {
	ctx := context.Background()
	s := im.open(t, testConfig(t))
	a, b := sizedBlock("a", 1000), sizedBlock("b", 700)
	if err := s.PutVerified(ctx, a.c, a.data); err != nil {
		t.Fatal(err)
	}
	mustGet(t, s, a)
	if err := s.PutVerified(ctx, b.c, []byte("not b")); err != nil {
		t.Fatal(err)
	}
	rep, err := s.Verify(ctx)
	if err != nil || rep.Checked != 2 || len(rep.Corrupt) != 1 || string(rep.Corrupt[0].Hash()) != string(b.c.Hash()) {
		t.Fatalf("Verify = %+v, %v; want b reported corrupt", rep, err)
	}
	if has(t, s, b) {
		t.Fatal("the mismatched block is still present after Verify")
	}
	cctx, cancel := context.WithCancel(ctx)
	cancel()
	wantErr(t, s.PutVerified(cctx, b.c, b.data), context.Canceled)
}

func testIdentity(t *testing.T, im impl) {
	ctx := context.Background()
	s := im.open(t, testConfig(t))
	h, err := mhSum([]byte("inline"), 0x00)
	if err != nil {
		t.Fatal(err)
	}
	c := cid.NewCidV1(cid.Raw, h)
	wantErr(t, s.Put(ctx, c, []byte("inlinE")), ErrHashMismatch)
	if err := s.Put(ctx, c, []byte("inline")); err != nil {
		t.Fatal(err)
	}
	got, err := s.Get(ctx, c)
	if err != nil || string(got) != "inline" {
		t.Fatalf("Get = %q, %v", got, err)
	}
	if n, err := s.GetSize(ctx, c); err != nil || n != 6 {
		t.Fatalf("GetSize = %d, %v", n, err)
	}
	if ok, _ := s.Has(ctx, c); !ok || s.Stat().Blocks != 0 || len(keys(t, s)) != 0 {
		t.Fatalf("identity block stored or not found: %+v", s.Stat())
	}
	if err := s.Delete(ctx, c); err != nil {
		t.Fatal(err)
	}
	// A pinned node linking an identity CID is complete without it.
	n := nodeBlock(c)
	put(t, s, n)
	if err := s.Pin(ctx, n.c); err != nil {
		t.Fatal(err)
	}
	if ps, _ := s.PinStatus(ctx, n.c); !ps.Complete || s.Stat().Missing != 0 {
		t.Fatalf("PinStatus = %+v", ps)
	}
}

func testAllKeys(t *testing.T, im impl) {
	ctx := context.Background()
	s := im.open(t, testConfig(t))
	want := map[string]bool{}
	for i := range 50 {
		b := sizedBlock(string(rune('A'+i)), 10+i)
		put(t, s, b)
		want[string(b.c.Hash())] = true
	}
	got := keys(t, s)
	if len(got) != len(want) {
		t.Fatalf("AllKeys gave %d keys, want %d", len(got), len(want))
	}
	for k := range want {
		if !got[k] {
			t.Fatalf("AllKeys missed a key")
		}
	}
	n := 0
	for c, err := range s.AllKeys(ctx) {
		if err != nil || c.Prefix().Codec != cid.Raw {
			t.Fatalf("AllKeys yielded %s, %v", c, err)
		}
		if n++; n == 3 {
			break
		}
	}
	cctx, cancel := context.WithCancel(ctx)
	cancel()
	var lastErr error
	for _, err := range s.AllKeys(cctx) {
		lastErr = err
	}
	wantErr(t, lastErr, context.Canceled)
}

func testPinsAndGC(t *testing.T, im impl) {
	ctx := context.Background()
	s := im.open(t, testConfig(t))
	dag := newDAG("d", 100)
	extra := []block{sizedBlock("x", 10), sizedBlock("y", 20)}
	put(t, s, dag.all()...)
	put(t, s, extra...)
	if err := s.Pin(ctx, dag.root.c); err != nil {
		t.Fatal(err)
	}
	if err := s.Pin(ctx, dag.root.c); err != nil { // idempotent
		t.Fatal(err)
	}
	for _, b := range dag.all() {
		if ok, _ := s.IsPinned(ctx, b.c); !ok {
			t.Fatalf("%s not pinned", b.c)
		}
	}
	if ok, _ := s.IsPinned(ctx, extra[0].c); ok {
		t.Fatal("extra block pinned")
	}
	if st := s.Stat(); st.Pinned != 5 || st.PinnedBytes != dag.bytes() || st.Pins != 1 || st.Missing != 0 {
		t.Fatalf("Stat = %+v", st)
	}
	wantErr(t, s.Delete(ctx, dag.leaves[1].c), ErrPinned)
	res, err := s.GC(ctx)
	if err != nil || res.Removed != 2 || res.RemovedBytes != 30 || res.Kept != 5 {
		t.Fatalf("GC = %+v, %v", res, err)
	}
	for _, b := range dag.all() {
		mustGet(t, s, b)
	}
	for _, b := range extra {
		if has(t, s, b) {
			t.Fatal("GC kept an unpinned block")
		}
	}
	pins, err := s.Pins(ctx)
	if err != nil || len(pins) != 1 || !pins[0].Equals(dag.root.c) {
		t.Fatalf("Pins = %v, %v", pins, err)
	}
	st, err := s.PinStatus(ctx, dag.root.c)
	if err != nil || !st.Pinned || !st.Complete || st.Blocks != 5 || st.Bytes != dag.bytes() {
		t.Fatalf("PinStatus = %+v, %v", st, err)
	}
	wantErr(t, s.Unpin(ctx, dag.mid.c), ErrNotPinned)
	if err := s.Unpin(ctx, dag.root.c); err != nil {
		t.Fatal(err)
	}
	if st := s.Stat(); st.Pinned != 0 || st.PinnedBytes != 0 || st.Pins != 0 {
		t.Fatalf("Stat after unpin = %+v", st)
	}
	res, err = s.GC(ctx)
	if err != nil || res.Removed != 5 || s.Stat().Blocks != 0 || s.Stat().Bytes != 0 {
		t.Fatalf("GC after unpin = %+v, %v, %+v", res, err, s.Stat())
	}
}

// testPinBeforeArrival: a pin on a DAG not yet stored protects each block
// as it arrives, which is how a pinned fetch fills a full cache.
func testPinBeforeArrival(t *testing.T, im impl) {
	ctx := context.Background()
	s := im.open(t, testConfig(t))
	dag := newDAG("d", 100)
	if err := s.Pin(ctx, dag.root.c); err != nil {
		t.Fatal(err)
	}
	if st := s.Stat(); st.Missing != 1 || st.Pinned != 0 {
		t.Fatalf("Stat = %+v", st)
	}
	if ok, _ := s.IsPinned(ctx, dag.root.c); !ok {
		t.Fatal("missing root not reported pinned")
	}
	put(t, s, dag.root)
	if st := s.Stat(); st.Missing != 2 || st.Pinned != 1 {
		t.Fatalf("after root: Stat = %+v", st)
	}
	put(t, s, dag.leaves[0]) // arrives before its parent: not yet known
	if ok, _ := s.IsPinned(ctx, dag.leaves[0].c); ok {
		t.Fatal("leaf pinned before its parent arrived")
	}
	put(t, s, dag.mid) // now leaf0 is reached, leaf1 wanted
	if ok, _ := s.IsPinned(ctx, dag.leaves[0].c); !ok {
		t.Fatal("leaf not pinned after its parent arrived")
	}
	ps, _ := s.PinStatus(ctx, dag.root.c)
	if ps.Complete || ps.Missing != 2 || len(ps.FirstMissing) != 2 {
		t.Fatalf("PinStatus = %+v", ps)
	}
	put(t, s, dag.leaves[1], dag.leaves[2])
	ps, _ = s.PinStatus(ctx, dag.root.c)
	if !ps.Complete || ps.Blocks != 5 {
		t.Fatalf("PinStatus = %+v", ps)
	}
	if st := s.Stat(); st.Missing != 0 || st.Pinned != 5 {
		t.Fatalf("Stat = %+v", st)
	}
	if res, _ := s.GC(ctx); res.Removed != 0 {
		t.Fatalf("GC removed %d pinned blocks", res.Removed)
	}
}

func testLRUOrder(t *testing.T, im impl) {
	ctx := context.Background()
	cfg := testConfig(t)
	cfg.CapacityBytes = 300
	s := im.open(t, cfg)
	a, b, c, d, e := sizedBlock("a", 100), sizedBlock("b", 100), sizedBlock("c", 100), sizedBlock("d", 100), sizedBlock("e", 100)
	put(t, s, a, b, c)
	mustGet(t, s, a) // order, most recent first: a c b
	put(t, s, d)     // evicts b
	put(t, s, c)     // Put of a present block counts as use: c d a
	put(t, s, e)     // evicts a
	present := map[string]bool{"a": has(t, s, a), "b": has(t, s, b), "c": has(t, s, c), "d": has(t, s, d), "e": has(t, s, e)}
	want := map[string]bool{"a": false, "b": false, "c": true, "d": true, "e": true}
	for k := range want {
		if present[k] != want[k] {
			t.Fatalf("present = %v, want %v", present, want)
		}
	}
	if st := s.Stat(); st.Bytes != 300 || st.Evicted != 2 || st.EvictedBytes != 200 {
		t.Fatalf("Stat = %+v", st)
	}
	_, err := s.Get(ctx, b.c)
	wantErr(t, err, ErrNotFound)
}

func testPinnedNeverEvicted(t *testing.T, im impl) {
	ctx := context.Background()
	cfg := testConfig(t)
	dag := newDAG("p", 100)
	cfg.CapacityBytes = dag.bytes() + 250
	s := im.open(t, cfg)
	if err := s.Pin(ctx, dag.root.c); err != nil {
		t.Fatal(err)
	}
	put(t, s, dag.root, dag.mid)
	for i := range 20 {
		put(t, s, sizedBlock(string(rune('a'+i)), 100))
		if i == 3 {
			put(t, s, dag.leaves...) // arrive late, in a full cache
		}
	}
	for _, b := range dag.all() {
		mustGet(t, s, b)
	}
	st := s.Stat()
	if st.Bytes > cfg.CapacityBytes || st.Pinned != 5 || st.Blocks != 7 {
		t.Fatalf("Stat = %+v", st)
	}
}

func testFull(t *testing.T, im impl) {
	ctx := context.Background()
	cfg := testConfig(t)
	cfg.CapacityBytes = 250
	s := im.open(t, cfg)
	a, b := sizedBlock("a", 100), sizedBlock("b", 100)
	put(t, s, a, b)
	for _, x := range []block{a, b} {
		if err := s.Pin(ctx, x.c); err != nil {
			t.Fatal(err)
		}
	}
	c := sizedBlock("c", 100)
	err := s.Put(ctx, c.c, c.data)
	wantErr(t, err, ErrFull)
	if !strings.Contains(err.Error(), "unpin") || !strings.Contains(err.Error(), c.c.String()) {
		t.Fatalf("ErrFull message %q should name the CID and say what to do", err)
	}
	if st := s.Stat(); st.Blocks != 2 || st.Bytes != 200 {
		t.Fatalf("Stat after refused put = %+v", st)
	}
	huge := sizedBlock("huge", 300)
	wantErr(t, s.Put(ctx, huge.c, huge.data), ErrFull)
	if err := s.Unpin(ctx, a.c); err != nil {
		t.Fatal(err)
	}
	put(t, s, c) // evicts a
	if has(t, s, a) || !has(t, s, b) || !has(t, s, c) {
		t.Fatal("wrong block evicted after unpin")
	}
}

func testVerify(t *testing.T, im impl) {
	ctx := context.Background()
	s := im.open(t, testConfig(t))
	dag := newDAG("v", 1000)
	put(t, s, dag.all()...)
	other := sizedBlock("o", 500)
	put(t, s, other)
	if err := s.Pin(ctx, dag.root.c); err != nil {
		t.Fatal(err)
	}
	rep, err := s.Verify(ctx)
	if err != nil || rep.Checked != 6 || len(rep.Corrupt) != 0 || len(rep.Incomplete()) != 0 {
		t.Fatalf("clean Verify = %+v, %v", rep, err)
	}
	im.corrupt(t, s, dag.mid.c)
	im.corrupt(t, s, dag.leaves[1].c)
	im.corrupt(t, s, other.c)
	rep, err = s.Verify(ctx)
	if err != nil || rep.Checked != 6 || len(rep.Corrupt) != 3 {
		t.Fatalf("Verify = %+v, %v", rep, err)
	}
	got := map[string]bool{}
	for _, c := range rep.Corrupt {
		got[string(c.Hash())] = true
	}
	for _, b := range []block{dag.mid, dag.leaves[1], other} {
		if !got[string(b.c.Hash())] {
			t.Fatalf("Verify reported %v, not %s", rep.Corrupt, b.c)
		}
	}
	inc := rep.Incomplete()
	if len(inc) != 1 || inc[0].Missing != 2 || inc[0].Blocks != 3 {
		t.Fatalf("Incomplete = %+v", inc)
	}
	if has(t, s, other) || has(t, s, dag.leaves[1]) || has(t, s, dag.mid) {
		t.Fatal("corrupt blocks still present")
	}
	if st := s.Stat(); st.Blocks != 3 || st.Missing != 2 || st.Pinned != 3 {
		t.Fatalf("Stat = %+v", st)
	}
	put(t, s, dag.leaves[1], dag.mid) // re-fetched: pinned again
	for _, b := range dag.all() {
		if ok, _ := s.IsPinned(ctx, b.c); !ok {
			t.Fatalf("%s not pinned after re-fetch", b.c)
		}
	}
	if st := s.Stat(); st.Missing != 0 || st.Pinned != 5 {
		t.Fatalf("Stat after re-fetch = %+v", st)
	}
	if res, _ := s.GC(ctx); res.Removed != 0 || res.Kept != 5 {
		t.Fatalf("GC after re-fetch = %+v", res)
	}
}

func testVerifyOnRead(t *testing.T, im impl) {
	ctx := context.Background()
	cfg := testConfig(t)
	cfg.VerifyOnRead = true
	s := im.open(t, cfg)
	a := sizedBlock("a", 1000)
	put(t, s, a)
	im.corrupt(t, s, a.c)
	_, err := s.Get(ctx, a.c)
	wantErr(t, err, ErrCorrupt)
	if has(t, s, a) {
		t.Fatal("corrupt block still present")
	}
	put(t, s, a)
	mustGet(t, s, a)
}

// testConcurrent hammers one small store from many goroutines, then
// checks the accounting against the contents.
func testConcurrent(t *testing.T, im impl) {
	ctx := context.Background()
	cfg := testConfig(t)
	cfg.CapacityBytes = 64 << 10
	s := im.open(t, cfg)
	pool := make([]block, 64)
	r := rand.New(rand.NewPCG(1, 2))
	for i := range pool {
		pool[i] = randBlock(r, 1+r.IntN(8<<10))
	}
	dag := newDAG("c", 1000)
	var wg sync.WaitGroup
	for w := range 8 {
		wg.Go(func() {
			r := rand.New(rand.NewPCG(uint64(w), 7))
			for range 300 {
				b := pool[r.IntN(len(pool))]
				var err error
				switch op := r.IntN(10); {
				case op < 4:
					err = s.Put(ctx, b.c, b.data)
				case op < 7:
					var got []byte
					if got, err = s.Get(ctx, b.c); err == nil && string(got) != string(b.data) {
						t.Errorf("Get %s: wrong bytes", b.c)
					}
				case op < 8:
					err = s.Delete(ctx, b.c)
				case op < 9:
					_, err = s.Has(ctx, b.c)
				default:
					err = pinChurn(ctx, s, dag, r)
				}
				if err != nil && !errors.Is(err, ErrNotFound) && !errors.Is(err, ErrNotPinned) && !errors.Is(err, ErrPinned) {
					t.Errorf("op: %v", err)
				}
			}
		})
	}
	wg.Wait()
	checkAccounting(t, s, cfg.CapacityBytes)
	checkInvariants(t, s)
}

func pinChurn(ctx context.Context, s Store, dag testDAG, r *rand.Rand) error {
	switch r.IntN(4) {
	case 0:
		return s.Pin(ctx, dag.root.c)
	case 1:
		return s.Unpin(ctx, dag.root.c)
	case 2:
		_, err := s.GC(ctx)
		return err
	default:
		b := dag.all()[r.IntN(5)]
		return s.Put(ctx, b.c, b.data)
	}
}

// checkAccounting compares Stat with what the store holds.
func checkAccounting(t *testing.T, s Store, capB int64) {
	t.Helper()
	ctx := context.Background()
	var n int
	var total int64
	for c, err := range s.AllKeys(ctx) {
		if err != nil {
			t.Fatal(err)
		}
		data, err := s.Get(ctx, c)
		if err != nil {
			t.Fatalf("Get %s listed by AllKeys: %v", c, err)
		}
		if err := checkHash(c.Hash(), data); err != nil {
			t.Fatalf("%s: %v", c, err)
		}
		n++
		total += int64(len(data))
	}
	st := s.Stat()
	if st.Blocks != n || st.Bytes != total {
		t.Fatalf("Stat %+v but store holds %d blocks, %d bytes", st, n, total)
	}
	if capB > 0 && total > capB {
		t.Fatalf("%d bytes stored, capacity %d", total, capB)
	}
}

func testClosed(t *testing.T, im impl) {
	ctx := context.Background()
	s := im.open(t, testConfig(t))
	a := sizedBlock("a", 10)
	put(t, s, a)
	if err := s.Close(); err != nil {
		t.Fatal(err)
	}
	if err := s.Close(); err != nil {
		t.Fatalf("second Close: %v", err)
	}
	wantErr(t, s.Put(ctx, a.c, a.data), ErrClosed)
	_, err := s.Get(ctx, a.c)
	wantErr(t, err, ErrClosed)
	_, err = s.Has(ctx, a.c)
	wantErr(t, err, ErrClosed)
	wantErr(t, s.Pin(ctx, a.c), ErrClosed)
	_, err = s.GC(ctx)
	wantErr(t, err, ErrClosed)
	_, err = s.Verify(ctx)
	wantErr(t, err, ErrClosed)
}
