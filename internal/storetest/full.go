// Package storetest holds block stores for tests of what shoal does when
// its store fails. Full is a real store whose disk fills up. It is used by
// the tests of node, web and cmd/shoal, so each checks the same failure.
//
// It imports only blockstore.
package storetest

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"sync/atomic"
	"syscall"

	"github.com/ipfs/go-cid"

	"github.com/shoalnet/shoal/blockstore"
)

// Full is a real store whose disk is full after room more blocks: every
// later Put fails as the disk store's write does on a full file system,
// with syscall.ENOSPC inside an *os.PathError below dir.
type Full struct {
	blockstore.Store
	dir    string
	room   atomic.Int64
	failed atomic.Int64
}

// NewFull wraps s, which keeps its blocks under dir ("" for a store in
// memory), so that it takes room more blocks.
func NewFull(s blockstore.Store, dir string, room int64) *Full {
	if dir == "" {
		dir = "/home/shoal"
	}
	f := &Full{Store: s, dir: dir}
	f.room.Store(room)
	return f
}

// Failed is how many Puts were refused.
func (s *Full) Failed() int64 { return s.failed.Load() }

func (s *Full) full(c cid.Cid) error {
	if s.room.Add(-1) >= 0 {
		return nil
	}
	s.failed.Add(1)
	err := &os.PathError{Op: "write", Path: filepath.Join(s.dir, "blocks", ".tmp-123"), Err: syscall.ENOSPC}
	return fmt.Errorf("blockstore: put %s: %w", c, err)
}

// Put stores the block unless the disk is full.
func (s *Full) Put(ctx context.Context, c cid.Cid, data []byte) error {
	if err := s.full(c); err != nil {
		return err
	}
	return s.Store.Put(ctx, c, data)
}

// PutVerified stores the verified block unless the disk is full.
func (s *Full) PutVerified(ctx context.Context, c cid.Cid, data []byte) error {
	if err := s.full(c); err != nil {
		return err
	}
	return s.Store.PutVerified(ctx, c, data)
}
