package node

import (
	"context"
	"errors"
	"fmt"
	"io"

	"github.com/ipfs/go-cid"
	"github.com/libp2p/go-libp2p/core/network"
	"github.com/libp2p/go-libp2p/core/peer"
	ma "github.com/multiformats/go-multiaddr"

	"github.com/shoalnet/shoal/blockstore"
	"github.com/shoalnet/shoal/content"
)

// Info describes the node now.
func (n *Node) Info() Info {
	st := n.store.Stat()
	ps := n.router.ProvideStatus()
	info := Info{
		ID:               n.host.ID().String(),
		Started:          n.started,
		DHTMode:          n.router.Mode().String(),
		Network:          n.router.Network(),
		RoutingTableSize: n.router.Size(),
		StoreBlocks:      int64(st.Blocks),
		StoreBytes:       st.Bytes,
		CapacityBytes:    st.CapacityBytes,
		ProvideQueue:     ps.QueuedKeys,
	}
	for _, a := range n.host.Addrs() {
		info.Addresses = append(info.Addresses, a.String()+"/p2p/"+info.ID)
	}
	return info
}

// Peers lists connected peers with what block exchange knows of them.
func (n *Node) Peers() []PeerInfo {
	traffic := n.net.PeerTraffic()
	served := n.server.PeerStats()
	seen := map[peer.ID]bool{}
	var out []PeerInfo
	for _, c := range n.host.Network().Conns() {
		p := c.RemotePeer()
		if seen[p] {
			continue
		}
		seen[p] = true
		pi := PeerInfo{
			ID:        p.String(),
			Address:   c.RemoteMultiaddr().String(),
			Transport: transportOf(c),
			LatencyMS: float64(n.host.Peerstore().LatencyEWMA(p).Microseconds()) / 1000,
			BytesIn:   traffic[p].BlockBytesReceived,
			BytesOut:  served[p].BlockBytesSent,
			Score:     n.client.Scores().Score(p),
		}
		out = append(out, pi)
	}
	return out
}

func transportOf(c network.Conn) string {
	for _, p := range c.RemoteMultiaddr().Protocols() {
		switch p.Code {
		case ma.P_QUIC_V1:
			return "quic-v1"
		case ma.P_WEBTRANSPORT:
			return "webtransport"
		}
	}
	return "tcp"
}

// Connect dials a peer by a multiaddr that ends in /p2p/<id>.
func (n *Node) Connect(ctx context.Context, addr string) error {
	m, err := ma.NewMultiaddr(addr)
	if err != nil {
		return fmt.Errorf("%q is not a multiaddr: %v", addr, err)
	}
	ai, err := peer.AddrInfoFromP2pAddr(m)
	if err != nil {
		return fmt.Errorf("%q does not name a peer: end it with /p2p/<peer-id>", addr)
	}
	if err := n.host.Connect(ctx, *ai); err != nil {
		return fmt.Errorf("connecting to %s: %w", ai.ID, err)
	}
	return nil
}

// notifyingPutter stores blocks and tells the server about them, so peers
// waiting for those blocks are served at once.
type notifyingPutter struct{ n *Node }

func (p notifyingPutter) Put(ctx context.Context, c cid.Cid, data []byte) error {
	return p.put(ctx, c, data, false)
}

// PutVerified stores a block whose CID the importer has just computed from
// data (content.VerifiedPutter), so share hashes each block once.
func (p notifyingPutter) PutVerified(ctx context.Context, c cid.Cid, data []byte) error {
	return p.put(ctx, c, data, true)
}

// put stores a block (verified: the caller has just hashed data to c),
// then offers it to the peers waiting for it. A leaf of a file being
// written (WriteFile) lands in that file and the store keeps a reference
// to it instead of a copy; bytes not verified yet are hashed first.
func (p notifyingPutter) put(ctx context.Context, c cid.Cid, data []byte, verified bool) error {
	if c.Prefix().Codec == cid.Raw && p.n.files.active() {
		if !verified {
			if err := checkCid(c, data); err != nil {
				return err
			}
			verified = true
		}
		if p.n.files.take(c, data) {
			p.n.reads.deliver(c, data)
			p.n.server.NotifyNewBlocks(c)
			return nil
		}
	}
	store := p.n.store.Put
	if verified {
		store = p.n.store.PutVerified
	}
	if err := store(ctx, c, data); err != nil {
		return err
	}
	p.n.reads.deliver(c, data)
	p.n.server.NotifyNewBlocks(c)
	return nil
}

// checkCid refuses data that does not hash to c, as the store's Put does.
func checkCid(c cid.Cid, data []byte) error {
	got, err := c.Prefix().Sum(data)
	if err != nil {
		return fmt.Errorf("cannot verify %s: %w", c, err)
	}
	if !got.Equals(c) {
		return fmt.Errorf("%w: %d bytes given for %s; the sender sent the wrong block", blockstore.ErrHashMismatch, len(data), c)
	}
	return nil
}

// AddOption is an optional setting of AddFile and AddTar.
type AddOption func(*addOptions)

type addOptions struct {
	name string
}

// WithName keeps name (a base name, see CheckName) with the root, for
// `shoal ls`, stat, the gateway's Content-Disposition and the default
// file name of a fetch. Without it a root keeps the name it had.
func WithName(name string) AddOption {
	return func(o *addOptions) { o.name = name }
}

func collectAddOptions(opts []AddOption) (addOptions, error) {
	var o addOptions
	for _, opt := range opts {
		opt(&o)
	}
	return o, CheckName(o.name)
}

// AddFile imports a file from r, stores and pins it, and announces it.
func (n *Node) AddFile(ctx context.Context, r io.Reader, opts ...AddOption) (AddResult, error) {
	o, err := collectAddOptions(opts)
	if err != nil {
		return AddResult{}, err
	}
	res, err := content.ImportFile(ctx, r, notifyingPutter{n}, content.ImportOptions{})
	if err != nil {
		return AddResult{}, fmt.Errorf("importing the file: %w", err)
	}
	return n.finishAdd(ctx, res, o)
}

// AddTar imports a directory tree sent as a tar stream whose entry names
// are relative to the tree's root. Regular files, directories and
// symlinks are kept; other entry types are refused.
func (n *Node) AddTar(ctx context.Context, r io.Reader, opts ...AddOption) (AddResult, error) {
	o, err := collectAddOptions(opts)
	if err != nil {
		return AddResult{}, err
	}
	res, err := content.ImportTar(ctx, notifyingPutter{n}, r, content.ImportOptions{})
	if err != nil {
		return AddResult{}, err
	}
	return n.finishAdd(ctx, res, o)
}

func (n *Node) finishAdd(ctx context.Context, res content.ImportResult, o addOptions) (AddResult, error) {
	if err := n.store.Pin(ctx, res.CID); err != nil {
		return AddResult{}, fmt.Errorf("pinning %s: %w", res.CID, err)
	}
	if err := n.roots.addNamed(res.CID, res.Size, o.name); err != nil {
		return AddResult{}, err
	}
	if err := n.router.Provide(ctx, res.CID); err != nil {
		n.log.Warn("announcing root", "cid", res.CID, "err", err)
	}
	if n.swarm != nil {
		n.swarm.Holding(res.CID)
	}
	rec, _ := n.roots.get(res.CID)
	return AddResult{CID: res.CID, Name: rec.Name, Size: res.Size, Blocks: res.Blocks}, nil
}

// RootName is the name root c was shared under, or "" when this node
// knows none.
func (n *Node) RootName(c cid.Cid) string {
	rec, _ := n.roots.get(c)
	return rec.Name
}

// Resolve walks path below root, fetching directory blocks as needed.
func (n *Node) Resolve(ctx context.Context, root cid.Cid, p string) (cid.Cid, error) {
	g, done := n.readGetter(ctx, root)
	defer done()
	c, err := content.Resolve(ctx, g, root, p)
	return c, contentErr(root, err)
}

// List lists a directory, fetching its blocks as needed.
func (n *Node) List(ctx context.Context, dir cid.Cid) ([]content.DirEntry, error) {
	g, done := n.readGetter(ctx, dir)
	defer done()
	entries, err := content.List(ctx, g, dir)
	return entries, contentErr(dir, err)
}

// Kind tells whether c is a file, a directory or a symlink.
func (n *Node) Kind(ctx context.Context, c cid.Cid) (content.FSType, error) {
	g, done := n.readGetter(ctx, c)
	defer done()
	k, err := content.KindOf(ctx, g, c)
	return k, contentErr(c, err)
}

// Block returns one block, from the store or the swarm.
func (n *Node) Block(ctx context.Context, c cid.Cid) ([]byte, error) {
	g, done := n.readGetter(ctx, c)
	defer done()
	b, err := g.Get(ctx, c)
	return b, contentErr(c, err)
}

// readGetter is the getter of a read of c with ctx: its root's read
// session (WithReadRoot, else c's own); done ends this read's use of it.
func (n *Node) readGetter(ctx context.Context, c cid.Cid) (content.BlockGetter, func()) {
	s, done := n.reads.acquire(readRoot(ctx, c))
	return s.getter(), done
}

// Roots lists the roots this node holds, with pin and provide state.
func (n *Node) Roots(ctx context.Context) ([]RootInfo, error) {
	pins, err := n.store.Pins(ctx)
	if err != nil {
		return nil, err
	}
	pinned := map[string]bool{}
	for _, p := range pins {
		pinned[p.String()] = true
	}
	var out []RootInfo
	for _, c := range n.roots.list() {
		rec, _ := n.roots.get(c)
		ri := RootInfo{CID: c.String(), Name: rec.Name, Size: rec.Size, Pinned: pinned[c.String()], Providing: n.router.IsProviding(c)}
		if t, ok := n.router.LastProvided(c); ok {
			ri.LastProvided = t
		}
		out = append(out, ri)
	}
	return out, nil
}

// Pin pins a root: its blocks are never evicted or collected. Missing
// blocks are fetched from the swarm.
func (n *Node) Pin(ctx context.Context, c cid.Cid) error {
	if err := n.store.Pin(ctx, c); err != nil {
		return err
	}
	st, err := n.store.PinStatus(ctx, c)
	if err != nil {
		return err
	}
	if !st.Complete {
		tr, err := n.Fetch(ctx, c, "pin")
		if err != nil {
			return err
		}
		select {
		case <-tr.Done():
		case <-ctx.Done():
			return ctx.Err()
		}
		if err := tr.Err(); err != nil {
			return fmt.Errorf("pinned, but fetching its blocks failed: %w", contentErr(c, err))
		}
		return nil
	}
	rec, ok := n.roots.get(c)
	if !ok {
		rec.Size = n.dagSize(ctx, c)
	}
	return n.roots.add(c, rec.Size)
}

// Unpin removes a pin; the blocks stay as evictable cache until GC.
func (n *Node) Unpin(ctx context.Context, c cid.Cid) error {
	if err := n.store.Unpin(ctx, c); err != nil {
		if errors.Is(err, blockstore.ErrNotPinned) {
			return &classified{kind: ErrNotPinned, msg: fmt.Sprintf("%s is not pinned (see `shoal ls`)", c), err: err}
		}
		return err
	}
	return nil
}

// GC removes every block no pin reaches, and forgets and stops announcing
// the roots that went with them.
func (n *Node) GC(ctx context.Context) (GCResult, error) {
	res, err := n.store.GC(ctx)
	if err != nil {
		return GCResult{}, err
	}
	for _, c := range n.roots.list() {
		if has, _ := n.store.Has(ctx, c); !has {
			n.router.StopProviding(c)
			_ = n.roots.remove(c)
		}
	}
	return GCResult{Removed: res.Removed, Bytes: res.RemovedBytes}, nil
}

// dagSize is the content size of a root held here, read from its root
// block in the store (never fetched); 0 when that block is not held.
func (n *Node) dagSize(ctx context.Context, c cid.Cid) uint64 {
	size, _ := content.DAGSize(ctx, n.store, c)
	return size
}
