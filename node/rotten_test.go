package node

import (
	"bytes"
	"context"
	"encoding/base32"
	"io"
	"log/slog"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/ipfs/go-cid"

	"github.com/shoalnet/shoal/content"
)

// A block that rots on disk is never handed out (issue #15 item 2): the
// node drops it on reading, its Bitswap server answers DONT_HAVE instead
// of sending garbage (so an honest seeder is not banned), and a reader
// gets the right bytes fetched again from a peer.

// blockFile is where an on-disk home keeps block c, following the layout
// written in blockstore/disk.go: blocks/<xy>/<name>, name the multihash in
// lower-case unpadded base32, xy its next-to-last two characters.
func blockFile(home string, c cid.Cid) string {
	name := base32.NewEncoding("abcdefghijklmnopqrstuvwxyz234567").WithPadding(base32.NoPadding).EncodeToString(c.Hash())
	return filepath.Join(home, "blocks", name[len(name)-3:len(name)-1], name)
}

// rot flips two bytes of block c's file under home and returns the
// rotten bytes.
func rot(t *testing.T, home string, c cid.Cid) []byte {
	t.Helper()
	path := blockFile(home, c)
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatalf("reading block file: %v", err)
	}
	b[10] ^= 0xff
	b[len(b)/2] ^= 0x01
	if err := os.WriteFile(path, b, 0o644); err != nil {
		t.Fatal(err)
	}
	return b
}

// leaves returns the links of a file's root block as stored in n.
func leaves(t *testing.T, n *Node, root cid.Cid) []cid.Cid {
	t.Helper()
	b, err := n.store.Get(t.Context(), root)
	if err != nil {
		t.Fatal(err)
	}
	ls, err := content.Links(root, b)
	if err != nil || len(ls) < 3 {
		t.Fatalf("root links: %v, %v; want a file of several chunks", ls, err)
	}
	return ls
}

func readFile(t *testing.T, ctx context.Context, n *Node, c cid.Cid) []byte {
	t.Helper()
	f, err := n.Open(ctx, c)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	b, err := io.ReadAll(f)
	if err != nil {
		t.Fatalf("reading %s: %v", c, err)
	}
	return b
}

func TestRottenBlockNotServedOverBitswap(t *testing.T) {
	ctx, cancel := context.WithTimeout(t.Context(), time.Minute)
	defer cancel()
	home := t.TempDir()
	seed := startNode(t, homeConfig(home))
	data := randomBytes(3<<20+999, 5)
	res, err := seed.AddFile(ctx, bytes.NewReader(data))
	if err != nil {
		t.Fatal(err)
	}
	leaf := leaves(t, seed, res.CID)[1]
	want, err := seed.store.Get(ctx, leaf)
	if err != nil {
		t.Fatal(err)
	}
	rotten := rot(t, home, leaf)

	// A leecher that can ask only the rotten seeder gets nothing for that
	// block: neither the garbage nor a reason to ban the seeder.
	leech := startNode(t, testConfig())
	if err := leech.Connect(ctx, seed.Info().Addresses[0]); err != nil {
		t.Fatal(err)
	}
	gctx, gcancel := context.WithTimeout(ctx, 5*time.Second)
	got, err := leech.Block(gctx, leaf)
	gcancel()
	if err == nil {
		t.Fatalf("the leecher got %d bytes of the rotten block (rotten: %v)", len(got), bytes.Equal(got, rotten))
	}
	if has, _ := leech.store.Has(ctx, leaf); has {
		t.Fatal("the leecher stored the block the seeder no longer has")
	}
	seedID := seed.Host().ID()
	for _, s := range leech.client.Scores().Snapshot() {
		if s.Peer == seedID && (s.Bad > 0 || !s.BannedUntil.IsZero()) {
			t.Fatalf("the seeder sent a bad block: %+v", s)
		}
	}
	// The seeder dropped it: the pin now reports it missing.
	if has, _ := seed.store.Has(ctx, leaf); has {
		t.Fatal("the seeder still indexes its rotten block")
	}
	st, err := seed.store.PinStatus(ctx, res.CID)
	if err != nil || st.Missing != 1 || st.Complete {
		t.Fatalf("pin status after the drop = %+v, %v; want 1 missing", st, err)
	}

	// An honest peer that holds the content: the leecher gets the right
	// bytes from it, and the seeder heals by fetching the block again.
	honest := startNode(t, testConfig())
	if _, err := honest.AddFile(ctx, bytes.NewReader(data)); err != nil {
		t.Fatal(err)
	}
	for _, n := range []*Node{leech, seed} {
		if err := n.Connect(ctx, honest.Info().Addresses[0]); err != nil {
			t.Fatal(err)
		}
	}
	if got := readFile(t, ctx, leech, res.CID); !bytes.Equal(got, data) {
		t.Fatalf("leecher read %d bytes, want the %d shared", len(got), len(data))
	}
	if got := readFile(t, ctx, seed, res.CID); !bytes.Equal(got, data) {
		t.Fatalf("seeder read %d bytes after healing, want the %d shared", len(got), len(data))
	}
	if got, err := seed.store.Get(ctx, leaf); err != nil || !bytes.Equal(got, want) {
		t.Fatalf("the seeder's healed block: %v", err)
	}
	if s := leech.client.Scores(); s.Banned(seedID, time.Now()) {
		t.Fatal("the leecher banned the honest seeder")
	}
}

// TestRottenBlockReadFails: with no other holder, reading a file whose
// block rotted fails after a correct prefix (never returns the rotten
// bytes); the block is logged once with its file, and Verify counts it
// missing under its pin.
func TestRottenBlockReadFails(t *testing.T) {
	ctx, cancel := context.WithTimeout(t.Context(), time.Minute)
	defer cancel()
	home := t.TempDir()
	logs := &lockedBuffer{}
	cfg := homeConfig(home)
	cfg.Logger = slog.New(slog.NewTextHandler(logs, nil))
	n := startNode(t, cfg)
	data := randomBytes(3<<20+999, 6)
	res, err := n.AddFile(ctx, bytes.NewReader(data))
	if err != nil {
		t.Fatal(err)
	}
	leaf := leaves(t, n, res.CID)[2]
	rot(t, home, leaf)

	rctx, rcancel := context.WithTimeout(ctx, 5*time.Second)
	defer rcancel()
	f, err := n.Open(rctx, res.CID)
	if err != nil {
		t.Fatal(err)
	}
	got, err := io.ReadAll(f)
	f.Close()
	if err == nil || len(got) > 2<<20 || !bytes.Equal(got, data[:len(got)]) {
		t.Fatalf("read %d bytes (err %v); want at most the 2 MiB before the rotten chunk, correct, and an error", len(got), err)
	}
	bctx, bcancel := context.WithTimeout(ctx, 5*time.Second)
	b, err := n.Block(bctx, leaf)
	bcancel()
	if err == nil {
		t.Fatalf("Block returned %d bytes of a block that only had a rotten copy", len(b))
	}
	rep, err := n.Verify(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if len(rep.Corrupt) != 0 || len(rep.Incomplete) != 1 || rep.Incomplete[0].CID != res.CID.String() || rep.Incomplete[0].Missing != 1 {
		t.Fatalf("verify after the read = %+v; want the pin incomplete by 1 block", rep)
	}
	var drops []string
	for _, line := range strings.Split(logs.String(), "\n") {
		if strings.Contains(line, "dropping block") && strings.Contains(line, leaf.String()) {
			drops = append(drops, line)
		}
	}
	if len(drops) != 1 || !strings.Contains(drops[0], blockFile(home, leaf)) || !strings.Contains(drops[0], "level=WARN") {
		t.Errorf("log lines about dropping the rotten block = %q; want one warning naming %s", drops, blockFile(home, leaf))
	}
}

// lockedBuffer is a log sink that background goroutines may write while
// the test reads it.
type lockedBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (l *lockedBuffer) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.Write(p)
}

func (l *lockedBuffer) String() string {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.String()
}
