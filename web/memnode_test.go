package web

import (
	"archive/tar"
	"context"
	"fmt"
	"io"
	"strings"
	"sync"

	"github.com/ipfs/go-cid"

	apiv1 "github.com/shoalnet/shoal/api"
	"github.com/shoalnet/shoal/content"
	"github.com/shoalnet/shoal/node"
)

// memNode is an in-test Node: content is really imported (package
// content) into an in-memory block map and read back through content's
// reader, lister and resolver; there is no network, so Fetch only reports
// local content. Its errors wrap the node's sentinels as the real node's
// do; errorCases checks both against the same table.
type memNode struct {
	mu     sync.Mutex
	blocks map[cid.Cid][]byte
	roots  map[cid.Cid]rootState
}

type rootState struct {
	size   uint64
	pinned bool
}

func newMemNode() *memNode {
	return &memNode{blocks: map[cid.Cid][]byte{}, roots: map[cid.Cid]rootState{}}
}

// Put and Get make memNode a content.BlockPutter and BlockGetter.
func (m *memNode) Put(_ context.Context, c cid.Cid, data []byte) error {
	m.mu.Lock()
	defer m.mu.Unlock()
	m.blocks[c] = append([]byte(nil), data...)
	return nil
}

func (m *memNode) Get(_ context.Context, c cid.Cid) ([]byte, error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	b, ok := m.blocks[c]
	if !ok {
		return nil, fmt.Errorf("%w: not held by this test node", node.ErrNotFound)
	}
	return b, nil
}

func (m *memNode) Info() node.Info {
	m.mu.Lock()
	defer m.mu.Unlock()
	return node.Info{ID: "12D3KooWMemNode", Addresses: []string{"/ip4/127.0.0.1/tcp/4040"}, StoreBlocks: int64(len(m.blocks))}
}

func (m *memNode) Peers() []node.PeerInfo { return nil }

func (m *memNode) Connect(ctx context.Context, addr string) error {
	return fmt.Errorf("memNode has no network: cannot dial %s", addr)
}

func (m *memNode) addRoot(res content.ImportResult) node.AddResult {
	m.mu.Lock()
	defer m.mu.Unlock()
	m.roots[res.CID] = rootState{size: res.Size, pinned: true}
	return node.AddResult{CID: res.CID, Size: res.Size, Blocks: res.Blocks}
}

// AddFile and AddTar ignore names: tests of names run against a real node.
func (m *memNode) AddFile(ctx context.Context, r io.Reader, _ ...node.AddOption) (node.AddResult, error) {
	res, err := content.ImportFile(ctx, r, m, content.ImportOptions{})
	if err != nil {
		return node.AddResult{}, err
	}
	return m.addRoot(res), nil
}

// AddTar imports a tar whose entry names are relative to the root, as
// the real node does.
func (m *memNode) AddTar(ctx context.Context, r io.Reader, _ ...node.AddOption) (node.AddResult, error) {
	b := content.NewDirBuilder(m, content.ImportOptions{})
	tr := tar.NewReader(r)
	for {
		h, err := tr.Next()
		if err == io.EOF {
			break
		}
		if err != nil {
			return node.AddResult{}, err
		}
		name := strings.Trim(h.Name, "/")
		switch h.Typeflag {
		case tar.TypeDir:
			err = b.AddDir(name)
		case tar.TypeReg:
			_, err = b.AddFile(ctx, name, tr)
		case tar.TypeSymlink:
			err = b.AddSymlink(ctx, name, h.Linkname)
		default:
			err = fmt.Errorf("unsupported tar entry %q", h.Name)
		}
		if err != nil {
			return node.AddResult{}, err
		}
	}
	res, err := b.Finish(ctx)
	if err != nil {
		return node.AddResult{}, err
	}
	return m.addRoot(res), nil
}

func (m *memNode) Fetch(ctx context.Context, c cid.Cid, source string) (*node.Transfer, error) {
	return nil, fmt.Errorf("memNode has no network: cannot fetch %s", c)
}

func (m *memNode) FetchWith(ctx context.Context, c cid.Cid, _ node.FetchOptions) (*node.Transfer, error) {
	return m.Fetch(ctx, c, "api")
}

func (m *memNode) Transfer(id string) (node.TransferInfo, error) {
	return node.TransferInfo{}, fmt.Errorf("no transfer %q (memNode has none): %w", id, node.ErrNotFound)
}

func (m *memNode) CancelTransfer(id string) (node.TransferInfo, error) { return m.Transfer(id) }

// CheckReadTransfer: memNode fetches nothing and has no transfers to tie
// a read to, so it ignores ?transfer= (realnode_test.go checks the node's
// answer).
func (m *memNode) CheckReadTransfer(ctx context.Context) error { return nil }

// memFile adds Expect to content's reader; in memory, reading ahead
// gains nothing.
type memFile struct{ *content.FileReader }

func (memFile) Expect(from, end uint64) {}

func (m *memNode) Open(ctx context.Context, c cid.Cid) (node.File, error) {
	r, err := content.NewFileReader(ctx, m, c)
	if err != nil {
		return nil, err
	}
	return memFile{r}, nil
}

func (m *memNode) Resolve(ctx context.Context, root cid.Cid, p string) (cid.Cid, error) {
	return content.Resolve(ctx, m, root, p)
}

func (m *memNode) Kind(ctx context.Context, c cid.Cid) (content.FSType, error) {
	if c.Type() == cid.Raw {
		return content.TFile, nil
	}
	b, err := m.Get(ctx, c)
	if err != nil {
		return 0, err
	}
	pb, err := content.DecodePBNode(b)
	if err != nil {
		return 0, err
	}
	d, err := content.DecodeFSData(pb.Data)
	if err != nil {
		return 0, err
	}
	switch d.Type {
	case content.THAMTShard:
		return content.TDirectory, nil
	case content.TRaw:
		return content.TFile, nil
	}
	return d.Type, nil
}

func (m *memNode) List(ctx context.Context, dir cid.Cid) ([]content.DirEntry, error) {
	return content.List(ctx, m, dir)
}

func (m *memNode) Block(ctx context.Context, c cid.Cid) ([]byte, error) { return m.Get(ctx, c) }

func (m *memNode) Roots(ctx context.Context) ([]node.RootInfo, error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	var out []node.RootInfo
	for c, s := range m.roots {
		out = append(out, node.RootInfo{CID: c.String(), Size: s.size, Pinned: s.pinned})
	}
	return out, nil
}

func (m *memNode) setPin(c cid.Cid, pin bool) error {
	m.mu.Lock()
	defer m.mu.Unlock()
	s, ok := m.roots[c]
	if !pin && !s.pinned {
		return fmt.Errorf("%w: %s is not pinned (see `shoal ls`)", node.ErrNotPinned, c)
	}
	if !ok {
		if _, held := m.blocks[c]; !held {
			return fmt.Errorf("%w: %s is not held by this test node", node.ErrNotFound, c)
		}
	}
	s.pinned = pin
	m.roots[c] = s
	return nil
}

func (m *memNode) Pin(ctx context.Context, c cid.Cid) error   { return m.setPin(c, true) }
func (m *memNode) Unpin(ctx context.Context, c cid.Cid) error { return m.setPin(c, false) }

// GC removes every block not reachable from a pinned root.
func (m *memNode) GC(ctx context.Context) (node.GCResult, error) {
	keep := map[cid.Cid]bool{}
	roots, _ := m.Roots(ctx)
	for _, r := range roots {
		if !r.Pinned {
			continue
		}
		err := content.Walk(ctx, m, cid.MustParse(r.CID), func(c cid.Cid, _ []byte) error {
			keep[c] = true
			return nil
		})
		if err != nil {
			return node.GCResult{}, err
		}
	}
	m.mu.Lock()
	defer m.mu.Unlock()
	var res node.GCResult
	for c, b := range m.blocks {
		if !keep[c] {
			delete(m.blocks, c)
			res.Removed++
			res.Bytes += int64(len(b))
		}
	}
	for c, s := range m.roots {
		if !s.pinned {
			delete(m.roots, c)
		}
	}
	return res, nil
}

func (m *memNode) Transfers() []node.TransferInfo { return nil }

func (m *memNode) RootName(cid.Cid) string { return "" }

// RoutingTable, WantList and Stats: memNode has no DHT and no network, so
// it has no routing table, asks nobody for anything and counts nothing.
func (m *memNode) RoutingTable() []node.RoutingBucket { return nil }

func (m *memNode) WantList() []node.WantEntry { return nil }

func (m *memNode) Stats() node.Stats { return node.Stats{} }

// Swarm: no network, so no extension, peers or upload slots.
func (m *memNode) Swarm(context.Context) apiv1.Swarm {
	return apiv1.Swarm{Roots: []apiv1.SwarmRoot{}, Peers: []apiv1.SwarmPeer{}}
}

func (m *memNode) Cluster(context.Context) (apiv1.Cluster, error) {
	return apiv1.Cluster{}, node.ErrNoCluster
}
