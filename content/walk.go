package content

import (
	"context"
	"fmt"

	"github.com/ipfs/go-cid"
)

// Walk calls fn for every block of the DAG under root, depth-first in link
// order with each node before its children (for a file: root first, then
// the leaves in file order, each internal node just before its subtree).
// A block linked twice is visited twice. It holds one link list per level
// of the DAG, so memory follows depth, not size. An error from fn stops
// the walk and is returned as is; other errors say which block failed.
func Walk(ctx context.Context, g BlockGetter, root cid.Cid, fn func(c cid.Cid, data []byte) error) error {
	type frame struct {
		links []cid.Cid
		next  int
	}
	visit := func(c cid.Cid) ([]cid.Cid, error) {
		if err := ctx.Err(); err != nil {
			return nil, err
		}
		data, err := g.Get(ctx, c)
		if err != nil {
			return nil, fmt.Errorf("content: walking %s: getting block %s: %w", root, c, err)
		}
		if err := fn(c, data); err != nil {
			return nil, err
		}
		links, err := Links(c, data)
		if err != nil {
			return nil, fmt.Errorf("content: walking %s: %w", root, err)
		}
		return links, nil
	}
	links, err := visit(root)
	if err != nil {
		return err
	}
	stack := []frame{{links: links}}
	for len(stack) > 0 {
		top := &stack[len(stack)-1]
		if top.next == len(top.links) {
			stack = stack[:len(stack)-1]
			continue
		}
		c := top.links[top.next]
		top.next++
		links, err := visit(c)
		if err != nil {
			return err
		}
		if len(links) > 0 {
			stack = append(stack, frame{links: links})
		}
	}
	return nil
}
