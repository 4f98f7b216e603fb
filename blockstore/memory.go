package blockstore

import (
	"fmt"
	"io/fs"
	"sync"

	"github.com/ipfs/go-cid"
)

// Memory is a Store that keeps blocks in memory, for tests and the
// simulator. It behaves as Disk does (same engine: capacity, LRU, pins),
// except that nothing survives the process.
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
	mb := &memBackend{blocks: make(map[string][]byte)}
	return &Memory{engine: newEngine(cfg, mb), mem: mb}
}

type memBackend struct {
	mu     sync.Mutex
	blocks map[string][]byte
}

func (m *memBackend) write(key string, data []byte) error {
	cp := append([]byte(nil), data...)
	m.mu.Lock()
	m.blocks[key] = cp
	m.mu.Unlock()
	return nil
}

func (m *memBackend) read(key string) ([]byte, error) {
	m.mu.Lock()
	b, ok := m.blocks[key]
	m.mu.Unlock()
	if !ok {
		return nil, fmt.Errorf("block %s: %w", keyCid(key), fs.ErrNotExist)
	}
	return append([]byte(nil), b...), nil
}

func (m *memBackend) remove(key string) error {
	m.mu.Lock()
	delete(m.blocks, key)
	m.mu.Unlock()
	return nil
}

func (m *memBackend) savePins([]cid.Cid) error { return nil }
func (m *memBackend) close() error             { return nil }
func (m *memBackend) where(string) string      { return "" }
