package p2ptest

import (
	"bytes"
	"context"
	"fmt"
	"iter"
	"maps"
	"sync"

	"github.com/ipfs/go-cid"
)

// Blocks is an in-memory block store with the methods protocol's block
// interfaces ask for (Has, Get, GetSize, Put), safe for concurrent use,
// for the exchange peers of protocol's and transfer's tests. It checks no
// hash: a test may store what a lying peer would serve.
type Blocks struct {
	mu sync.Mutex
	m  map[cid.Cid][]byte
}

// NewBlocks returns an empty store; capacity is a hint of how many
// blocks it will hold.
func NewBlocks(capacity int) *Blocks { return &Blocks{m: make(map[cid.Cid][]byte, capacity)} }

// Has reports whether c is stored.
func (s *Blocks) Has(_ context.Context, c cid.Cid) (bool, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	_, ok := s.m[c]
	return ok, nil
}

// Get returns c's bytes, not a copy: callers must not write to them.
func (s *Blocks) Get(_ context.Context, c cid.Cid) ([]byte, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	d, ok := s.m[c]
	if !ok {
		return nil, fmt.Errorf("p2ptest: block %s not in this store", c)
	}
	return d, nil
}

// GetSize returns the length of c's bytes.
func (s *Blocks) GetSize(ctx context.Context, c cid.Cid) (int, error) {
	d, err := s.Get(ctx, c)
	return len(d), err
}

// Put stores a copy of data under c (the network reuses its buffers).
func (s *Blocks) Put(_ context.Context, c cid.Cid, data []byte) error {
	s.Set(c, bytes.Clone(data))
	return nil
}

// Set stores data under c without copying it: for fixtures whose bytes
// nobody writes to, and stores that place the bytes themselves.
func (s *Blocks) Set(c cid.Cid, data []byte) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.m[c] = data
}

// Len is how many blocks are stored.
func (s *Blocks) Len() int {
	s.mu.Lock()
	defer s.mu.Unlock()
	return len(s.m)
}

// All yields every stored block, from a snapshot taken when it starts.
func (s *Blocks) All() iter.Seq2[cid.Cid, []byte] {
	s.mu.Lock()
	snap := maps.Clone(s.m)
	s.mu.Unlock()
	return maps.All(snap)
}
