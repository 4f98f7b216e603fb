package node

import (
	"encoding/json"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"sort"
	"strings"
	"sync"
	"time"
	"unicode/utf8"

	"github.com/ipfs/go-cid"
)

// ErrBadName marks a root name CheckName refuses.
var ErrBadName = errors.New("node: bad name")

// maxNameBytes is the longest name kept with a root: what common file
// systems allow for one path segment.
const maxNameBytes = 255

// CheckName reports whether name can be kept with a root: one path
// segment (no "/"), not "." or "..", at most 255 bytes of UTF-8 without
// control characters — a name a fetch can later write as a file. The
// empty name means "none" and is accepted.
func CheckName(name string) error {
	bad := func(why string) error {
		return fmt.Errorf("%w: %q %s: give the base name of a file or directory, such as dataset.tar", ErrBadName, name, why)
	}
	switch {
	case name == "":
		return nil
	case len(name) > maxNameBytes:
		return bad(fmt.Sprintf("is %d bytes long, over %d", len(name), maxNameBytes))
	case !utf8.ValidString(name):
		return bad("is not valid UTF-8")
	case name == "." || name == "..":
		return bad("is not a name")
	case strings.ContainsRune(name, '/'):
		return bad("contains \"/\"")
	case strings.ContainsFunc(name, func(r rune) bool { return r < 0x20 || r == 0x7f }):
		return bad("contains a control character")
	}
	return nil
}

// rootsFile records, in the home, which roots this node holds and how big
// they are, so `shoal ls` and reproviding survive a restart. Pins live in
// the blockstore; this is only the catalogue.
const rootsFile = "roots.json"

// rootRecord is one root in roots.json. Name came later: files written
// before it have none, and read as records without a name.
type rootRecord struct {
	Size  uint64    `json:"size"`
	Added time.Time `json:"added"`
	Name  string    `json:"name,omitempty"` // the shared file's or directory's name; "" = unknown
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

// add records a root of size bytes, keeping the name it has.
func (r *rootRegistry) add(c cid.Cid, size uint64) error {
	return r.addNamed(c, size, "")
}

// addNamed records a root with its name; an empty name keeps the one
// recorded before, so fetching or pinning content never forgets the name
// it was shared under.
func (r *rootRegistry) addNamed(c cid.Cid, size uint64, name string) error {
	r.mu.Lock()
	defer r.mu.Unlock()
	old, ok := r.roots[c.String()]
	if name == "" {
		name = old.Name
	}
	if ok && old.Size == size && old.Name == name {
		return nil
	}
	r.roots[c.String()] = rootRecord{Size: size, Added: time.Now().UTC(), Name: name}
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
