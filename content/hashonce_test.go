package content

import (
	"bytes"
	"context"
	"math/rand/v2"
	"sync"
	"testing"

	"github.com/ipfs/go-cid"
)

// hashCountingPutter records the blocks put and whether through Put or
// PutVerified; with verified false it has no PutVerified at all.
type hashCountingPutter struct {
	mu                 sync.Mutex
	blocks             map[cid.Cid][]byte
	puts, verifiedPuts int
}

func (p *hashCountingPutter) keep(c cid.Cid, data []byte, verified bool) {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.blocks[c] = bytes.Clone(data) // the importer reuses its buffers
	if verified {
		p.verifiedPuts++
	} else {
		p.puts++
	}
}

func (p *hashCountingPutter) Put(_ context.Context, c cid.Cid, data []byte) error {
	p.keep(c, data, false)
	return nil
}

type verifiedCountingPutter struct{ *hashCountingPutter }

func (p verifiedCountingPutter) PutVerified(_ context.Context, c cid.Cid, data []byte) error {
	p.keep(c, data, true)
	return nil
}

// TestImportHashesEachBlockOnce: sharing a directory with a multi-level
// file and a symlink hashes every block it produces exactly once, and a
// store that can skip its own check (VerifiedPutter) gets every block
// through PutVerified, so nothing hashes it again; a plain BlockPutter
// still gets Put. Every block stored hashes to its CID.
func TestImportHashesEachBlockOnce(t *testing.T) {
	ctx := context.Background()
	data := make([]byte, 50<<10+123)
	r := rand.New(rand.NewPCG(5, 6))
	for i := range data {
		data[i] = byte(r.Uint32())
	}
	for _, verified := range []bool{true, false} {
		p := &hashCountingPutter{blocks: map[cid.Cid][]byte{}}
		var dst BlockPutter = p
		if verified {
			dst = verifiedCountingPutter{p}
		}
		before := blockHashes.Load()
		file, err := importFile(ctx, bytes.NewReader(data), dst, ImportOptions{Workers: 3}, fileLayout{chunkSize: 4 << 10, maxLinks: 4})
		if err != nil {
			t.Fatal(err)
		}
		b := NewDirBuilder(dst, ImportOptions{})
		if err := b.AddImported("d/big.bin", file); err != nil {
			t.Fatal(err)
		}
		if err := b.AddSymlink(ctx, "d/link", "big.bin"); err != nil {
			t.Fatal(err)
		}
		res, err := b.Finish(ctx)
		if err != nil {
			t.Fatal(err)
		}
		hashes := blockHashes.Load() - before
		if hashes != uint64(res.Blocks) || res.Blocks <= file.Blocks+2 {
			t.Errorf("verified=%v: %d blocks produced (file %d), %d hashes; want one hash per block", verified, res.Blocks, file.Blocks, hashes)
		}
		wantVerified, wantPlain := res.Blocks, 0
		if !verified {
			wantVerified, wantPlain = 0, res.Blocks
		}
		if p.verifiedPuts != wantVerified || p.puts != wantPlain {
			t.Errorf("verified=%v: %d PutVerified and %d Put, want %d and %d", verified, p.verifiedPuts, p.puts, wantVerified, wantPlain)
		}
		for c, blk := range p.blocks {
			got, err := c.Prefix().Sum(blk)
			if err != nil || !got.Equals(c) {
				t.Fatalf("block put as %s hashes to %s (%v)", c, got, err)
			}
		}
	}
}
