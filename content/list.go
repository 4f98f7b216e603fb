package content

import (
	"context"
	"fmt"
	"slices"
	"strings"
	"sync"

	"github.com/ipfs/go-cid"
)

// listWorkers bounds the child blocks List fetches at once to learn entry
// types.
const listWorkers = 8

// List returns the entries of the directory dir, sorted by name: all of
// them, across every shard of a HAMT directory. To report each entry's
// type and size it fetches every dag-pb child's root block (raw children
// are files and need no fetch), several at a time.
//
// Names are checked as DirBuilder checks them: a directory holding an
// empty name, ".", "..", a name with "/" or the same name twice is
// ErrMalformed, so callers that write entries to disk never see a name
// that escapes the target directory. Errors: ErrNotDirectory when dir is
// not a directory; ErrMalformed for undecodable or inconsistent blocks
// (including HAMT entries stored in the wrong slot); whatever g returns.
func List(ctx context.Context, g BlockGetter, dir cid.Cid) ([]DirEntry, error) {
	d, err := loadDir(ctx, g, dir)
	if err != nil {
		return nil, fmt.Errorf("listing %s: %w", dir, err)
	}
	var links []PBLink
	if d.shard == nil {
		links = d.node.Links
	} else {
		w := &shardWalker{g: g, seen: map[cid.Cid]bool{dir: true}}
		if err := w.walk(ctx, d, 0, 0); err != nil {
			return nil, fmt.Errorf("listing %s: %w", dir, err)
		}
		links = w.entries
	}
	entries := make([]DirEntry, len(links))
	for i, l := range links {
		if err := validName(l.Name); err != nil {
			return nil, fmt.Errorf("%w: listing %s: entry %d: %v", ErrMalformed, dir, i, err)
		}
		entries[i] = DirEntry{Name: l.Name, CID: l.Hash, Size: l.Tsize}
	}
	slices.SortFunc(entries, func(a, b DirEntry) int { return strings.Compare(a.Name, b.Name) })
	for i := 1; i < len(entries); i++ {
		if entries[i].Name == entries[i-1].Name {
			return nil, fmt.Errorf("%w: listing %s: name %q appears twice", ErrMalformed, dir, entries[i].Name)
		}
	}
	if err := resolveTypes(ctx, g, entries); err != nil {
		return nil, fmt.Errorf("listing %s: %w", dir, err)
	}
	return entries, nil
}

// shardWalker collects the entries of a HAMT directory.
type shardWalker struct {
	g       BlockGetter
	seen    map[cid.Cid]bool
	entries []PBLink // Name is the entry name, without slot prefix
}

// walk visits shard d, whose position in the trie is the hash prefix path
// (consumed bits long). Each entry must hash to the slot it is stored in;
// with that check, and each shard visited once, a crafted DAG that reuses
// shards cannot make the walk blow up.
func (w *shardWalker) walk(ctx context.Context, d *dirBlock, path uint64, consumed int) error {
	if err := ctx.Err(); err != nil {
		return err
	}
	s := d.shard
	if consumed+s.bits > hamtHashBits {
		return fmt.Errorf("%w: HAMT shard %s is deeper than the 64-bit hash allows", ErrMalformed, d.c)
	}
	if consumed > 0 && len(s.links) == 0 {
		return fmt.Errorf("%w: HAMT sub-shard %s is empty", ErrMalformed, d.c)
	}
	for i, l := range s.links {
		slotPath := path<<uint(s.bits) | uint64(s.slots[i])
		if !s.isShard(i) {
			name := s.entryName(i)
			if hamtHash(name)>>uint(hamtHashBits-consumed-s.bits) != slotPath {
				return fmt.Errorf("%w: HAMT shard %s holds %q in a slot its hash does not select", ErrMalformed, d.c, name)
			}
			w.entries = append(w.entries, PBLink{Name: name, Hash: l.Hash, Tsize: l.Tsize})
			continue
		}
		if w.seen[l.Hash] {
			return fmt.Errorf("%w: HAMT shard %s links to sub-shard %s seen before", ErrMalformed, d.c, l.Hash)
		}
		w.seen[l.Hash] = true
		sub, err := loadSubShard(ctx, w.g, d.c, l.Hash)
		if err != nil {
			return err
		}
		if err := w.walk(ctx, sub, slotPath, consumed+s.bits); err != nil {
			return err
		}
	}
	return nil
}

// resolveTypes fills in Type (and Size, for files and symlinks) of each
// entry by fetching dag-pb children, listWorkers at a time. The first
// error stops the others and is the one returned.
func resolveTypes(ctx context.Context, g BlockGetter, entries []DirEntry) error {
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	var (
		mu       sync.Mutex
		firstErr error
	)
	next := make(chan int)
	var wg sync.WaitGroup
	for range listWorkers {
		wg.Go(func() {
			for i := range next {
				if err := entryType(ctx, g, &entries[i]); err != nil {
					mu.Lock()
					if firstErr == nil {
						firstErr = err
						cancel()
					}
					mu.Unlock()
				}
			}
		})
	}
feed:
	for i := range entries {
		select {
		case next <- i:
		case <-ctx.Done():
			break feed
		}
	}
	close(next)
	wg.Wait()
	if firstErr != nil {
		return firstErr
	}
	return ctx.Err()
}

// entryType sets e.Type and, for files and symlinks, e.Size.
func entryType(ctx context.Context, g BlockGetter, e *DirEntry) error {
	switch e.CID.Prefix().Codec {
	case cid.Raw:
		e.Type = TFile
		return nil
	case cid.DagProtobuf:
	default:
		return fmt.Errorf("%w: entry %q links to %s, codec %#x, which is not UnixFS", ErrMalformed, e.Name, e.CID, e.CID.Prefix().Codec)
	}
	if err := ctx.Err(); err != nil {
		return err
	}
	data, err := g.Get(ctx, e.CID)
	if err != nil {
		return fmt.Errorf("content: fetching %s (entry %q): %w", e.CID, e.Name, err)
	}
	n, err := DecodePBNode(data)
	if err != nil {
		return fmt.Errorf("entry %q (%s): %w", e.Name, e.CID, err)
	}
	if n.Data == nil {
		return fmt.Errorf("%w: entry %q (%s) has no UnixFS data", ErrMalformed, e.Name, e.CID)
	}
	d, err := DecodeFSData(n.Data)
	if err != nil {
		return fmt.Errorf("entry %q (%s): %w", e.Name, e.CID, err)
	}
	switch d.Type {
	case TFile, TRaw:
		e.Type = TFile
		if d.HasFileSize {
			e.Size = d.FileSize
		} else {
			e.Size = uint64(len(d.Data))
		}
	case TDirectory, THAMTShard:
		e.Type = TDirectory
	case TSymlink:
		e.Type = TSymlink
		e.Size = uint64(len(d.Data))
	default:
		e.Type = d.Type
	}
	return nil
}
