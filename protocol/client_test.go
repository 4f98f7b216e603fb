package protocol

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"log/slog"
	"math/rand/v2"
	"os"
	"testing"
	"time"

	"github.com/ipfs/go-cid"
	"github.com/libp2p/go-libp2p"
	"github.com/libp2p/go-libp2p/core/host"
	"github.com/libp2p/go-libp2p/core/peer"
	mh "github.com/multiformats/go-multihash"

	"github.com/shoalnet/shoal/internal/p2ptest"
)

// clientStore is an in-memory block store for client tests. corrupt makes
// Get serve flipped bytes for raw leaves (a lying seeder).
type clientStore struct {
	*p2ptest.Blocks
	corrupt bool
}

func newClientStore() *clientStore { return &clientStore{Blocks: p2ptest.NewBlocks(0)} }

func (s *clientStore) Get(ctx context.Context, c cid.Cid) ([]byte, error) {
	d, err := s.Blocks.Get(ctx, c)
	if err == nil && s.corrupt && c.Type() == cid.Raw {
		d = bytes.Clone(d)
		d[0] ^= 0xff
	}
	return d, err
}

// A test DAG: a root (codec dag-pb, bytes = magic + concatenated child CIDs)
// over raw leaves.
var clDAGMagic = []byte("shoal-test-dag\x00")

func clLinks(c cid.Cid, data []byte) ([]cid.Cid, error) {
	if c.Type() == cid.Raw {
		return nil, nil
	}
	rest, ok := bytes.CutPrefix(data, clDAGMagic)
	if !ok {
		return nil, errors.New("test: not a test DAG node")
	}
	var out []cid.Cid
	for len(rest) > 0 {
		n, l, err := cid.CidFromBytes(rest)
		if err != nil {
			return nil, err
		}
		out = append(out, l)
		rest = rest[n:]
	}
	return out, nil
}

type clDAG struct {
	root   cid.Cid
	blocks map[cid.Cid][]byte
	leaves []cid.Cid
	size   int64
}

func makeClDAG(t testing.TB, leaves, leafSize int, seed uint64) *clDAG {
	d := &clDAG{blocks: map[cid.Cid][]byte{}}
	rng := rand.New(rand.NewChaCha8([32]byte{byte(seed)}))
	rootData := bytes.Clone(clDAGMagic)
	for range leaves {
		data := make([]byte, leafSize)
		for i := 0; i < len(data); i += 8 {
			v := rng.Uint64()
			for j := 0; j < 8 && i+j < len(data); j++ {
				data[i+j] = byte(v >> (8 * j))
			}
		}
		c := clCID(t, cid.Raw, data)
		d.blocks[c] = data
		d.leaves = append(d.leaves, c)
		d.size += int64(leafSize)
		rootData = append(rootData, c.Bytes()...)
	}
	d.root = clCID(t, cid.DagProtobuf, rootData)
	d.blocks[d.root] = rootData
	return d
}

func clCID(t testing.TB, codec uint64, data []byte) cid.Cid {
	h, err := mh.Sum(data, mh.SHA2_256, -1)
	if err != nil {
		t.Fatal(err)
	}
	return cid.NewCidV1(codec, h)
}

// fill stores every block of d in s, sharing the (read-only) bytes.
func (d *clDAG) fill(s *clientStore) {
	for c, b := range d.blocks {
		s.Set(c, b)
	}
}

// clProviders returns a fixed provider list for every CID.
type clProviders struct{ infos []peer.AddrInfo }

func (p clProviders) FindProviders(ctx context.Context, _ cid.Cid) <-chan peer.AddrInfo {
	ch := make(chan peer.AddrInfo, len(p.infos))
	for _, ai := range p.infos {
		ch <- ai
	}
	close(ch)
	return ch
}

// clNode is one libp2p host on 127.0.0.1 with network, server (none for
// a leech) and client.
type clNode struct {
	h      host.Host
	net    *Network
	srv    *Server
	cl     *Client
	store  *clientStore
	closed bool
}

func clTestLogger(t testing.TB) *slog.Logger {
	if os.Getenv("SHOAL_TEST_LOG") != "" {
		return slog.New(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: slog.LevelDebug}))
	}
	return slog.New(slog.DiscardHandler)
}

// clClientConfig is the client configuration of the tests' peers: the
// test DAG's links and short ticks.
func clClientConfig(t testing.TB) ClientConfig {
	ccfg := DefaultClientConfig()
	ccfg.Links = clLinks
	ccfg.Logger = clTestLogger(t)
	ccfg.TickInterval = 20 * time.Millisecond
	ccfg.ProgressInterval = 50 * time.Millisecond
	return ccfg
}

// newClNode starts a peer over store on a TCP host on 127.0.0.1: network,
// server (uploadLimit bytes per second, 0 unlimited) and client. It is
// closed when the test ends, or before by close.
func newClNode(t testing.TB, store *clientStore, uploadLimit int64, providers Providers) *clNode {
	t.Helper()
	h := p2ptest.Host(t, libp2p.ResourceManager(nil), libp2p.NoSecurity)
	n, srv, cl := startPeer(t, h, store, peerOpts{client: clClientConfig(t), uploadLimit: uploadLimit, providers: providers})
	tn := &clNode{h: h, net: n, srv: srv, cl: cl, store: store}
	t.Cleanup(tn.close)
	return tn
}

// newLeech is newClNode without a server, over any store: a peer that
// only fetches.
func newLeech(t testing.TB, store shoalStore, providers Providers) *clNode {
	t.Helper()
	h := p2ptest.Host(t, libp2p.ResourceManager(nil), libp2p.NoSecurity)
	n, _, cl := startPeer(t, h, store, peerOpts{client: clClientConfig(t), leechOnly: true, providers: providers})
	tn := &clNode{h: h, net: n, cl: cl}
	t.Cleanup(tn.close)
	return tn
}

// peerOpts are what the tests' exchange peers differ in.
type peerOpts struct {
	client      ClientConfig // its Logger is the network's and server's too
	uploadLimit int64        // the server's bytes per second; 0 is unlimited
	leechOnly   bool         // no server: the peer only fetches
	providers   Providers
}

// startPeer runs the network, the server (unless o.leechOnly) and the
// client over store on h, wired and started in that order. The caller
// closes them (client, server, network, then h).
func startPeer(tb testing.TB, h host.Host, store shoalStore, o peerOpts) (*Network, *Server, *Client) {
	tb.Helper()
	ncfg := DefaultNetworkConfig()
	ncfg.Logger = o.client.Logger
	n, err := NewNetwork(h, ncfg)
	if err != nil {
		tb.Fatal(err)
	}
	var srv *Server
	if !o.leechOnly {
		scfg := DefaultServerConfig()
		scfg.UploadBytesPerSecond = o.uploadLimit
		scfg.Logger = o.client.Logger
		if srv, err = NewServer(scfg, store, n); err != nil {
			tb.Fatal(err)
		}
	}
	cl, err := NewClient(o.client, HostNetwork(n, h), store, o.providers)
	if err != nil {
		tb.Fatal(err)
	}
	starts := []func() error{n.Start}
	if srv != nil {
		n.SetReceivers(srv, cl)
		n.AddPeerListener(srv)
		starts = append(starts, srv.Start)
	} else {
		n.SetReceivers(nil, cl)
	}
	n.AddPeerListener(cl)
	for _, start := range append(starts, cl.Start) {
		if err := start(); err != nil {
			tb.Fatal(err)
		}
	}
	return n, srv, cl
}

func (n *clNode) close() {
	if n.closed {
		return
	}
	n.closed = true
	_ = n.cl.Close()
	if n.srv != nil {
		_ = n.srv.Close()
	}
	_ = n.net.Close()
	_ = n.h.Close()
}

func (n *clNode) info() peer.AddrInfo { return peer.AddrInfo{ID: n.h.ID(), Addrs: n.h.Addrs()} }

// swarm starts seeders holding d and a leecher that finds them as providers.
func clSwarm(t testing.TB, d *clDAG, seeders int, uploadLimit int64) ([]*clNode, *clNode) {
	var seeds []*clNode
	var infos []peer.AddrInfo
	for range seeders {
		s := newClientStore()
		d.fill(s)
		n := newClNode(t, s, uploadLimit, nil)
		seeds = append(seeds, n)
		infos = append(infos, n.info())
	}
	return seeds, newClNode(t, newClientStore(), 0, clProviders{infos})
}

func clFetchAll(t testing.TB, n *clNode, root cid.Cid, onUpdate func(FetchProgress)) (FetchResult, error) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 90*time.Second)
	defer cancel()
	f, err := n.cl.Fetch(ctx, root)
	if err != nil {
		t.Fatal(err)
	}
	if onUpdate != nil {
		for {
			select {
			case u := <-f.Updates():
				onUpdate(u)
				continue
			case <-f.Done():
			}
			break
		}
	}
	return f.Wait()
}

func clCheckStored(t testing.TB, d *clDAG, s *clientStore) {
	t.Helper()
	for c, want := range d.blocks {
		got, err := s.Get(context.Background(), c)
		if err != nil || !bytes.Equal(got, want) {
			t.Fatalf("block %s: stored %d bytes (err %v), want the original %d", c, len(got), err, len(want))
		}
	}
	if s.Len() != len(d.blocks) {
		t.Fatalf("store holds %d blocks, want exactly the %d of the DAG (nothing corrupt or foreign)", s.Len(), len(d.blocks))
	}
}

func clShare(res FetchResult, p peer.ID) float64 {
	for _, pp := range res.Peers {
		if pp.Peer == p {
			return float64(pp.Bytes) / float64(res.Bytes)
		}
	}
	return 0
}

func clTestSize() (leaves int) {
	if testing.Short() || raceEnabled {
		return 16
	}
	return 64 // 64 MiB of 1 MiB blocks
}

func TestClientFourSeeders(t *testing.T) {
	// 64 blocks whatever the mode: with the 16 blocks a short or race run
	// shrank to, one block was 6% of the bytes and "each seeder ≥ 15%"
	// failed on a seeder that happened to serve 2 of 16. Under -race or
	// -short the blocks are 256 KiB (16 MiB in all) to keep the run short.
	//
	// Each seeder's uplink is limited so that the leecher, not the shared
	// CPU, decides who serves what: 32 MiB/s each (the fetch can reach
	// 128 MiB/s). Under -race that was no limit at all: the CPU-bound fetch
	// ran at 45 MiB/s on a loaded CI machine and the seeder the scheduler
	// happened to serve last got 6 of 64 blocks (9.4 %). There the limit is
	// 2 MiB/s each, 8 MiB/s in all, a fraction of what the race build
	// reaches, so the 16 MiB take about 2 s and the same 15 % holds.
	leafSize, limit := 1<<20, int64(32<<20)
	if testing.Short() || raceEnabled {
		leafSize, limit = 256<<10, 2<<20
	}
	d := makeClDAG(t, 64, leafSize, 1)
	seeds, leech := clSwarm(t, d, 4, limit)
	updates := 0
	res, err := clFetchAll(t, leech, d.root, func(FetchProgress) { updates++ })
	if err != nil {
		t.Fatal(err)
	}
	clCheckStored(t, d, leech.store)
	t.Logf("%d blocks, %d bytes in %v (%.1f MiB/s), dup ratio %.3f, %d progress events",
		res.Blocks, res.Bytes, res.Elapsed, float64(res.Bytes)/res.Elapsed.Seconds()/(1<<20), res.DuplicateRatio, updates)
	if res.Blocks != len(d.blocks) {
		t.Errorf("result Blocks = %d, want %d", res.Blocks, len(d.blocks))
	}
	for i, s := range seeds {
		sh := clShare(res, s.h.ID())
		t.Logf("seeder %d: %.1f%%", i, 100*sh)
		if sh < 0.15 {
			t.Errorf("seeder %d served %.1f%% of bytes, want ≥ 15%%", i, 100*sh)
		}
	}
	if res.DuplicateRatio > 1.25 {
		t.Errorf("duplicate ratio %.3f, want ≤ 1.25", res.DuplicateRatio)
	}
	if updates == 0 {
		t.Error("no progress events")
	}
}

func TestClientSeederKilled(t *testing.T) {
	d := makeClDAG(t, clTestSize(), 1<<20, 2)
	seeds, leech := clSwarm(t, d, 4, 16<<20)
	killed := false
	res, err := clFetchAll(t, leech, d.root, func(u FetchProgress) {
		if !killed && u.BlocksDone >= len(d.blocks)/4 {
			killed = true
			seeds[0].close()
		}
	})
	if err != nil {
		t.Fatal(err)
	}
	if !killed {
		t.Fatal("fetch finished before a seeder could be killed")
	}
	clCheckStored(t, d, leech.store)
	t.Logf("killed seeder served %.1f%%", 100*clShare(res, seeds[0].h.ID()))
}

func TestClientCorruptSeederCutOff(t *testing.T) {
	d := makeClDAG(t, clTestSize(), 1<<20, 3)
	seeds, leech := clSwarm(t, d, 3, 16<<20)
	seeds[1].store.corrupt = true
	res, err := clFetchAll(t, leech, d.root, nil)
	if err != nil {
		t.Fatal(err)
	}
	clCheckStored(t, d, leech.store)
	bad := seeds[1].h.ID()
	if !leech.cl.Scores().Banned(bad, time.Now()) {
		t.Error("corrupt seeder not banned")
	}
	for _, pp := range res.Peers {
		if pp.Peer == bad && (pp.Active || !errors.Is(pp.Err, ErrBadBlock)) {
			t.Errorf("corrupt seeder in result: active=%v err=%v, want cut off with ErrBadBlock", pp.Active, pp.Err)
		}
	}
}

func TestClientResumeFetchesOnlyMissing(t *testing.T) {
	d := makeClDAG(t, 16, 256<<10, 4)
	_, leech := clSwarm(t, d, 2, 0)
	ctx := context.Background()
	_ = leech.store.Put(ctx, d.root, d.blocks[d.root])
	for _, c := range d.leaves[:10] {
		_ = leech.store.Put(ctx, c, d.blocks[c])
	}
	res, err := clFetchAll(t, leech, d.root, nil)
	if err != nil {
		t.Fatal(err)
	}
	clCheckStored(t, d, leech.store)
	if res.BlocksLocal != 11 || res.Bytes != 6*256<<10 {
		t.Errorf("BlocksLocal=%d Bytes=%d, want 11 local and only the 6 missing leaves fetched", res.BlocksLocal, res.Bytes)
	}
}

func TestClientGetAndFailure(t *testing.T) {
	d := makeClDAG(t, 4, 64<<10, 5)
	_, leech := clSwarm(t, d, 1, 0)
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	got, err := leech.cl.Get(ctx, d.leaves[2])
	if err != nil || !bytes.Equal(got, d.blocks[d.leaves[2]]) {
		t.Fatalf("Get(leaf) = %d bytes, %v", len(got), err)
	}
	// A peer that says DONT_HAVE is no provider: the fetch keeps searching
	// until its search timeout, then names the CID and that peer.
	missing := clCID(t, cid.Raw, []byte("nobody has this"))
	f, err := leech.cl.FetchWith(ctx, missing, FetchOptions{SearchTimeout: 2 * time.Second})
	if err != nil {
		t.Fatal(err)
	}
	_, err = f.Wait()
	var npe *NoProvidersError
	if !errors.As(err, &npe) || npe.Root != missing || len(npe.Peers) != 1 || !errors.Is(err, ErrDontHave) {
		t.Fatalf("fetch of a missing CID: err = %v, want *NoProvidersError naming it and the one seeder", err)
	}
	t.Log(err)
}

func TestClientConfigValidate(t *testing.T) {
	cfg := DefaultClientConfig()
	if err := cfg.Validate(); !errors.Is(err, ErrFetchConfig) {
		t.Errorf("config without Links: %v, want ErrFetchConfig", err)
	}
	cfg.Links = clLinks
	if err := cfg.Validate(); err != nil {
		t.Errorf("default config with Links: %v", err)
	}
}

func BenchmarkClientFetch(b *testing.B) {
	for _, seeders := range []int{1, 4} {
		b.Run(fmt.Sprintf("seeders=%d", seeders), func(b *testing.B) {
			d := makeClDAG(b, 32, 1<<20, 9)
			b.SetBytes(d.size)
			for b.Loop() {
				_, leech := clSwarm(b, d, seeders, 0)
				if _, err := clFetchAll(b, leech, d.root, nil); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
}
