package content

import (
	"context"
	"errors"
	"fmt"
	"strings"

	"github.com/ipfs/go-cid"
)

// splitPath parses a path inside a DAG, such as "a/b/c". Leading,
// trailing and repeated slashes are ignored, so "", "/" and "//" name the
// root itself; "." and ".." segments are rejected, because a content
// address has no parent to go back to and silently dropping them would
// make two different strings name one entry.
func splitPath(p string) ([]string, error) {
	var segs []string
	for seg := range strings.SplitSeq(p, "/") {
		switch seg {
		case "":
			continue
		case ".", "..":
			return nil, fmt.Errorf("%w: %q: segment %q is not allowed; give the path from the root CID", ErrInvalidPath, p, seg)
		}
		segs = append(segs, seg)
	}
	return segs, nil
}

// Resolve follows path (such as "a/b/c") from the directory root and
// returns the CID it names, through basic directories and HAMT shards.
// Only directory blocks are fetched: the CID at the end of the path is
// returned without being fetched. An empty path returns root.
//
// Errors: ErrInvalidPath for a bad path; ErrNoSuchPath when a segment
// names no entry; ErrNotDirectory when a segment other than the last is a
// file, a symlink (symlinks are not followed) or a raw block; ErrMalformed
// for undecodable blocks; and whatever g returns. Each names the path
// walked so far.
func Resolve(ctx context.Context, g BlockGetter, root cid.Cid, path string) (cid.Cid, error) {
	segs, err := splitPath(path)
	if err != nil {
		return cid.Undef, err
	}
	cur := root
	for i, seg := range segs {
		if err := ctx.Err(); err != nil {
			return cid.Undef, err
		}
		parent := "/" + strings.Join(segs[:i], "/")
		d, err := loadDir(ctx, g, cur)
		if err != nil {
			if errors.Is(err, ErrNotDirectory) {
				return cid.Undef, fmt.Errorf("resolving %q under %s: %s is not a directory, it cannot contain %q: %w", path, root, parent, seg, err)
			}
			return cid.Undef, fmt.Errorf("resolving %q under %s: at %s: %w", path, root, parent, err)
		}
		next, ok, err := d.lookup(ctx, g, seg)
		if err != nil {
			return cid.Undef, fmt.Errorf("resolving %q under %s: at %s: %w", path, root, parent, err)
		}
		if !ok {
			return cid.Undef, fmt.Errorf("%w: %q under %s: directory %s (%s) has no entry %q", ErrNoSuchPath, path, root, parent, cur, seg)
		}
		cur = next
	}
	return cur, nil
}
