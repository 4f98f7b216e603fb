package node

import (
	"context"
	"fmt"

	"github.com/ipfs/go-cid"
)

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
		Corrupt: cidStrings(br.Corrupt), Vanished: cidStrings(br.Vanished), RefsGone: cidStrings(br.RefsGone),
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
	if len(rep.RefsGone) > 0 {
		n.log.Warn("repo verify dropped references to files that no longer hold their blocks", "count", len(rep.RefsGone))
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
