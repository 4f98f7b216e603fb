package node

import (
	"encoding/json"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"sort"
	"sync"
	"time"

	"github.com/ipfs/go-cid"
)

// rootsFile records, in the home, which roots this node holds and how big
// they are, so `shoal ls` and reproviding survive a restart. Pins live in
// the blockstore; this is only the catalogue.
const rootsFile = "roots.json"

type rootRecord struct {
	Size  uint64    `json:"size"`
	Added time.Time `json:"added"`
}

// rootRegistry is the catalogue of roots, persisted atomically on change.
type rootRegistry struct {
	path string // "" = in memory only

	mu    sync.Mutex
	roots map[string]rootRecord // key: CID string
}

func loadRoots(home string) (*rootRegistry, error) {
	r := &rootRegistry{roots: map[string]rootRecord{}}
	if home == "" {
		return r, nil
	}
	r.path = filepath.Join(home, rootsFile)
	b, err := os.ReadFile(r.path)
	if errors.Is(err, fs.ErrNotExist) {
		return r, nil
	}
	if err != nil {
		return nil, fmt.Errorf("node: reading %s: %w", r.path, err)
	}
	if err := json.Unmarshal(b, &r.roots); err != nil {
		return nil, fmt.Errorf("node: %s is not a valid roots file (%v): fix it or delete it (it only lists roots for `shoal ls` and reproviding; pins and blocks are kept in the block store)", r.path, err)
	}
	for k := range r.roots {
		if _, err := cid.Decode(k); err != nil {
			delete(r.roots, k)
		}
	}
	return r, nil
}

func (r *rootRegistry) add(c cid.Cid, size uint64) error {
	r.mu.Lock()
	defer r.mu.Unlock()
	if old, ok := r.roots[c.String()]; ok && old.Size == size {
		return nil
	}
	r.roots[c.String()] = rootRecord{Size: size, Added: time.Now().UTC()}
	return r.saveLocked()
}

func (r *rootRegistry) remove(c cid.Cid) error {
	r.mu.Lock()
	defer r.mu.Unlock()
	if _, ok := r.roots[c.String()]; !ok {
		return nil
	}
	delete(r.roots, c.String())
	return r.saveLocked()
}

func (r *rootRegistry) get(c cid.Cid) (rootRecord, bool) {
	r.mu.Lock()
	defer r.mu.Unlock()
	rec, ok := r.roots[c.String()]
	return rec, ok
}

// list returns the roots, newest first.
func (r *rootRegistry) list() []cid.Cid {
	r.mu.Lock()
	type kv struct {
		c     cid.Cid
		added time.Time
	}
	var all []kv
	for k, v := range r.roots {
		c, _ := cid.Decode(k)
		all = append(all, kv{c, v.Added})
	}
	r.mu.Unlock()
	sort.Slice(all, func(i, j int) bool {
		if !all[i].added.Equal(all[j].added) {
			return all[i].added.After(all[j].added)
		}
		return all[i].c.String() < all[j].c.String()
	})
	out := make([]cid.Cid, len(all))
	for i, e := range all {
		out[i] = e.c
	}
	return out
}

func (r *rootRegistry) saveLocked() error {
	if r.path == "" {
		return nil
	}
	b, err := json.MarshalIndent(r.roots, "", "  ")
	if err != nil {
		return err
	}
	return writeFileAtomic(r.path, b, 0o600)
}
