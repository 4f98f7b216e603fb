package node

import (
	"bytes"
	"context"
	"io/fs"
	"os"
	"path/filepath"
	"slices"
	"testing"
	"time"
)

// TestVerifyFindsAndRemovesCorruptBlocks: a block file damaged on disk is
// found by Verify, removed, and the pin that needs it reported incomplete;
// a second Verify finds nothing more; a pinned root missing from the
// roots catalogue is put back.
func TestVerifyFindsAndRemovesCorruptBlocks(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	cfg := testConfig()
	cfg.Home = t.TempDir()
	n := startNode(t, cfg)
	data := randomBytes(3<<20+5, 7)
	res, err := n.AddFile(ctx, bytes.NewReader(data))
	if err != nil {
		t.Fatal(err)
	}

	clean, err := n.Verify(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if clean.Damaged() || clean.Checked != res.Blocks || clean.Pins != 1 || len(clean.Incomplete) != 0 || len(clean.Relisted) != 0 {
		t.Fatalf("verify of an intact store = %+v, want %d blocks checked, 1 complete pin", clean, res.Blocks)
	}

	// Damage one leaf's file (any block file other than the root's).
	var victim string
	err = filepath.WalkDir(filepath.Join(cfg.Home, "blocks"), func(p string, d fs.DirEntry, err error) error {
		if err == nil && !d.IsDir() && victim == "" {
			if st, _ := os.Stat(p); st.Size() > 1000 {
				victim = p
			}
		}
		return err
	})
	if err != nil || victim == "" {
		t.Fatalf("no block file found under %s (%v)", cfg.Home, err)
	}
	b, err := os.ReadFile(victim)
	if err != nil {
		t.Fatal(err)
	}
	b[len(b)/2] ^= 0xff
	if err := os.WriteFile(victim, b, 0o600); err != nil {
		t.Fatal(err)
	}
	// And drop the root from the catalogue, as a crash between pinning and
	// cataloguing would.
	if err := n.roots.remove(res.CID); err != nil {
		t.Fatal(err)
	}

	rep, err := n.Verify(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if len(rep.Corrupt) != 1 || !rep.Damaged() {
		t.Fatalf("verify after damaging %s: corrupt = %v, want one block", victim, rep.Corrupt)
	}
	if len(rep.Incomplete) != 1 || rep.Incomplete[0].CID != res.CID.String() || rep.Incomplete[0].Missing != 1 {
		t.Fatalf("incomplete = %+v, want %s missing 1 block", rep.Incomplete, res.CID)
	}
	if !slices.Equal(rep.Relisted, []string{res.CID.String()}) {
		t.Fatalf("relisted = %v, want [%s]", rep.Relisted, res.CID)
	}
	if _, err := os.Stat(victim); err == nil {
		t.Fatalf("corrupt block file %s still on disk", victim)
	}
	roots, err := n.Roots(ctx)
	if err != nil || len(roots) != 1 || roots[0].Size != uint64(len(data)) || !roots[0].Pinned {
		t.Fatalf("roots after verify = %+v (%v), want the pinned root with size %d", roots, err, len(data))
	}

	again, err := n.Verify(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if again.Damaged() || again.Checked != res.Blocks-1 || len(again.Relisted) != 0 {
		t.Fatalf("second verify = %+v, want %d intact blocks and nothing to repair", again, res.Blocks-1)
	}
}

// TestVerifyClosedNode: Verify on a closed node says so.
func TestVerifyClosedNode(t *testing.T) {
	n, err := New(testConfig())
	if err != nil {
		t.Fatal(err)
	}
	n.Close()
	if _, err := n.Verify(context.Background()); err != ErrClosed {
		t.Fatalf("Verify after Close = %v, want ErrClosed", err)
	}
}
