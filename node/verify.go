package node

import (
	"context"
	"fmt"

	"github.com/ipfs/go-cid"
)

// VerifyReport is what `shoal repo verify` found: every stored block
// rehashed against its CID, and every pin checked for missing blocks.
type VerifyReport struct {
	Checked int   `json:"checked"` // blocks rehashed
	Bytes   int64 `json:"bytes"`   // their bytes
	// Corrupt blocks did not hash to their CID; they were removed, so a
	// fetch or pin of the content they belong to gets them again.
	Corrupt []string `json:"corrupt"`
	// Vanished blocks were indexed but their data was gone; forgotten.
	Vanished []string `json:"vanished"`
	// Pins is the number of pin roots.
	Pins int `json:"pins"`
	// Incomplete lists the pins whose DAG is missing blocks (a pin whose
	// fetch was interrupted, or that lost a corrupt block just now).
	Incomplete []IncompletePin `json:"incomplete"`
	// Relisted are pinned roots that were missing from the roots
	// catalogue (a crash between pinning and cataloguing) and were added
	// back, so `shoal ls` and reproviding see them again.
	Relisted []string `json:"relisted"`
}

// IncompletePin is a pin with missing blocks.
type IncompletePin struct {
	CID     string `json:"cid"`
	Blocks  int    `json:"blocks"`  // stored blocks under the root
	Missing int    `json:"missing"` // linked blocks not stored
}

// Damaged reports whether the check found blocks that were corrupt or
// gone: the store repaired itself by dropping them, but content that used
// them must be fetched again.
func (r VerifyReport) Damaged() bool { return len(r.Corrupt) > 0 || len(r.Vanished) > 0 }

// Verify rehashes every stored block against its CID, removes those that
// do not match, checks every pin for missing blocks and puts pinned roots
// missing from the roots catalogue back into it. The node keeps serving
// while it runs.
func (n *Node) Verify(ctx context.Context) (VerifyReport, error) {
	if n.ctx.Err() != nil {
		return VerifyReport{}, ErrClosed
	}
	br, err := n.store.Verify(ctx)
	if err != nil {
		return VerifyReport{}, fmt.Errorf("verifying the block store: %w", err)
	}
	rep := VerifyReport{
		Checked: br.Checked, Bytes: br.Bytes, Pins: len(br.Pins),
		Corrupt: cidStrings(br.Corrupt), Vanished: cidStrings(br.Vanished),
		Incomplete: []IncompletePin{}, Relisted: []string{},
	}
	for _, p := range br.Pins {
		if !p.Complete {
			rep.Incomplete = append(rep.Incomplete, IncompletePin{CID: p.Root.String(), Blocks: p.Blocks, Missing: p.Missing})
		}
		if _, ok := n.roots.get(p.Root); ok || !p.Pinned {
			continue
		}
		if err := n.roots.add(p.Root, n.dagSize(ctx, p.Root)); err != nil {
			return rep, fmt.Errorf("re-cataloguing pinned root %s: %w", p.Root, err)
		}
		rep.Relisted = append(rep.Relisted, p.Root.String())
	}
	if rep.Damaged() {
		n.log.Warn("repo verify removed damaged blocks", "corrupt", len(rep.Corrupt), "vanished", len(rep.Vanished))
	}
	return rep, nil
}

func cidStrings(cs []cid.Cid) []string {
	out := make([]string, 0, len(cs))
	for _, c := range cs {
		out = append(out, c.String())
	}
	return out
}
