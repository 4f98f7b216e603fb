package blockstore

import (
	"context"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/ipfs/go-cid"
)

func openDisk(t *testing.T, cfg Config) *Disk {
	t.Helper()
	if cfg.Logger == nil {
		cfg.Logger = testLogger(t)
	}
	if cfg.Links == nil {
		cfg.Links = testLinks
	}
	d, err := Open(cfg)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { d.Close() })
	t.Cleanup(func() { checkInvariants(t, d) }) // runs first
	return d
}

func TestDiskReopenKeepsBlocksAndPins(t *testing.T) {
	ctx := context.Background()
	dir := t.TempDir()
	s := openDisk(t, Config{Dir: dir})
	dag := newDAG("r", 2000)
	other := dag.leaves[0] // shared with the DAG
	loose := []block{sizedBlock("l1", 10), sizedBlock("l2", 20)}
	put(t, s, dag.all()...)
	put(t, s, loose...)
	if err := s.Pin(ctx, dag.root.c); err != nil {
		t.Fatal(err)
	}
	missing := sizedBlock("missing", 5)
	if err := s.Pin(ctx, missing.c); err != nil {
		t.Fatal(err)
	}
	if err := s.Delete(ctx, loose[1].c); err != nil {
		t.Fatal(err)
	}
	before := s.Stat()
	if err := s.Close(); err != nil {
		t.Fatal(err)
	}

	s = openDisk(t, Config{Dir: dir})
	after := s.Stat()
	after.Evicted, after.EvictedBytes = before.Evicted, before.EvictedBytes
	if after != before {
		t.Fatalf("Stat after reopen %+v, before %+v", after, before)
	}
	for _, b := range append(dag.all(), loose[0], other) {
		mustGet(t, s, b)
	}
	if has(t, s, loose[1]) {
		t.Fatal("deleted block back after reopen")
	}
	pins, _ := s.Pins(ctx)
	if len(pins) != 2 {
		t.Fatalf("Pins after reopen = %v", pins)
	}
	for _, b := range dag.all() {
		if ok, _ := s.IsPinned(ctx, b.c); !ok {
			t.Fatalf("%s not pinned after reopen", b.c)
		}
	}
	if res, _ := s.GC(ctx); res.Removed != 1 || res.Kept != 5 {
		t.Fatalf("GC after reopen = %+v", res)
	}
}

// TestDiskReopenLRU: after a restart, LRU order is the files' write
// order (access times are not persisted), and a lowered capacity is
// enforced at Open.
func TestDiskReopenLRU(t *testing.T) {
	dir := t.TempDir()
	s := openDisk(t, Config{Dir: dir})
	bs := []block{sizedBlock("a", 100), sizedBlock("b", 100), sizedBlock("c", 100), sizedBlock("d", 100)}
	put(t, s, bs...)
	s.Close()
	// Make b the oldest, then a, d, c.
	base := time.Now().Add(-time.Hour)
	for i, name := range []int{1, 0, 3, 2} {
		p := s.disk.path(string(bs[name].c.Hash()))
		mt := base.Add(time.Duration(i) * time.Minute)
		if err := os.Chtimes(p, mt, mt); err != nil {
			t.Fatal(err)
		}
	}
	s = openDisk(t, Config{Dir: dir, CapacityBytes: 300})
	if has(t, s, bs[1]) || s.Stat().Blocks != 3 {
		t.Fatalf("Open with lower capacity kept the oldest block; Stat %+v", s.Stat())
	}
	put(t, s, sizedBlock("e", 100))
	if has(t, s, bs[0]) || !has(t, s, bs[3]) || !has(t, s, bs[2]) {
		t.Fatal("eviction after reopen did not follow write order")
	}
}

func TestDiskOpenCleansTempAndIgnoresForeignFiles(t *testing.T) {
	dir := t.TempDir()
	s := openDisk(t, Config{Dir: dir})
	a := sizedBlock("a", 100)
	put(t, s, a)
	s.Close()
	p := s.disk.path(string(a.c.Hash()))
	shard := filepath.Dir(p)
	write := func(name string, data []byte) string {
		t.Helper()
		fp := filepath.Join(shard, name)
		if err := os.WriteFile(fp, data, 0o600); err != nil {
			t.Fatal(err)
		}
		return fp
	}
	tmp := write(tmpPrefix+"123", a.data[:50])
	write("README", []byte("hello"))
	wrongShard := sizedBlock("z", 10)
	write(keyEncoding.EncodeToString(wrongShard.c.Hash()), wrongShard.data)
	s = openDisk(t, Config{Dir: dir})
	if _, err := os.Stat(tmp); !os.IsNotExist(err) {
		t.Fatalf("temporary file survived Open: %v", err)
	}
	if st := s.Stat(); st.Blocks != 1 || st.Bytes != 100 {
		t.Fatalf("Stat = %+v; foreign files were indexed", st)
	}
	mustGet(t, s, a)
}

func TestDiskSecondOpenRefused(t *testing.T) {
	dir := t.TempDir()
	openDisk(t, Config{Dir: dir})
	_, err := Open(Config{Dir: dir})
	if err == nil || !strings.Contains(err.Error(), "in use") {
		t.Fatalf("second Open: %v", err)
	}
}

func TestDiskBadPinsFileRefused(t *testing.T) {
	dir := t.TempDir()
	s := openDisk(t, Config{Dir: dir})
	if err := s.Pin(context.Background(), sizedBlock("a", 1).c); err != nil {
		t.Fatal(err)
	}
	s.Close()
	p := filepath.Join(dir, pinsFileName)
	b, _ := os.ReadFile(p)
	if err := os.WriteFile(p, append(b, "not-a-cid\n"...), 0o600); err != nil {
		t.Fatal(err)
	}
	_, err := Open(Config{Dir: dir})
	if err == nil || !strings.Contains(err.Error(), "line 3") {
		t.Fatalf("Open with a bad pins line: %v", err)
	}
}

func TestDiskSync(t *testing.T) {
	s := openDisk(t, Config{Dir: t.TempDir(), Sync: true})
	dag := newDAG("s", 1<<20)
	put(t, s, dag.all()...)
	for _, b := range dag.all() {
		mustGet(t, s, b)
	}
}

func TestConfigValidate(t *testing.T) {
	if err := (Config{CapacityBytes: -1}).Validate(); err == nil {
		t.Fatal("negative capacity accepted")
	}
	if err := DefaultConfig("x").Validate(); err != nil {
		t.Fatal(err)
	}
	if _, err := Open(Config{}); err == nil {
		t.Fatal("Open without Dir accepted")
	}
}

// FuzzLoadPins: the pins file is read at every start; whatever it holds,
// loading must not panic, and what loads must save and load back equal.
func FuzzLoadPins(f *testing.F) {
	c := sizedBlock("a", 1).c
	f.Add([]byte(pinsHeader + "\n" + c.String() + "\n"))
	f.Add([]byte(pinsHeader + "\n\n" + cid.NewCidV0(c.Hash()).String()))
	f.Add([]byte("garbage"))
	f.Add([]byte(pinsHeader + "\nbafy\n"))
	f.Fuzz(func(t *testing.T, data []byte) {
		dir := t.TempDir()
		d := &diskBackend{dir: dir}
		if err := os.WriteFile(d.pinsPath(), data, 0o600); err != nil {
			t.Fatal(err)
		}
		roots, err := d.loadPins()
		if err != nil {
			return
		}
		if err := d.savePins(roots); err != nil {
			t.Fatal(err)
		}
		again, err := d.loadPins()
		if err != nil || len(again) != len(roots) {
			t.Fatalf("reload: %v, %d vs %d roots", err, len(again), len(roots))
		}
		for i := range roots {
			if !roots[i].Equals(again[i]) {
				t.Fatalf("root %d changed: %s vs %s", i, roots[i], again[i])
			}
		}
	})
}

// TestDiskUncleanShutdownRechecksRecent simulates what a power cut
// without Sync can leave: a renamed block file whose data never reached
// the disk. The DIRTY marker makes Open rehash recent blocks.
func TestDiskUncleanShutdownRechecksRecent(t *testing.T) {
	dir := t.TempDir()
	s := openDisk(t, Config{Dir: dir})
	old, torn, fine := sizedBlock("old", 100), sizedBlock("torn", 100), sizedBlock("fine", 100)
	put(t, s, old, torn, fine)
	s.Close()
	if _, err := os.Stat(filepath.Join(dir, dirtyFileName)); !os.IsNotExist(err) {
		t.Fatalf("DIRTY marker left after Close: %v", err)
	}
	// Damage both; only the recent one is in the recheck window.
	for _, b := range []block{old, torn} {
		if err := os.Truncate(s.disk.path(string(b.c.Hash())), 10); err != nil {
			t.Fatal(err)
		}
	}
	hourAgo := time.Now().Add(-time.Hour) // after Truncate, which sets mtime
	if err := os.Chtimes(s.disk.path(string(old.c.Hash())), hourAgo, hourAgo); err != nil {
		t.Fatal(err)
	}
	// A clean reopen checks nothing.
	s = openDisk(t, Config{Dir: dir})
	if s.Stat().Blocks != 3 {
		t.Fatalf("clean open dropped blocks: %+v", s.Stat())
	}
	s.Close()
	if err := os.WriteFile(filepath.Join(dir, dirtyFileName), nil, 0o644); err != nil {
		t.Fatal(err)
	}
	s = openDisk(t, Config{Dir: dir})
	if has(t, s, torn) || !has(t, s, fine) || !has(t, s, old) {
		t.Fatal("unclean open did not remove exactly the recent damaged block")
	}
	rep, err := s.Verify(context.Background())
	if err != nil || len(rep.Corrupt) != 1 || !rep.Corrupt[0].Equals(cid.NewCidV1(cid.Raw, old.c.Hash())) {
		t.Fatalf("Verify = %+v, %v", rep, err)
	}
}
