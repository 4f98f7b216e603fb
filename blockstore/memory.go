package blockstore

import (
	"bytes"
	"fmt"
	"io/fs"
	"sync"

	"github.com/ipfs/go-cid"
)

// Memory is a Store that keeps blocks in memory, for tests and the
// simulator. It behaves as Disk does (same engine: capacity, LRU, pins),
// except that nothing survives the process.
//
// The bytes of a block are held once per process, however many Memory
// stores hold it (see blockPool): a simulator with a thousand nodes that
// all fetched the same 16 MiB holds 16 MiB of blocks, not 16 GiB.
type Memory struct {
	*engine
	mem *memBackend
}

// NewMemory returns an empty in-memory store. cfg.Dir and cfg.Sync are
// ignored. It panics if cfg fails Validate, which is a programming error.
func NewMemory(cfg Config) *Memory {
	if err := cfg.Validate(); err != nil {
		panic(err)
	}
	mb := &memBackend{blocks: make(map[string][]byte), pool: &sharedPool}
	return &Memory{engine: newEngine(cfg, mb), mem: mb}
}

// memBackend is one Memory store's set of keys. Its values are slices
// owned by the pool (or, for bytes that differ from the pool's under the
// same key, by this store alone); they are never written after they are
// stored, and handed out only to a caller that only reads them
// (readInto, for GetInto): read returns a copy.
type memBackend struct {
	pool   *blockPool
	mu     sync.Mutex
	blocks map[string][]byte
	// private marks keys whose bytes are this store's own, not the
	// pool's (see blockPool.acquire).
	private map[string]bool
}

func (m *memBackend) write(key string, data []byte) error {
	b, shared := m.pool.acquire(key, data)
	m.mu.Lock()
	m.blocks[key] = b
	if !shared {
		if m.private == nil {
			m.private = map[string]bool{}
		}
		m.private[key] = true
	}
	m.mu.Unlock()
	return nil
}

// read returns a fresh copy: the caller owns it and may change it (the
// simulator's byzantine store flips bytes in what it reads) without
// touching what other stores hold.
func (m *memBackend) read(key string) ([]byte, error) {
	m.mu.Lock()
	b, ok := m.blocks[key]
	m.mu.Unlock()
	if !ok {
		return nil, fmt.Errorf("block %s: %w", keyCid(key), fs.ErrNotExist)
	}
	return append([]byte(nil), b...), nil
}

// readInto returns the stored slice itself, no copy: stored slices are
// never written (blockPool's ownership rule), and GetInto's caller only
// reads the result.
func (m *memBackend) readInto(key string, _ int64, _ []byte) ([]byte, error) {
	m.mu.Lock()
	b, ok := m.blocks[key]
	m.mu.Unlock()
	if !ok {
		return nil, fmt.Errorf("block %s: %w", keyCid(key), fs.ErrNotExist)
	}
	return b, nil
}

func (m *memBackend) remove(key string) error {
	m.mu.Lock()
	_, ok := m.blocks[key]
	private := m.private[key]
	delete(m.blocks, key)
	delete(m.private, key)
	m.mu.Unlock()
	if ok && !private {
		m.pool.release(key)
	}
	return nil
}

func (m *memBackend) savePins([]cid.Cid) error   { return nil }
func (m *memBackend) saveRefs([]Ref, bool) error { return nil }
func (m *memBackend) dropRefs([]string) error    { return nil }
func (m *memBackend) where(string) string        { return "" }

// close gives every block back to the pool: a closed store holds nothing.
func (m *memBackend) close() error {
	m.mu.Lock()
	blocks, private := m.blocks, m.private
	m.blocks, m.private = map[string][]byte{}, nil
	m.mu.Unlock()
	for key := range blocks {
		if !private[key] {
			m.pool.release(key)
		}
	}
	return nil
}

// blockPool holds the bytes of every block kept by the Memory stores of a
// process, once per key, with a count of the stores holding it; the bytes
// go when the last store removes the block or closes. Blocks are content
// addressed, so one key means one content, and the engine hashes what it
// stores (Put) or is told the caller just did (PutVerified).
//
// Ownership: the pool copies what it is given (the caller keeps its
// slice), the slices it returns are held by stores and read only under
// their own lock, and nobody writes them; a store's read hands out a copy,
// its readInto the slice itself to a caller that only reads it (GetInto).
type blockPool struct {
	mu     sync.Mutex
	blocks map[string]*pooled
}

type pooled struct {
	data []byte
	refs int
}

// sharedPool is the one pool of the process.
var sharedPool = blockPool{blocks: map[string]*pooled{}}

// acquire returns the pool's bytes for key, storing a copy of data if the
// pool has none, and counts one more holder. Bytes that differ from the
// pool's under the same key (a caller of PutVerified that lied) are not
// shared: acquire returns a private copy and shared false, so that one
// store's bad block never shows in another.
func (p *blockPool) acquire(key string, data []byte) (b []byte, shared bool) {
	p.mu.Lock()
	e := p.blocks[key]
	if e != nil {
		e.refs++
		p.mu.Unlock()
		if bytes.Equal(e.data, data) {
			return e.data, true
		}
		p.release(key)
		return append([]byte(nil), data...), false
	}
	p.mu.Unlock()
	// Copy outside the lock; another store may add the same key
	// meanwhile, in which case its copy is kept and this one dropped.
	cp := append([]byte(nil), data...)
	p.mu.Lock()
	if e = p.blocks[key]; e == nil {
		p.blocks[key] = &pooled{data: cp, refs: 1}
		p.mu.Unlock()
		return cp, true
	}
	e.refs++
	p.mu.Unlock()
	if bytes.Equal(e.data, cp) {
		return e.data, true
	}
	p.release(key)
	return cp, false
}

// release counts one holder of key fewer and frees the bytes with the last.
func (p *blockPool) release(key string) {
	p.mu.Lock()
	if e := p.blocks[key]; e != nil {
		if e.refs--; e.refs <= 0 {
			delete(p.blocks, key)
		}
	}
	p.mu.Unlock()
}

// size is the number of blocks and bytes the pool holds (for tests and
// the simulator's memory report).
func (p *blockPool) size() (blocks int, bytes int64) {
	p.mu.Lock()
	defer p.mu.Unlock()
	for _, e := range p.blocks {
		bytes += int64(len(e.data))
	}
	return len(p.blocks), bytes
}

// MemoryPoolSize is the number of distinct blocks, and their bytes, held
// by all the Memory stores of this process together.
func MemoryPoolSize() (blocks int, bytes int64) { return sharedPool.size() }
