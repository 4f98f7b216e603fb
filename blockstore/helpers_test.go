package blockstore

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"log/slog"
	"math/rand/v2"
	"os"
	"strings"
	"testing"

	"github.com/ipfs/go-cid"
	mh "github.com/multiformats/go-multihash"
	"go.uber.org/goleak"
)

func TestMain(m *testing.M) {
	if os.Getenv(crashEnvDir) != "" {
		// Child of TestCrashRecovery: run only the helper, no leak check.
		os.Exit(m.Run())
	}
	goleak.VerifyTestMain(m)
}

// testCodec marks the test DAG format: the block is "links:" followed by
// CID strings separated by newlines. The store does not care what format
// a LinkFunc reads; this one keeps the tests free of the content package.
const testCodec = cid.DagCBOR

func testLinks(c cid.Cid, data []byte) ([]cid.Cid, error) {
	if c.Prefix().Codec != testCodec {
		return nil, nil
	}
	s, ok := strings.CutPrefix(string(data), "links:")
	if !ok {
		return nil, fmt.Errorf("not a test node")
	}
	var out []cid.Cid
	for _, f := range strings.Fields(s) {
		l, err := cid.Decode(f)
		if err != nil {
			return nil, err
		}
		out = append(out, l)
	}
	return out, nil
}

func sum(codec uint64, data []byte) cid.Cid {
	h, err := mh.Sum(data, mh.SHA2_256, -1)
	if err != nil {
		panic(err)
	}
	return cid.NewCidV1(codec, h)
}

type block struct {
	c    cid.Cid
	data []byte
}

func rawBlock(data []byte) block { return block{sum(cid.Raw, data), data} }

// sizedBlock is a raw block of n bytes, distinct for each tag.
func sizedBlock(tag string, n int) block {
	data := bytes.Repeat([]byte{0}, n)
	copy(data, tag)
	return rawBlock(data)
}

func nodeBlock(links ...cid.Cid) block {
	var b strings.Builder
	b.WriteString("links:")
	for _, l := range links {
		b.WriteString(" " + l.String())
	}
	data := []byte(b.String())
	return block{sum(testCodec, data), data}
}

func randBlock(r *rand.Rand, n int) block {
	data := make([]byte, n)
	for i := range data {
		data[i] = byte(r.Uint32())
	}
	return rawBlock(data)
}

// testDAG is root -> (mid -> (leaf0, leaf1), leaf2); all leaves raw.
type testDAG struct {
	root, mid block
	leaves    []block
}

func newDAG(tag string, leafSize int) testDAG {
	var d testDAG
	for i := range 3 {
		d.leaves = append(d.leaves, sizedBlock(fmt.Sprintf("%s-leaf%d", tag, i), leafSize))
	}
	d.mid = nodeBlock(d.leaves[0].c, d.leaves[1].c)
	d.root = nodeBlock(d.mid.c, d.leaves[2].c)
	return d
}

func (d testDAG) all() []block { return append([]block{d.root, d.mid}, d.leaves...) }

func (d testDAG) bytes() int64 {
	var n int64
	for _, b := range d.all() {
		n += int64(len(b.data))
	}
	return n
}

func put(t testing.TB, s Store, bs ...block) {
	t.Helper()
	for _, b := range bs {
		if err := s.Put(context.Background(), b.c, b.data); err != nil {
			t.Fatalf("Put %s: %v", b.c, err)
		}
	}
}

func has(t testing.TB, s Store, b block) bool {
	t.Helper()
	ok, err := s.Has(context.Background(), b.c)
	if err != nil {
		t.Fatalf("Has %s: %v", b.c, err)
	}
	return ok
}

func mustGet(t testing.TB, s Store, b block) {
	t.Helper()
	got, err := s.Get(context.Background(), b.c)
	if err != nil {
		t.Fatalf("Get %s: %v", b.c, err)
	}
	if !bytes.Equal(got, b.data) {
		t.Fatalf("Get %s: wrong bytes (%d, want %d)", b.c, len(got), len(b.data))
	}
}

func wantErr(t testing.TB, err, target error) {
	t.Helper()
	if !errors.Is(err, target) {
		t.Fatalf("got error %v, want %v", err, target)
	}
}

// testLogger routes the store's log to t.Log.
func testLogger(t testing.TB) *slog.Logger {
	return slog.New(slog.NewTextHandler(tWriter{t}, &slog.HandlerOptions{Level: slog.LevelDebug}))
}

type tWriter struct{ t testing.TB }

func (w tWriter) Write(p []byte) (int, error) {
	w.t.Log(strings.TrimSpace(string(p)))
	return len(p), nil
}

// keys collects AllKeys as multihash strings.
func keys(t testing.TB, s Store) map[string]bool {
	t.Helper()
	out := map[string]bool{}
	for c, err := range s.AllKeys(context.Background()) {
		if err != nil {
			t.Fatalf("AllKeys: %v", err)
		}
		out[string(c.Hash())] = true
	}
	return out
}

func mhSum(data []byte, code uint64) (mh.Multihash, error) { return mh.Sum(data, code, -1) }

// engineOf reaches the shared engine of either implementation.
func engineOf(s Store) *engine {
	switch s := s.(type) {
	case *Disk:
		return s.engine
	case *Memory:
		return s.engine
	}
	panic("unknown store")
}

// checkInvariants checks the engine's books against its index: byte
// counts, the LRU holding exactly the unpinned entries, and the pinned
// set agreeing with a fresh walk from the roots.
func checkInvariants(t testing.TB, s Store) {
	t.Helper()
	e := engineOf(s)
	e.mu.Lock()
	defer e.mu.Unlock()
	var used, pinnedB int64
	pinned, refs := 0, 0
	var refBytes int64
	for k, en := range e.entries {
		used += en.stored()
		if en.ref != nil {
			refs++
			refBytes += en.size
		}
		if en.key != k {
			t.Fatalf("entry under %x has key %x", k, en.key)
		}
		if en.pinned {
			pinned++
			pinnedB += en.stored()
			if e.pins.set[k] != en {
				t.Fatalf("pinned entry %s not in the pin set", keyCid(k))
			}
		}
	}
	inLRU := 0
	for en := e.lru.next; en != &e.lru; en = en.next {
		inLRU++
		if en.pinned || en.ref != nil || e.entries[en.key] != en {
			t.Fatalf("LRU holds %s (pinned %v, indexed %v)", keyCid(en.key), en.pinned, e.entries[en.key] == en)
		}
	}
	unpinnedRefs := 0
	for _, en := range e.entries {
		if en.ref != nil && !en.pinned {
			unpinnedRefs++
		}
	}
	if refs != e.refs.count || refBytes != e.refs.bytes {
		t.Fatalf("references: %d (%d bytes) indexed, counters say %d (%d)", refs, refBytes, e.refs.count, e.refs.bytes)
	}
	if used != e.used || pinnedB != e.pins.bytes || pinned != len(e.pins.set) || inLRU+pinned+unpinnedRefs != len(e.entries) {
		t.Fatalf("books: used %d/%d pinned bytes %d/%d pinned %d/%d lru %d entries %d",
			used, e.used, pinnedB, e.pins.bytes, pinned, len(e.pins.set), inLRU, len(e.entries))
	}
	if e.reserved != 0 || len(e.inflight) != 0 {
		t.Fatalf("idle store has %d reserved bytes, %d keys in flight", e.reserved, len(e.inflight))
	}
	before := make(map[string]bool, len(e.pins.set))
	for k := range e.pins.set {
		before[k] = true
	}
	e.pins.recomputeLocked(e)
	if len(before) != len(e.pins.set) {
		t.Fatalf("pin set had %d blocks, a fresh walk finds %d", len(before), len(e.pins.set))
	}
	for k := range e.pins.set {
		if !before[k] {
			t.Fatalf("fresh walk pins %s, the incremental set did not", keyCid(k))
		}
	}
}
